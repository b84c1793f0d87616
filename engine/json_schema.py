"""A function's parameters schema, compiled into what the JSON automaton (engine/json_prefix.py) holds a call to.

A call that parses can still be wrong: a key the function does not take, a number where it wants a string, a unit
outside its enum, a required argument left out. The function's tool, or the client's, then fails, and a small model
does this far more than a large one. Holding the arguments to the schema, token by token, makes the call one the
function accepts. Supported (the keywords tools use): ``type`` (a name or a list), ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``nullable``, ``anyOf`` / ``oneOf`` of parts
that do not overlap, a single ``allOf``, and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``).

What the schema does not say is left to the model. A keyword not in that list is not enforced: a string's pattern or
length, a number's range, an array's length. A part that cannot be held exactly (overlapping unions, a remote
``$ref``, one nested deeper than :data:`MAX_SCHEMA_DEPTH`) accepts any JSON value there, never fewer than it should.

Keys: an object that lists ``properties`` takes those keys only, each once, unless ``additionalProperties`` is true
or a schema (then other keys come too, their values held to that schema, and the listed keys' values still to
theirs). A function takes the arguments it declares: a key it does not know fails most tools. An object closes only
once every ``required`` key is written.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

logger = logging.getLogger(__name__)

JSON_TYPES: Final = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
MAX_SCHEMA_DEPTH: Final = 16  # nested schema parts held; deeper parts take any value (and cannot dead-end the call)
_REF_PREFIXES: Final = ("#/$defs/", "#/definitions/")


@dataclass(frozen=True, eq=False, slots=True)
class SchemaNode:
    """What one JSON value may be. Compiled once per schema text and shared, so it hashes (and compares) by
    identity, cheaply: the automaton's states hold nodes and key the token-mask cache.

    ``types``: the JSON types allowed ("integer" alone refuses a fraction or exponent). ``enum``: when set, the
    value must be one of these, each written as compact JSON. ``keys``: an object's declared keys, each with its JSON
    text after the opening quote (the closing quote included) and its value's node. ``closed``: it takes those keys
    only; else ``extra`` is the node of any other key's value. ``required``: the keys it may not close without.
    ``items``: an array's elements' node.
    """

    types: frozenset[str] = JSON_TYPES
    enum: tuple[bytes, ...] | None = None
    keys: tuple[tuple[str, bytes, SchemaNode], ...] = ()
    required: frozenset[str] = frozenset()
    closed: bool = False
    extra: SchemaNode | None = None
    items: SchemaNode | None = None
    _by_name: dict[str, SchemaNode] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update((name, node) for name, _, node in self.keys)

    def value_of(self, key: str) -> SchemaNode:
        """The node of ``key``'s value (``extra``'s for a key the object does not list)."""
        found = self._by_name.get(key)
        return found if found is not None else self.extra if self.extra is not None else ANY

    @property
    def tracks_keys(self) -> bool:
        """Whether an object's free keys must be read (to give a declared key its value's node, or to count a
        required one): it declares keys or sets what other keys' values are."""
        return bool(self.keys) or self.extra is not None

    @property
    def element(self) -> SchemaNode:
        return self.items if self.items is not None else ANY


ANY: Final = SchemaNode()


