"""The saved server connections: kept in QSettings WITHOUT their keys (those are in :class:`KeyStore`), and turned
into the engine's connections, key included, when the app connects.

Settings layout: an array ``servers`` of ``name``, ``preset``, ``base_url``, ``model``, ``key_source``, ``env_var``.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore, MissingKey
from gpt_oss_desktop.app.backends.chat_backend import LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.remote_presets import preset
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection, server_ref
from gpt_oss_desktop.engine.remote.connection import RemoteConnection

logger = logging.getLogger(__name__)

SERVERS_ARRAY = "servers"
_FIELDS = ("name", "preset", "base_url", "model", "key_source", "env_var")


class SavedServers:
    """The list of saved connections and their keys.

    Args:
        settings: where the list is kept.
        keys: where keys are kept (default: the OS keyring, or memory for this run when there is none).
    """

    def __init__(self, settings: QSettings, keys: KeyStore | None = None) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else KeyStore()

    def all(self) -> list[SavedConnection]:
        """Every saved connection, in the order saved; entries this version cannot read are skipped (logged)."""
        found: list[SavedConnection] = []
        count = self.settings.beginReadArray(SERVERS_ARRAY)
        try:
            for index in range(count):
                self.settings.setArrayIndex(index)
                values = {field: str(self.settings.value(field, "") or "") for field in _FIELDS}
                try:
                    found.append(
                        SavedConnection(
                            name=values["name"],
                            preset=preset(values["preset"]).id,
                            base_url=values["base_url"],
                            model=values["model"],
                            key_source=KeySource(values["key_source"] or KeySource.NONE),
                            env_var=values["env_var"],
                        )
                    )
                except ValueError as exc:
                    logger.warning("skipped saved server %d: %s", index, exc)
        finally:
            self.settings.endArray()
        return found

    def get(self, name: str) -> SavedConnection | None:
        return next((saved for saved in self.all() if saved.name == name), None)

    def save(self, connection: SavedConnection, *, replacing: str | None = None) -> None:
        """Add ``connection``, or replace the one named ``replacing`` (or of the same name); its key moves with a
        rename."""
        old_name = replacing or connection.name
        previous = self.get(old_name)
        if previous is not None and old_name != connection.name:
            self.keys.rename(old_name, connection.name, previous.key_source)
        updated: list[SavedConnection] = []
        for saved in self.all():
            if saved.name == old_name:
                updated.append(connection)  # an edited connection keeps its place in the menu
            elif saved.name != connection.name:
                updated.append(saved)
        if previous is None:
            updated.append(connection)
        self._write(updated)

    def delete(self, name: str) -> None:
        """Forget connection ``name`` and its stored key."""
        self._write([saved for saved in self.all() if saved.name != name])
        self.keys.forget(name)

    def resolve(self, name: str) -> RemoteConnection:
        """Connection ``name`` as the engine's, key included (:data:`app.backends.remote_backend.ConnectionResolver`).

        Raises LoadError: UNKNOWN_MODEL when no such connection is saved; API_KEY when its key is needed and not
        known yet (the UI asks for it, then connects again).
        """
        saved = self.get(name)
        if saved is None:
            raise LoadError(
                LoadErrorKind.UNKNOWN_MODEL, f"no saved server connection is named {name!r}", server_ref(name)
            )
        try:
            key = self.keys.key_for(name, saved.key_source, saved.env_var)
        except MissingKey as exc:
            raise LoadError(LoadErrorKind.API_KEY, str(exc), server_ref(name)) from None
        if key is None and saved.key_source is not KeySource.NONE:
            raise LoadError(LoadErrorKind.API_KEY, f"{name}: enter the API key to connect", server_ref(name))
        return saved.to_remote(key)

    def needs_key(self, name: str) -> bool:
        """The connection wants a key that is not known yet (ask the user before connecting)."""
        saved = self.get(name)
        if saved is None or saved.key_source in (KeySource.NONE, KeySource.ENV):
            return False
        return self.keys.key_for(name, saved.key_source) is None

    # -- internals ------------------------------------------------------------------------------------------------

    def _write(self, connections: list[SavedConnection]) -> None:
        self.settings.remove(SERVERS_ARRAY)
        self.settings.beginWriteArray(SERVERS_ARRAY, len(connections))
        try:
            for index, saved in enumerate(connections):
                self.settings.setArrayIndex(index)
                self.settings.setValue("name", saved.name)
                self.settings.setValue("preset", saved.preset.value)
                self.settings.setValue("base_url", saved.base_url)
                self.settings.setValue("model", saved.model)
                self.settings.setValue("key_source", saved.key_source.value)
                self.settings.setValue("env_var", saved.env_var)
        finally:
            self.settings.endArray()
        self.settings.sync()
