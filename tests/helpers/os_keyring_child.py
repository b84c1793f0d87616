"""Run by tests/app/backends/test_os_keyring.py inside a private D-Bus session with gnome-keyring: one step of the
app's key storage against the real Secret Service, its observations printed as one JSON line.

``python -m tests.helpers.os_keyring_child store|read|forget NAME KEY``
"""

from __future__ import annotations

import json
import sys

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore, default_backend


def main(action: str, name: str, key: str) -> None:
    backend, reason = default_backend()
    store = KeyStore()
    seen: dict[str, object] = {
        "backend": f"{type(backend).__module__}.{type(backend).__name__}" if backend is not None else None,
        "reason": reason,
        "available": store.available,
    }
    if action == "store":
        seen["remembered"] = store.remember(name, key, KeySource.KEYRING)
    elif action == "forget":
        store.forget(name)
    seen["found"] = store.key_for(name, KeySource.KEYRING) == key
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:4])
