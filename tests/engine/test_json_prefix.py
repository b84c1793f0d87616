"""The JSON-object prefix automaton (engine/json_prefix.py) against Python's json module, and its token masks against
feeding every token's bytes one by one."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_oss_desktop.engine.json_prefix import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_EXPONENT_DIGITS,
    MAX_WHITESPACE_RUN,
    JsonState,
    TokenTable,
    default_token_table,
    feed,
)
from gpt_oss_desktop.engine.vocab import get_encoding

VOCAB = 201088

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**19), 10**19)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5), st.sampled_from([None, 0, 2]), st.booleans())
def test_every_json_object_and_each_of_its_prefixes_pass(
    obj: dict[str, object], indent: int | None, ascii_: bool
) -> None:
    text = json.dumps(obj, indent=indent, ensure_ascii=ascii_).encode()
    state: JsonState | None = JsonState()
    for i in range(len(text)):
        state = feed(state, text[i : i + 1])
        assert state is not None, text[: i + 1]
    assert state is not None and state.done
    assert feed(state, b" ") is None and feed(state, b"x") is None  # nothing follows: the message ends


def test_random_text_is_accepted_exactly_when_json_reads_an_object() -> None:
    rng = random.Random(0)
    alphabet = '{}[]":,. -+0123456789eEtrufalsnx\\\n'
    for _ in range(50_000):
        text = "{" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        state = feed(JsonState(), text.rstrip(" \n").encode())  # (json allows trailing whitespace; the guard ends)
        try:
            is_object = isinstance(json.loads(text), dict)
        except ValueError:
            is_object = False
        assert (state is not None and state.done) == is_object, text


@pytest.mark.parametrize("text", ["[1, 2]", '"a"', "3", "true", '{"a": 1}}', '{"a": 01}', '{"a": "x\ny"}', '{"a":1,}'])
def test_what_is_not_one_json_object_is_refused(text: str) -> None:
    state = feed(JsonState(), text.encode())
    assert state is None or not state.done


def test_nesting_stops_at_the_limit() -> None:
    deep = b'{"a": ' + b"[" * (MAX_DEPTH - 1)
    assert feed(JsonState(), deep) is not None and feed(JsonState(), deep + b"[") is None


def test_whitespace_between_tokens_comes_in_short_runs() -> None:
    # A confused model held to JSON could otherwise pad spaces forever; every run may be that long, not longer.
    run = b" " * (MAX_WHITESPACE_RUN - 1) + b"\n"
    assert feed(JsonState(), run + b"{" + run + b'"a"' + run + b":" + run + b"1" + run + b"}") is not None
    assert feed(JsonState(), b'{"a": 1' + run + b" ") is None


def test_a_numbers_parts_have_at_most_so_many_digits() -> None:
    most = "9" * MAX_DIGITS
    for number in (most, f"-{most}", f"0.{most}", f"1.5e{'9' * MAX_EXPONENT_DIGITS}", f"{most}.{most}E-{'1' * 3}"):
        state = feed(JsonState(), f'{{"n": {number}}}'.encode())
        assert state is not None and state.done, number
    for number in (f"{most}9", f"1.{most}9", f"1e{'9' * (MAX_EXPONENT_DIGITS + 1)}"):
        assert feed(JsonState(), f'{{"n": {number}'.encode()) is None, number


@pytest.fixture(scope="module")
def table() -> TokenTable:
    return default_token_table(VOCAB)


@pytest.mark.parametrize(
    "prefix", ["", "{", '{"ci', '{"city"', '{"city": ', '{"n": 12', '{"n": 1.5e', '{"a": [tr', '{"a": "x\\']
)
def test_a_states_mask_is_every_token_whose_bytes_continue_it(table: TokenTable, prefix: str) -> None:
    state = feed(JsonState(), prefix.encode())
    assert state is not None
    mask = table.mask(state)
    expected = [bool(data) and feed(state, data) is not None for data in table.token_bytes]
    assert mask[: len(expected)].tolist() == expected and not mask[len(expected) :].any()  # no special token
    assert table.banned(state)[0] is table.banned(state)[0]  # kept for the next time


@settings(max_examples=20, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_a_json_objects_own_tokens_are_all_allowed(table: TokenTable, obj: dict[str, object]) -> None:
    state: JsonState | None = JsonState()
    for token in get_encoding().encode(json.dumps(obj)):
        assert state is not None and table.mask(state)[token], (obj, token)
        state = feed(state, table.token_bytes[token])
    assert state is not None and state.done


def test_a_smaller_vocabulary_gets_masks_of_its_size() -> None:
    small = default_token_table(512)  # the tiny test preset's
    mask = small.mask(JsonState())
    assert mask.shape == (512,) and mask[get_encoding().encode("{")[0]]
