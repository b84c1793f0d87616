"""``gpt-oss-desktop --self-test``: prove an installation works end to end, without a person at the screen.

It opens the real main window (``QT_QPA_PLATFORM=offscreen`` works), loads the bundled demo model through the
ordinary loader, asks one question at low effort with greedy sampling, checks that the generated token ids parse
as harmony with openai-harmony's own parser and that the window shows the parsed final answer, and that the chat
was written to a history database. Settings and history live in a temporary folder, so the user's are untouched;
the demo model is materialised in the user data folder, as the app itself would.

It prints one line per step and exits 0, or 1 naming the step that failed and why, or 2 when the time limit ran
out (naming the step it was in). It is how the frozen bundle is smoke-tested (packaging/smoke.sh).

A last step serves the loaded model on a free loopback port (Model ▸ Serve on localhost) and asks it one question
over HTTP, so a bundle missing a piece of the web stack fails here rather than in a user's hands; the step before
it runs one program through the sandboxed python tool (in the bundle, the app re-entered as the sandbox's child).

Test hook: ``GPTOSS_SELF_TEST_FAIL=<step id>`` (``gui``, ``load``, ``generate``, ``parse``, ``history``,
``python``, ``serve``) makes that step fail on purpose, so the failure path can be tested from outside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from openai_harmony import Role

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL, LoadError, ModelInfo, RequestError
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.settings import EFFORT_KEY, MAX_TOKENS_KEY, TEMPERATURE_KEY, make_settings
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.events import FINAL, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.vocab import get_encoding

FAIL_ENV: Final = "GPTOSS_SELF_TEST_FAIL"
DEFAULT_TIMEOUT_S: Final = 600.0
PROMPT: Final = "What is 17 + 25?"
MAX_TOKENS: Final = 256  # the demo answers at low effort in ~30 tokens; a cap keeps a broken model from looping

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_TIMEOUT: Final = 2


class Step(enum.StrEnum):
    GUI = "gui"
    LOAD = "load"
    GENERATE = "generate"
    PARSE = "parse"
    HISTORY = "history"
    PYTHON = "python"
    BROWSE = "browse"
    SERVE = "serve"

    @property
    def label(self) -> str:
        return _TITLES[self]


_TITLES: Final = {
    Step.GUI: "start the GUI",
    Step.LOAD: "load the demo model",
    Step.GENERATE: "generate an answer",
    Step.PARSE: "parse the answer as harmony",
    Step.HISTORY: "save the chat to history",
    Step.PYTHON: "run the python tool in its sandbox",
    Step.BROWSE: "read a web page and a PDF with the browser tool",
    Step.SERVE: "serve the model over HTTP",
}


class SelfTestFailure(Exception):
    """A step found something wrong; the message says what."""


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    seconds: float
    detail: str


class _Progress:
    """Which step is running (so a time-out can name it) and what each finished step reported."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.current: Step | None = None
        self.results: list[StepResult] = []

    @contextlib.contextmanager
    def step(self, step: Step) -> Iterator[list[str]]:
        """Run one step; the body appends a short detail to the yielded list for the report line."""
        self.current = step
        if os.environ.get(FAIL_ENV, "").strip().lower() == step.value:
            raise SelfTestFailure(f"failed on purpose ({FAIL_ENV}={step.value})")
        started = time.perf_counter()
        detail: list[str] = []
        yield detail
        seconds = time.perf_counter() - started
        text = "; ".join(detail)
        self.results.append(StepResult(step, seconds, text))
        self.say(f"self-test: {step.label}: ok ({seconds:.2f} s){': ' + text if text else ''}")


async def _first_of(*signals: Any, start: Callable[[], object]) -> tuple[int, object]:
    """Call ``start`` and wait for the first emission of any of ``signals``: (index of that signal, its value)."""
    future: asyncio.Future[tuple[int, object]] = asyncio.get_running_loop().create_future()
    slots = []
    for index, signal in enumerate(signals):

        def on_emit(value: object = None, index: int = index) -> None:
            if not future.done():
                future.set_result((index, value))

        signal.connect(on_emit)
        slots.append((signal, on_emit))
    try:
        start()
        return await future
    finally:
        for signal, slot in slots:
            signal.disconnect(slot)


def _last_answer(window: MainWindow) -> AssistantMessage | None:
    answers = [w for w in window.chat.messages() if isinstance(w, AssistantMessage)]
    return answers[-1] if answers else None


