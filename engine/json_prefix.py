"""Which tokens keep a function call's arguments valid JSON: a byte-level JSON automaton and per-state token masks.

A call's message says ``<|constrain|>json``: its text must be a JSON object. A model usually writes one, but a small
or confused model may not, and a client then gets arguments it cannot parse. With the automaton here the decode loop
lets through only tokens whose bytes keep the text a prefix of a JSON object (engine/channel_guard.py), and once the
object closes, only ``<|call|>``: the call completes, and parses.

- :class:`JsonState` is the automaton's state (immutable and hashable): the open containers, what comes next, and
  inside a string, number or fixed text (a literal, an enum's value, a held key), how far it got. :func:`feed`
  advances it over bytes, None when they cannot continue a JSON object (nothing follows the object; whitespace
  between its tokens comes in runs of at most :data:`MAX_WHITESPACE_RUN`, a number's digits at most
  :data:`MAX_DIGITS` a part: JSON sets no limit, a looping model needs one). Strings take any byte from 0x20 up
  except ``"`` and ``\\`` unescaped (UTF-8 is the tokens' own business); the top level must be an object; nesting
  stops at :data:`MAX_DEPTH`.
- A state may carry the function's parameters schema (:meth:`JsonState.held_to`, engine/json_schema.py): then the
  keys, types, enums and required keys are held too. Without one (:data:`~engine.json_schema.ANY`) only the syntax.
- :class:`TokenTable` holds every token's bytes (from the bundled o200k vocabulary file) and :meth:`TokenTable.mask`
  the tokens allowed in a state, computed once per state and kept (the states of one call's arguments repeat:
  inside a string the mask depends only on the containers around it).
"""

from __future__ import annotations

import base64
import enum
import functools
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import torch

from gpt_oss_desktop.engine.json_schema import ANY, SchemaNode
from gpt_oss_desktop.engine.vocab import bundled_vocab_path

logger = logging.getLogger(__name__)

MAX_DEPTH: Final = 32  # containers open at once; deeper arguments are no call a model should write
# Whitespace bytes in one run between JSON's tokens. JSON sets no limit, but a confused model held to JSON can pad
# spaces forever (the demo toy does); 32 still lets a call be pretty-printed 10 levels deep.
MAX_WHITESPACE_RUN: Final = 32
# Digits in a number's parts, for the same reason (a toy model writes digits forever): 20 hold any 64-bit integer and
# a float's shortest repr (17 significant digits); three an exponent's.
MAX_DIGITS: Final = 20
MAX_EXPONENT_DIGITS: Final = 3
_MASK_CACHE_STATES: Final = 128  # masks kept (201,088 bools each: ~25 MB at most)
_WHITESPACE: Final = frozenset(b" \t\n\r")
_DIGITS: Final = frozenset(b"0123456789")
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES: Final = frozenset(b'"\\/bfnrt')


class Mode(enum.Enum):
    TOP = enum.auto()  # before the top-level object: whitespace, then "{"
    OBJECT_FIRST = enum.auto()  # after "{": a key or "}"
    OBJECT_KEY = enum.auto()  # after "," in an object: a key
    COLON = enum.auto()  # after a key
    VALUE = enum.auto()  # after ":" or "," in an array
    ARRAY_FIRST = enum.auto()  # after "[": a value or "]"
    AFTER_VALUE = enum.auto()  # "," or the container's closer
    STRING = enum.auto()  # inside a free string (a value, or a key of an object whose keys are not held)
    NUMBER = enum.auto()
    CHOICE = enum.auto()  # inside one of a few fixed texts: true / false / null, an enum's value, a held key
    DONE = enum.auto()  # the top-level object closed: nothing more


class NumberPart(enum.IntEnum):
    SIGN = 0  # after "-": a digit must follow
    ZERO = 1  # a leading 0: no more digits of the integer part
    INTEGER = 2
    POINT = 3  # after ".": a digit must follow
    FRACTION = 4
    EXPONENT = 5  # after "e": a sign or digit
    EXPONENT_SIGN = 6  # after "e+": a digit
    EXPONENT_DIGITS = 7


