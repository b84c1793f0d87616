"""One conversation and everything that happens to it, without Qt: the requests it sends, the answers it streams,
where its turns are stored, and the saved copy of an answer while it arrives.

Views (the chat window, the effort comparison) observe a :class:`ChatSession` through :class:`ChatListener` and only
draw. Every backend (local engine, remote, a server) is driven through here, so the rules live in one place:

- a request is the whole conversation (the harmony renderer drops finished turns' reasoning itself), each question
  with its attached files (so a regenerate, an edit or a reopened chat sends them again), the chat's developer
  instructions, and the effort and sampling that travel with the :class:`SendRequest`;
- the stream is sorted into reasoning, tool-call and answer text; the answer's clock starts after ``wait_ready``
  (a first-run kernel build is neither thinking time nor time to the first token);
- turn ``i`` is stored as its question at position ``2i`` and its answer at ``2i + 1`` (:func:`stored_turn`);
- a chat answer runs the model's tool calls (:meth:`ChatSession._answer_rounds`): each call is approved by its
  tool's policy (the listener asks the user for "ask"), run, and its result sent back with the turn's reasoning so
  far; the model then goes on, up to a cap of calls per answer. Stop cancels a running tool. Errors, refusals and
  timeouts are results the model reads, never the end of the answer. The thinking budget is the answer's: each
  round after a call may think only what the earlier rounds left of it;
- an answer is saved every few seconds while it streams (:class:`~gpt_oss_desktop.app.chat.answer_saver.AnswerSaver`),
  then in full with its statistics, marked stopped or failed by its finish reason; a failed write is reported to
  the listener and the chat goes on unsaved (losing history must not stop it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gpt_oss_desktop.app.backends.chat_backend import ChatBackend, ChatRequest, RequestError
from gpt_oss_desktop.app.chat import comparison_record
from gpt_oss_desktop.app.chat.answer_saver import AnswerSaver
from gpt_oss_desktop.app.chat.conversation import Conversation, Turn
from gpt_oss_desktop.app.chat.stats import AnswerStats
from gpt_oss_desktop.app.chat.tool_access import ToolAccess
from gpt_oss_desktop.app.chat.tool_calls import (
    MAX_TOOL_CALLS,
    Approval,
    CallState,
    ToolCallRecord,
    merge_rounds,
    thinking_left,
)
from gpt_oss_desktop.app.history import (
    Attachment,
    Chat,
    ChatNotFoundError,
    ChatStore,
    HistoryError,
    Message,
    title_from_prompt,
)
from gpt_oss_desktop.app.history.versions import Versions
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.tools.toolbox import Toolbox

logger = logging.getLogger(__name__)

WaitReady = Callable[[], Awaitable[None]]
"""Awaited before an answer's clock starts (e.g. a first-run CPU kernel build)."""


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A question to send (its text and attached files), with the effort and sampling to answer it at."""

    prompt: str
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    sampling: SamplingParams = field(default_factory=SamplingParams)
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not self.prompt.strip() and not self.attachments:
            raise ValueError("a message needs some text or an attached file")


@dataclass(frozen=True, slots=True)
class CompareRequest:
    """One prompt (its text and attached files) answered at several efforts as one batch (an effort comparison)."""

    prompt: str
    efforts: tuple[ReasoningEffort, ...] = tuple(ReasoningEffort)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not self.prompt.strip() and not self.attachments:
            raise ValueError("a comparison needs a prompt or an attached file")
        if not self.efforts:
            raise ValueError("a comparison needs at least one effort")


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """The store positions of one turn's question and answer."""

    user: int
    answer: int


def stored_turn(turn_index: int) -> StoredTurn:
    """Turn ``i`` is stored as its question at ``2i`` and its answer at ``2i + 1``, so a regenerate or an edit can
    drop the old answer (and what follows) by position."""
    if turn_index < 0:
        raise ValueError(f"turn index must not be negative, got {turn_index}")
    return StoredTurn(2 * turn_index, 2 * turn_index + 1)


def question_title(text: str, attachments: Sequence[Attachment] = ()) -> str:
    """A chat's title from its first question: its text, or for files sent alone the first file's name."""
    if not text.strip() and attachments:
        return title_from_prompt(attachments[0].name)
    return title_from_prompt(text)


