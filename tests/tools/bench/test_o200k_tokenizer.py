"""tools/bench/o200k_tokenizer.py: merges recovered from tiktoken ranks, and a tokenizer.json that encodes exactly like
the engine's own o200k_harmony encoding (openai-harmony, the independent reference)."""

from __future__ import annotations

import base64
import json
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.engine import vocab
from tools.bench.o200k_tokenizer import (
    FIRST_SPECIAL,
    byte_to_unicode,
    extract_merges,
    load_tiktoken_ranks,
    special_tokens,
    write_tokenizer_files,
)

tokenizers = pytest.importorskip("tokenizers")

# llama.cpp's converter hashes the ids of this text to recognise a pre-tokenizer (conversion/base.py,
# get_vocab_base_pre); the gpt-4o/o200k entry of its table is the hash below.
LLAMA_CPP_CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 "
    "3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= "
    "нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure "
    "I'll make it, 'D you like some tea? We'Ve a'lL"
)
GPT_4O_CHKHSH = "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e"


def test_byte_alphabet_is_a_printable_bijection() -> None:
    alphabet = byte_to_unicode()
    assert sorted(alphabet) == list(range(256))
    assert len(set(alphabet.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in alphabet.values())
    assert alphabet[ord("A")] == "A" and alphabet[ord(" ")] != " "


def _ranks(*tokens: bytes) -> dict[bytes, int]:
    return {t: i for i, t in enumerate(tokens)}


def test_merges_follow_rank_order_and_pick_the_bpe_split() -> None:
    # "abc" must be ab+c (ab ranks below bc), and bc comes after it although it is shorter.
    ranks = _ranks(b"a", b"b", b"c", b"ab", b"abc", b"bc")
    assert extract_merges(ranks) == [(b"a", b"b"), (b"ab", b"c"), (b"b", b"c")]


def test_a_token_no_merge_can_build_is_rejected() -> None:
    # "abc" needs "ab" or "bc", neither ranks below it.
    with pytest.raises(ValueError, match="not one merge"):
        extract_merges(_ranks(b"a", b"b", b"c", b"abc", b"ab"))


def test_tiktoken_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "mini.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate([b"a", b"\n", b"a\n"])))
    assert load_tiktoken_ranks(path) == {b"a": 0, b"\n": 1, b"a\n": 2}


def test_special_tokens_name_harmony_ids_and_reserve_the_rest() -> None:
    specials = special_tokens(201088)
    assert len(specials) == 201088 - FIRST_SPECIAL
    assert specials[vocab.START] == "<|start|>" and specials[vocab.RETURN] == "<|return|>"
    assert specials[vocab.CALL] == "<|call|>" and specials[200000] == "<|reserved_200000|>"


@pytest.fixture(scope="module")
def o200k_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("tok")
    written = write_tokenizer_files(out, vocab.bundled_vocab_path(), 201088)
    assert [p.name for p in written] == ["tokenizer.json", "tokenizer_config.json"]
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|return|>" and config["added_tokens_decoder"][str(vocab.END)]["special"]
    return tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))


@pytest.mark.parametrize(
    "text",
    [
        LLAMA_CPP_CHKTXT,
        "Hello, World! It's 2026; naïve café — 12345678 tokens\r\n\tindented    spaces  ",
        "def f(x):\n    return x**2  # über-fast\n\n\n",
    ],
)
def test_tokenizer_json_encodes_like_harmony(o200k_tokenizer: Any, text: str) -> None:
    expected = vocab.get_encoding().encode(text, allowed_special=set())
    ids = o200k_tokenizer.encode(text, add_special_tokens=False).ids
    assert ids == list(expected)
    assert o200k_tokenizer.decode(ids) == text


def test_llama_cpp_recognises_the_pre_tokenizer(o200k_tokenizer: Any) -> None:
    ids = o200k_tokenizer.encode(LLAMA_CPP_CHKTXT).ids
    assert sha256(str(ids).encode()).hexdigest() == GPT_4O_CHKHSH


def test_special_tokens_encode_to_their_ids(o200k_tokenizer: Any) -> None:
    ids = o200k_tokenizer.encode("<|start|>assistant<|channel|>final<|message|>hi<|return|>").ids
    assert ids[0] == vocab.START and ids[2] == vocab.CHANNEL and ids[4] == vocab.MESSAGE and ids[-1] == vocab.RETURN