async def _run_steps(progress: _Progress, workdir: Path) -> None:
    from PySide6.QtWidgets import QApplication

    window: MainWindow | None = None
    backend: LocalEngine | None = None
    store: ChatStore | None = None
    try:
        with progress.step(Step.GUI) as detail:
            app = QApplication.instance()
            if not isinstance(app, QApplication):
                raise SelfTestFailure("no QApplication")
            if app.windowIcon().isNull():
                raise SelfTestFailure("the application icon did not load from the bundled resources")
            settings = make_settings(str(workdir / "settings.ini"))
            settings.setValue(TEMPERATURE_KEY, 0.0)  # greedy: the same answer every run
            settings.setValue(MAX_TOKENS_KEY, MAX_TOKENS)
            settings.setValue(EFFORT_KEY, ReasoningEffort.LOW.value)
            store = ChatStore(workdir / "history.sqlite3")
            backend = LocalEngine()
            window = MainWindow(backend, settings, store=store)
            window.show()
            for _ in range(200):
                if window.isVisible() and window.windowHandle() is not None and window.windowHandle().isExposed():
                    break
                await asyncio.sleep(0.01)
            else:
                raise SelfTestFailure("the main window never became visible")
            detail.append(f"platform {app.platformName()}")

        with progress.step(Step.LOAD) as detail:
            index, value = await _first_of(
                window.model_loaded, window.load_failed, start=lambda: window.load_model(DEMO_MODEL)
            )
            if index == 1:
                assert isinstance(value, LoadError)
                raise SelfTestFailure(f"{value.kind.value}: {value.message}")
            assert isinstance(value, ModelInfo)
            detail.append(f"{value.name} on {value.device}")

        with progress.step(Step.GENERATE) as detail:
            sent: list[object] = []
            _, value = await _first_of(
                window.generation_finished, start=lambda: sent.append(window.send_message(PROMPT))
            )
            if sent[0] is None:
                raise SelfTestFailure("the window refused to send the question")
            if not isinstance(value, Done):
                raise SelfTestFailure("the request failed before generating (see the log above)")
            done = value
            if done.error:
                raise SelfTestFailure(f"the engine raised: {done.error}")
            if done.finish_reason is not FinishReason.STOP:
                raise SelfTestFailure(f"the answer ended with '{done.finish_reason.value}', not 'stop'")
            detail.append(f"{done.completion_tokens} tokens, {done.decode_tokens_per_s:.0f} tok/s")
            detail.append(f"fused CPU kernel {'on' if _cpu_kernel_used(window) else 'off'}")

        with progress.step(Step.PARSE) as detail:
            try:
                messages = get_encoding().parse_messages_from_completion_tokens(
                    list(done.completion_ids), Role.ASSISTANT, strict=True
                )
            except Exception as exc:  # HarmonyError and friends: any failure here is what this step reports
                raise SelfTestFailure(f"openai-harmony rejected the tokens: {exc}") from exc
            finals = [m for m in messages if m.channel == FINAL]
            if not finals:
                channels = ", ".join(str(m.channel) for m in messages) or "none"
                raise SelfTestFailure(f"no message on the final channel (channels: {channels})")
            final_text = "".join(getattr(part, "text", "") for part in finals[-1].content)
            shown = _last_answer(window)
            if shown is None or shown.answer_text.strip() != final_text.strip():
                raise SelfTestFailure(
                    f"the window shows {None if shown is None else shown.answer_text!r}, harmony says {final_text!r}"
                )
            detail.append(f"{len(messages)} messages, answer {final_text.strip()!r}")

        with progress.step(Step.HISTORY) as detail:
            if window.chat_id is None:
                raise SelfTestFailure("the window did not create a chat in the history")
            chat = store.get_chat(window.chat_id)
            roles = [m.role for m in chat.messages]
            if roles != ["user", "assistant"] or chat.messages[1].text.strip() != final_text.strip():
                raise SelfTestFailure(f"the saved chat holds {roles} with answer {chat.messages[-1].text!r}")
            detail.append(f"{len(chat.messages)} messages in {store.path.name}")

        with progress.step(Step.PYTHON) as detail:
            detail.append(await _python_once())

        with progress.step(Step.BROWSE) as detail:
            detail.append(await _browse_once())

        with progress.step(Step.SERVE) as detail:
            detail.append(await _serve_once(backend, workdir))
    finally:
        if window is not None:
            window.stop()
            window.close()
        if backend is not None:
            backend.close()
        if store is not None:
            store.close()


async def _python_once() -> str:
    """One program through the python tool: in the bundle this is the frozen app re-entered as the sandbox's child
    (``--python-sandbox-child``), so a packaging mistake there fails here rather than in a user's chat."""
    from gpt_oss_desktop.engine.tools.base import ToolStatus
    from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox, sandbox_info
    from gpt_oss_desktop.engine.tools.python_tool import PythonTool

    outcome = await PythonTool(PythonSandbox()).run("print(6 * 7)")
    if outcome.status is not ToolStatus.OK or outcome.output.strip() != "42":
        raise SelfTestFailure(f"the python tool answered {outcome.status.value}: {outcome.output[-300:]!r}")
    return f"6 * 7 = 42 under {sandbox_info().kind.value} in {outcome.seconds:.2f} s"


