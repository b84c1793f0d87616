"""The secret half of an MCP server's settings: the values of its environment variables (stdio, ``GITHUB_TOKEN=…``)
and of its headers (streamable HTTP, ``Authorization: Bearer …``). No Qt here.

The settings file keeps each variable's and header's NAME, with :data:`IN_KEYRING` where its value was; the values
of one server go to the keyring together, as one JSON entry named ``mcp/<server name>``
(:func:`~app.backends.api_keys.mcp_key_name`), through the :class:`~app.backends.api_keys.KeyStore` that keeps the
saved connections' keys. So the same rules hold: without a usable keyring the values are kept in memory for this run
only, and :meth:`McpSecrets.note` says why for the UI. A settings file from before, with the values in plain text, is
moved over by :meth:`McpSecrets.migrate`.

Values never reach a log line, a repr or an exception's text here: only server and variable or header names do.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore, mcp_key_name
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig

logger = logging.getLogger(__name__)

# The config fields whose values are secrets; their names stay in the settings.
SECRET_FIELDS: Final = ("env", "headers")
# What the settings file holds in place of a value (a JSON object, so no text a user typed can be mistaken for it).
IN_KEYRING: Final = types.MappingProxyType({"in": "keyring"})

Values = dict[str, dict[str, str]]  # field ("env" or "headers") -> name -> value


@dataclass(frozen=True, slots=True)
class ResolvedServer:
    """A stored server with its values filled in.

    Attributes:
        config: the server; a value that is not known this run is empty.
        missing: the names (variables or headers) whose values are not known: the server must not start until the
            user enters them again.
    """

    config: McpServerConfig
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Migration:
    """What :meth:`McpSecrets.migrate` made of the settings' servers.

    Attributes:
        entries: the servers as the settings should now keep them (names only).
        changed: some values left the entries (write ``entries`` back to the settings file).
        notice: for the user, when some values could only be kept for this run (one sentence for all: the status
            bar shows one message at a time).
    """

    entries: tuple[Mapping[str, Any], ...]
    changed: bool = False
    notice: str | None = None


def _values_word(names: Sequence[str]) -> str:
    return f"value{'' if len(names) == 1 else 's'} of {', '.join(names)}"


def _is(names: Sequence[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _it(names: Sequence[str]) -> str:
    return "it" if len(names) == 1 else "them"


def _servers(names: Sequence[str]) -> str:
    return f"MCP server{'' if len(names) == 1 else 's'} {', '.join(names)}"


def _plain_values(entry: Mapping[str, Any]) -> Values:
    """The values ``entry`` holds in plain text (an older settings file), by field."""
    found: Values = {}
    for field in SECRET_FIELDS:
        pairs = entry.get(field)
        if isinstance(pairs, Mapping):
            plain = {k: v for k, v in pairs.items() if isinstance(k, str) and isinstance(v, str)}
            if plain:
                found[field] = plain
    return found


def _names_only(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with :data:`IN_KEYRING` in place of every value (names kept, order kept)."""
    out = dict(entry)
    for field in SECRET_FIELDS:
        pairs = entry.get(field)
        if isinstance(pairs, Mapping):
            out[field] = {name: dict(IN_KEYRING) for name in pairs}
    return out


