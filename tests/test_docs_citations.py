"""Citations of the design docs resolve: every ``docs/<name>.md#anchor`` in the code names a heading that exists.

Comments cite ``docs/model.md`` and ``docs/architecture.md`` by heading anchor, so renaming a heading silently breaks
them; and the code must not cite the gpt-oss spec the project does not ship (by its section or pitfall numbers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Where citations live: the packages, tests, tools and the READMEs.
SCANNED_FOLDERS = ("app", "engine", "kernels", "tests", "benchmarks", "scripts", "packaging", "docs")
SCANNED_SUFFIXES = frozenset({".py", ".md", ".sh", ".spec", ".toml", ".txt", ".cpp", ".h"})

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# ``docs/model.md#anchor`` in code, ``(model.md#anchor)`` / ``(../docs/model.md#anchor)`` / ``(#anchor)`` in Markdown.
_CITATION = re.compile(r"(?:\bdocs/|\(|\(\.\./docs/)(?P<doc>[a-z_-]+\.md)#(?P<anchor>[A-Za-z0-9_-]+)")
_SAME_PAGE = re.compile(r"\]\(#(?P<anchor>[A-Za-z0-9_-]+)\)")
# "spec", the section sign, "pitfall N", the file name (spelled with escapes so a grep for them skips this file)
_OUTSIDE_SPEC = re.compile(r"spec \u00a7|pitfall [0-9]|gpt-oss-spec\.md")


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (duplicates get GitHub's ``-1``, ``-2`` suffixes)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            continue
        base = github_anchor(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def scanned_files() -> list[Path]:
    files = [REPO / "README.md"]
    for folder in SCANNED_FOLDERS:
        files += [p for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in SCANNED_SUFFIXES]
    # This file quotes the patterns it looks for.
    this_file = Path(__file__).resolve()
    return sorted(p for p in files if "__pycache__" not in p.parts and p.resolve() != this_file)


def citations(path: Path) -> list[tuple[int, str, str]]:
    """``(line, doc, anchor)`` of every design-doc citation in ``path``; a same-page link cites ``path`` itself."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        for m in _CITATION.finditer(line):
            if (DOCS / m.group("doc")).is_file():
                found.append((number, m.group("doc"), m.group("anchor")))
        if path.parent == DOCS:
            found += [(number, path.name, m.group("anchor")) for m in _SAME_PAGE.finditer(line)]
    return found


def test_github_anchor_matches_github() -> None:
    assert github_anchor("RoPE and YaRN") == "rope-and-yarn"
    assert github_anchor("Pitfall: unrounded YaRN") == "pitfall-unrounded-yarn"
    assert github_anchor("One prompt, end to end") == "one-prompt-end-to-end"
    assert github_anchor("`app/` layout") == "app-layout"


def test_the_design_docs_exist_with_their_sections() -> None:
    assert {"forward-pass", "mxfp4", "harmony", "pitfalls"} <= anchors_of(DOCS / "model.md")
    assert {"rooms", "one-prompt-end-to-end", "threads-and-queues", "rules"} <= anchors_of(DOCS / "architecture.md")


def test_every_design_doc_citation_names_an_existing_heading() -> None:
    anchors = {path.name: anchors_of(path) for path in DOCS.glob("*.md")}
    broken = [
        f"{path.relative_to(REPO)}:{line}: {doc}#{anchor}"
        for path in scanned_files()
        for line, doc, anchor in citations(path)
        if anchor not in anchors[doc]
    ]
    assert broken == []


@pytest.mark.parametrize("folder", ["app", "engine", "kernels", "tests", "benchmarks", "scripts", "packaging"])
def test_no_citation_of_the_unshipped_spec(folder: str) -> None:
    hits = [
        f"{path.relative_to(REPO)}:{number}"
        for path in scanned_files()
        if path.is_relative_to(REPO / folder)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if _OUTSIDE_SPEC.search(line)
    ]
    assert hits == []
