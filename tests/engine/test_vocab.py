"""The bundled vocabulary: integrity check, offline loading, the shared encoding, special-token constants."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from gpt_oss_desktop.engine import vocab
from gpt_oss_desktop.engine.errors import VocabularyError


def test_bundled_file_verifies() -> None:
    path = vocab.bundled_vocab_path()
    assert path.name == "o200k_base.tiktoken"
    vocab.verify_vocab_file(path)  # no exception


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="missing"):
        vocab.verify_vocab_file(tmp_path / "o200k_base.tiktoken")


def test_corrupted_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "o200k_base.tiktoken"
    bad.write_bytes(vocab.bundled_vocab_path().read_bytes()[:-10])
    with pytest.raises(VocabularyError, match="corrupted"):
        vocab.verify_vocab_file(bad)
    monkeypatch.setenv(vocab.ENCODINGS_BASE_ENV, "unchanged")  # restored after the test
    with pytest.raises(VocabularyError, match="corrupted"):
        vocab.load_encoding(tmp_path)


def test_bundled_folder_used_when_env_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vocab.ENCODINGS_BASE_ENV, raising=False)
    enc = vocab.load_encoding()
    assert os.environ[vocab.ENCODINGS_BASE_ENV] == str(vocab.bundled_vocab_path().parent)
    assert enc.decode(enc.encode("hello world")) == "hello world"


def test_user_env_respected_and_harmony_error_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(vocab.ENCODINGS_BASE_ENV, str(tmp_path))  # a folder without the file
    with pytest.raises(VocabularyError, match=str(tmp_path)):
        vocab.load_encoding()
    shutil.copy(vocab.bundled_vocab_path(), tmp_path / "o200k_base.tiktoken")
    assert vocab.load_encoding().encode("hi") == vocab.get_encoding().encode("hi")


def test_get_encoding_is_a_thread_safe_singleton() -> None:
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(vocab.get_encoding())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(r is results[0] for r in results)
    assert vocab.get_encoding() is results[0]


def test_special_token_constants_match_encoding() -> None:
    enc = vocab.get_encoding()
    named = {
        "<|startoftext|>": vocab.STARTOFTEXT,
        "<|endoftext|>": vocab.ENDOFTEXT,
        "<|return|>": vocab.RETURN,
        "<|constrain|>": vocab.CONSTRAIN,
        "<|channel|>": vocab.CHANNEL,
        "<|start|>": vocab.START,
        "<|end|>": vocab.END,
        "<|message|>": vocab.MESSAGE,
        "<|call|>": vocab.CALL,
    }
    for text, token in named.items():
        assert enc.encode(text, allowed_special="all") == [token]
    assert set(enc.stop_tokens_for_assistant_actions()) == vocab.ASSISTANT_STOP_TOKENS
    assert set(enc.stop_tokens()) == vocab.MESSAGE_STOP_TOKENS
