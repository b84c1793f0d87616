"""Call arguments held to a function's parameters schema (engine/json_schema.py, engine/json_prefix.py), checked
against an independent validator (the ``jsonschema`` package): every instance it accepts passes as it is written,
and everything the automaton lets a model write ends as an instance it accepts."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_oss_desktop.engine.json_prefix import JsonState, TokenTable, default_token_table, feed, step
from gpt_oss_desktop.engine.json_schema import ANY, CallSchemas, compile_parameters
from gpt_oss_desktop.engine.vocab import get_encoding

VOCAB = 201088

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city"],
}
SEARCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "filters": {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b c", "d"]}},
                "min_score": {"type": "number"},
                "exact": {"type": "boolean"},
            },
            "required": ["exact"],
        },
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    },
    "required": ["query", "filters"],
}
PYDANTIC: dict[str, Any] = {  # the shape pydantic's model_json_schema() gives (MCP servers written with FastMCP)
    "$defs": {
        "Point": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {
        "points": {"type": "array", "items": {"$ref": "#/$defs/Point"}},
        "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "mode": {"const": "fast"},
    },
    "required": ["points"],
}
OPEN: dict[str, Any] = {  # other keys allowed, as strings; the declared one still an integer
    "type": "object",
    "properties": {"a": {"type": "integer"}, "ab": {"type": "boolean"}},
    "additionalProperties": {"type": "string"},
}
PREFIXES: dict[str, Any] = {  # keys that prefix each other, an enum whose 1 prefixes its 12, mixed enum types
    "type": "object",
    "properties": {
        "level": {"enum": [1, 12, "high", None, True]},
        "a": {"type": "string"},
        "ab": {"type": ["string", "null"]},
        "a b": {"type": "integer"},
    },
    "required": ["level"],
}
SCHEMAS = {"weather": WEATHER, "search": SEARCH, "pydantic": PYDANTIC, "open": OPEN, "prefixes": PREFIXES}


def _valid(schema: Mapping[str, Any], value: object) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


# -- instances the validator accepts are written through ---------------------------------------------------------

_keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6)


def _instances(schema: object, root: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values for ``schema`` (a generator for the supported keywords; the validator is the judge of them)."""
    if not isinstance(schema, Mapping):
        return st.none() | st.integers(-(10**19), 10**19) | st.text(max_size=5)
    if "$ref" in schema:
        return _instances(root["$defs"][schema["$ref"].split("/")[-1]], root)
    if "anyOf" in schema:
        return st.one_of([_instances(part, root) for part in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_instances({**schema, "type": name}, root) for name in kind])
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = {name: _instances(properties.get(name), root) for name in required}
        optional = {name: _instances(sub, root) for name, sub in properties.items() if name not in required}
        objects = st.fixed_dictionaries(fixed, optional=optional)
        extra = schema.get("additionalProperties", False)
        if extra is False:
            return objects
        return st.tuples(objects, st.dictionaries(_keys, _instances(extra, root), max_size=3)).map(
            lambda pair: {**pair[1], **pair[0]}
        )
    if kind == "array":
        return st.lists(_instances(schema.get("items"), root), max_size=3)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=8),
        "integer": st.integers(-(10**19), 10**19),
        "number": st.integers(-(10**19), 10**19) | st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
        "null": st.none(),
    }
    return simple[kind]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_instance_and_each_of_its_prefixes_pass(name: str) -> None:
    schema = SCHEMAS[name]
    start = JsonState.held_to(compile_parameters(schema))

    @settings(max_examples=150, deadline=None)
    @given(_instances(schema, schema), st.sampled_from([None, 0, 2]))
    def check(value: object, indent: int | None) -> None:
        assert _valid(schema, value), value  # (the generator's own check)
        # Held keys and enum strings are matched as json.dumps writes them with ensure_ascii=False.
        text = json.dumps(value, indent=indent, ensure_ascii=False).encode()
        state: JsonState | None = start
        for i in range(len(text)):
            state = feed(state, text[i : i + 1])
            assert state is not None, text[: i + 1]
        assert state is not None and state.done, text

    check()


