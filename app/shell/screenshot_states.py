"""The named states ``--screenshot`` renders, each reached as a user would reach it, and waited for by condition.

A :class:`Stage` is one real :class:`MainWindow` over a throwaway folder: its own settings file, a real SQLite chat
history (written through the store's injectable clock, so the earlier chats are spread over days and weeks and the
sidebar groups them by date), an empty installed-models list, and :class:`ScriptedModel` (a scripted stand-in for a
real model) behind the real engine thread and harmony parser, so every answer on screen arrived as a live stream.

Nothing waits for a fixed time: :func:`wait_until` polls a condition while the event loop runs (the qasync loop is
Qt's, so each poll lets Qt deliver events, lay out and paint), with a generous deadline, and a condition that does
not hold in time fails naming the state and the condition.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation, KernelStatusIndicator
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.chat.stats import AnswerStats
from gpt_oss_desktop.app.chat.tool_calls import CallState, ToolCallRecord
from gpt_oss_desktop.app.downloads import HubSettings, MachineInfo, ModelRegistry
from gpt_oss_desktop.app.downloads.hardware import GpuInfo
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.models import utc_now
from gpt_oss_desktop.app.settings import TEMPERATURE_KEY, make_settings
from gpt_oss_desktop.app.shell import screenshot_script as script
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.events import ANALYSIS, FinishReason
from gpt_oss_desktop.engine.harmony import JSON_CONTENT_TYPE, PYTHON_CONTENT_TYPE, PYTHON_TOOL, ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolStatus
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox
from gpt_oss_desktop.engine.tools.python_tool import PythonTool
from gpt_oss_desktop.engine.vocab import get_encoding
from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus

logger = logging.getLogger(__name__)

# Per condition. Generous on purpose: a busy 2-core machine can be many times slower than a quiet one, and a
# deadline only bounds how long a real failure takes to report.
DEADLINE_S: Final = 180.0
_POLL_S: Final = 0.01
# Simulated compute per token: enough for the thinking times and tokens per second on screen to read like a real
# model's, short enough to keep the gallery quick.
_TOKEN_SECONDS: Final = 0.006
# What the status bar calls the scripted model (an honest name: it is not gpt-oss).
MODEL_NAME: Final = "Scripted preview"
# Answer tokens the streaming state shows before its answer freezes.
_STREAMED_ANSWER_TOKENS: Final = 40
# The sample machine the download wizard judges the models against (not this one: the pictures must not depend on
# where they were rendered).
SAMPLE_MACHINE: Final = MachineInfo(
    GpuInfo("NVIDIA GeForce RTX 4090", 22 * 2**30, 24 * 2**30), 64 * 2**30, 512 * 10**9, Path("~/.cache/huggingface")
)


class ScreenshotError(RuntimeError):
    """A state could not be reached: which state, and which condition did not hold."""


async def wait_until(predicate: Callable[[], bool], what: str, *, state: str, timeout: float = DEADLINE_S) -> None:
    """Poll ``predicate`` while the event loop runs until it holds; ScreenshotError naming ``state`` and ``what``
    (the condition, in words) if it does not hold within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise ScreenshotError(f"state {state!r}: {what}: not so after {timeout:.0f} s")
        await asyncio.sleep(_POLL_S)


class _Clock:
    """The history's clock: pinned to a past moment while the sample history is written, else the real time."""

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned if self.pinned is not None else utc_now()


