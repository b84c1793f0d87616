"""A chat answer's tool loop without any GUI: the real engine thread over the ScriptedModel test double, a real
toolbox (the built-in functions and small tools written here), approval by policy, Stop, the call cap, the thinking
budget counted over the whole answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path

import pytest

from gpt_oss_desktop.app.backends.chat_backend import ChatRequest
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_session import ChatListener, ChatSession, LiveAnswer, SendRequest
from gpt_oss_desktop.app.chat.tool_access import ToolAccess
from gpt_oss_desktop.app.chat.tool_calls import Approval, CallState, ToolCallRecord, merge_rounds, thinking_left
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import FunctionTool, render_prompt
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply, harmony_tool_call
from gpt_oss_desktop.engine.tools.base import ToolOutcome, ToolPolicy, ToolStatus
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from gpt_oss_desktop.engine.tools.toolbox import Toolbox
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, END, MESSAGE, RETURN, START, get_encoding

GREEDY = SamplingParams(temperature=0.0)
CONVERT_CALL = harmony_tool_call(
    "Convert with the tool.", "functions.convert_units", '{"value": 5, "from_unit": "km", "to_unit": "mi"}'
)
ANSWER = harmony_reply("The tool said 3.106856.", "5 km is 3.106856 mi.")


@pytest.fixture(scope="module", autouse=True)
def gui_thread_gc() -> None:
    """Nothing here is Qt (replaces tests/app/conftest.py's fixture of that name)."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


class Approver(ChatListener):
    """Answers every approval with ``decision`` (after ``delay`` seconds) and records the calls' states."""

    def __init__(self, decision: Approval = Approval.ONCE, delay: float = 0.0) -> None:
        self.decision = decision
        self.delay = delay
        self.asked: list[str] = []
        self.states: list[tuple[str, str]] = []
        self.finished: list[LiveAnswer] = []

    def tool_call_updated(self, answer: LiveAnswer, call: ToolCallRecord) -> None:
        self.states.append((call.name, call.state.value if call.status is None else call.status.value))

    async def approve_tool_call(self, answer: LiveAnswer, call: ToolCallRecord) -> Approval:
        self.asked.append(call.arguments)
        await asyncio.sleep(self.delay)
        return self.decision

    def answer_finished(self, answer: LiveAnswer) -> None:
        self.finished.append(answer)


class Policies:
    def __init__(self, **policies: ToolPolicy) -> None:
        self.policies = dict(policies)

    def policy(self, recipient: str) -> ToolPolicy:
        return self.policies.get(recipient.removeprefix("functions."), ToolPolicy.ASK)

    def remember(self, recipient: str, policy: ToolPolicy) -> None:
        self.policies[recipient.removeprefix("functions.")] = policy


class SlowTool:
    """A tool that runs until cancelled, and says whether it was."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    @property
    def recipient(self) -> str:
        return "functions.slow"

    @property
    def spec(self) -> FunctionTool:
        return FunctionTool("slow", "Takes forever.", {"type": "object", "properties": {}})

    async def run(self, arguments: str) -> ToolOutcome:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolOutcome(ToolStatus.OK, "done")


def session_for(
    model: ScriptedModel,
    tools: list[object],
    policies: Policies,
    listener: ChatListener,
    store: ChatStore | None = None,
    *,
    json_arguments: bool = True,
) -> tuple[LocalEngine, ChatSession]:
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=4096, json_arguments=json_arguments)
    toolbox = Toolbox(tools)  # type: ignore[arg-type]
    access = ToolAccess(toolbox=lambda: toolbox, policy=policies.policy, remember=policies.remember)
    return backend, ChatSession(backend, store=store, listener=listener, tools=access)


def run(backend: LocalEngine, body: object) -> None:
    async def main() -> None:
        await backend.load("scripted")
        await body()  # type: ignore[operator]

    try:
        asyncio.run(asyncio.wait_for(main(), 30.0))
    finally:
        backend.close()


def prompt_text(model: ScriptedModel, index: int) -> str:
    return get_encoding().decode(model.prompts[index])


def test_a_call_is_run_and_the_answer_uses_its_result_with_the_reasoning_kept(store: ChatStore) -> None:
    model = ScriptedModel.tool_loop(CONVERT_CALL, ANSWER)
    listener = Approver()
    backend, session = session_for(
        model, list(BUILTIN_FUNCTIONS), Policies(convert_units=ToolPolicy.ALWAYS), listener, store
    )

    async def body() -> None:
        task = session.send(SendRequest("How many miles is 5 km?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    assert listener.asked == []  # "always": no question
    assert listener.states == [("convert_units", "running"), ("convert_units", "ok")]
    answer = listener.finished[0]
    assert answer.answer == "5 km is 3.106856 mi." and answer.done is not None
    assert answer.done.finish_reason is FinishReason.STOP
    # the second round's prompt: the functions offered, the round's reasoning, the call, the real result
    second = prompt_text(model, 1)
    assert "namespace functions" in second and "type convert_units" in second
    assert "<|channel|>analysis<|message|>Convert with the tool.<|end|>" in second
    assert (
        "<|start|>functions.convert_units to=assistant<|channel|>commentary"
        '<|message|>{"value": 3.106856, "unit": "mi"}<|end|>' in second
    )
    call = session.conversation.turns[0].tool_calls[0]
    assert call.status is ToolStatus.OK and call.approval == "always"
    assert answer.stats is not None and answer.stats.tool_calls == 1
    # counts add up over both rounds: the call's tokens are "other", both rounds' reasoning is reasoning
    assert answer.done.completion_tokens == len(CONVERT_CALL) + len(ANSWER)
    # the next turn's prompt keeps the call and its result but drops the finished turn's reasoning
    session.conversation.add_user("And 10 km?")
    following = get_encoding().decode(render_prompt(session.conversation.request_messages(), current_date=None))
    assert "Convert with the tool." not in following and "The tool said" not in following
    assert "to=functions.convert_units" in following and '{"value": 3.106856, "unit": "mi"}' in following


def test_ask_policy_asks_and_a_refusal_goes_back_to_the_model() -> None:
    model = ScriptedModel.tool_loop(CONVERT_CALL, ANSWER)
    listener = Approver(Approval.DENY)
    backend, session = session_for(model, list(BUILTIN_FUNCTIONS), Policies(), listener)

    async def body() -> None:
        task = session.send(SendRequest("5 km in miles?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    assert listener.asked == ['{"value": 5, "from_unit": "km", "to_unit": "mi"}']
    assert listener.states == [("convert_units", "waiting"), ("convert_units", "denied")]
    assert "the user declined this call" in prompt_text(model, 1)


def test_always_allow_is_remembered_for_the_next_call() -> None:
    model = ScriptedModel.tool_loop(CONVERT_CALL, ANSWER)
    listener = Approver(Approval.ALWAYS)
    policies = Policies()
    backend, session = session_for(model, list(BUILTIN_FUNCTIONS), policies, listener)

    async def body() -> None:
        for question in ("5 km in miles?", "and again?"):
            task = session.send(SendRequest(question, sampling=GREEDY))
            assert task is not None
            await task

    run(backend, body)
    assert len(listener.asked) == 1 and policies.policies["convert_units"] is ToolPolicy.ALWAYS


def test_never_policy_refuses_without_asking() -> None:
    model = ScriptedModel.tool_loop(CONVERT_CALL, ANSWER)
    listener = Approver()
    backend, session = session_for(model, list(BUILTIN_FUNCTIONS), Policies(convert_units=ToolPolicy.NEVER), listener)

    async def body() -> None:
        task = session.send(SendRequest("5 km in miles?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    assert listener.asked == [] and listener.states == [("convert_units", "denied")]
    assert "does not allow this tool" in prompt_text(model, 1)


@pytest.mark.parametrize(
    ("recipient", "arguments", "expected"),
    [
        ("functions.no_such_tool", "{}", "there is no tool named 'functions.no_such_tool'"),
        ("functions.convert_units", '{"value": 5, "from_unit": "km"', "not valid JSON"),
        ("functions.convert_units", '{"value": 5, "from_unit": "k\\"m", "to_unit": "mi"}', "unknown unit 'k\"m'"),
    ],
)
def test_unknown_tools_and_bad_arguments_are_results_for_the_model(
    recipient: str, arguments: str, expected: str
) -> None:
    model = ScriptedModel.tool_loop(harmony_tool_call("Try it.", recipient, arguments), ANSWER)
    listener = Approver()
    # A local model's arguments are held to JSON; malformed ones still come from servers that do not hold them,
    # which the engine stands in for here with that off.
    policies = Policies(convert_units=ToolPolicy.ALWAYS)
    backend, session = session_for(model, list(BUILTIN_FUNCTIONS), policies, listener, json_arguments=False)

    async def body() -> None:
        task = session.send(SendRequest("convert", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    assert expected in prompt_text(model, 1)
    assert listener.finished[0].answer == "5 km is 3.106856 mi."  # the answer went on


def test_a_model_that_keeps_calling_is_stopped_at_the_cap() -> None:
    model = ScriptedModel([CONVERT_CALL])  # calls on every round
    listener = Approver()
    backend, session = session_for(model, list(BUILTIN_FUNCTIONS), Policies(convert_units=ToolPolicy.ALWAYS), listener)
    session.tools = ToolAccess(session.tools.toolbox, session.tools.policy, session.tools.remember, max_calls=3)  # type: ignore[union-attr]

    async def body() -> None:
        task = session.send(SendRequest("loop", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    statuses = [status for _name, status in listener.states if status not in ("running",)]
    assert statuses == ["ok", "ok", "ok", "denied", "denied"]
    assert "limit of 3 tool calls" in prompt_text(model, 4)
    done = listener.finished[0].done
    assert done is not None and done.error is not None and "Stopped after 3 tool calls" in done.error


@pytest.mark.parametrize("while_", ["running", "waiting"])
def test_stop_cancels_a_running_or_waiting_tool(while_: str) -> None:
    slow = SlowTool()
    model = ScriptedModel.tool_loop(harmony_tool_call("Wait for it.", "functions.slow", "{}"), ANSWER)
    listener = Approver(delay=60.0)
    policy = ToolPolicy.ALWAYS if while_ == "running" else ToolPolicy.ASK
    backend, session = session_for(model, [slow], Policies(slow=policy), listener)

    async def body() -> None:
        task = session.send(SendRequest("slow", sampling=GREEDY))
        assert task is not None
        if while_ == "running":
            await asyncio.wait_for(slow.started.wait(), 10)
        else:
            while not listener.asked:
                await asyncio.sleep(0.01)
        session.stop()
        await task

    run(backend, body)
    assert slow.cancelled is (while_ == "running")
    assert listener.states[-1] == ("slow", "cancelled")
    done = listener.finished[0].done
    assert done is not None and done.finish_reason is FinishReason.CANCELLED
    assert len(model.prompts) == 1  # no round after the stop


def test_without_tools_a_call_is_answered_no_tools_and_the_answer_goes_on() -> None:
    model = ScriptedModel.tool_loop(CONVERT_CALL, ANSWER)
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=4096)
    listener = Approver()
    session = ChatSession(backend, listener=listener)

    async def body() -> None:
        task = session.send(SendRequest("5 km in miles?", sampling=GREEDY))
        assert task is not None
        await task

    run(backend, body)
    assert "no tools are available" in prompt_text(model, 1)
    assert "namespace functions" not in prompt_text(model, 0)
    assert listener.finished[0].answer == "5 km is 3.106856 mi."


def test_a_call_record_round_trips_through_its_json() -> None:
    call = ToolCallRecord("python", "print('`\\n')", channel="analysis", content_type="code", reasoning="r")
    call.finish(ToolOutcome(ToolStatus.OK, "x\n", seconds=0.25), "asked")
    back = ToolCallRecord.from_record(json.loads(json.dumps(call.to_record())))
    assert back == call
    assert [m.role.value for m in back.messages()] == ["assistant", "assistant", "tool"]
    assert ToolCallRecord.from_record({"status": "weird", "seconds": "x"}).status is ToolStatus.ERROR
    assert CallState.DONE is back.state


# -- the thinking budget over the rounds of one answer ---------------------------------------------------------------

LONG_THOUGHT = get_encoding().encode(" ".join(["Let me check the units once more."] * 6))
FINAL_TEXT = "5 km is 3.106856 mi."


def _after_thinking(thought: Sequence[int], rest: Sequence[int]) -> list[int]:
    enc = get_encoding()
    return [CHANNEL, *enc.encode("analysis"), MESSAGE, *thought, END, START, *enc.encode("assistant"), *rest]


def _round(thought: Sequence[int], rest: Sequence[int]) -> list[list[int]]:
    """A round that would think ``thought`` through, then write ``rest``; held to a budget, it writes ``rest`` after
    any part of the thought, or without thinking. (Second: the preference falls 10 per script that still matches,
    and thinking not at all must outrank the tokens nobody votes for.)"""
    return [
        _after_thinking(thought, rest),
        list(rest),
        *(_after_thinking(thought[:n], rest) for n in range(len(thought))),
    ]


def _thinker(first_thought: Sequence[int]) -> ScriptedModel:
    """A model that calls convert_units twice and then answers, thinking ``first_thought`` before the first call and
    LONG_THOUGHT before the second call and before the answer."""
    enc = get_encoding()
    header = enc.encode("commentary to=functions.convert_units <|constrain|>json", allowed_special="all")
    call = [CHANNEL, *header, MESSAGE, *enc.encode('{"value": 5, "from_unit": "km", "to_unit": "mi"}'), CALL]
    answer = [CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(FINAL_TEXT), RETURN]

    def results_so_far(prompt: Sequence[int]) -> int:  # the round: how many tool results its prompt holds
        return min(2, enc.decode(list(prompt)).count(" to=assistant<|channel|>"))

    groups = [_round(first_thought, call), _round(LONG_THOUGHT, call), _round(LONG_THOUGHT, answer)]
    return ScriptedModel.preferring_by_prompt(groups, results_so_far)


def _analysis_tokens(thought: Sequence[int]) -> int:
    """An analysis message's reasoning tokens as Done counts them: its header and <|end|> as well as the thought."""
    return len(_after_thinking(thought, [])) - 1 - len(get_encoding().encode("assistant"))  # less <|start|>assistant


class BudgetsSent(LocalEngine):
    """The local engine, noting the thinking budget each request (each round of the tool loop) was sent with."""

    def __init__(self, model: ScriptedModel) -> None:
        super().__init__(loader=lambda _ref, _progress: model, max_context=4096)
        self.budgets: list[int | None] = []

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Delta | Done, None]:
        self.budgets.append(request.params.reasoning_budget)
        async with contextlib.aclosing(super().stream(request)) as events:
            async for event in events:
                yield event


