"""Saved server connections: kept in the settings without their keys, resolved into the engine's connection with
the key from the keyring, presets' wire styles carried over."""

from __future__ import annotations

from pathlib import Path

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore
from gpt_oss_desktop.app.backends.chat_backend import LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.remote_presets import PRESETS, PresetId, preset
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, connection_name, server_ref
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.remote.connection import ReasoningStyle
from tests.app.backends.test_api_keys import KEY, file_keyring


@pytest.fixture
def servers(settings: QSettings, tmp_path: Path) -> SavedServers:
    return SavedServers(settings, KeyStore(file_keyring(tmp_path)))


def groq(name: str = "groq") -> SavedConnection:
    return SavedConnection(
        name, PresetId.GROQ, preset(PresetId.GROQ).base_url, "openai/gpt-oss-120b", KeySource.KEYRING
    )


def test_connections_round_trip_without_their_keys(servers: SavedServers, settings: QSettings, tmp_path: Path) -> None:
    local = SavedConnection("mine", PresetId.THIS_APP, "http://127.0.0.1:8000/v1", "demo")
    servers.save(local)
    servers.save(groq())
    servers.keys.remember("groq", KEY, KeySource.KEYRING)
    again = SavedServers(QSettings(settings.fileName(), QSettings.Format.IniFormat), KeyStore(file_keyring(tmp_path)))
    assert again.all() == [local, groq()]
    remote = again.resolve("groq")
    assert remote.api_key == KEY and remote.model == "openai/gpt-oss-120b"
    assert remote.send_reasoning_back is False  # Groq rejects reasoning in input
    assert again.resolve("mine").api_key is None
    settings.sync()
    assert KEY not in Path(settings.fileName()).read_text()
    assert "groq" in Path(settings.fileName()).read_text()


def test_edit_keeps_the_place_and_a_rename_moves_the_key(servers: SavedServers) -> None:
    servers.save(SavedConnection("a", PresetId.VLLM, "http://h:8000/v1", "m"))
    servers.save(groq())
    servers.save(SavedConnection("c", PresetId.OLLAMA, "http://localhost:11434/v1", "gpt-oss:20b"))
    servers.keys.remember("groq", KEY, KeySource.KEYRING)
    servers.save(groq("groq2"), replacing="groq")
    assert [saved.name for saved in servers.all()] == ["a", "groq2", "c"]
    assert servers.resolve("groq2").api_key == KEY
    servers.delete("groq2")
    assert [saved.name for saved in servers.all()] == ["a", "c"]
    assert servers.keys.key_for("groq2", KeySource.KEYRING) is None


def test_resolve_says_what_is_missing(servers: SavedServers) -> None:
    with pytest.raises(LoadError) as missing:
        servers.resolve("nope")
    assert missing.value.kind is LoadErrorKind.UNKNOWN_MODEL
    servers.save(groq())
    assert servers.needs_key("groq")
    with pytest.raises(LoadError) as no_key:
        servers.resolve("groq")
    assert no_key.value.kind is LoadErrorKind.API_KEY
    servers.save(
        SavedConnection("env", PresetId.OPENROUTER, "https://openrouter.ai/api/v1", "m", KeySource.ENV, "NO_SUCH_VAR_X")
    )
    with pytest.raises(LoadError, match="NO_SUCH_VAR_X") as unset:
        servers.resolve("env")
    assert unset.value.kind is LoadErrorKind.API_KEY


def test_ask_once_per_run(settings: QSettings) -> None:
    servers = SavedServers(settings, KeyStore(keyring.backends.fail.Keyring()))
    servers.save(SavedConnection("t", PresetId.TOGETHER, "https://api.together.xyz/v1", "m", KeySource.ASK))
    assert servers.needs_key("t")
    servers.keys.remember("t", KEY, KeySource.ASK)
    assert not servers.needs_key("t") and servers.resolve("t").api_key == KEY


def test_presets() -> None:
    ids = {kind.id for kind in PRESETS}
    assert ids == set(PresetId)
    assert preset(PresetId.NOVITA).base_url == "https://api.novita.ai/v3/openai"
    assert preset(PresetId.THIS_APP).base_url == "http://127.0.0.1:8000/v1" and not preset(PresetId.THIS_APP).needs_key
    assert preset(PresetId.OPENROUTER).reasoning_style is ReasoningStyle.REASONING_OBJECT
    assert all(
        kind.reasoning_style is ReasoningStyle.REASONING_EFFORT
        for kind in PRESETS
        if kind.id is not PresetId.OPENROUTER
    )
    assert [kind.id for kind in PRESETS if not kind.send_reasoning_back] == [PresetId.GROQ]
    assert all(kind.base_url.startswith("https://") for kind in PRESETS if kind.needs_key)
    assert preset("from-a-newer-version").id is PresetId.CUSTOM


def test_server_refs() -> None:
    assert connection_name(server_ref("my box")) == "my box"
    with pytest.raises(ValueError):
        connection_name("/models/gpt-oss-20b")
    with pytest.raises(ValueError, match="environment variable"):
        SavedConnection("x", PresetId.CUSTOM, "http://h/v1", "m", KeySource.ENV)
    with pytest.raises(ValueError, match="http"):
        SavedConnection("x", PresetId.CUSTOM, "h:8000/v1", "m")