class _HeldBuild:
    """A stand-in for the first run's CPU kernel build: reports that it started, then holds until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, on_progress: Callable[[str], None]) -> KernelStatus:
        on_progress("Building the CPU kernels (first run only)")
        self.release.wait(DEADLINE_S)
        return KernelStatus(KernelState.BUILT, "preview", 0.0)


def _sample_probe(_target: Path) -> MachineInfo:
    return SAMPLE_MACHINE


class Stage:
    """One window in a throwaway folder, driven through its public API; :meth:`close` tears everything down.

    Attributes:
        dialog: a dialog the state opened over the window (drawn over it in the picture), or None.
    """

    def __init__(
        self, state: str, folder: Path, *, settings_path: str | None = None, deadline: float = DEADLINE_S
    ) -> None:
        self.state = state
        self.deadline = deadline
        self.clock = _Clock()
        # A throwaway ini keeps the user's real preferences out of the picture (and unchanged by it).
        self.settings = make_settings(settings_path or str(folder / "settings.ini"))
        if settings_path is None:
            # Greedy decoding: the scripted model's one-hot logits give the same tokens either way, and sampling
            # from 201,088 logits costs tens of milliseconds a token on a busy 2-core machine.
            self.settings.setValue(TEMPERATURE_KEY, 0.0)
        self.store = ChatStore(folder / "history.sqlite3", clock=self.clock)
        self.library = ModelLibrary(ModelRegistry(folder / "models.json"))
        self.model: ScriptedModel | None = None
        self.backend = LocalEngine(loader=self._scripted_model, max_context=8192)
        self.held_build = _HeldBuild()
        self.kernels: KernelPreparation | None = None
        self.window: MainWindow | None = None
        self.dialog: QWidget | None = None
        self.dialog_size: QSize | None = None
        self._release_stream: threading.Event | None = None

    def _scripted_model(self, _ref: str, _progress: object) -> ScriptedModel:
        if self.model is None:
            raise RuntimeError("no scripted model set before the load")
        return self.model

    def open_window(self, *, first_run_kernels: bool = False, tools: bool = False) -> MainWindow:
        if first_run_kernels:
            self.kernels = KernelPreparation(self.held_build)
        app_tools = None
        if tools:  # the defaults, kept out of the user's settings (nothing is saved)
            app_tools = AppTools(ToolSettings(), save=lambda _settings: None, python_tool=PythonTool(PythonSandbox()))
        window = MainWindow(
            self.backend, self.settings, store=self.store, models=self.library, kernels=self.kernels, tools=app_tools
        )
        downloads = window.model_downloads
        # The wizard never goes online here (it only shows its first page) and judges the sample machine.
        downloads.hub = replace(HubSettings.from_environment(), offline=True)
        downloads.wizard_options = {"probe": _sample_probe}
        self.window = window
        return window

    @property
    def win(self) -> MainWindow:
        assert self.window is not None, "open_window() first"
        return self.window

    # -- waiting ----------------------------------------------------------------------------------------------

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        await wait_until(predicate, what, state=self.state, timeout=self.deadline)

    async def finished(self, task: asyncio.Future[Any] | None, what: str) -> None:
        """Wait for ``task`` (a load, an answer, a comparison) to end; its failure fails the state."""
        if task is None:
            raise ScreenshotError(f"state {self.state!r}: {what}: the window refused to start it")
        await self.wait(task.done, what)
        if task.cancelled():
            raise ScreenshotError(f"state {self.state!r}: {what}: cancelled")
        if (exc := task.exception()) is not None:
            raise ScreenshotError(f"state {self.state!r}: {what}: {type(exc).__name__}: {exc}") from exc

    # -- actions ----------------------------------------------------------------------------------------------

    def seed_history(self, chats: Sequence[script.EarlierChat] = script.EARLIER_CHATS) -> None:
        """Write the sample history, each chat at its own past moment, and list it in the sidebar."""
        now = utc_now()
        try:
            for chat in sorted(chats, key=lambda c: c.age, reverse=True):  # oldest first, as they happened
                self.clock.pinned = now - chat.age
                record = self.store.create_chat(chat.title, model=MODEL_NAME)
                self.store.add_message(record.id, "user", chat.question)
                stats = AnswerStats(
                    reasoning_tokens=len(get_encoding().encode(chat.reply.thought)),
                    answer_tokens=len(get_encoding().encode(chat.reply.answer)),
                    time_to_first_token=0.2,
                    thinking_seconds=0.9,
                    answer_seconds=1.4,
                    tokens_per_second=38.0,
                    finish_reason=FinishReason.STOP,
                )
                self.store.add_message(
                    record.id,
                    "assistant",
                    chat.reply.answer,
                    analysis=chat.reply.thought,
                    effort=chat.effort,
                    stats=stats.to_record(),
                )
        finally:
            self.clock.pinned = None
        if self.win.sidebar is not None:
            self.win.sidebar.refresh()

    async def load(
        self, replies: Sequence[script.Reply], *, python_call: script.PythonCall | None = None, **model_options: Any
    ) -> None:
        """Load the scripted model, replaying ``replies`` one per request, in order; with ``python_call``, that call
        first and ``replies[0]`` once the prompt holds its result."""
        scripts = [harmony_reply(r.thought, r.answer) for r in replies]
        if python_call is not None:
            call = harmony_tool_call(
                python_call.thought, PYTHON_TOOL, python_call.code, channel=ANALYSIS, content_type=PYTHON_CONTENT_TYPE
            )
            self.model = ScriptedModel.tool_loop(call, scripts[0], token_seconds=_TOKEN_SECONDS)
        else:
            self.model = ScriptedModel(scripts, token_seconds=_TOKEN_SECONDS, **model_options)
        await self.finished(self.win.load_model(MODEL_NAME), "the scripted model loaded")
        if self.backend.info is None:
            raise ScreenshotError(f"state {self.state!r}: the scripted model did not load (see the log)")
        # The load's last step ("Ready") stays in the status bar for a few seconds; a user looks at the window
        # after that, and a picture taken within them would differ from one taken after.
        self.win.statusBar().clearMessage()

    def send(self, question: str, effort: ReasoningEffort) -> asyncio.Task[None]:
        self.win.composer.set_effort(effort)
        task = self.win.send_message(question)
        if task is None:
            raise ScreenshotError(f"state {self.state!r}: the window did not accept the question {question!r}")
        return task

    async def ask(self, question: str, effort: ReasoningEffort) -> AssistantMessage:
        """Send ``question`` and wait until its answer is done (streamed, finished and saved)."""
        task = self.send(question, effort)
        await self.finished(task, f"the answer to {question!r} finished")
        message = self.last_answer()
        if message is None:
            raise ScreenshotError(f"state {self.state!r}: no answer on screen for {question!r}")
        return message

    def last_answer(self) -> AssistantMessage | None:
        answers = [w for w in self.win.chat.messages() if isinstance(w, AssistantMessage)]
        return answers[-1] if answers else None

    # -- teardown ---------------------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._release_stream is not None:
            self._release_stream.set()
        self.held_build.release.set()
        window = self.window
        try:
            if window is not None:
                window.stop()
                sessions = (window.session, window.compare.session)
                tasks = [s.task for s in sessions if s is not None and s.task is not None]
                if self.kernels is not None:
                    for task in tasks:
                        task.cancel()  # a question still waiting for the stand-in build: drop it, not answer it
                await self.wait(lambda: all(t.done() for t in tasks), "the running answers stopped")
                if self.dialog is not None:
                    self.dialog.close()
                window.close()
        finally:
            self.backend.close()
            self.store.close()


# -- the states ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """One screenshot state: its name (``--state``), what it shows, and how a user gets there."""

    name: str
    summary: str
    reach: Callable[[Stage], Awaitable[None]]
    first_run_kernels: bool = False
    tools: bool = False  # the window offers the app's tools (python in its sandbox, the built-in functions)


async def _tool_call_approval(stage: Stage) -> None:
    stage.seed_history()
    await stage.load([script.POWER], python_call=script.POWER_CALL)
    stage.send(script.POWER_QUESTION, ReasoningEffort.MEDIUM)

    def waiting_for_approval() -> bool:
        answer = stage.last_answer()
        return answer is not None and bool(answer.tool_cards) and answer.tool_cards[0].approval_row.isVisible()

    await stage.wait(waiting_for_approval, "the python call's card asks to run it")


async def _web_browsing(stage: Stage) -> None:
    # A saved chat, as the history holds one after the browser ran (no network here): the calls' cards, and the
    # answer whose citations link to the page the browser showed.
    stage.seed_history()
    await stage.load([script.SKY])
    chat = stage.store.create_chat("Perseid meteor shower", model=MODEL_NAME)
    stage.store.add_message(chat.id, "user", script.BROWSING_QUESTION)
    calls = [
        ToolCallRecord(
            call.recipient,
            call.arguments,
            channel=ANALYSIS,
            content_type=JSON_CONTENT_TYPE,
            reasoning=call.thought,
            state=CallState.DONE,
            status=ToolStatus.OK,
            output=call.output,
            seconds=0.8,
            approval="always",
        ).to_record()
        for call in script.BROWSING_CALLS
    ]
    stats = AnswerStats(
        reasoning_tokens=96,
        answer_tokens=len(get_encoding().encode(script.BROWSING.answer)),
        time_to_first_token=0.3,
        thinking_seconds=4.2,
        answer_seconds=2.6,
        tokens_per_second=36.0,
        finish_reason=FinishReason.STOP,
        tool_calls=len(calls),
        tool_seconds=1.6,
    )
    stage.store.add_message(
        chat.id,
        "assistant",
        script.BROWSING.answer,
        analysis=script.BROWSING.thought,
        effort="medium",
        stats=stats.to_record(),
        tool_calls=calls,
    )
    if stage.win.sidebar is not None:
        stage.win.sidebar.refresh()
    if not stage.win.open_chat(chat.id):
        raise ScreenshotError(f"state {stage.state!r}: the browsing chat did not open")

    def cited() -> bool:
        answer = stage.last_answer()
        return answer is not None and script.BROWSING_PAGE in answer.answer.toHtml()

    await stage.wait(cited, "the answer's citations link to the page")


async def _first_start(stage: Stage) -> None:
    window = stage.win
    await stage.wait(lambda: window.stack.currentWidget() is window.empty, "the no-model screen is shown")


async def _demo_chat(stage: Stage, *, reasoning_open: bool) -> None:
    stage.seed_history()
    await stage.load([script.SKY, script.CLOUDS])
    await stage.ask(script.SKY_QUESTION, ReasoningEffort.LOW)
    last = await stage.ask(script.CLOUDS_QUESTION, ReasoningEffort.MEDIUM)
    if last.reasoning.expanded != reasoning_open:
        last.reasoning.header.click()  # as a user would: open (or close) the finished answer's reasoning
    what = "the last answer's reasoning is " + ("open" if reasoning_open else "collapsed")
    await stage.wait(lambda: last.reasoning.body.isVisible() == reasoning_open, what)


async def _reasoning_open(stage: Stage) -> None:
    await _demo_chat(stage, reasoning_open=True)


async def _reasoning_collapsed(stage: Stage) -> None:
    await _demo_chat(stage, reasoning_open=False)


async def _markdown_answer(stage: Stage) -> None:
    stage.seed_history()
    await stage.load([script.MARKDOWN])
    message = await stage.ask(script.MARKDOWN_QUESTION, ReasoningEffort.LOW)
    await stage.wait(lambda: len(message.answer.code_blocks()) == 1, "the answer's code block is rendered")


async def _compare_done(stage: Stage) -> None:
    stage.seed_history()
    await stage.load(script.COMPARE)
    window = stage.win
    window.set_compare_mode(True)
    window.compare.prompt.setPlainText(script.COMPARE_QUESTION)
    await stage.finished(window.compare.start(), "the comparison finished")
    await stage.wait(lambda: window.compare.summary_result is not None, "the comparison's summary is shown")


async def _sidebar_search(stage: Stage) -> None:
    stage.seed_history()
    await stage.load([script.SKY])
    window = stage.win
    sidebar = window.sidebar
    assert sidebar is not None  # the stage always has a store
    found: list[str] = []
    sidebar.search_finished.connect(found.append)
    QTest.keyClicks(sidebar.search, script.SEARCH_QUERY)  # typed, as a user would: the search is debounced
    await stage.wait(
        lambda: script.SEARCH_QUERY in found and not sidebar.searching and sidebar.list.count() > 0,
        f"the sidebar lists the chats matching {script.SEARCH_QUERY!r}",
    )
    # Then open the first match with a click, to read it (the list's first row is its date header).
    chat_id = sidebar.chat_ids()[0]
    first = sidebar.item_for(chat_id)
    assert first is not None
    QTest.mouseClick(
        sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=sidebar.list.visualItemRect(first).center()
    )
    await stage.wait(lambda: window.chat_id == chat_id and stage.last_answer() is not None, "the first match is open")


async def _download_wizard(stage: Stage) -> None:
    window = stage.win
    await _first_start(stage)
    window.empty.download_button.click()  # the first-start screen's "Download gpt-oss-20b…"
    wizard = window.model_downloads.wizard
    if wizard is None:
        raise ScreenshotError(f"state {stage.state!r}: the download wizard did not open")
    stage.dialog = wizard
    await stage.wait(
        lambda: wizard.isVisible() and wizard.model_page.machine is not None,
        "the download wizard shows its verdicts for the sample machine",
    )


async def _model_manager(stage: Stage) -> None:
    stage.seed_history()
    await stage.load([script.SKY])
    window = stage.win
    window.model_downloads.manage_action.trigger()
    manager = window.model_downloads.manager
    if manager is None:
        raise ScreenshotError(f"state {stage.state!r}: the model manager did not open")
    stage.dialog = manager
    await stage.wait(
        lambda: manager.isVisible() and manager.table.rowCount() == len(stage.library.models()),
        "the model manager lists the installed models",
    )


async def _answer_streaming(stage: Stage) -> None:
    stage.seed_history()
    release = threading.Event()
    stage._release_stream = release
    second = harmony_reply(script.CLOUDS.thought, script.CLOUDS.answer)
    answer_start = len(harmony_reply(script.CLOUDS.thought, "")) - 1  # the answer's tokens sit before the RETURN
    await stage.load([script.SKY, script.CLOUDS], hold_after=answer_start + _STREAMED_ANSWER_TOKENS, release=release)
    release.set()  # the first answer runs through (it is long enough to reach the hold step too)
    await stage.ask(script.SKY_QUESTION, ReasoningEffort.LOW)
    release.clear()
    stage.send(script.CLOUDS_QUESTION, ReasoningEffort.MEDIUM)
    # The stream holds inside the decode of its last shown token; the token before it has surely been delivered.
    shown = get_encoding().decode(second[answer_start : answer_start + _STREAMED_ANSWER_TOKENS - 1])

    def frozen_mid_answer() -> bool:
        message = stage.last_answer()
        return (
            message is not None
            and message.answer_text.startswith(shown)
            and message.answer.text() == message.answer_text
            and not message.answer.pending
        )

    await stage.wait(frozen_mid_answer, f"the second answer streamed {len(shown)} characters and is shown")


async def _attached_files(stage: Stage) -> None:
    stage.seed_history()
    await stage.load([script.RAINFALL])
    window = stage.win
    folder = stage.store.path.parent / "files"
    folder.mkdir()
    for name, text in (script.RAINFALL_FILE, *script.NEXT_FILES):
        (folder / name).write_text(text, encoding="utf-8")
    composer = window.composer
    # As a user would: attach the CSV, type the question, press Send, and wait for the answer.
    composer.attach_files([folder / script.RAINFALL_FILE[0]])
    await stage.wait(lambda: len(composer.attachments) == 1, "the CSV's chip is in the composer")
    composer.prompt.setPlainText(script.RAINFALL_QUESTION)
    finished: list[object] = []
    window.generation_finished.connect(finished.append)
    composer.send_button.click()
    await stage.wait(lambda: bool(finished), "the answer to the question with the CSV finished")
    # Then the next message, being written: two more files attached, their chips above the half-typed text.
    composer.attach_files([folder / name for name, _text in script.NEXT_FILES])
    await stage.wait(lambda: len(composer.attachments) == 2, "the two files' chips are in the composer")
    composer.prompt.setPlainText(script.NEXT_DRAFT)


async def _first_run_kernels(stage: Stage) -> None:
    kernels = stage.kernels
    assert kernels is not None
    kernels.start()
    await stage.load([script.SKY])
    indicator = stage.win.findChild(KernelStatusIndicator)
    if indicator is None:
        raise ScreenshotError(f"state {stage.state!r}: no kernel status indicator in the status bar")
    # The build's "started" report crosses from its thread.
    await stage.wait(indicator.isVisible, "the status bar says the CPU kernels are being built")
    stage.send(script.SKY_QUESTION, ReasoningEffort.LOW)  # waits for the kernels before its clock starts
    await stage.wait(lambda: stage.last_answer() is not None, "the question waits for the kernels")


STATES: Final = {
    state.name: state
    for state in (
        State("first-start", "First start: no model loaded, no chats yet.", _first_start),
        State(
            "demo-chat-reasoning-open",
            "A chat of two answers; the last answer's reasoning opened.",
            _reasoning_open,
        ),
        State(
            "demo-chat-reasoning-collapsed",
            "The same chat with the reasoning collapsed, as answers end.",
            _reasoning_collapsed,
        ),
        State("markdown-answer", "An answer in Markdown: a code block and a table.", _markdown_answer),
        State("compare-done", "Compare mode after low, medium and high effort have answered.", _compare_done),
        State(
            "sidebar-groups-search",
            f"Chats over several weeks in the sidebar, and a search for {script.SEARCH_QUERY!r}.",
            _sidebar_search,
        ),
        State("download-wizard", "The download wizard's first page, over the first-start window.", _download_wizard),
        State("model-manager", "The model manager (nothing installed yet), with the model loaded.", _model_manager),
        State(
            "answer-streaming", "An answer streaming: the reasoning done, the answer half written.", _answer_streaming
        ),
        State(
            "tool-call-approval",
            "The model asks to run a line of Python; the card waits for Run, Always run or Don't run.",
            _tool_call_approval,
            tools=True,
        ),
        State(
            "web-browsing",
            "A saved answer that searched the web and opened a page: the browser's calls, and citations as links.",
            _web_browsing,
        ),
        State(
            "attached-files",
            "A question sent with a CSV file, and the next message with two more files attached in the composer.",
            _attached_files,
        ),
        State(
            "first-run-kernels",
            "The first run: the CPU kernels building while the first question waits.",
            _first_run_kernels,
            first_run_kernels=True,
        ),
    )
}


def state_named(name: str) -> State:
    """The state called ``name``; ScreenshotError listing the known ones if there is none."""
    state = STATES.get(name)
    if state is None:
        raise ScreenshotError(f"unknown screenshot state {name!r}; choose one of: {', '.join(STATES)}")
    return state


def elapsed_since(started: float) -> float:
    return round(time.perf_counter() - started, 2)