_ENDS_NUMBER: Final = frozenset({NumberPart.ZERO, NumberPart.INTEGER, NumberPart.FRACTION, NumberPart.EXPONENT_DIGITS})
_LITERALS: Final = {0x74: b"rue", 0x66: b"alse", 0x6E: b"ull"}  # after t, f, n
_LITERAL_TYPES: Final = {0x74: "boolean", 0x66: "boolean", 0x6E: "null"}


@dataclass(frozen=True, slots=True)
class Container:
    """An open object or array, and its schema. ``written``: the keys an object whose keys are held has so far."""

    node: SchemaNode
    array: bool
    written: frozenset[str] = frozenset()

    def keys_left(self) -> tuple[tuple[str, bytes, SchemaNode], ...]:
        return tuple(key for key in self.node.keys if key[0] not in self.written)

    def may_close(self) -> bool:
        return self.array or self.node.required <= self.written

    def may_continue(self) -> bool:
        """Whether a "," may follow a value: an array, an object whose keys are free, or one with keys left."""
        return self.array or not self.node.closed or bool(self.keys_left())


@dataclass(frozen=True, slots=True)
class JsonState:
    """Where a JSON object's text is. ``stack``: open containers, outermost first. ``node``: the schema of the value
    being started or written (of the top-level object at TOP); :data:`ANY` elsewhere. ``key``: the string or choice
    is an object key. ``escape``: 0 outside an escape, 1 after a backslash, 2-5 inside ``\\uXXXX`` (hex digits seen
    + 2). ``part``: the number's :class:`NumberPart`. ``choice``: the fixed texts still possible, each as its bytes
    still to come and its tag (a held key's name). ``text``: a free key's bytes so far, where they matter."""

    mode: Mode = Mode.TOP
    stack: tuple[Container, ...] = ()
    node: SchemaNode = ANY
    key: bool = False
    escape: int = 0
    part: int = 0
    choice: frozenset[tuple[bytes, str]] = frozenset()
    text: bytes = b""  # a free key's bytes so far, where its object must know which key it is (``tracks_keys``)
    spaces: int = 0  # whitespace bytes since JSON's last token (at most MAX_WHITESPACE_RUN)
    digits: int = 0  # in the number's current part (at most MAX_DIGITS, MAX_EXPONENT_DIGITS in the exponent)

    @property
    def done(self) -> bool:
        return self.mode is Mode.DONE

    @classmethod
    def held_to(cls, node: SchemaNode) -> JsonState:
        """The start of an object held to ``node`` (engine/json_schema.py)."""
        return cls(node=node)


def _after_value(stack: tuple[Container, ...]) -> JsonState:
    return JsonState(Mode.AFTER_VALUE if stack else Mode.DONE, stack)


def _open(stack: tuple[Container, ...], node: SchemaNode, array: bool) -> JsonState | None:
    if len(stack) >= MAX_DEPTH:
        return None
    inner = (*stack, Container(node, array))
    return JsonState(Mode.ARRAY_FIRST if array else Mode.OBJECT_FIRST, inner)


def _choose(
    stack: tuple[Container, ...], node: SchemaNode, key: bool, texts: frozenset[tuple[bytes, str]]
) -> JsonState:
    """Inside a fixed text: one of ``texts`` (bytes to come, tag), finished where the only ones left are empty."""
    if all(not rest for rest, _ in texts):
        return _chosen(stack, key, next(iter(texts))[1])
    return JsonState(Mode.CHOICE, stack, node, key=key, choice=texts)


def _chosen(stack: tuple[Container, ...], key: bool, tag: str) -> JsonState:
    if not key:
        return _after_value(stack)
    return _key_written(stack, tag)


def _key_written(stack: tuple[Container, ...], name: str | None) -> JsonState:
    """After a key's closing quote: the key is spent (``name``, None where unknown), its value's node comes next."""
    container = stack[-1]
    if name is None:
        return JsonState(Mode.COLON, stack, container.node.extra or ANY)
    written = replace(container, written=container.written | {name})
    return JsonState(Mode.COLON, (*stack[:-1], written), container.node.value_of(name))


