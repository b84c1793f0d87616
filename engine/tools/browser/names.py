"""The browser tool's recipients as the model addresses them (no imports: the app's history reads these too)."""

from __future__ import annotations

from typing import Final

BROWSER_NAMESPACE: Final = "browser"
SEARCH: Final = "browser.search"
OPEN: Final = "browser.open"
FIND: Final = "browser.find"
BROWSER_RECIPIENTS: Final = (SEARCH, OPEN, FIND)


def is_browser_call(recipient: str) -> bool:
    return recipient.strip().startswith(BROWSER_NAMESPACE + ".")
