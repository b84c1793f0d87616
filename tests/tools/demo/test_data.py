"""The demo model's synthetic data: the held-out split and the harmony rendering of an example."""

from __future__ import annotations

import json
import random

from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.vocab import CALL, RETURN, get_encoding
from tools.demo.data import Example, completion_tokens, held_out_problems, is_held_out
from tools.demo.mix import BASE_MIX, COPY_MIX, training_examples
from tools.demo.tool_data import (
    APP_DEFAULT,
    WIDE_DIGITS,
    held_out_tool_problems,
    render_tool_example,
    sample_tool_problem,
    tool_prompt,
)


def test_data_split_and_rendering() -> None:
    problems = held_out_problems("arithmetic", 5)
    assert all(is_held_out(p.key) for p in problems)
    examples = training_examples(8, seed=0)
    assert all(ex.ids[ex.prompt_len - 2 :][:2] == [200006, 173781] for ex in examples)  # ends <|start|>assistant
    tail = completion_tokens("a", "b")
    assert tail[:3] == [200005, 35644, 200008] and tail[-1] == RETURN  # <|channel|>analysis<|message|> ... <|return|>


def test_a_tool_example_trains_the_call_and_the_answer_but_not_the_result() -> None:
    enc = get_encoding()
    problem = held_out_tool_problems("python", 1)[0]
    example = render_tool_example(problem, APP_DEFAULT, ReasoningEffort.MEDIUM, "2026-01-15")
    (start1, end1), (start2, end2) = example.spans
    first = tool_prompt([ChatMessage.user(problem.question)], APP_DEFAULT, ReasoningEffort.MEDIUM, "2026-01-15")
    assert example.ids[:start1] == first
    call = enc.decode(example.ids[start1:end1])
    assert example.ids[end1 - 1] == CALL
    assert call.endswith(
        f"<|start|>assistant to=python<|channel|>analysis code<|message|>{problem.call.arguments}<|call|>"
    )
    result = enc.decode(example.ids[end1:start2])  # input only: the tool's message
    header = "<|start|>python to=assistant<|channel|>analysis<|message|>"
    assert result == f"{header}{problem.training_result}<|end|><|start|>assistant"
    assert example.ids[end2 - 1] == RETURN and end2 == len(example.ids)


def test_function_problems_carry_real_results() -> None:
    convert = held_out_tool_problems("convert_units", 3)
    for problem in convert:
        arguments = json.loads(problem.call.arguments)
        assert set(arguments) == {"value", "from_unit", "to_unit"}
        assert json.loads(problem.training_result)["unit"] == arguments["to_unit"]
    time = held_out_tool_problems("current_time", 3)
    assert all(problem.answer(problem.training_result) is not None for problem in time)
    assert len({p.key for p in time}) == 3 and all(is_held_out(p.key) for p in time)


def test_wide_python_problems_span_every_length_and_stay_out_of_the_held_out_split() -> None:
    rng = random.Random(0)
    problems = [sample_tool_problem(rng, "python", held_out=False, wide=True) for _ in range(300)]
    assert not any(is_held_out(p.key) for p in problems)
    lengths = set()
    for problem in problems:
        code = problem.call.arguments  # print(A op B)
        a, op, b = code.removeprefix("print(").removesuffix(")").split(" ")
        lengths |= {len(a), len(b)}
        expected = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert problem.training_result == f"{expected}\n" and expected >= 0
        answer = problem.answer(problem.training_result)
        assert answer is not None and answer.final.endswith(f" = {expected}.")
    assert lengths == set(range(1, WIDE_DIGITS + 1))


def test_the_copy_mix_holds_more_tool_examples_and_leaves_the_base_mix_unchanged() -> None:
    def tool_share(examples: list[Example]) -> float:  # a tool example has two loss spans (the call, the answer)
        return sum(len(ex.spans) == 2 for ex in examples) / len(examples)

    base = training_examples(40, seed=3)
    assert [ex.ids for ex in base] == [ex.ids for ex in training_examples(40, seed=3, mix=BASE_MIX)]
    assert tool_share(base) == 11 / 20
    assert tool_share(training_examples(40, seed=3, mix=COPY_MIX)) == 14 / 20