def _answer_with_budget(
    model: ScriptedModel, budget: int | None, store: ChatStore | None = None
) -> tuple[LiveAnswer, list[int | None], ChatSession]:
    backend = BudgetsSent(model)
    listener = Approver()
    toolbox = Toolbox(BUILTIN_FUNCTIONS)
    policies = Policies(convert_units=ToolPolicy.ALWAYS)
    access = ToolAccess(toolbox=lambda: toolbox, policy=policies.policy, remember=policies.remember)
    session = ChatSession(backend, store=store, listener=listener, tools=access)
    sampling = SamplingParams(temperature=0.0, reasoning_budget=budget)

    async def body() -> None:
        task = session.send(SendRequest("How many miles is 5 km? Check twice.", sampling=sampling))
        assert task is not None
        await task

    run(backend, body)
    assert [status for _name, status in listener.states] == ["running", "ok", "running", "ok"]
    (answer,) = listener.finished
    assert answer.answer == FINAL_TEXT and answer.done is not None
    assert answer.done.finish_reason is FinishReason.STOP
    return answer, backend.budgets, session


def test_the_thinking_budget_counts_for_the_whole_answer_not_each_round(store: ChatStore) -> None:
    text = get_encoding().decode
    # Unlimited, the model thinks LONG_THOUGHT in each of the three rounds.
    free, budgets, _ = _answer_with_budget(_thinker(LONG_THOUGHT), None)
    assert budgets == [None, None, None]
    assert free.reasoning == text(LONG_THOUGHT) * 3
    assert free.done is not None and free.done.reasoning_tokens == 3 * _analysis_tokens(LONG_THOUGHT)
    assert free.stats is not None and not free.stats.reasoning_cut

    budget = 12
    cut, budgets, session = _answer_with_budget(_thinker(LONG_THOUGHT), budget, store)
    # The first round spent the budget: the rounds after each call were sent none of it and did not think.
    assert budgets == [budget, 0, 0]
    assert cut.reasoning == text(LONG_THOUGHT[:budget])  # not budget tokens per round
    assert cut.done is not None and cut.done.reasoning_tokens == _analysis_tokens(LONG_THOUGHT[:budget])
    assert cut.done.reasoning_cut and cut.stats is not None and cut.stats.reasoning_cut
    assert session.chat_id is not None
    saved = store.get_chat(session.chat_id).thread()[-1]
    assert saved.stats["reasoning_cut"] is True and saved.stats["reasoning_tokens"] == cut.done.reasoning_tokens