def _free_key_written(state: JsonState) -> JsonState:
    container = state.stack[-1]
    if not container.node.tracks_keys:
        return JsonState(Mode.COLON, state.stack)
    try:
        name = json.loads(b'"' + state.text + b'"')
    except ValueError:  # (bytes that are no UTF-8: no key the schema names)
        name = None
    return _key_written(state.stack, name)


def _start_value(stack: tuple[Container, ...], node: SchemaNode, byte: int) -> JsonState | None:
    """A value's first byte, where a value held to ``node`` may start."""
    if node.enum is not None:
        texts = frozenset((text[1:], "") for text in node.enum if text[0] == byte)
        return _choose(stack, node, False, texts) if texts else None
    types = node.types
    if byte == 0x7B:  # {
        return _open(stack, node, array=False) if "object" in types else None
    if byte == 0x5B:  # [
        return _open(stack, node, array=True) if "array" in types else None
    if byte == 0x22:  # "
        return JsonState(Mode.STRING, stack, node) if "string" in types else None
    if byte == 0x2D or byte in _DIGITS:  # - or a digit
        if "number" not in types and "integer" not in types:
            return None
        part = NumberPart.SIGN if byte == 0x2D else NumberPart.ZERO if byte == 0x30 else NumberPart.INTEGER
        return JsonState(Mode.NUMBER, stack, node, part=part, digits=int(byte != 0x2D))
    if byte in _LITERALS and _LITERAL_TYPES[byte] in types:
        return JsonState(Mode.CHOICE, stack, node, choice=frozenset({(_LITERALS[byte], "")}))
    return None


def _start_key(state: JsonState) -> JsonState | None:
    """A key's opening quote: a free string, or one of the keys the object has left when its keys are held."""
    container = state.stack[-1]
    if not container.node.closed:
        return JsonState(Mode.STRING, state.stack, key=True)  # (its bytes are kept from the first on, as text)
    texts = frozenset((text, name) for name, text, _ in container.keys_left())
    return JsonState(Mode.CHOICE, state.stack, key=True, choice=texts) if texts else None


def _close(state: JsonState, byte: int) -> JsonState | None:
    if not state.stack:
        return None
    container = state.stack[-1]
    if container.array != (byte == 0x5D) or not container.may_close():
        return None
    return _after_value(state.stack[:-1])


def step(state: JsonState, byte: int) -> JsonState | None:
    """The state after one more byte, or None if no JSON object (held to the schema) continues that way."""
    mode = state.mode
    if mode is Mode.STRING:
        nxt = _string(state, byte)
        if nxt is not None and nxt.mode is Mode.STRING and state.key and state.stack[-1].node.tracks_keys:
            return replace(nxt, text=state.text + bytes((byte,)))
        return nxt
    if mode is Mode.NUMBER:
        return _number(state, byte)
    if mode is Mode.CHOICE:
        return _choice(state, byte)
    if mode is Mode.DONE:
        return None  # the object closed: the message ends now (trailing whitespace would only delay that)
    if byte in _WHITESPACE:
        # Between tokens (JSON allows it), in short runs.
        return replace(state, spaces=state.spaces + 1) if state.spaces < MAX_WHITESPACE_RUN else None
    if mode is Mode.TOP:
        return _open((), state.node, array=False) if byte == 0x7B else None
    if mode in (Mode.OBJECT_FIRST, Mode.OBJECT_KEY):
        if byte == 0x22:
            return _start_key(state)
        return _close(state, byte) if mode is Mode.OBJECT_FIRST and byte == 0x7D else None
    if mode is Mode.COLON:
        return JsonState(Mode.VALUE, state.stack, state.node) if byte == 0x3A else None
    if mode is Mode.VALUE:
        return _start_value(state.stack, state.node, byte)
    if mode is Mode.ARRAY_FIRST:
        return _close(state, byte) if byte == 0x5D else _start_value(state.stack, state.stack[-1].node.element, byte)
    # AFTER_VALUE
    container = state.stack[-1]
    if byte == 0x2C:  # ,
        if not container.may_continue():
            return None
        if container.array:
            return JsonState(Mode.VALUE, state.stack, container.node.element)
        return JsonState(Mode.OBJECT_KEY, state.stack)
    return _close(state, byte) if byte in (0x7D, 0x5D) else None