def saved_effort(record: Message) -> ReasoningEffort:
    """The effort a saved answer was generated at (medium for rows that do not say)."""
    return ReasoningEffort(record.effort) if record.effort else ReasoningEffort.MEDIUM


def _take_answer(turn: Turn, record: Message) -> Turn:
    turn.reasoning, turn.answer, turn.effort = record.analysis, record.text, saved_effort(record)
    turn.tool_calls = [ToolCallRecord.from_record(call) for call in record.tool_calls]
    return turn


class LiveAnswer:
    """One answer being generated: its text so far (kept by its saver), its times and, once it ended, its Done and
    statistics. ``index`` is its column in a comparison (0 in a chat)."""

    def __init__(self, index: int, effort: ReasoningEffort, saver: AnswerSaver) -> None:
        self.index = index
        self.effort = effort
        self.saver = saver
        self.first_answer_seconds: float | None = None  # from the request's start to the first answer text
        self.total_seconds: float | None = None
        self.done: Done | None = None
        self.stats: AnswerStats | None = None
        self.tool_calls: list[ToolCallRecord] = []  # a chat answer's: the same list as its turn's
        self.runs_tools = False  # a chat answer runs its tool loop; a comparison's answers do not

    @property
    def reasoning(self) -> str:
        """Reasoning and tool-call text, as sent to the history's ``analysis``."""
        return self.saver.reasoning

    @property
    def answer(self) -> str:
        return self.saver.answer


class ChatListener:
    """What a session tells its observers; every method does nothing unless overridden. Called on the thread that
    runs the session's event loop (the GUI thread in the app)."""

    def busy_changed(self, running: bool) -> None:
        """An answer (or a comparison) started or ended."""

    def answer_started(self, answer: LiveAnswer) -> None:
        """An answer is about to be requested (before any wait for the backend to be ready)."""

    def reasoning_added(self, answer: LiveAnswer, text: str) -> None: ...

    def tool_call_added(self, answer: LiveAnswer, text: str, recipient: str) -> None:
        """Text of a tool call the model is writing (in a chat, where calls are run, it is not reasoning)."""

    def tool_call_updated(self, answer: LiveAnswer, call: ToolCallRecord) -> None:
        """A call was made, is waiting for approval, runs, or ended (``call.state``, then ``call.status``)."""

    async def approve_tool_call(self, answer: LiveAnswer, call: ToolCallRecord) -> Approval:
        """Ask the user whether ``call`` may run (its tool's policy is "ask"). Without anyone to ask: no."""
        return Approval.DENY

    def answer_added(self, answer: LiveAnswer, text: str) -> None:
        """New answer text; ``answer.first_answer_seconds`` is set from the first one on."""

    def request_failed(self, error: str) -> None:
        """The request could not run at all (no answer will finish)."""

    def answer_finished(self, answer: LiveAnswer) -> None:
        """An answer ended (finished, stopped or failed): ``done``, ``stats`` and ``total_seconds`` are set."""

    def answer_saved(self, answer: LiveAnswer, record: Message) -> None:
        """An ended answer was written to the store in full."""

    def chat_saved(self, chat_id: int) -> None:
        """A question was saved (the chat is created with its first one), or a comparison was created."""

    def history_failed(self, what: str, error: HistoryError) -> None:
        """A write to the store failed; the session goes on unsaved."""

    def run_finished(self, answers: tuple[LiveAnswer, ...]) -> None:
        """Everything started by one send, regenerate or comparison has ended."""