def test_a_round_after_a_call_thinks_what_the_earlier_rounds_left() -> None:
    text = get_encoding().decode
    short = get_encoding().encode("Convert it with the tool.")
    budget = 30
    answer, budgets, _ = _answer_with_budget(_thinker(short), budget)
    # The first round thought less than the budget; the second got the rest, and the third nothing.
    left = budget - _analysis_tokens(short)
    assert 0 < left < len(LONG_THOUGHT)
    assert budgets == [budget, left, 0]
    assert answer.reasoning == text(short) + text(LONG_THOUGHT[:left])
    # Counted as the stats line counts them (each analysis message's header too), the answer's reasoning is the
    # budget and the header of the message the budget cut.
    assert answer.done is not None and answer.done.reasoning_tokens == budget + _analysis_tokens([])
    assert answer.done.reasoning_cut


def test_thinking_left_and_a_cut_in_any_round() -> None:
    thought = Done(FinishReason.STOP, reasoning_tokens=7)
    assert thinking_left(None, [thought]) is None
    assert thinking_left(10, []) == 10
    assert thinking_left(10, [thought]) == 3
    assert thinking_left(10, [thought, thought]) == 0  # never below 0
    cut_first = merge_rounds([Done(FinishReason.STOP, reasoning_tokens=5, reasoning_cut=True), thought])
    assert cut_first.reasoning_cut and cut_first.reasoning_tokens == 12
    assert not merge_rounds([thought, thought]).reasoning_cut
