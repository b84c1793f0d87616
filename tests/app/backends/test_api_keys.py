"""API keys: a real file keyring backend (keyrings.alt, in a tmp folder), the no-backend path, environment variables,
and a keyring that refuses."""

from __future__ import annotations

import logging
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked
from keyrings.alt.file import PlaintextKeyring

from gpt_oss_desktop.app.backends import api_keys
from gpt_oss_desktop.app.backends.api_keys import SERVICE, KeySource, KeyStore, MissingKey

KEY = "sk-test-0123456789abcdef"


def file_keyring(folder: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(folder / "keyring.cfg")  # a real file keyring, in the test's folder
    return backend


def test_keyring_remembers_across_runs(tmp_path: Path) -> None:
    backend = file_keyring(tmp_path)
    store = KeyStore(backend)
    assert store.available and store.unavailable_reason is None
    assert store.key_for("groq", KeySource.KEYRING) is None  # nothing stored yet: the UI asks
    assert store.remember("groq", f"  {KEY}\n", KeySource.KEYRING) is True
    # A new run (a new store over the same keyring file) finds it; so does the keyring itself, under our service.
    assert KeyStore(file_keyring(tmp_path)).key_for("groq", KeySource.KEYRING) == KEY
    assert backend.get_password(SERVICE, "groq") == KEY
    store.forget("groq")
    assert KeyStore(file_keyring(tmp_path)).key_for("groq", KeySource.KEYRING) is None


def test_without_a_keyring_the_key_lives_for_this_run_and_the_reason_is_given() -> None:
    store = KeyStore(keyring.backends.fail.Keyring())
    assert not store.available
    reason = store.unavailable_reason
    assert reason is not None and "memory" in reason and "keyring" in reason
    assert store.remember("groq", KEY, KeySource.KEYRING) is False  # not remembered across runs
    assert store.key_for("groq", KeySource.KEYRING) == KEY  # but asked only once this run
    assert KeyStore(keyring.backends.fail.Keyring()).key_for("groq", KeySource.KEYRING) is None  # the next run asks


def test_ask_keeps_the_key_in_memory_even_with_a_keyring(tmp_path: Path) -> None:
    backend = file_keyring(tmp_path)
    store = KeyStore(backend)
    assert store.remember("together", KEY, KeySource.ASK) is False
    assert store.key_for("together", KeySource.ASK) == KEY
    assert backend.get_password(SERVICE, "together") is None
    assert KeyStore(file_keyring(tmp_path)).key_for("together", KeySource.ASK) is None


def test_the_default_refuses_plain_text_and_failing_backends(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # With keyrings.alt installed and no OS keyring, keyring itself picks the plain-text file: the app must not.
    for chosen in (file_keyring(tmp_path), keyring.backends.fail.Keyring()):
        monkeypatch.setattr(keyring, "get_keyring", lambda chosen=chosen: chosen)
        backend, reason = api_keys.default_backend()
        assert backend is None and reason is not None and "keyring" in reason
        assert not KeyStore().available


def test_environment_variable_source() -> None:
    store = KeyStore(keyring.backends.fail.Keyring(), environ={"MY_KEY": f"{KEY}\n"})
    assert store.key_for("x", KeySource.ENV, "MY_KEY") == KEY
    with pytest.raises(MissingKey, match="OTHER_KEY"):
        store.key_for("x", KeySource.ENV, "OTHER_KEY")
    assert store.key_for("x", KeySource.NONE) is None


class _LockedKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("locked")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("locked")


def test_a_refusing_keyring_falls_back_to_memory_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    store = KeyStore(_LockedKeyring())
    with caplog.at_level(logging.DEBUG):
        assert store.remember("groq", KEY, KeySource.KEYRING) is False
        assert store.key_for("groq", KeySource.KEYRING) == KEY
        store.forget("groq")
    assert "refused" in (store.unavailable_reason or "")
    assert KEY not in caplog.text  # logged, but never the key


def test_rename_moves_the_key(tmp_path: Path) -> None:
    store = KeyStore(file_keyring(tmp_path))
    store.remember("old", KEY, KeySource.KEYRING)
    store.rename("old", "new", KeySource.KEYRING)
    assert store.key_for("new", KeySource.KEYRING) == KEY
    assert store.key_for("old", KeySource.KEYRING) is None
