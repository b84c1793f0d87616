"""End to end on the real engine: a real checkpoint (the demo model if installed, else a random-weight `small`
checkpoint with the real vocabulary) loaded by the default loader, answered through the window."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.backends.chat_backend import LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done, FinishReason
from tests.app.conftest import next_emission
from tests.helpers.stall_meter import StallMeter

logger = logging.getLogger(__name__)

MAX_TOKENS = 32
STALL_LIMIT_S = 0.050


@pytest.fixture(scope="session")
def model_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    from gpt_oss_desktop import engine
    from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint
    from gpt_oss_desktop.engine.errors import EngineError

    try:
        engine.load_model("demo")
        return "demo"
    except EngineError:
        logger.info("demo model not installed; using a random-weight small checkpoint")
    folder = tmp_path_factory.mktemp("small")
    config = get_preset("small")
    write_checkpoint(folder, config, RandomWeights(config, 0), "original", 1)
    return str(folder)


def greedy_short(window: MainWindow) -> None:
    window.composer.sampling.temperature.setValue(0.0)
    window.composer.sampling.max_tokens.setValue(MAX_TOKENS)


def test_real_engine_send_to_stats_without_stalling(run: Any, make_window: Any, model_ref: str) -> None:
    window = make_window(LocalEngine(max_context=1024))
    greedy_short(window)
    meter = StallMeter()

    async def body() -> Done:
        info = await next_emission(window.model_loaded, lambda: window.load_model(model_ref), timeout=60)
        assert info.device == "CPU" and info.context_length == 1024
        meter.start()
        done: Done = await next_emission(window.generation_finished, lambda: window.send_message("Hello!"), 60)
        meter.stop()
        return done

    done = run(body(), timeout=90)
    assert done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert 1 <= done.completion_tokens <= MAX_TOKENS
    message = next(w for w in window.chat.messages() if isinstance(w, AssistantMessage))
    assert message.stats.isVisible() and "answer tokens" in readable(message.stats.text())
    assert window.status.model_label.text() == (window.backend.info.name if window.backend.info else "")
    if model_ref == "demo":  # the toy must be labelled as one wherever its name shows
        assert window.status.model_label.text() == "Demo model (toy)"
        assert "toy" in window.status.model_label.toolTip()
    assert window.status.context_label.text() == f"Context {done.prompt_tokens + done.completion_tokens} / 1,024"
    worst = meter.longest
    print(f"\nevent loop: {meter.ticks} ticks during generation, worst gap {worst * 1000:.1f} ms")
    assert meter.ticks > 0 and worst < STALL_LIMIT_S, f"the event loop stalled for {worst * 1000:.0f} ms"


def test_truncated_checkpoint_shows_error(run: Any, make_window: Any, model_ref: str, tmp_path: Path) -> None:
    from gpt_oss_desktop.engine.model_ref import resolve_model_path

    source = resolve_model_path(model_ref)  # the demo's installed folder, or the random checkpoint
    broken = tmp_path / "broken"
    shutil.copytree(source, broken, ignore=shutil.ignore_patterns("*.safetensors"))
    # rglob: the demo keeps its weights under original/ (a top-level glob left it with none, so a missing-files
    # error passed for this truncated one).
    for weights in source.rglob("*.safetensors"):
        with weights.open("rb") as src, (broken / weights.relative_to(source)).open("wb") as dst:
            dst.write(src.read(1 << 20))  # the first MiB: a download cut short
    window = make_window(LocalEngine(max_context=1024))

    async def body() -> LoadError:
        return await next_emission(window.load_failed, lambda: window.load_model(str(broken)), timeout=60)

    error = run(body(), timeout=90)
    assert error.kind is LoadErrorKind.INVALID_CHECKPOINT
    assert window.banner.isVisible() and "Download the model again" in window.banner.advice.text()
    assert window.load_model(model_ref) is not None  # the window accepts the next load at once
