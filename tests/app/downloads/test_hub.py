"""Hub settings from the environment: read at call time, not only when huggingface_hub was imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants

from gpt_oss_desktop.app.downloads import HubSettings


def test_endpoint_and_cache_come_from_the_environment_at_call_time(tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": "https://mirror.example/", "HF_HOME": str(tmp_path / "home")}
    settings = HubSettings.from_environment(env)
    assert settings.endpoint == "https://mirror.example" and settings.cache_dir == tmp_path / "home" / "hub"
    env["HF_HUB_CACHE"] = str(tmp_path / "cache")  # the more specific variable wins, as in huggingface_hub
    assert HubSettings.from_environment(env).cache_dir == tmp_path / "cache"
    default = HubSettings.from_environment({})
    assert default.endpoint == constants.ENDPOINT and default.cache_dir == Path(constants.HF_HUB_CACHE)
    assert settings.token is None and settings.with_token("  ").token is None
    assert settings.with_token("hf_x").token == "hf_x"


def test_offline_mode_follows_the_flag_the_client_enforces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert HubSettings.from_environment({}).offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert not HubSettings.from_environment({}).offline