# -- everything the automaton allows is valid --------------------------------------------------------------------

_ALPHABET = bytes(range(0x20, 0x7F)) + b"\n"
_CLOSERS = b'"}]'


def _random_walk(start: JsonState, rng: random.Random, hints: bytes, patience: int) -> bytes | None:
    """Bytes the automaton allows, chosen at random up to the end of the object, or None past 800 bytes. Bytes
    of ``hints`` (the schema's keys) are likelier, and closers after ``patience`` bytes, so walks end. Asserts that
    some byte always continues: the schema never traps a model."""
    state = start
    out = bytearray()
    while not state.done and len(out) < 800:
        allowed = [byte for byte in _ALPHABET if step(state, byte) is not None]
        assert allowed, f"dead end after {bytes(out)!r}"
        weights = [
            (20 if len(out) > patience and byte in _CLOSERS else 1) * (10 if byte in hints else 1) for byte in allowed
        ]
        byte = rng.choices(allowed, weights)[0]
        nxt = step(state, byte)
        assert nxt is not None
        state = nxt
        out.append(byte)
    return bytes(out) if state.done else None


def _key_bytes(schema: object) -> bytes:
    if isinstance(schema, Mapping):
        found = b"".join(name.encode() for name in schema.get("properties", {}))
        return found + b"".join(_key_bytes(sub) for sub in schema.values())
    return b""


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_whatever_the_automaton_lets_through_the_validator_accepts(name: str) -> None:
    schema = SCHEMAS[name]
    start = JsonState.held_to(compile_parameters(schema))
    rng = random.Random(name)
    finished = 0
    for _ in range(60):
        text = _random_walk(start, rng, _key_bytes(schema), patience=rng.choice([5, 20, 60]))
        if text is None:
            continue
        finished += 1
        value = json.loads(text)  # (raises if it is no JSON at all)
        assert _valid(schema, value), text
    assert finished >= 45


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"unit": "celsius"}', "a required key is missing"),
        ('{"city": "Oslo", "days": 3.5}', "an integer with a fraction"),
        ('{"city": 42}', "a number for a string"),
        ('{"city": "Oslo", "unit": "kelvin"}', "a value outside the enum"),
        ('{"city": "Oslo", "unit": "Celsius"}', "an enum's value in another case"),
        ('{"city": null}', "null where it is not allowed"),
    ],
)
def test_what_the_schema_refuses_is_refused(text: str, why: str) -> None:
    assert not _valid(WEATHER, json.loads(text))  # (the validator agrees it is wrong)
    state = feed(JsonState.held_to(compile_parameters(WEATHER)), text.encode())
    assert state is None or not state.done, why


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"city": "Oslo", "country": "NO"}', "a key the function does not declare (its properties close it)"),
        ('{"city": "Oslo", "city": "Bergen"}', "a key twice (json.loads would keep the last; a tool may not)"),
        ('{"city": "Oslo", "days": 1e3}', "an integer written with an exponent (it parses as a float)"),
    ],
)
def test_what_a_function_would_trip_on_is_refused_though_json_schema_allows_it(text: str, why: str) -> None:
    assert _valid(WEATHER, json.loads(text))  # JSON Schema itself allows these
    state = feed(JsonState.held_to(compile_parameters(WEATHER)), text.encode())
    assert state is None or not state.done, why


def test_open_objects_hold_declared_values_and_others_to_additional_properties() -> None:
    schema = {**OPEN, "required": ["a"]}
    start = JsonState.held_to(compile_parameters(schema))
    for text, ok in [
        ('{"a": 1, "note": "x"}', True),
        ('{"a": "1"}', False),  # the declared key keeps its type
        ('{"a": 1, "note": 2}', False),  # other keys' values are strings
        ('{"note": "x"}', False),  # "a" is required
        ('{"\\u0061": 1}', True),  # the declared key, escaped, is still that key
    ]:
        state = feed(start, text.encode())
        assert (state is not None and state.done) == ok, text
        assert _valid(schema, json.loads(text)) == ok, text


