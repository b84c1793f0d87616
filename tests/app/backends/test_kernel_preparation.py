"""The CPU kernels' first-run build in the window (app/backends/kernel_preparation.py): the status bar says so while it
runs, a question sent meanwhile waits without the wait counting as thinking or first-token time, and a failed build
leaves a notice while answers come from the torch fallback."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL
from gpt_oss_desktop.app.backends.kernel_preparation import (
    PREPARING_TEXT,
    WAITING_TEXT,
    KernelPreparation,
    KernelStatusIndicator,
)
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat import chat_session as chat_session_module
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus
from tests.app.conftest import next_emission, scripted_engine, until

BUILD_SECONDS = 100.0  # what the stand-in build "takes", on the window's clock


class HeldBuild:
    """An injected prepare(): reports that a build started, then holds until the test releases it (a slow build
    without any sleep). ``on_release`` runs on the build's thread just before it returns."""

    def __init__(self, result: KernelStatus, on_release: Callable[[], None] | None = None) -> None:
        self.result = result
        self.on_release = on_release
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, on_progress: Callable[[str], None]) -> KernelStatus:
        self.calls += 1
        on_progress("Building the CPU kernels for avx2 (first run only)")
        self.release.wait(30)
        if self.on_release is not None:
            self.on_release()
        return self.result


class ShiftedClock:
    """``time`` for the window: perf_counter runs with the real one, plus whatever a stand-in build "took"."""

    def __init__(self) -> None:
        self.shift = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.shift


@pytest.fixture
def long_build(monkeypatch: pytest.MonkeyPatch) -> HeldBuild:
    """A held build that, once released, has "taken" BUILD_SECONDS on the chat session's clock."""
    clock = ShiftedClock()
    monkeypatch.setattr(chat_session_module, "time", clock)

    def build_took_long() -> None:
        clock.shift += BUILD_SECONDS

    return HeldBuild(KernelStatus(KernelState.BUILT, "avx2", BUILD_SECONDS), on_release=build_took_long)


async def load_then_build(window: MainWindow, kernels: KernelPreparation) -> None:
    """Load the scripted model, then start the build and wait until the status bar says so."""
    await next_emission(window.model_loaded, lambda: window.load_model("scripted"))
    kernels.start()
    await until(indicator_of(window).isVisible)


def indicator_of(window: MainWindow) -> KernelStatusIndicator:
    indicator = window.findChild(KernelStatusIndicator)
    assert indicator is not None
    return indicator


def test_status_bar_shows_the_build_then_clears(run: Any, make_window: Callable[..., MainWindow]) -> None:
    build = HeldBuild(KernelStatus(KernelState.BUILT, "avx2", 12.0))
    kernels = KernelPreparation(build)
    backend, _ = scripted_engine(harmony_reply("Hm.", "4"))
    window = make_window(backend, kernels=kernels)
    indicator = indicator_of(window)
    assert not indicator.isVisible()  # nothing to say before anything happens

    async def body() -> None:
        kernels.start()
        await until(indicator.isVisible)
        assert indicator.label.text() == PREPARING_TEXT
        assert indicator.busy.isVisible() and indicator.busy.maximum() == 0  # Qt's busy indicator
        window.statusBar().showMessage("Loading demo: weights", 3000)  # a temporary message does not hide it
        assert indicator.isVisible()
        build.release.set()
        status = await next_emission(kernels.finished)
        assert status.state is KernelState.BUILT
        assert not indicator.isVisible()

    run(body())
    assert build.calls == 1


def test_a_cached_build_shows_nothing(run: Any, make_window: Callable[..., MainWindow]) -> None:
    kernels = KernelPreparation(lambda _progress: KernelStatus(KernelState.READY, "avx2", 0.2))
    backend, _ = scripted_engine(harmony_reply("Hm.", "4"))
    window = make_window(backend, kernels=kernels)
    seen: list[str] = []
    kernels.building.connect(seen.append)

    async def body() -> None:
        kernels.start()
        await next_emission(kernels.finished)

    run(body())
    assert seen == [] and not indicator_of(window).isVisible()


