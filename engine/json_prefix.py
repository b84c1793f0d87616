"""Which tokens keep a function call's arguments valid JSON: a byte-level JSON automaton and per-state token masks.

A call's message says ``<|constrain|>json``: its text must be a JSON object. A model usually writes one, but a small
or confused model may not, and a client then gets arguments it cannot parse. With the automaton here the decode loop
lets through only tokens whose bytes keep the text a prefix of a JSON object (engine/channel_guard.py), and once the
object closes, only ``<|call|>`` (or whitespace): the call completes, and parses.

- :class:`JsonState` is the automaton's state (immutable and hashable): the open containers, what comes next, and
  inside a string, number or literal, how far it got. :func:`feed` advances it over bytes, None when they cannot
  continue a JSON object (whitespace may follow the object, as JSON allows). Strings take any byte from 0x20 up
  except ``"`` and ``\\`` unescaped (UTF-8 is the tokens' own business); the top level must be an object; nesting
  stops at :data:`MAX_DEPTH`.
- :class:`TokenTable` holds every token's bytes (from the bundled o200k vocabulary file) and :meth:`TokenTable.mask`
  the tokens allowed in a state, computed once per state and kept (the states of one call's arguments repeat:
  inside a string the mask depends only on the containers around it).

Syntax only: the arguments' schema (names, types, required keys) is the model's to follow.
"""

from __future__ import annotations

import base64
import enum
import functools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import torch

from gpt_oss_desktop.engine.vocab import bundled_vocab_path

logger = logging.getLogger(__name__)

MAX_DEPTH: Final = 32  # containers open at once; deeper arguments are no call a model should write
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
    STRING = enum.auto()  # inside a string (key or value)
    NUMBER = enum.auto()
    LITERAL = enum.auto()  # inside true / false / null
    DONE = enum.auto()  # the top-level object closed: whitespace at most


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


@dataclass(frozen=True, slots=True)
class JsonState:
    """Where a JSON object's text is. ``stack``: open containers, "o" or "a", outermost first. ``key``: the string
    is an object key. ``escape``: 0 outside an escape, 1 after a backslash, 2-5 inside ``\\uXXXX`` (hex digits
    seen + 2). ``part``: the number's :class:`NumberPart`. ``rest``: a literal's bytes still to come."""

    mode: Mode = Mode.TOP
    stack: tuple[str, ...] = ()
    key: bool = False
    escape: int = 0
    part: int = 0
    rest: bytes = b""

    @property
    def done(self) -> bool:
        return self.mode is Mode.DONE


def _after_value(state: JsonState, stack: tuple[str, ...]) -> JsonState:
    return JsonState(Mode.AFTER_VALUE if stack else Mode.DONE, stack)


def _open(state: JsonState, container: str) -> JsonState | None:
    if len(state.stack) >= MAX_DEPTH:
        return None
    stack = (*state.stack, container)
    return JsonState(Mode.OBJECT_FIRST if container == "o" else Mode.ARRAY_FIRST, stack)


def _start_value(state: JsonState, byte: int) -> JsonState | None:
    """A value's first byte, where a value may start."""
    if byte == 0x7B:  # {
        return _open(state, "o")
    if byte == 0x5B:  # [
        return _open(state, "a")
    if byte == 0x22:  # "
        return JsonState(Mode.STRING, state.stack, key=False)
    if byte == 0x2D:  # -
        return JsonState(Mode.NUMBER, state.stack, part=NumberPart.SIGN)
    if byte in _DIGITS:
        return JsonState(Mode.NUMBER, state.stack, part=NumberPart.ZERO if byte == 0x30 else NumberPart.INTEGER)
    for literal in (b"true", b"false", b"null"):
        if byte == literal[0]:
            return JsonState(Mode.LITERAL, state.stack, rest=literal[1:])
    return None


def _close(state: JsonState, byte: int) -> JsonState | None:
    want = "o" if byte == 0x7D else "a"
    if not state.stack or state.stack[-1] != want:
        return None
    return _after_value(state, state.stack[:-1])


def step(state: JsonState, byte: int) -> JsonState | None:
    """The state after one more byte, or None if no JSON object continues that way."""
    mode = state.mode
    if mode is Mode.STRING:
        if state.escape == 0:
            if byte == 0x22:  # "
                return JsonState(Mode.COLON, state.stack) if state.key else _after_value(state, state.stack)
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
    if mode is Mode.NUMBER:
        return _number(state, byte)
    if mode is Mode.LITERAL:
        if byte != state.rest[0]:
            return None
        return replace(state, rest=state.rest[1:]) if len(state.rest) > 1 else _after_value(state, state.stack)
    if byte in _WHITESPACE:
        return state  # between tokens, and after the object (JSON allows it; the call's end may come any time)
    if mode is Mode.TOP:
        return _open(state, "o") if byte == 0x7B else None
    if mode in (Mode.OBJECT_FIRST, Mode.OBJECT_KEY):
        if byte == 0x22:
            return JsonState(Mode.STRING, state.stack, key=True)
        return _close(state, byte) if mode is Mode.OBJECT_FIRST and byte == 0x7D else None
    if mode is Mode.COLON:
        return JsonState(Mode.VALUE, state.stack) if byte == 0x3A else None
    if mode is Mode.VALUE:
        return _start_value(state, byte)
    if mode is Mode.ARRAY_FIRST:
        return _close(state, byte) if byte == 0x5D else _start_value(state, byte)
    if mode is Mode.AFTER_VALUE:
        if byte == 0x2C:  # ,
            return JsonState(Mode.OBJECT_KEY if state.stack[-1] == "o" else Mode.VALUE, state.stack)
        return _close(state, byte) if byte in (0x7D, 0x5D) else None
    return None  # DONE


def _number(state: JsonState, byte: int) -> JsonState | None:
    part = NumberPart(state.part)
    digit = byte in _DIGITS
    nxt: NumberPart | None = None
    if part is NumberPart.SIGN:
        nxt = (NumberPart.ZERO if byte == 0x30 else NumberPart.INTEGER) if digit else None
    elif part in (NumberPart.ZERO, NumberPart.INTEGER):
        if digit and part is NumberPart.INTEGER:
            nxt = NumberPart.INTEGER
        elif byte == 0x2E:
            nxt = NumberPart.POINT
        elif byte in (0x65, 0x45):
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
        return replace(state, part=nxt)
    if part not in _ENDS_NUMBER:
        return None
    # The number ended: this byte belongs to what follows it.
    return step(_after_value(state, state.stack), byte)


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
        self._masks: OrderedDict[JsonState, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def mask(self, state: JsonState) -> torch.Tensor:
        """Bool ``[vocab_size]``: the tokens whose bytes continue a JSON object from ``state`` (shared: do not
        modify). Once the object is done only whitespace continues it; the caller adds the call's end."""
        with self._lock:
            found = self._masks.get(state)
            if found is not None:
                self._masks.move_to_end(state)
                return found
        mask = self._compute(state)
        with self._lock:
            self._masks[state] = mask
            while len(self._masks) > _MASK_CACHE_STATES:
                self._masks.popitem(last=False)
        return mask

    def _compute(self, state: JsonState) -> torch.Tensor:
        data = self.token_bytes
        if state.mode is Mode.STRING and state.escape == 0:
            mask = self._plain.clone()
            candidates = self._string_special
        else:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            candidates = [i for b in range(256) if step(state, b) is not None for i in self._by_first.get(b, ())]
            spaced = step(state, 0x20)  # the same state after any whitespace byte, where one is allowed
            if spaced is not None:
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