class McpSecrets:
    """The MCP servers' header and environment values.

    Args:
        keys: where the values go (the app passes the saved connections' store: one keyring, one reason when there is
            none). Tests pass one over a file keyring.
    """

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    # -- for the UI -------------------------------------------------------------------------------------------------

    def note(self) -> str | None:
        """Why header and environment values are not remembered after you quit, or None when they are."""
        problem = self.keys.keyring_problem
        if problem is None:
            return None
        return f"Header and environment values are kept in memory until you quit: {problem}."

    def memory_notice(self, servers: Sequence[str]) -> str:
        """For the status bar, after the values of ``servers`` could only be kept in memory."""
        problem = self.keys.keyring_problem or "the system keyring did not take them"
        return (
            f"{_servers([repr(name) for name in servers])}: the header and environment values are kept in memory "
            f"until you quit, as {problem}. Enter them again in Tools ▸ Tool settings… after the next start."
        )

    def missing_sentence(self, server: str, missing: Sequence[str]) -> str:
        """Why ``server`` does not start when the values of ``missing`` are not known, and what to do."""
        problem = self.keys.keyring_problem or "not in the system keyring"
        return (
            f"MCP server {server!r} is not started: the {_values_word(missing)} {_is(missing)} not known "
            f"({problem}). Enter {_it(missing)} again in Tools ▸ Tool settings… ▸ Edit…"
        )

    # -- reading and writing ----------------------------------------------------------------------------------------

    @staticmethod
    def settings_entry(config: McpServerConfig) -> dict[str, Any]:
        """``config`` as the settings file keeps it: every value replaced by :data:`IN_KEYRING`."""
        return _names_only(config.to_dict())

    def store(self, config: McpServerConfig) -> bool:
        """Put ``config``'s values in the keyring (replacing what its name held there). Returns False when they are
        kept in memory for this run only (:meth:`note` says why)."""
        values: Values = {"env": dict(config.env), "headers": dict(config.headers)}
        if not any(values.values()):
            self.forget(config.name)  # nothing secret left: nothing of it stays in the keyring
            return True
        return self.keys.remember(mcp_key_name(config.name), json.dumps(values), KeySource.KEYRING)

    def forget(self, server: str) -> None:
        """Drop ``server``'s values from the keyring and from memory (it was removed, or renamed)."""
        self.keys.forget(mcp_key_name(server))

    def resolve(self, entry: Mapping[str, Any]) -> ResolvedServer:
        """The server ``entry`` stores, its values filled in. Plain-text values (a file not migrated yet) are taken
        as they are. Raises McpConfigError as :meth:`McpServerConfig.from_dict` does."""
        if not isinstance(entry, Mapping) or not isinstance(name := entry.get("name"), str):
            return ResolvedServer(McpServerConfig.from_dict(entry))
        stored: Values | None = None
        filled = dict(entry)
        missing: list[str] = []
        for field in SECRET_FIELDS:
            pairs = entry.get(field)
            if not isinstance(pairs, Mapping) or IN_KEYRING not in pairs.values():
                continue
            if stored is None:
                stored = self._load(name)
            values: dict[str, object] = {}
            for key, value in pairs.items():
                if value == IN_KEYRING:
                    known = stored.get(field, {}).get(key)
                    if known is None:
                        missing.append(key)
                    value = known or ""
                values[key] = value
            filled[field] = values
        return ResolvedServer(McpServerConfig.from_dict(filled), tuple(missing))

    def migrate(self, entries: Sequence[Mapping[str, Any]]) -> Migration:
        """Move the values an older settings file holds in plain text to the keyring, and out of the entries.

        Without a usable keyring they still leave the file (the settings file never keeps a secret), are kept in
        memory so the servers work for this run, and the notice says so, naming them: the user enters them again
        after the next start."""
        out: list[Mapping[str, Any]] = []
        kept: list[str] = []  # 'server' (NAME, ...) of the values kept in memory only
        changed = False
        for entry in entries:
            plain = _plain_values(entry) if isinstance(entry, Mapping) else {}
            if not plain:
                out.append(entry)
                continue
            name = entry.get("name")
            if not isinstance(name, str) or not name.strip():
                # No name to keep them under; the entry cannot be read anyway (read_configs says why).
                logger.warning("an MCP server without a name holds header or environment values in the settings")
                out.append(entry)
                continue
            values = self._load(name)  # values of names already moved (a half-edited file) stay
            for field, pairs in plain.items():
                values[field] = {**values.get(field, {}), **pairs}
            moved = [key for pairs in plain.values() for key in pairs]
            remembered = self.keys.remember(mcp_key_name(name), json.dumps(values), KeySource.KEYRING)
            out.append(_names_only(entry))
            changed = True
            if remembered:
                logger.info(
                    "MCP server %r: moved the %s from the settings file to the keyring", name, _values_word(moved)
                )
                continue
            logger.warning(
                "MCP server %r: the %s left the settings file, kept in memory only", name, _values_word(moved)
            )
            kept.append(f"{name!r} ({', '.join(moved)})")
        if not kept:
            return Migration(tuple(out), changed)
        problem = self.keys.keyring_problem or "the system keyring did not take them"
        notice = (
            f"{_servers(kept)}: the header and environment values left the settings file, but are only kept in "
            f"memory until you quit, as {problem}. Enter them again in Tools ▸ Tool settings… after the next start."
        )
        return Migration(tuple(out), changed, notice)

    # -- internals --------------------------------------------------------------------------------------------------

    def _load(self, server: str) -> Values:
        """The values the keyring (or this run's memory) holds for ``server``; empty when none or unreadable."""
        text = self.keys.key_for(mcp_key_name(server), KeySource.KEYRING)
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            # Never the text itself: it is a secret.
            logger.warning("MCP server %r: its keyring entry is not readable; its values must be entered again", server)
            return {}
        values: Values = {}
        for field in SECRET_FIELDS:
            pairs = data.get(field)
            if isinstance(pairs, dict):
                values[field] = {k: v for k, v in pairs.items() if isinstance(k, str) and isinstance(v, str)}
        return values
