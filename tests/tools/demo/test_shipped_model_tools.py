"""The shipped demo model uses tools: greedy, with the app's default tools offered, it calls python for held-out
arithmetic and answers with what the program printed, and calls convert_units with JSON arguments."""

from __future__ import annotations

import json

import pytest

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.events import COMMENTARY, FINAL, Done
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import (
    JSON_CONTENT_TYPE,
    PYTHON_CONTENT_TYPE,
    PYTHON_TOOL,
    ChatMessage,
    ReasoningEffort,
    from_harmony,
)
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.tools.builtin_functions import CONVERT_UNITS
from tools.demo.data import held_out_problems
from tools.demo.evaluate_tools import call_is_well_formed, run_function, run_python_subprocess
from tools.demo.tool_data import APP_DEFAULT, held_out_tool_problems, tool_prompt


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("user-data")))
        return engine.load_model("demo", device="cpu")


def _generate(model: Model, messages: list[ChatMessage], effort: ReasoningEffort) -> Done:
    prompt = tool_prompt(messages, APP_DEFAULT, effort, "2026-01-15")
    events = list(Generator(model, max_context=1024).stream(prompt, SamplingParams(temperature=0.0, max_tokens=160)))
    done = events[-1]
    assert isinstance(done, Done)
    return done


def _python_round_trip(model: Model, question: str) -> tuple[str, str]:
    """``question`` through the loop at low effort, its call checked and run: (the program's output, the final)."""
    history = [ChatMessage.user(question)]
    first = _generate(model, history, ReasoningEffort.LOW)
    call = first.tool_call
    assert call is not None and call.recipient == PYTHON_TOOL
    assert call.channel == "analysis" and call.content_type == PYTHON_CONTENT_TYPE
    assert call_is_well_formed(call, APP_DEFAULT)
    messages = from_harmony(first.messages)
    output = run_python_subprocess(messages[-1].text)  # really runs the model's program
    history += [*messages, ChatMessage.tool_result(PYTHON_TOOL, output, channel=call.channel)]
    second = _generate(model, history, ReasoningEffort.LOW)
    assert second.tool_call is None
    final = [m for m in from_harmony(second.messages) if m.channel == FINAL]
    assert final
    return output, final[-1].text


def test_held_out_arithmetic_is_computed_with_python(model: Model) -> None:
    problem = held_out_tool_problems("python", 1)[0]  # never seen in training, in any wording
    output, final = _python_round_trip(model, problem.question)
    assert output == problem.training_result  # the program computes the question's value
    expected = problem.answer(output)
    assert expected is not None
    assert final.startswith(expected.final.split(" = ")[0] + " = ")  # answers the question asked, in the trained form


def test_held_out_small_arithmetic_answers_copy_what_python_printed(model: Model) -> None:
    # The arithmetic family's held-out questions (tools.demo.evaluate's "arithmetic with python on"): the answer
    # must be the question's terms and the printed value, copied from the tool's message.
    right = 0
    for problem in held_out_problems("arithmetic", 5):
        output, final = _python_round_trip(model, problem.question)
        right += final == problem.final and output.strip() in final
    assert right >= 4


@pytest.mark.xfail(reason="the toy copies results of several tokens unreliably (issue 20 point 5: large numbers 7.3 %)")
def test_held_out_large_arithmetic_answer_uses_the_printed_value(model: Model) -> None:
    problem = held_out_tool_problems("python", 1)[0]
    output, final = _python_round_trip(model, problem.question)
    expected = problem.answer(output)
    assert expected is not None and output.strip() in final and final == expected.final


def test_conversion_calls_convert_units_with_json(model: Model) -> None:
    problem = held_out_tool_problems("convert_units", 1)[0]
    done = _generate(model, [ChatMessage.user(problem.question)], ReasoningEffort.MEDIUM)
    call = done.tool_call
    assert call is not None and call.recipient == "functions." + CONVERT_UNITS.name
    assert call.channel == COMMENTARY and call.content_type == JSON_CONTENT_TYPE
    arguments = json.loads(from_harmony(done.messages)[-1].text)
    assert set(arguments) == {"value", "from_unit", "to_unit"}
    result = json.loads(run_function(CONVERT_UNITS.name, json.dumps(arguments)))  # the app's own function accepts it
    assert isinstance(result["value"], float)


def test_no_call_for_a_question_that_needs_no_tool(model: Model) -> None:
    done = _generate(model, [ChatMessage.user('How many times does the letter "r" appear in "strawberry"?')],
                     ReasoningEffort.LOW)  # fmt: skip
    assert done.tool_call is None
    assert [m.channel for m in done.messages][-1] == FINAL