def test_what_cannot_be_held_exactly_accepts_any_value() -> None:
    overlapping = {"type": "object", "properties": {"v": {"anyOf": [{"type": "string"}, {"enum": [1, 2]}]}}}
    assert compile_parameters(overlapping).value_of("v") is ANY
    remote = {"type": "object", "properties": {"v": {"$ref": "https://example.com/schema.json"}}}
    assert compile_parameters(remote).value_of("v") is ANY
    for text in ('{"v": "x"}', '{"v": 7}', '{"v": [1, {"w": null}]}'):
        state = feed(JsonState.held_to(compile_parameters(overlapping)), text.encode())
        assert state is not None and state.done


def test_pattern_properties_leave_the_keys_free() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "patternProperties": {"^x-": {}}}
    state = feed(JsonState.held_to(compile_parameters(schema)), b'{"a": 1, "x-note": [true]}')
    assert state is not None and state.done and _valid(schema, {"a": 1, "x-note": [True]})
    assert feed(JsonState.held_to(compile_parameters(schema)), b'{"a": "1"}') is None  # "a" is still an integer


def test_no_schema_or_one_that_is_no_object_holds_json_only() -> None:
    assert compile_parameters(None) is ANY
    assert compile_parameters({"type": "string"}) is ANY
    assert compile_parameters({"type": "object"}) is not ANY  # an object of any keys: still an object
    state = feed(JsonState.held_to(compile_parameters({"type": "object"})), b'{"anything": [1]}')
    assert state is not None and state.done


def test_one_schema_text_compiles_to_one_node() -> None:
    assert compile_parameters(json.loads(json.dumps(WEATHER))) is compile_parameters(WEATHER)


def test_call_schemas_find_a_functions_schema_by_its_recipient() -> None:
    class Tool:
        def __init__(self, name: str, parameters: Mapping[str, Any] | None) -> None:
            self.name, self.parameters = name, parameters

    schemas = CallSchemas.for_functions([Tool("get_weather", WEATHER), Tool("ping", None)])
    assert schemas.node_for("functions.get_weather") is compile_parameters(WEATHER)
    assert schemas.node_for("functions.ping") is ANY
    assert schemas.node_for("functions.unknown") is ANY
    assert schemas == CallSchemas.for_functions(
        [Tool("get_weather", json.loads(json.dumps(WEATHER))), Tool("ping", None)]
    )


# -- token masks under a schema ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table() -> TokenTable:
    return default_token_table(VOCAB)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("weather", '{"'),  # a held key's first bytes: "city", "unit", "days"
        ("weather", '{"city": "Oslo", "unit": "c'),  # inside an enum's string
        ("weather", '{"city": "Oslo", "days": 1'),  # an integer: no "." or "e"
        ("weather", '{"unit": "celsius"'),  # "city" is still required: "," but no "}"
        ("prefixes", '{"a'),  # "a", "ab" and "a b": a space may come inside the key
        ("prefixes", '{"level": 1'),  # 1 may end here, or become 12
        ("open", '{"a": 1, "no'),  # a free key, read to know its value's schema
    ],
)
def test_a_held_states_mask_is_every_token_whose_bytes_continue_it(table: TokenTable, name: str, prefix: str) -> None:
    state = feed(JsonState.held_to(compile_parameters(SCHEMAS[name])), prefix.encode())
    assert state is not None
    mask = table.mask(state)
    expected = [bool(data) and feed(state, data) is not None for data in table.token_bytes]
    assert mask[: len(expected)].tolist() == expected and not mask[len(expected) :].any()
    assert any(expected)


@settings(max_examples=25, deadline=None)
@given(_instances(SEARCH, SEARCH))
def test_an_instances_own_tokens_are_all_allowed(table: TokenTable, value: object) -> None:
    state: JsonState | None = JsonState.held_to(compile_parameters(SEARCH))
    for token in get_encoding().encode(json.dumps(value, ensure_ascii=False)):
        assert state is not None and table.mask(state)[token], (value, token)
        state = feed(state, table.token_bytes[token])
    assert state is not None and state.done