def _string(state: JsonState, byte: int) -> JsonState | None:
    if state.escape == 0:
        if byte == 0x22:  # "
            return _free_key_written(state) if state.key else _after_value(state.stack)
        if byte == 0x5C:  # \
            return replace(state, escape=1)
        return state if byte >= 0x20 else None
    if state.escape == 1:
        if byte == 0x75:  # u
            return replace(state, escape=2)
        return replace(state, escape=0) if byte in _ESCAPES else None
    if byte not in _HEX:
        return None
    return replace(state, escape=0 if state.escape == 5 else state.escape + 1)


def _choice(state: JsonState, byte: int) -> JsonState | None:
    kept = frozenset((rest[1:], tag) for rest, tag in state.choice if rest and rest[0] == byte)
    if kept:
        return _choose(state.stack, state.node, state.key, kept)
    # A text that may end here (an enum's 1 beside its 12) ended: this byte belongs to what follows it.
    ended = [tag for rest, tag in state.choice if not rest]
    return step(_chosen(state.stack, state.key, ended[0]), byte) if ended else None


def _number(state: JsonState, byte: int) -> JsonState | None:
    part = NumberPart(state.part)
    digit = byte in _DIGITS
    fractions = "number" in state.node.types  # an integer-only value takes no "." or exponent
    nxt: NumberPart | None = None
    if part is NumberPart.SIGN:
        nxt = (NumberPart.ZERO if byte == 0x30 else NumberPart.INTEGER) if digit else None
    elif part in (NumberPart.ZERO, NumberPart.INTEGER):
        if digit and part is NumberPart.INTEGER:
            nxt = NumberPart.INTEGER
        elif byte == 0x2E and fractions:
            nxt = NumberPart.POINT
        elif byte in (0x65, 0x45) and fractions:
            nxt = NumberPart.EXPONENT
    elif part in (NumberPart.POINT, NumberPart.FRACTION):
        if digit:
            nxt = NumberPart.FRACTION
        elif part is NumberPart.FRACTION and byte in (0x65, 0x45):
            nxt = NumberPart.EXPONENT
    elif part is NumberPart.EXPONENT:
        nxt = NumberPart.EXPONENT_DIGITS if digit else NumberPart.EXPONENT_SIGN if byte in (0x2B, 0x2D) else None
    elif digit:  # EXPONENT_SIGN or EXPONENT_DIGITS
        nxt = NumberPart.EXPONENT_DIGITS
    if nxt is not None:
        digits = state.digits + 1 if nxt is part else int(digit)
        if digits <= (MAX_EXPONENT_DIGITS if nxt is NumberPart.EXPONENT_DIGITS else MAX_DIGITS):
            return replace(state, part=nxt, digits=digits)
    if part not in _ENDS_NUMBER:
        return None
    # The number ended: this byte belongs to what follows it.
    return step(_after_value(state.stack), byte)


def feed(state: JsonState | None, data: bytes) -> JsonState | None:
    """The state after ``data``, or None if it cannot continue a JSON object."""
    for byte in data:
        if state is None:
            return None
        state = step(state, byte)
    return state


def read_token_bytes(path: Path | None = None) -> list[bytes]:
    """Every ordinary token's bytes, by id, from a ``.tiktoken`` file (base64 bytes and rank per line)."""
    source = path if path is not None else bundled_vocab_path()
    out: dict[int, bytes] = {}
    for line in source.read_bytes().splitlines():
        if line:
            encoded, rank = line.split()
            out[int(rank)] = base64.b64decode(encoded)
    return [out.get(i, b"") for i in range(max(out) + 1)]


