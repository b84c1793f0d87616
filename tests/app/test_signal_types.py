"""Signals carry the narrowest type PySide6 can declare; ``Signal(object)`` only with a comment that says why.

PySide6 carries any Python class as ``PyObject`` (no conversion, no check), so a class in ``Signal(ModelInfo)``
documents what is sent at no cost; ``object`` stays only where the value is a union (``X | None``, several event
classes), which one Signal type cannot name.
"""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
OBJECT_SIGNAL = re.compile(r"=\s*Signal\((?:[^()]*,\s*)?object\b")


def test_every_object_signal_says_why() -> None:
    unexplained = []
    for path in sorted(APP.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if OBJECT_SIGNAL.search(line) and not (number and "# object" in lines[number - 1]):
                unexplained.append(f"{path.relative_to(APP.parent)}:{number + 1}: {line.strip()}")
    assert not unexplained, "Signal(object) without a '# object: why' comment above it:\n" + "\n".join(unexplained)


def test_the_pattern_finds_object_signals() -> None:
    # The check above must see every spelling it is meant to catch.
    for line in ("x = Signal(object)", "x = Signal(str, object)", "x = Signal(object, object)", "x=Signal( object )"):
        assert OBJECT_SIGNAL.search(line.replace("( ", "(")), line
    assert not OBJECT_SIGNAL.search("x = Signal(ModelInfo)")
