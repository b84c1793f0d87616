"""One saved server connection, as the settings keep it: everything but the key. Qt-free.

A connection is loaded like a model, by a reference ``server:<name>`` (:func:`server_ref`), so the window's
"load a model" path, its last-model setting and its status bar serve remote models unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from gpt_oss_desktop.app.backends.api_keys import KeySource
from gpt_oss_desktop.app.backends.remote_presets import PresetId, preset
from gpt_oss_desktop.engine.remote.connection import RemoteConnection

SERVER_PREFIX: Final = "server:"


def server_ref(name: str) -> str:
    """The model reference that connects to saved connection ``name``."""
    return f"{SERVER_PREFIX}{name}"


def is_server_ref(model_ref: str) -> bool:
    return model_ref.startswith(SERVER_PREFIX)


def connection_name(model_ref: str) -> str:
    """The connection a ``server:<name>`` reference names."""
    if not is_server_ref(model_ref):
        raise ValueError(f"not a server reference: {model_ref!r}")
    return model_ref[len(SERVER_PREFIX) :]


def host_of(base_url: str) -> str:
    """What the status bar shows as the "device" of a remote model: the server's host (and port)."""
    return urlsplit(base_url).netloc or base_url


@dataclass(frozen=True, slots=True)
class SavedConnection:
    """A server and model to connect to. ``env_var`` names the variable holding the key when ``key_source`` is
    ENV. The key itself is never part of this record."""

    name: str
    preset: PresetId
    base_url: str
    model: str
    key_source: KeySource = KeySource.NONE
    env_var: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a connection needs a name")
        if "/" in self.name or "\\" in self.name:
            raise ValueError("a connection's name cannot contain / or \\")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, got {self.base_url!r}")
        if self.key_source is KeySource.ENV and not self.env_var.strip():
            raise ValueError("name the environment variable that holds the key")

    def to_remote(self, api_key: str | None) -> RemoteConnection:
        """The engine's connection, with the key (from :class:`~app.backends.api_keys.KeyStore`)."""
        kind = preset(self.preset)
        return RemoteConnection(
            base_url=self.base_url,
            model=self.model,
            api_key=api_key,
            reasoning_style=kind.reasoning_style,
            send_reasoning_back=kind.send_reasoning_back,
        )
