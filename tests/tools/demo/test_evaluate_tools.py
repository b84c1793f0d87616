"""The tool evaluation's loop and its call checks, with a scripted model and a swapped python executor."""

from __future__ import annotations

import pytest
from openai_harmony import Message, Role

from gpt_oss_desktop.engine.events import FINAL, Done, FinishReason
from gpt_oss_desktop.engine.harmony import JSON_CONTENT_TYPE, PYTHON_CONTENT_TYPE, ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.vocab import CALL, RETURN
from tools.demo.evaluate_tools import Episode, call_is_well_formed, run_loop, run_python_subprocess, summarize
from tools.demo.tool_data import APP_DEFAULT, NO_TOOLS


def _call(recipient: str, text: str, channel: str = "commentary", content_type: str = JSON_CONTENT_TYPE) -> Message:
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel).with_recipient(recipient)
    return message.with_content_type(content_type)


@pytest.mark.parametrize(
    ("recipient", "text", "ok"),
    [
        ("functions.convert_units", '{"value": 3, "from_unit": "mi", "to_unit": "km"}', True),
        ("functions.convert_units", '{"value": 3, "from_unit": "mi"}', False),  # a required field is missing
        ("functions.convert_units", '{"value": 3, "from_unit": "mi", "to_unit": "km", "x": 1}', False),
        ("functions.convert_units", '{"value": 3, "from_unit": "mi", "to_unit": "km"', False),  # not JSON
        ("functions.get_current_time", "{}", True),  # no required fields
        ("functions.get_weather", '{"city": "Paris"}', False),  # not offered
        ("python", "print(6 * 7)", True),
        ("python", "print(6 * 7", False),
    ],
)
def test_call_checks(recipient: str, text: str, ok: bool) -> None:
    assert call_is_well_formed(_call(recipient, text), APP_DEFAULT) is ok


def test_a_call_is_not_well_formed_when_no_tools_are_offered() -> None:
    assert not call_is_well_formed(_call("python", "print(1)"), NO_TOOLS)


def test_the_loop_runs_the_call_and_generates_again_with_the_result() -> None:
    analysis = Message.from_role_and_content(Role.ASSISTANT, "Use python.").with_channel("analysis")
    call = _call("python", "print(6 * 7)", "analysis", PYTHON_CONTENT_TYPE)
    final = Message.from_role_and_content(Role.ASSISTANT, "6 × 7 = 42.").with_channel(FINAL)
    rounds = iter(
        [
            Done(FinishReason.STOP, completion_ids=(1, CALL), messages=(analysis, call)),
            Done(FinishReason.STOP, completion_ids=(1, RETURN), messages=(final,)),
        ]
    )
    prompts: list[list[int]] = []

    def generate(batch: list[list[int]]) -> list[Done]:
        prompts.extend(batch)
        return [next(rounds)]

    ran: list[str] = []

    def python(code: str) -> str:
        ran.append(code)
        return run_python_subprocess(code)

    episode = Episode(
        "python", ReasoningEffort.LOW, APP_DEFAULT, [ChatMessage.user("What is 6 × 7?")], lambda _c: "6 × 7 = 42.", True
    )
    run_loop([episode], generate, python)
    assert ran == ["print(6 * 7)"]
    assert episode.calls == [("python", "print(6 * 7)", "42\n")] and episode.well_formed == [True]
    assert episode.history[-1] == ChatMessage.tool_result("python", "42\n", channel="analysis")
    assert len(prompts) == 2 and len(prompts[1]) > len(prompts[0])
    report = summarize([episode])
    assert report["well_formed_calls"] == 1.0 and report["called"] == 1.0 and report["accuracy"]["python"] == 1.0