class ChatSession:
    """One conversation: its turns, its saved chat (``chat_id``, None until its first question is saved), its
    instructions, and at most one running answer (or comparison).

    Args:
        backend: where answers come from.
        store: the history (None: nothing is kept).
        listener: told what happens (a do-nothing listener if None).
        wait_ready: awaited before each answer's clock starts.
        tools: the tools a chat answer may call, and their policies (None: no tools are offered; a call the model
            makes anyway is answered "no tools are available").
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        store: ChatStore | None = None,
        listener: ChatListener | None = None,
        wait_ready: WaitReady | None = None,
        tools: ToolAccess | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.listener = listener or ChatListener()
        self.conversation = Conversation()
        self.chat_id: int | None = None
        self.instructions = ""  # harmony's developer message
        self.comparison: Chat | None = None  # the comparison this session ran or shows, in memory
        self._wait_ready = wait_ready
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = False  # Stop came before the backend stream started (see stop())
        self._streaming = False  # this session's backend stream has delivered its first event
        self._answers: tuple[LiveAnswer, ...] = ()
        self._detached = False
        self.tools = tools
        self._tool_task: asyncio.Task[None] | None = None
        self._tools_stopped = False  # Stop (or a detach) came: no further tool call or round

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def detached(self) -> bool:
        """Left by its view while an answer ran: that answer was stopped and only saves itself from then on."""
        return self._detached

    def build_request(self, effort: ReasoningEffort, sampling: SamplingParams) -> ChatRequest:
        """The request that answers the last turn: every turn before it, reasoning included (the harmony renderer
        drops finished turns' reasoning), and the chat's instructions."""
        return ChatRequest(
            messages=self.conversation.request_messages(),
            effort=effort,
            params=sampling,
            instructions=self.instructions or None,
        )

    def restore(self, thread: Sequence[Message]) -> list[tuple[Turn, Message | None]]:
        """Fill the conversation from a saved thread (question, answer, question, ...); each turn with its saved
        answer, if any, for the view to draw."""
        shown: list[tuple[Turn, Message | None]] = []
        for record in thread:
            if record.role == "user":
                shown.append((self.conversation.add_user(record.text, record.attachments), None))
            elif record.role == "assistant" and shown:
                shown[-1] = (_take_answer(shown[-1][0], record), record)
        return shown

    def add_context(self, turns: Sequence[Turn]) -> None:
        """Start from copies of another conversation's turns (a comparison asked with a chat as context)."""
        self.conversation.turns.extend(replace(turn) for turn in turns)

    def accept_saved_answer(self, record: Message) -> Turn | None:
        """The last turn takes ``record`` as its answer if that is where it is stored (an answer that was stopped
        by leaving this chat and ended after the chat was opened again); the turn, or None if it is not."""
        turn = self.conversation.last
        if turn is None or record.chat_id != self.chat_id:
            return None
        if stored_turn(len(self.conversation.turns) - 1).answer != record.position:
            return None
        return _take_answer(turn, record)

    def set_instructions(self, text: str) -> None:
        """Developer instructions from the next answer on; saved with the chat."""
        self.instructions = text.strip()
        if self.store is not None and self.chat_id is not None:
            try:
                self.store.update_chat(self.chat_id, developer_instructions=self.instructions)
            except HistoryError as exc:
                self.listener.history_failed("Could not save the instructions", exc)

    def open_comparison(self, chat: Chat) -> None:
        """Show a saved comparison (no conversation to continue: a column is continued as a new chat)."""
        self.comparison = chat
        self.chat_id = chat.id or None

    # -- chat -----------------------------------------------------------------------------------------------------

    def send(self, request: SendRequest, *, edit_turn: int | None = None) -> asyncio.Task[None] | None:
        """Add a question and start answering it; None while an answer runs.

        With ``edit_turn`` the question is an edit of that turn's question: the conversation goes on from there, and
        in the store that turn and every later one become an earlier version (nothing is deleted; see
        :meth:`show_version`)."""
        if self.running:
            return None
        replaced = None
        if edit_turn is not None and 0 <= edit_turn < len(self.conversation.turns):
            replaced = self.conversation.turns[edit_turn]
            del self.conversation.turns[edit_turn:]
        self.conversation.add_user(request.prompt, request.attachments)
        self._save_question(request.prompt, request.attachments, replaces=replaced)
        return self._start_answer(request.effort, request.sampling)

    def regenerate(self, effort: ReasoningEffort, sampling: SamplingParams) -> asyncio.Task[None] | None:
        """Answer the last turn again at ``effort``; the answer it had becomes an earlier version. None while busy
        or with no turn."""
        turn = self.conversation.last
        if self.running or turn is None:
            return None
        self._new_version(stored_turn(len(self.conversation.turns) - 1).answer)
        turn.reasoning = turn.answer = ""
        turn.effort = None
        turn.tool_calls = []
        return self._start_answer(effort, sampling)

    def versions(self) -> dict[int, Versions]:
        """The stored positions of this chat's thread that have other versions (none without a store)."""
        if self.store is None or self.chat_id is None:
            return {}
        try:
            return self.store.versions(self.chat_id)
        except HistoryError as exc:
            self.listener.history_failed("Could not read the chat's versions", exc)
            return {}

    def show_version(self, position: int, index: int) -> tuple[Message, ...] | None:
        """Make version ``index`` at stored ``position`` the chat's thread (the one shown until now stays a version);
        the conversation is rebuilt from it, and the thread is returned for the view to draw. None while busy, or
        if it could not be read."""
        if self.running or self.store is None or self.chat_id is None:
            return None
        try:
            chat = self.store.show_version(self.chat_id, position, index)
        except HistoryError as exc:
            self.listener.history_failed("Could not switch to that version", exc)
            return None
        self.conversation.clear()
        return chat.thread()

    def stop(self) -> None:
        """Stop the running answer (or comparison) after the current token; what it has is kept."""
        if self.running:
            # Asked before the engine started this answer (it may still wait for the kernel build, or not have
            # reached the backend yet): the backend has nothing to cancel, so _run cancels at its first event.
            # backend.cancel() acts on whichever stream runs now, so only a stop before this session's stream
            # began is remembered (never one that could reach another session's stream later).
            self._stop_requested = not self._streaming
            self.backend.cancel()
            self._stop_tools()

    def detach(self) -> asyncio.Task[None] | None:
        """The view leaves this session while it answers: stop the answer and write what has arrived now (kept even
        if the app dies before the answer ends); it then saves itself into its own chat, marked stopped. The task
        that ends it, or None if nothing was running."""
        if not self.running:
            return None
        self._detached = True
        self.backend.cancel()
        self._stop_tools()
        for answer in self._answers:
            self._save_progress(answer.saver, force=True)
        return self._task

    def _start_answer(self, effort: ReasoningEffort, sampling: SamplingParams) -> asyncio.Task[None]:
        turn = self.conversation.last
        assert turn is not None
        request = self.build_request(effort, sampling)
        position = stored_turn(len(self.conversation.turns) - 1).answer
        answer = LiveAnswer(0, effort, AnswerSaver(self.store, self.chat_id, position, effort.value))
        answer.tool_calls = answer.saver.tool_calls = turn.tool_calls
        answer.runs_tools = True
        self._answers = (answer,)
        self._tools_stopped = False
        self.listener.answer_started(answer)
        self._task = asyncio.ensure_future(
            self._run(self._answer_rounds(request, answer), (answer,), lambda ended: self._finish_turn(turn, ended))
        )
        self.listener.busy_changed(True)
        return self._task

    async def _answer_rounds(
        self, request: ChatRequest, answer: LiveAnswer
    ) -> AsyncGenerator[tuple[int, Delta | Done], None]:
        """A chat answer's stream, as answer 0 of a batch of one, with its tool loop.

        Each round streams the model until it stops; a round that stops on a tool call (``<|call|>``) gets the call
        approved and run, and the next round is asked with the call and its result appended (the turn's reasoning
        is kept until the final answer), with what is left of the thinking budget (:func:`thinking_left`). The
        rounds' Dones become one (:func:`merge_rounds`), yielded last.
        """
        toolbox = self.tools.toolbox() if self.tools is not None else None
        max_calls = self.tools.max_calls if self.tools is not None else MAX_TOOL_CALLS
        if toolbox:
            request = replace(
                request,
                tools=toolbox.function_specs,
                python_tool=toolbox.python_tool,
                browser_tool=toolbox.browser_tool,
            )
        budget = request.params.reasoning_budget
        rounds: list[Done] = []
        stopped = False
        while not (rounds and self._tools_stopped):
            done: Done | None = None
            messages = request.messages + tuple(m for call in answer.tool_calls for m in call.messages())
            params = replace(request.params, reasoning_budget=thinking_left(budget, rounds))
            round_request = replace(request, messages=messages, params=params)
            async with contextlib.aclosing(self.backend.stream(round_request)) as events:
                async for event in events:
                    if isinstance(event, Done):
                        done = event
                    else:
                        yield 0, event
            if done is None:  # every backend ends a stream with a Done; nothing to add to if one did not
                return
            rounds.append(done)
            call = ToolCallRecord.from_done(done)
            if call is None or self._tools_stopped:
                break
            answer.tool_calls.append(call)
            if len(answer.tool_calls) > max_calls + 1:
                # It was told the limit was reached and called again: it will not stop by itself.
                call.finish(ToolOutcome(ToolStatus.DENIED, "Error: tool call limit reached."), "limit")
                self.listener.tool_call_updated(answer, call)
                rounds[-1] = replace(done, error=f"Stopped after {max_calls} tool calls (the limit for one answer).")
                break
            self._tool_task = asyncio.ensure_future(self._call_tool(toolbox, call, answer, max_calls))
            try:
                await self._tool_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this answer's own task is being cancelled, not just the tool
                call.finish(ToolOutcome(ToolStatus.CANCELLED, "The user stopped this call."), call.approval)
                self.listener.tool_call_updated(answer, call)
                stopped = True
                break
            finally:
                self._tool_task = None
            self._save_progress(answer.saver, force=True)
        merged = merge_rounds(rounds)
        if stopped or (self._tools_stopped and merged.finish_reason is FinishReason.STOP and answer.tool_calls):
            merged = replace(merged, finish_reason=FinishReason.CANCELLED)
        yield 0, merged

    async def _call_tool(
        self, toolbox: Toolbox | None, call: ToolCallRecord, answer: LiveAnswer, max_calls: int
    ) -> None:
        """Approve and run one call; its outcome (a refusal included) is written into ``call``."""

        def end(outcome: ToolOutcome, approval: str = "") -> None:
            call.finish(outcome, approval)
            self.listener.tool_call_updated(answer, call)

        if len(answer.tool_calls) > max_calls:
            end(
                ToolOutcome(
                    ToolStatus.DENIED,
                    f"Error: the limit of {max_calls} tool calls for one answer is reached. "
                    "Answer now with what you have.",
                ),
                "limit",
            )
            return
        tool = toolbox.find(call.recipient) if toolbox else None
        if tool is None:
            if toolbox:
                end(toolbox.unknown(call.recipient))
            else:
                end(ToolOutcome(ToolStatus.UNKNOWN_TOOL, "Error: no tools are available here. Answer without them."))
            return
        assert toolbox is not None and self.tools is not None  # a tool was found, so there is a toolbox
        policy = self.tools.policy(tool.recipient)
        approval = "always"
        if policy is ToolPolicy.NEVER:
            end(ToolOutcome(ToolStatus.DENIED, "Error: the user does not allow this tool. Answer without it."), "never")
            return
        if policy is ToolPolicy.ASK:
            describe = getattr(tool, "describe", None)  # tools that can say what a call would do (the browser)
            call.question = describe(call.arguments) if callable(describe) else ""
            call.state = CallState.WAITING
            self.listener.tool_call_updated(answer, call)
            decision = await self.listener.approve_tool_call(answer, call)
            if decision is Approval.DENY:
                end(ToolOutcome(ToolStatus.DENIED, "Error: the user declined this call. Answer without it."), "denied")
                return
            if decision is Approval.ALWAYS:
                self.tools.remember(tool.recipient, ToolPolicy.ALWAYS)
            approval = "asked"
        call.approval = approval
        call.state = CallState.RUNNING
        self.listener.tool_call_updated(answer, call)
        end(await toolbox.run(tool.recipient, call.arguments), approval)

    def _stop_tools(self) -> None:
        """No further tool call or round; a call waiting for approval or running is cancelled."""
        self._tools_stopped = True
        if self._tool_task is not None:
            self._tool_task.cancel()

    def _finish_turn(self, turn: Turn, answer: LiveAnswer) -> None:
        assert answer.stats is not None
        turn.reasoning, turn.answer, turn.effort = answer.reasoning, answer.answer, answer.effort
        self.listener.answer_finished(answer)
        self._save_answer(answer, answer.stats.to_record())

    # -- comparison -----------------------------------------------------------------------------------------------

    def compare(self, request: CompareRequest) -> asyncio.Task[None] | None:
        """Answer ``request.prompt`` and its attached files after this session's turns at each effort, as one batch;
        None while busy. Every effort reads the files as a chat's question does (after the typed text).

        With a store, the comparison becomes its own history entry once the engine accepts the batch (the prompt
        saved with its files), and each answer is saved as it streams and in full when it ends."""
        if self.running:
            return None
        context = [replace(turn) for turn in self.conversation.turns]
        self.conversation.add_user(request.prompt, request.attachments)
        requests = [self.build_request(effort, request.sampling) for effort in request.efforts]
        info = self.backend.info
        self.comparison = comparison_record.new_comparison(
            request.prompt,
            context,
            request.efforts,
            request.sampling,
            info.name if info else "",
            attachments=request.attachments,
            title=question_title(request.prompt, request.attachments),
        )
        self.chat_id = None
        position = comparison_record.answer_position(self.comparison)
        self._answers = tuple(
            LiveAnswer(index, effort, AnswerSaver(self.store, None, position, effort.value))
            for index, effort in enumerate(request.efforts)
        )
        answers = self._answers
        for answer in answers:
            self.listener.answer_started(answer)
        self._task = asyncio.ensure_future(
            self._run(
                self.backend.stream_compare(requests),
                self._answers,
                self._finish_column,
                accepted=lambda: self._save_comparison(answers),
            )
        )
        self.listener.busy_changed(True)
        return self._task

    def _finish_column(self, answer: LiveAnswer) -> None:
        assert answer.done is not None and answer.stats is not None
        record = {
            **answer.stats.to_record(),
            "completion_tokens": answer.done.completion_tokens,
            "first_answer_s": answer.first_answer_seconds,
            "total_s": answer.total_seconds,
        }
        if self.comparison is not None:
            self.comparison = comparison_record.with_answer(
                self.comparison, answer.index, answer.answer, answer.reasoning, record
            )
        self.listener.answer_finished(answer)
        self._save_answer(answer, record)

    # -- the stream -----------------------------------------------------------------------------------------------

    async def _run(
        self,
        stream: AsyncGenerator[tuple[int, Delta | Done], None],
        answers: tuple[LiveAnswer, ...],
        on_done: Callable[[LiveAnswer], None],
        *,
        accepted: Callable[[], None] | None = None,
    ) -> None:
        """Consume ``stream`` (``(answer index, event)`` pairs) into ``answers``; ``on_done`` gets each answer as
        it ends, ``accepted`` is called at the first event (the backend took the request)."""
        task = asyncio.current_task()
        try:
            if self._wait_ready is not None:
                await self._wait_ready()
            started = time.perf_counter()  # after any wait: that is not the answer's time
            async with contextlib.aclosing(stream) as events:
                async for index, event in events:
                    self._streaming = True
                    if self._stop_requested:
                        self._stop_requested = False
                        self.backend.cancel()  # this session's stream is the running one now: it ends after this token
                    if accepted is not None:
                        accepted()
                        accepted = None
                    answer = answers[index]
                    if isinstance(event, Done):
                        self._finish(answer, event, started)
                        on_done(answer)
                    else:
                        self._add(answer, event, started)
                        self._save_progress(answer.saver)
        except RequestError as exc:
            self.listener.request_failed(str(exc))
        finally:
            self._stop_requested = self._streaming = False
            self._end(task)
        self.listener.run_finished(answers)

    def _add(self, answer: LiveAnswer, event: Delta, started: float) -> None:
        if event.recipient is not None:  # a tool call, whatever its channel
            if not answer.runs_tools:  # a comparison runs no tools: the call's text is kept as reasoning
                answer.saver.add_reasoning(event.text)
            # A chat runs its calls: each is kept as a call record (its card), not as reasoning.
            self.listener.tool_call_added(answer, event.text, event.recipient)
        elif event.is_reasoning:
            answer.saver.add_reasoning(event.text)
            self.listener.reasoning_added(answer, event.text)
        else:
            # Final answers, user-visible commentary and unlabelled (salvaged) text all read as answer.
            if answer.first_answer_seconds is None:
                answer.first_answer_seconds = time.perf_counter() - started
            answer.saver.add_answer(event.text)
            self.listener.answer_added(answer, event.text)

    @staticmethod
    def _finish(answer: LiveAnswer, done: Done, started: float) -> None:
        answer.done = done
        answer.total_seconds = time.perf_counter() - started
        answer.stats = AnswerStats.from_done(
            done, total_seconds=answer.total_seconds, thinking_seconds=answer.first_answer_seconds
        )
        if answer.tool_calls:
            answer.stats = replace(
                answer.stats,
                tool_calls=len(answer.tool_calls),
                tool_seconds=sum(call.seconds for call in answer.tool_calls),
            )

    def _end(self, task: asyncio.Task[None] | None) -> None:
        if self._task is task:
            self._task = None
            self._answers = ()
            self.listener.busy_changed(False)

    # -- history --------------------------------------------------------------------------------------------------
    #
    # Writes are small single transactions on the loop's thread (milliseconds in WAL mode).

    def _save_question(self, text: str, attachments: tuple[Attachment, ...], *, replaces: Turn | None) -> None:
        """Save the last turn's question with its attached files; ``replaces``: the turn whose question it is an
        edit of (that question and everything after it become an earlier version)."""
        if self.store is None:
            return
        position = stored_turn(len(self.conversation.turns) - 1).user
        try:
            if self.chat_id is None:
                info = self.backend.info
                chat = self.store.create_chat(
                    question_title(text, attachments),
                    model=info.name if info else "",
                    developer_instructions=self.instructions,
                )
                self.chat_id = chat.id
            if replaces is None:
                self.store.add_message(self.chat_id, "user", text, position=position, attachments=attachments)
            else:
                self.store.new_version_from(self.chat_id, position, role="user", text=text, attachments=attachments)
                if position == 0:
                    self._retitle(
                        self.chat_id,
                        question_title(replaces.user, replaces.attachments),
                        question_title(text, attachments),
                    )
        except HistoryError as exc:
            self.listener.history_failed("Could not save the message", exc)
            return
        self.listener.chat_saved(self.chat_id)

    def _retitle(self, chat_id: int, old_title: str, new_title: str) -> None:
        """An edited first question renames its chat, unless the user chose the title."""
        assert self.store is not None
        if self.store.get_chat(chat_id).title == old_title:
            self.store.rename_chat(chat_id, new_title)

    def _new_version(self, position: int) -> None:
        """The stored messages from ``position`` on become an earlier version (an answer being regenerated)."""
        if self.store is None or self.chat_id is None:
            return
        try:
            self.store.new_version_from(self.chat_id, position)
        except HistoryError as exc:
            self.listener.history_failed("Could not update the saved chat", exc)

    def _save_comparison(self, answers: tuple[LiveAnswer, ...]) -> None:
        record = self.comparison
        if self.store is None or record is None:
            return
        try:
            saved = self.store.create_comparison(
                comparison_record.prompt_of(record),
                [answer.effort.value for answer in answers],
                attachments=comparison_record.prompt_attachments_of(record),
                context=comparison_record.context_of(record),
                title=record.title,
                model=record.model,
                sampling=record.sampling,
                meta=record.meta,
            )
        except HistoryError as exc:
            self.listener.history_failed("Could not save the comparison", exc)
            return
        self.chat_id = saved.id
        for answer, row in zip(answers, comparison_record.answers_of(saved), strict=False):
            answer.saver.adopt(saved.id, row.id)
        self.listener.chat_saved(saved.id)

    def _save_progress(self, saver: AnswerSaver, *, force: bool = False) -> None:
        try:
            saver.save_progress(force=force)
        except HistoryError as exc:
            self.listener.history_failed("Could not save the answer so far", exc)

    def _save_answer(self, answer: LiveAnswer, stats: dict[str, Any]) -> None:
        try:
            record = answer.saver.finish(stats)
        except HistoryError as exc:
            if self._detached and isinstance(exc, ChatNotFoundError):
                # The user came back and regenerated it (or the chat was purged) before it ended: nothing to keep.
                logger.info("a stopped answer's saved copy was replaced before it ended")
                return
            self.listener.history_failed("Could not save the answer", exc)
            return
        if record is not None:
            self.listener.answer_saved(answer, record)
