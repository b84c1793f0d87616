"""API keys in the real OS keyring: the Secret Service of gnome-keyring, in a private D-Bus session with a keyring of
the test's own (its files in the test's folder), across separate sessions as across logins. Skipped, with the
reason, where ``dbus-run-session`` or ``gnome-keyring-daemon`` is missing (``apt install dbus gnome-keyring``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the Secret Service is the Linux keyring"),
    pytest.mark.skipif(
        shutil.which("dbus-run-session") is None or shutil.which("gnome-keyring-daemon") is None,
        reason="needs dbus-run-session and gnome-keyring-daemon (apt install dbus gnome-keyring)",
    ),
]

KEY = "sk-os-keyring-test-9f8e7d6c5b4a"
PASSWORD = "keyring-test-login"  # the private keyring's login password (an empty one leaves it uncreated)
REPO = Path(__file__).resolve().parents[3]


def in_private_session(home: Path, action: str) -> dict[str, Any]:
    """One step of :mod:`tests.helpers.os_keyring_child` in a new D-Bus session whose gnome-keyring is unlocked with
    :data:`PASSWORD` (as a login unlocks it); its keyring files live under ``home``."""
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DBUS_", "XDG_", "GNOME_KEYRING", "PYTHON_KEYRING"))
    }
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),  # no keyringrc.cfg of the user's choosing a backend
        PYTHONPATH=str(REPO),
    )
    script = (
        'printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && '
        'exec "$CHILD_PYTHON" -P -m tests.helpers.os_keyring_child "$@"'
    )
    env.update(KEYRING_PASSWORD=PASSWORD, CHILD_PYTHON=sys.executable)
    command = ["dbus-run-session", "--", "sh", "-c", script, "child", action, "hosted", KEY]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_key_survives_sessions_in_the_secret_service_and_never_lies_in_plain_text(tmp_path: Path) -> None:
    stored = in_private_session(tmp_path, "store")
    assert stored["backend"] == "keyring.backends.SecretService.Keyring" and stored["reason"] is None
    assert stored["available"] and stored["remembered"] and stored["found"]
    # A new session (a new login): the daemon reads its keyring file back, and the app finds the key.
    assert in_private_session(tmp_path, "read")["found"]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".keyring" for path in files)  # the keyring is on disk, in the test's folder...
    assert [str(path) for path in files if KEY.encode() in path.read_bytes()] == []  # ...encrypted
    assert not in_private_session(tmp_path, "forget")["found"]
    assert not in_private_session(tmp_path, "read")["found"]  # forgotten for good
