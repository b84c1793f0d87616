"""Saved instruction presets and the default instructions for new chats, as the settings hold them (no Qt here).

The presets are one JSON object ``{name: text}``; the default is plain text. Both are read tolerantly: a settings
file edited by hand, or written by another version, gives what it says clearly and logs the rest, never an error
at startup or when the instructions dialog opens. The instructions dialog (app/chat/instructions_dialog.py) reads
and writes them through QSettings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

logger = logging.getLogger(__name__)


def preset_name(name: str) -> str:
    """The name a preset is kept under: without surrounding blanks and line breaks (the combo shows one line)."""
    return " ".join(name.split())


@dataclass(frozen=True, slots=True)
class InstructionPresets:
    """The user's named instructions, e.g. "French" → "Answer in French.".

    Args:
        texts: each preset's instructions by name; names are :func:`preset_name`-clean and texts are not blank.
    """

    texts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen means unchangeable: a caller's dict changed later must not change the presets behind its back.
        object.__setattr__(self, "texts", MappingProxyType(dict(self.texts)))

    def names(self) -> tuple[str, ...]:
        """The names in the order the combo lists them: alphabetical, ignoring case."""
        return tuple(sorted(self.texts, key=lambda name: (name.casefold(), name)))

    def text(self, name: str) -> str | None:
        return self.texts.get(name)

    def with_preset(self, name: str, text: str) -> InstructionPresets:
        """These presets with ``name`` holding ``text`` (added, or replacing a preset of that name)."""
        name, text = preset_name(name), text.strip()
        if not name or not text:
            raise ValueError("a preset needs a name and instructions")
        return InstructionPresets({**self.texts, name: text})

    def without(self, name: str) -> InstructionPresets:
        return InstructionPresets({key: value for key, value in self.texts.items() if key != name})

    def to_json(self) -> str:
        return json.dumps(dict(self.texts), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_stored(cls, stored: object) -> InstructionPresets:
        """The presets a settings value holds: none for a missing, broken or foreign value (logged, never raised);
        an entry that is not a name and some text is left out (logged) and the others kept."""
        if stored is None or stored == "":
            return cls()
        if not isinstance(stored, str):
            # e.g. an ini value edited by hand without quotes, which QSettings reads back as a list
            logger.warning("instruction presets are not text (%s); showing none", type(stored).__name__)
            return cls()
        try:
            data = json.loads(stored)
        except json.JSONDecodeError as exc:
            logger.warning("instruction presets are not JSON (%s); showing none", exc.msg)
            return cls()
        if not isinstance(data, dict):
            logger.warning("instruction presets are not a JSON object; showing none")
            return cls()
        texts: dict[str, str] = {}
        for raw_name, raw_text in data.items():
            name = preset_name(raw_name)
            if not name or not isinstance(raw_text, str) or not raw_text.strip():
                logger.warning("instruction preset %r has no name or no text; left out", raw_name)
                continue
            texts[name] = raw_text.strip()
        return cls(texts)


def default_from_stored(stored: object) -> str:
    """The default instructions for new chats a settings value holds; none (``""``) for a value that is not text."""
    if stored is None:
        return ""
    if not isinstance(stored, str):
        logger.warning("the default instructions are not text (%s); new chats start without", type(stored).__name__)
        return ""
    return stored.strip()
