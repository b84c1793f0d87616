"""``--screenshot FILE``: the window in a realistic state (a finished answer and one streaming), saved as PNG.

``--screenshot-state kernels`` shows the first run instead: the CPU kernels being prepared in the background (the
status bar's message and busy indicator) while the first question waits for them. The build is a stand-in that
never finishes before the picture is taken (a real one would be over in seconds on this machine).

The answers come from :class:`app.backends.scripted_model.ScriptedModel` (a scripted stand-in for a real model)
through the real engine thread and harmony parser, so the picture shows exactly what the widgets do with a live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation, KernelStatusIndicator
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.backends.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.settings import make_settings
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus

logger = logging.getLogger(__name__)

FIRST_QUESTION = "Why is the sky blue?"
FIRST_THOUGHT = (
    "The user asks why the sky is blue. Explain Rayleigh scattering: sunlight contains all visible wavelengths; "
    "air molecules are much smaller than the wavelength, so they scatter light with an intensity proportional to "
    "1/λ⁴. Blue (≈450 nm) scatters about 5.5 times more than red (≈700 nm). Violet scatters even more, but the sun "
    "emits less of it and our eyes are less sensitive to it. Mention sunsets for contrast. Keep it short."
)
FIRST_ANSWER = (
    "Sunlight is a mix of all colours. As it passes through the atmosphere, it hits nitrogen and oxygen molecules "
    "that are far smaller than the wavelength of light, and they scatter short wavelengths much more strongly than "
    "long ones (Rayleigh scattering, proportional to 1/λ⁴).\n\n"
    "Blue light is scattered about five times more than red, so it reaches your eyes from every direction of the "
    "sky. Violet is scattered even more, but the Sun emits less of it and our eyes are less sensitive to it.\n\n"
    "At sunset the light crosses much more air, most of the blue is scattered away before it reaches you, and the "
    "sky near the horizon turns orange and red."
)
SECOND_QUESTION = "Then why are clouds white?"
SECOND_THOUGHT = (
    "Clouds are made of droplets around 10–20 µm, much larger than the wavelength of visible light. That is Mie "
    "scattering, which is nearly independent of wavelength, so all colours scatter equally and the result is white. "
    "Thick clouds look grey because less light gets through."
)
SECOND_ANSWER = (
    "Cloud droplets are much larger than air molecules, roughly 10–20 micrometres across. Particles that size "
    "scatter all visible wavelengths about equally (Mie scattering), so the light they send you keeps the mix of "
    "colours it arrived with, and a mix of all colours looks white. Thick or tall clouds look grey underneath "
    "because less light makes it through them."
)
# Earlier chats listed in the sidebar (a throwaway history file, never the user's).
EARLIER_CHATS = (
    "Plan a three-day trip to Lisbon",
    "Explain the birthday paradox",
    "Rust or Go for a small CLI tool?",
)
# Token step at which the second answer freezes: past its reasoning and partway into the answer.
_PAUSE_INTO_ANSWER = 40
STATES = ("chat", "kernels")


class _HeldBuild:
    """A stand-in for cpu_build.prepare: reports that a build started, then holds until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, on_progress: Callable[[str], None]) -> KernelStatus:
        on_progress("Building the CPU kernels (first run only)")
        self.release.wait(60)
        return KernelStatus(KernelState.BUILT, "preview", 0.0)


async def capture(path: Path, settings_path: str | None = None, state: str = "chat") -> None:
    """Render the window in ``state`` (one of STATES) to ``path``."""
    if state not in STATES:
        raise ValueError(f"unknown screenshot state {state!r}; choose one of {', '.join(STATES)}")
    held_build = _HeldBuild()
    kernels = KernelPreparation(held_build) if state == "kernels" else None
    first = harmony_reply(FIRST_THOUGHT, FIRST_ANSWER)
    second = harmony_reply(SECOND_THOUGHT, SECOND_ANSWER)
    answer_start = len(second) - len(harmony_reply("", SECOND_ANSWER)) + len(harmony_reply("", ""))
    release = threading.Event()
    model = ScriptedModel(
        [first, second], token_seconds=0.01, hold_after=len(first) + answer_start + _PAUSE_INTO_ANSWER, release=release
    )
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=8192)
    with tempfile.TemporaryDirectory() as scratch:
        # A throwaway ini keeps the user's real preferences out of the picture (and unchanged by it).
        settings = make_settings(settings_path or str(Path(scratch) / "settings.ini"))
        store = ChatStore(Path(scratch) / "history.sqlite3")
        for title in EARLIER_CHATS:
            chat = store.create_chat(title)
            store.add_message(chat.id, "user", title, position=0)
        window = MainWindow(backend, settings, store=store, kernels=kernels)
        window.resize(1280, 900)
        window.show()
        try:
            if kernels is not None:
                await _fill_first_run(window, kernels)
            else:
                await _fill(window, release)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(path)):
                raise OSError(f"could not write {path}")
        finally:
            task = window.session.task
            if kernels is not None and task is not None:
                task.cancel()  # the question still waits for the stand-in build: drop it, not answer it
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            release.set()
            held_build.release.set()
            window.stop()
            task = window.session.task
            if task is not None:
                await asyncio.wait_for(task, 10)
            window.close()
            backend.close()
            store.close()


async def _fill(window: MainWindow, release: threading.Event) -> None:
    loaded = await _next(window.model_loaded, lambda: window.load_model("Scripted preview"))
    logger.info("screenshot model: %s", loaded)
    window.composer.set_effort(ReasoningEffort.LOW)
    await _next(window.generation_finished, lambda: window.send_message(FIRST_QUESTION))
    first = window._last_assistant()
    assert first is not None
    first.reasoning.header.click()  # as a user would: open the finished answer's reasoning to read it
    window.composer.set_effort(ReasoningEffort.MEDIUM)
    task = window.send_message(SECOND_QUESTION)
    assert task is not None
    message = window._current
    assert message is not None
    while len(message.answer_text) < 80:  # wait for the freeze point, checking the widget itself
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # let the throttled renderer and the layout catch up before grabbing


async def _fill_first_run(window: MainWindow, kernels: KernelPreparation) -> None:
    kernels.start()
    await _next(window.model_loaded, lambda: window.load_model("Scripted preview"))
    indicator = window.findChild(KernelStatusIndicator)
    assert indicator is not None
    while not indicator.isVisible():  # the build's "started" report crosses from its thread
        await asyncio.sleep(0.02)
    window.composer.set_effort(ReasoningEffort.LOW)
    task = window.send_message(FIRST_QUESTION)  # waits for the kernels before its clock starts
    assert task is not None
    await asyncio.sleep(0.1)  # let the layout catch up before grabbing


async def _next(signal: object, start: object) -> object:
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def on_emit(value: object = None) -> None:
        if not future.done():
            future.set_result(value)

    signal.connect(on_emit)  # type: ignore[attr-defined]
    try:
        start()  # type: ignore[operator]
        return await asyncio.wait_for(future, 30)
    finally:
        signal.disconnect(on_emit)  # type: ignore[attr-defined]