def test_a_question_waits_for_the_build_and_the_wait_is_not_thinking_time(
    run: Any, make_window: Callable[..., MainWindow], long_build: HeldBuild
) -> None:
    kernels = KernelPreparation(long_build)
    backend, model = scripted_engine(harmony_reply("Two and two.", "4"), token_seconds=0.005)
    window = make_window(backend, kernels=kernels)

    async def body() -> None:
        await load_then_build(window, kernels)
        window.composer.prompt.setPlainText("What is 2+2?")
        window.composer.send_button.click()
        message = window._current
        assert message is not None
        await until(lambda: message.reasoning.header.text() == WAITING_TEXT)
        # Waiting, the panel is its header only: no empty reasoning box under it.
        assert message.reasoning.header.isVisible() and not message.reasoning.body.isVisible()
        # The request must not reach the engine while the build runs (a bounded wait for something that must not
        # happen).
        with pytest.raises(TimeoutError):
            await until(lambda: bool(model.prompts), timeout=0.5)
        long_build.release.set()
        done: Done = await next_emission(window.generation_finished)
        assert model.prompts, "the question was sent once the kernels were ready"
        header = message.reasoning.header.text()
        match = re.fullmatch(r"Thought for ([0-9.]+) s · .*", header)
        assert match is not None, header  # seconds, not "1 min 40 s"
        assert float(match.group(1)) < BUILD_SECONDS
        assert done.time_to_first_token is not None and done.time_to_first_token < BUILD_SECONDS
        assert "first token" in readable(message.stats.text()) and " min " not in readable(message.stats.text())

    run(body(), timeout=60)


def test_a_comparison_waits_for_the_build_too_and_its_times_leave_the_wait_out(
    run: Any, make_window: Callable[..., MainWindow], long_build: HeldBuild
) -> None:
    kernels = KernelPreparation(long_build)
    scripts = [harmony_reply(f"Step {i}.", "No.") for i in range(3)]
    backend, model = scripted_engine(*scripts, token_seconds=0.002)
    window = make_window(backend, kernels=kernels)

    async def body() -> None:
        await load_then_build(window, kernels)
        window.composer.sampling.temperature.setValue(0.0)
        window.set_compare_mode(True)
        view = window.compare
        view.prompt.setPlainText("Is 91 prime?")
        assert view.start() is not None
        with pytest.raises(TimeoutError):
            await until(lambda: bool(model.prompts), timeout=0.5)
        long_build.release.set()
        dones = await next_emission(view.finished, timeout=30)
        assert len(dones) == 3 and model.prompts
        for column in view.columns:
            shown = column.total_time.text()
            assert re.fullmatch(r"[0-9.]+ s", shown), shown  # seconds of the answer, not "1 min 40 s"
            assert float(shown.removesuffix(" s")) < BUILD_SECONDS

    run(body(), timeout=60)


def test_a_failed_build_shows_the_notice_and_answers_come_from_the_fallback(
    run: Any, make_window: Callable[..., MainWindow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gpt_oss_desktop.engine import ops
    from gpt_oss_desktop.kernels import cpu_build

    # A real build that fails: a fresh build cache and no compiler. The process-wide decision is redone for this
    # test (and restored after it), so the engine really runs the torch path. The tag gives the build its own name:
    # torch numbers a name built in two folders by one process (_v1) and would rebuild the real one later.
    monkeypatch.setattr(cpu_build._Active, "status", None)
    monkeypatch.setattr(cpu_build._Active, "ops", None)
    monkeypatch.setattr(cpu_build, "_variants", {})
    monkeypatch.setattr(cpu_build, "compile_variant", functools.partial(cpu_build.compile_variant, tag="nocompiler"))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.delenv(cpu_build.ISA_ENV, raising=False)
    monkeypatch.delenv(cpu_build.FUSED_ENV, raising=False)
    kernels = KernelPreparation()  # the real cpu_build.prepare
    window = make_window(LocalEngine(max_context=512), kernels=kernels)
    indicator = indicator_of(window)

    async def body() -> None:
        finished = next_emission(kernels.finished, kernels.start, timeout=60)
        status = await finished
        assert status.state is KernelState.FAILED
        assert indicator.isVisible() and not indicator.busy.isVisible()
        text = indicator.label.text()
        assert text.startswith("CPU kernels could not be built: ") and text.endswith("; using the slower fallback")
        assert not ops.cpu_fused_enabled()  # the engine falls back to the torch references
        await next_emission(window.model_loaded, lambda: window.load_model(DEMO_MODEL), timeout=60)
        window.composer.sampling.temperature.setValue(0.0)
        window.composer.sampling.max_tokens.setValue(8)
        window.composer.prompt.setPlainText("What is 2+2?")
        window.composer.send_button.click()
        done: Done = await next_emission(window.generation_finished, timeout=60)
        assert done is not None and done.completion_tokens > 0 and not done.error
        assert indicator.isVisible()  # the notice stays: the slowdown is not silent

    run(body(), timeout=120)
