"""The JSON-object prefix automaton (engine/json_prefix.py) against Python's json module, and its token masks against
feeding every token's bytes one by one."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_oss_desktop.engine.json_prefix import MAX_DEPTH, JsonState, TokenTable, default_token_table, feed
from gpt_oss_desktop.engine.vocab import get_encoding

VOCAB = 201088

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
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
    assert feed(state, b"  \n") is not None and feed(state, b"x") is None  # whitespace may follow, nothing else


def test_random_text_is_accepted_exactly_when_json_reads_an_object() -> None:
    rng = random.Random(0)
    alphabet = '{}[]":,. -+0123456789eEtrufalsnx\\\n'
    for _ in range(50_000):
        text = "{" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        state = feed(JsonState(), text.encode())
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
    assert table.mask(state) is mask  # kept for the next time


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
