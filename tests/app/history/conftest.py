"""Fixtures for the history tests: real SQLite files under tmp_path and a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import ChatStore


class FakeClock:
    """Advances one second per reading, so every write gets a distinct, ordered timestamp."""

    def __init__(self) -> None:
        self.now = datetime(2025, 8, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture(params=[True, False], ids=["fts5", "scan"])
def use_fts(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[ChatStore]:
    with ChatStore(db_path, clock=clock) as opened:
        yield opened
