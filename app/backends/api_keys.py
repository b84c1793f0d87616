"""API keys of saved server connections (and the header and environment values of MCP servers, under names of their
own: :func:`mcp_key_name`): in the OS keyring, an environment variable, or asked once per run.

Keys never go to SQLite, the settings file, logs, crash reports or exports: this module is the only place that holds
them, and it never logs one. The ``keyring`` library picks the OS store (Secret Service, macOS Keychain, Windows
Credential Locker). When it finds none it would fall back to a plain-text file (``keyrings.alt``) or to a backend
that fails on use; both count as *no keyring* here, so a key is then kept in memory for this run only and
:attr:`KeyStore.unavailable_reason` says why, for the UI to show (never a silent plain-text file).

Qt-free.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from typing import Final

import keyring
import keyring.backends.chainer
import keyring.backends.fail
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

logger = logging.getLogger(__name__)

SERVICE: Final = "gpt-oss-desktop"  # the keyring's service name; the user name is the connection's name
# An MCP server's secrets are kept under "mcp/<server name>": a connection's name never holds "/", so the two never
# meet, whatever the user names them.
MCP_PREFIX: Final = "mcp/"


class KeySource(enum.StrEnum):
    """Where a connection's key comes from."""

    NONE = "none"  # the server needs no key (this app's own server, Ollama, a local vLLM)
    KEYRING = "keyring"  # the OS keyring (asked once, then remembered)
    ENV = "env"  # an environment variable the connection names
    ASK = "ask"  # asked once per run, kept in memory only


def search_key_name(provider: str) -> str:
    """The :class:`KeyStore` name of a web search provider's API key (the browser tool's, app/tools)."""
    return f"search/{provider}"


def mcp_key_name(server: str) -> str:
    """The :class:`KeyStore` name of MCP server ``server``'s secrets (app/tools/mcp_secrets.py)."""
    return f"{MCP_PREFIX}{server}"


class MissingKey(Exception):
    """A key that cannot be found where the connection says it is (an unset environment variable)."""


def _insecure(backend: KeyringBackend) -> bool:
    # keyrings.alt's backends write a file (plain text, or encrypted with a password asked on the terminal): neither
    # is the OS store a user expects a key to be in.
    module = type(backend).__module__
    return isinstance(backend, keyring.backends.fail.Keyring) or module.startswith(
        ("keyrings.alt", "keyring.backends.null")
    )


def default_backend() -> tuple[KeyringBackend | None, str | None]:
    """The OS keyring the ``keyring`` library chose, or None with the reason there is none."""
    try:
        chosen = keyring.get_keyring()
    except Exception as exc:  # a broken keyring configuration must not stop the app
        return None, f"the system keyring could not be opened ({type(exc).__name__})"
    candidates = list(chosen.backends) if isinstance(chosen, keyring.backends.chainer.ChainerBackend) else [chosen]
    usable = [backend for backend in candidates if not _insecure(backend)]
    if usable:
        return max(usable, key=lambda backend: backend.priority), None
    return None, "no system keyring (Secret Service, Keychain or Credential Locker) is available on this computer"


class KeyStore:
    """Keys by connection name.

    Args:
        backend: the keyring to use; None picks the OS one (:func:`default_backend`). Tests pass a file keyring.
        environ: where environment variables are read (default ``os.environ``).
    """

    def __init__(self, backend: KeyringBackend | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        if backend is None:
            self._backend, self._reason = default_backend()
        elif isinstance(backend, keyring.backends.fail.Keyring):  # keyring's own "there is none"
            self._backend, self._reason = None, "no system keyring is available on this computer"
        else:
            self._backend, self._reason = backend, None
        self._environ = os.environ if environ is None else environ
        self._this_run: dict[str, str] = {}  # keys kept in memory only (ASK, or no keyring)

    @property
    def available(self) -> bool:
        """A keyring can remember keys across runs."""
        return self._backend is not None

    @property
    def unavailable_reason(self) -> str | None:
        """Why keys are not remembered (for the UI), or None when they are."""
        if self._reason is None:
            return None
        return f"The key is kept in memory until you quit: {self._reason}."

    @property
    def keyring_problem(self) -> str | None:
        """What is wrong with the keyring, as the end of a sentence ("no system keyring … is available on this
        computer"), for a UI that words the rest itself; None when nothing is."""
        return self._reason

    def key_for(self, name: str, source: KeySource, env_var: str = "") -> str | None:
        """The key of connection ``name``, or None when the user must be asked for it (then :meth:`remember`).

        Raises MissingKey when ``source`` is ENV and the variable is not set.
        """
        if source is KeySource.NONE:
            return None
        if source is KeySource.ENV:
            value = self._environ.get(env_var, "") if env_var else ""
            if not value.strip():
                raise MissingKey(
                    f"The environment variable {env_var or '(none named)'} that holds this connection's key is not "
                    "set. Set it before starting the app, or store the key in the keyring instead."
                )
            return value.strip()
        if name in self._this_run:
            return self._this_run[name]
        if source is KeySource.KEYRING and self._backend is not None:
            try:
                return self._backend.get_password(SERVICE, name)
            except KeyringError as exc:
                logger.warning("could not read the key of %r from the keyring: %s", name, type(exc).__name__)
        return None

    def remember(self, name: str, key: str, source: KeySource) -> bool:
        """Keep ``key`` for connection ``name``: in the keyring for KEYRING (True), else in memory for this run
        (False; :attr:`unavailable_reason` says why when the keyring was wanted)."""
        key = key.strip()
        if source is KeySource.KEYRING and self._backend is not None:
            try:
                self._backend.set_password(SERVICE, name, key)
            except KeyringError as exc:
                # A locked or refusing keyring: keep the key for this run and tell the user why.
                self._reason = f"the system keyring refused to store it ({type(exc).__name__})"
                logger.warning("could not store the key of %r in the keyring: %s", name, type(exc).__name__)
            else:
                self._this_run.pop(name, None)
                return True
        self._this_run[name] = key
        return False

    def forget(self, name: str) -> None:
        """Drop connection ``name``'s key from memory and from the keyring."""
        self._this_run.pop(name, None)
        if self._backend is None:
            return
        try:
            self._backend.delete_password(SERVICE, name)
        except PasswordDeleteError:
            pass  # there was none
        except KeyringError as exc:
            logger.warning("could not delete the key of %r from the keyring: %s", name, type(exc).__name__)

    def rename(self, old: str, new: str, source: KeySource) -> None:
        """Move a stored key to a connection's new name."""
        if old == new:
            return
        key = self.key_for(old, source) if source in (KeySource.KEYRING, KeySource.ASK) else None
        if key is not None:
            self.remember(new, key, source)
            self.forget(old)