async def _browse_once() -> str:
    """The browser tool over a local HTTP server: an HTML page with a link, then the PDF it links to, so the HTTP
    client, the HTML reader and the PDF reader (pypdf) are all in the bundle."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gpt_oss_desktop.engine.tools.base import ToolStatus
    from gpt_oss_desktop.engine.tools.browser.fetcher import FetchLimits, PageFetcher
    from gpt_oss_desktop.engine.tools.browser.session import BrowserSession, browser_tools
    from gpt_oss_desktop.engine.tools.toolbox import Toolbox
    from gpt_oss_desktop.resources import resource_path

    pages = {
        "/": (b"<title>Self-test</title><p>Read <a href='/page.pdf'>the PDF</a>.</p>", "text/html; charset=utf-8"),
        "/page.pdf": (resource_path("self_test/page.pdf").read_bytes(), "application/pdf"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = pages.get(self.path, (b"", "text/plain"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        tools = Toolbox(browser_tools(BrowserSession(PageFetcher(FetchLimits(allow_private_hosts=True)))))
        page = await tools.run("browser.open", json.dumps({"id": f"http://127.0.0.1:{server.server_address[1]}/"}))
        pdf = await tools.run("browser.open", json.dumps({"id": 0}))
    finally:
        server.shutdown()
        server.server_close()
    if page.status is not ToolStatus.OK or "【0†the PDF】" not in page.output:
        raise SelfTestFailure(f"the browser read the page as {page.status.value}: {page.output[:300]!r}")
    if pdf.status is not ToolStatus.OK or "6 * 7 = 42" not in pdf.output:
        raise SelfTestFailure(f"the browser read the PDF as {pdf.status.value}: {pdf.output[:300]!r}")
    return f"a page and its PDF link in {page.seconds + pdf.seconds:.2f} s"


async def _serve_once(backend: LocalEngine, workdir: Path) -> str:
    """Serve the loaded model on a free port, ask one question with the standard library's HTTP client, stop."""
    config = ServerConfig(port=0, store_path=workdir / "responses.sqlite3")
    try:
        url = await backend.start_server(config)
    except RequestError as exc:
        raise SelfTestFailure(str(exc)) from exc
    body = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": PROMPT}], "temperature": 0}
    request = urllib.request.Request(
        f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        raw = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=120).read())
        reply = json.loads(raw)
        message = reply["choices"][0]["message"]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise SelfTestFailure(f"the server did not answer: {exc}") from exc
    finally:
        await backend.stop_server()
    if not message.get("content") or not message.get("reasoning"):
        raise SelfTestFailure(f"the server's answer lacks content or reasoning: {message!r}")
    return f"{url}: {reply['usage']['completion_tokens']} tokens, answer {message['content'].strip()!r}"


def _cpu_kernel_used(window: MainWindow) -> bool:
    info = window.backend.info
    if info is None or info.device != "CPU":
        return False
    from gpt_oss_desktop.engine.ops import cpu_fused_enabled

    return cpu_fused_enabled()  # cached: tells whether the generation just now used the fused C++ kernel


def run(loop: asyncio.AbstractEventLoop, timeout: float = DEFAULT_TIMEOUT_S, out: IO[str] | None = None) -> int:
    """Run the self-test on ``loop`` (a qasync loop over the QApplication) and return the exit code."""
    stream = out if out is not None else sys.stdout

    def say(line: str) -> None:
        if stream is not None:  # a windowed (console-less) frozen app on Windows has no stdout
            stream.write(line + "\n")
            stream.flush()

    progress = _Progress(say)
    started = time.perf_counter()
    code = EXIT_OK
    with tempfile.TemporaryDirectory(prefix="gpt-oss-self-test-") as scratch:
        try:
            loop.run_until_complete(asyncio.wait_for(_run_steps(progress, Path(scratch)), timeout))
        except SelfTestFailure as exc:
            code = _fail(say, progress, str(exc))
        except TimeoutError:
            code = _fail(say, progress, f"timed out after {timeout:.0f} s", EXIT_TIMEOUT)
        except Exception as exc:  # a crash inside a step is a failure of that step, reported with its type
            code = _fail(say, progress, f"{type(exc).__name__}: {exc}")
    if code == EXIT_OK:
        say(f"self-test passed in {time.perf_counter() - started:.1f} s")
    return code


def _fail(say: Callable[[str], None], progress: _Progress, why: str, code: int = EXIT_FAILED) -> int:
    step = progress.current
    where = f"step '{step.label}' ({step.value})" if step is not None else "start-up"
    say(f"self-test FAILED at {where}: {why}")
    return code