class TokenTable:
    """Every token's bytes and the masks of allowed tokens per :class:`JsonState` (thread-safe; masks cached).

    Args:
        token_bytes: each ordinary token's bytes by id (special tokens beyond them, never allowed in JSON).
        vocab_size: the model's vocabulary (the mask's length).
    """

    def __init__(self, token_bytes: list[bytes], vocab_size: int) -> None:
        self.token_bytes = token_bytes[:vocab_size]  # (a test model's vocabulary may be smaller)
        self.vocab_size = vocab_size
        token_bytes = self.token_bytes
        # Inside a string (no escape open) a token of plain string bytes always fits, whatever the containers: one
        # shared mask; the tokens holding a quote or a backslash are checked one by one.
        self._plain = torch.zeros(vocab_size, dtype=torch.bool)
        plain = [i for i, data in enumerate(token_bytes) if data and all(b >= 0x20 and b not in b'"\\' for b in data)]
        self._plain[plain] = True
        self._string_special = [i for i, data in enumerate(token_bytes) if b'"' in data or b"\\" in data]
        # Candidates by their first byte; the ~40 % of tokens that start with whitespace by their first other byte
        # (256: all whitespace), since between JSON's tokens whitespace leaves the state as it is.
        by_first: dict[int, list[int]] = {}
        by_first_after_space: dict[int, list[int]] = {}
        for i, data in enumerate(token_bytes):
            if not data:
                continue
            if data[0] in _WHITESPACE:
                core = data.lstrip(b" \t\n\r")
                by_first_after_space.setdefault(core[0] if core else 256, []).append(i)
            else:
                by_first.setdefault(data[0], []).append(i)
        self._by_first = by_first
        self._by_first_after_space = by_first_after_space
        # Kept per state as the decode loop uses them: the banned tokens (for masked_fill) and whether any token is
        # allowed, so a step costs one masked_fill, not a negation and a scan of the vocabulary as well.
        self._banned: OrderedDict[JsonState, tuple[torch.Tensor, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def mask(self, state: JsonState) -> torch.Tensor:
        """Bool ``[vocab_size]``: the tokens whose bytes continue a JSON object from ``state`` (a new tensor). Once the
        object is done nothing continues it; the caller adds the message's end."""
        return ~self.banned(state)[0]

    def banned(self, state: JsonState) -> tuple[torch.Tensor, bool]:
        """The tokens that do not continue ``state`` (bool ``[vocab_size]``, shared: do not modify), and whether any
        token does. Computed once per state and kept."""
        with self._lock:
            found = self._banned.get(state)
            if found is not None:
                self._banned.move_to_end(state)
                return found
        allowed = self._compute(state)
        entry = (~allowed, bool(allowed.any()))
        with self._lock:
            self._banned[state] = entry
            while len(self._banned) > _MASK_CACHE_STATES:
                self._banned.popitem(last=False)
        return entry

    def _compute(self, state: JsonState) -> torch.Tensor:
        data = self.token_bytes
        if state.mode is Mode.STRING and state.escape == 0:
            mask = self._plain.clone()
            candidates = self._string_special
        else:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            candidates = [i for b in range(256) if step(state, b) is not None for i in self._by_first.get(b, ())]
            spaced = step(state, 0x20)  # the same state after any whitespace byte, where one is allowed
            if spaced is not None and spaced.mode in (Mode.CHOICE, Mode.STRING):
                # A space inside a held key or an enum's string: the whitespace bytes differ there (a raw newline
                # is no string byte), and a later one may matter, so every token opening with whitespace is tried.
                candidates += [i for group in self._by_first_after_space.values() for i in group]
            elif spaced is not None:
                keeps = [b for b in range(256) if step(spaced, b) is not None]
                candidates += [i for b in (*keeps, 256) for i in self._by_first_after_space.get(b, ())]
        allowed = [i for i in candidates if feed(state, data[i]) is not None]
        if allowed:
            mask[allowed] = True
        return mask


@functools.cache
def default_token_table(vocab_size: int) -> TokenTable:
    """The bundled vocabulary's table for a model of ``vocab_size`` tokens (read on first use, ~0.5 s)."""
    return TokenTable(read_token_bytes(), vocab_size)