def _encode(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def node(self, schema: object, depth: int = 0) -> SchemaNode:
        if depth > MAX_SCHEMA_DEPTH or not isinstance(schema, Mapping):
            return ANY  # (true, {}, or something that is no schema: any value)
        ref = schema.get("$ref")
        if ref is not None:
            return self.node(self._resolve(ref), depth + 1)
        for union in ("anyOf", "oneOf"):
            parts = schema.get(union)
            if isinstance(parts, Sequence) and not isinstance(parts, str) and parts:
                return _union([self.node(part, depth + 1) for part in parts])
        every = schema.get("allOf")
        if isinstance(every, Sequence) and not isinstance(every, str) and len(every) == 1:
            return self.node(every[0], depth + 1)
        if every:
            return ANY  # an intersection is not held (it would need merging the parts)
        return self._plain(schema, depth)

    def _resolve(self, ref: object) -> object:
        if not isinstance(ref, str):
            return None
        for prefix in _REF_PREFIXES:
            if ref.startswith(prefix):
                table = self.root.get(prefix[2:-1])
                return table.get(ref[len(prefix) :]) if isinstance(table, Mapping) else None
        return None  # a remote or JSON-pointer reference: any value

    def _plain(self, schema: Mapping[str, Any], depth: int) -> SchemaNode:
        values = [schema["const"]] if "const" in schema else schema.get("enum")
        enum = None
        if isinstance(values, Sequence) and not isinstance(values, str) and values:
            enum = tuple(dict.fromkeys(_encode(value) for value in values))
        types = _types(schema)
        if types is None or enum is not None:
            return SchemaNode(enum=enum) if enum is not None else ANY
        if schema.get("nullable") is True:
            types |= {"null"}
        keys: tuple[tuple[str, bytes, SchemaNode], ...] = ()
        required: frozenset[str] = frozenset()
        closed = False
        extra_node: SchemaNode | None = None
        properties = schema.get("properties")
        if "object" in types:
            declared = properties if isinstance(properties, Mapping) else {}
            listed = [name for name in declared if isinstance(name, str)]
            wanted = schema.get("required")
            if isinstance(wanted, Sequence) and not isinstance(wanted, str):
                required = frozenset(name for name in wanted if isinstance(name, str))
            names = listed + sorted(required - set(listed))  # a required key left out of properties: any value
            keys = tuple((name, _encode(name)[1:], self.node(declared.get(name), depth + 1)) for name in names)
            # Listing properties closes the object unless it says otherwise; an object that lists none is open, and
            # so is one with patternProperties (keys matching a pattern: not held, so any key may come).
            extra = schema.get("additionalProperties", not isinstance(properties, Mapping))
            closed = extra is False and "patternProperties" not in schema
            if isinstance(extra, Mapping):
                extra_node = self.node(extra, depth + 1)
        items = schema.get("items") if "array" in types else None
        return SchemaNode(
            types=types,
            keys=keys,
            required=required,
            closed=closed,
            extra=None if extra_node is ANY else extra_node,
            items=self.node(items, depth + 1) if isinstance(items, Mapping) else None,
        )


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    """The JSON types ``schema`` allows, or None for any (no type, or one this does not know)."""
    declared = schema.get("type")
    if declared is None:
        if "properties" in schema:
            return frozenset({"object"})
        if "items" in schema:
            return frozenset({"array"})
        return None
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, Sequence) else []
    types = frozenset(name for name in names if isinstance(name, str))
    if not types or not types <= JSON_TYPES:
        return None
    return types


def _union(nodes: list[SchemaNode]) -> SchemaNode:
    """One node allowing what any of ``nodes`` allows, or :data:`ANY` where that cannot be held exactly."""
    if any(node is ANY for node in nodes):
        return ANY
    if all(node.enum is not None for node in nodes):
        return SchemaNode(enum=tuple(dict.fromkeys(value for node in nodes for value in node.enum or ())))
    if any(node.enum is not None for node in nodes):
        return ANY  # an enum beside a free type: the enum would bind values the free part allows
    objects = [node for node in nodes if "object" in node.types]
    arrays = [node for node in nodes if "array" in node.types]
    if len(objects) > 1 or len(arrays) > 1:
        return ANY  # two object (or array) shapes: the keys of both would have to be followed at once
    shape = objects[0] if objects else None
    return SchemaNode(
        types=frozenset().union(*(node.types for node in nodes)),
        keys=shape.keys if shape else (),
        required=shape.required if shape else frozenset(),
        closed=shape.closed if shape else False,
        extra=shape.extra if shape else None,
        items=arrays[0].items if arrays else None,
    )


@functools.cache
def compile_schema_text(text: str) -> SchemaNode:
    """The node of an object's schema given as JSON text (cached by the text); :data:`ANY` (any JSON object) for a
    schema that does not describe an object."""
    schema = json.loads(text)
    node = _Compiler(schema).node(schema)
    if "object" not in node.types:
        logger.info("a schema that is not an object's: the text is held to a JSON object only")
        return ANY
    return node


def compile_parameters(schema: Mapping[str, Any] | None) -> SchemaNode:
    """The node of a function's ``parameters`` schema (its arguments object); :data:`ANY` for None. Cached by the
    schema's text, so one schema gives one node (and the token masks of its states are computed once)."""
    if schema is None:
        return ANY
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        logger.warning("a function's parameters schema is not JSON; its arguments are held to JSON only")
        return ANY
    return compile_schema_text(text)


class DeclaredFunction(Protocol):
    """A function a request offers (engine/harmony.py's ``FunctionTool``): its name and its parameters schema."""

    @property
    def name(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class CallSchemas:
    """The parameters schema of each function a request offers, by recipient (``functions.get_weather``): what
    the channel guard holds a call to that recipient to. Compares by the schemas' text."""

    texts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_functions(cls, functions: Iterable[DeclaredFunction]) -> CallSchemas:
        """The schemas of ``functions`` (a request's tools; one without ``parameters``: its arguments held to JSON
        only)."""
        texts = []
        for function in functions:
            name, schema = function.name, function.parameters
            try:
                text = json.dumps(schema, sort_keys=True) if schema is not None else "null"
            except (TypeError, ValueError):
                text = "null"
            texts.append((f"functions.{name}", text))
        return cls(tuple(texts))

    def node_for(self, recipient: str) -> SchemaNode:
        """The node a call to ``recipient`` is held to: :data:`ANY` (JSON only) for one the request does not offer."""
        for name, text in self.texts:
            if name == recipient:
                return compile_schema_text(text) if text != "null" else ANY
        return ANY
