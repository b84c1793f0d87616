"""The chat command's worker thread: an answer's generation thread is gone when the answer is printed, so the
process exits cleanly (a daemon thread still freeing tensors while the interpreter finalises aborted it with
status 134 after a good answer)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import gpt_oss_desktop.engine.cli as cli
from gpt_oss_desktop.engine.cli import chat
from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.sampling import SamplingParams


class _SlowToFinish:
    """Stands in for the Generator (only its threading matters here): its stream yields Done, then takes a while to
    return, as a real one does while it frees the step's tensors."""

    def stream(self, prompt_ids: list[int], params: SamplingParams, cancel: threading.Event) -> Iterator[Done]:
        yield Done(finish_reason=FinishReason.STOP, prompt_tokens=len(prompt_ids))
        time.sleep(0.5)


def test_the_worker_thread_is_joined_before_the_answer_returns() -> None:
    printer = chat._Printer(io.StringIO())
    done = chat._answer(_SlowToFinish(), [1, 2, 3], SamplingParams(), printer)  # type: ignore[arg-type]
    assert done.prompt_tokens == 3
    assert not [t for t in threading.enumerate() if t.name == "chat-generate"]


ONE_SHOT = ("chat", "--model", "demo", "--effort", "low", "--temperature", "0", "--max-tokens", "24", "What is 2+3?")


def test_one_shot_chat_exits_cleanly_twice() -> None:
    # The second run loads the cached CPU kernels, the case that used to abort at exit.
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-P", "-m", "gpt_oss_desktop.engine", *ONE_SHOT],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ},
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "terminate called" not in result.stderr


def test_a_tool_call_prints_its_arguments_once_and_the_note() -> None:
    from gpt_oss_desktop.engine.generator import Generator
    from gpt_oss_desktop.engine.harmony import ChatMessage, render_prompt
    from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_tool_call

    model = ScriptedModel([harmony_tool_call("Need weather.", "functions.get_weather", '{"city":"Bern"}')])
    out = io.StringIO()
    prompt = render_prompt([ChatMessage.user("Weather?")], current_date=None)
    done = chat._answer(Generator(model), prompt, SamplingParams(temperature=0), chat._Printer(out))
    assert done.tool_call is not None
    text = out.getvalue()
    assert text.count('{"city":"Bern"}') == 1  # streamed once; the ToolCall event adds no second copy
    assert '[tool call → functions.get_weather] {"city":"Bern"}' in text
    assert "note: the model called functions.get_weather" in text


def test_a_thinking_budget_cuts_the_demos_reasoning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    question = ("chat", "--model", "demo", "--effort", "high", "--temperature", "0", "What is 12 times 4?")
    assert cli.main([*question]) == 0
    free = capsys.readouterr().out
    assert cli.main([*question, "--thinking-budget", "3"]) == 0
    cut = capsys.readouterr().out
    assert len(cut) < len(free) and "thinking cut at the budget" in cut and "thinking cut" not in free


def test_a_thinking_budget_is_refused_for_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["chat", "--server", "http://127.0.0.1:9/v1", "--thinking-budget", "5", "hi"]) == 2
    err = capsys.readouterr().err
    assert "--thinking-budget applies to a local model" in err and err.count("\n") == 1


def test_a_negative_thinking_budget_is_refused_naming_the_flag() -> None:
    # The command as a user types it: exit status 2 and one line naming --thinking-budget, before any model loads
    # (it used to name the engine's field, reasoning_budget).
    result = subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.engine", "chat", "--model", "demo", "--thinking-budget", "-3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "error: argument --thinking-budget: must be an integer >= 0" in result.stderr
    assert "'-3'" in result.stderr and "reasoning_budget" not in result.stderr


@pytest.mark.parametrize(
    ("command", "flag", "value", "field"),
    [
        ("chat", "--thinking-budget", "-3", "reasoning_budget"),
        ("chat", "--thinking-budget", "1.5", "reasoning_budget"),
        ("chat", "--temperature", "-0.5", None),
        ("chat", "--temperature", "nan", None),
        ("chat", "--top-p", "0", "top_p"),
        ("chat", "--top-p", "1.5", "top_p"),
        ("chat", "--top-k", "-1", "top_k"),
        ("chat", "--max-tokens", "0", "max_tokens"),
        ("chat", "--seed", "-1", None),
        ("tokens", "--top-p", "0", "top_p"),
        ("tokens", "--max-tokens", "-2", "max_tokens"),
        ("tokens", "--temperature", "-1", None),
        ("chat", "--context", "0", None),
        ("serve", "--max-waiting", "-1", "max_waiting"),  # (more of serve's in tests/engine/cli/test_serve.py)
        ("serve", "--context", "-5", None),
    ],
)
def test_a_bad_numeric_value_is_an_argument_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str], command: str, flag: str, value: str, field: str | None
) -> None:
    where = {
        "chat": ["--model", "demo", "hi"],
        "tokens": ["--model", "demo", "--prompt-ids", "1"],
        "serve": ["--model", "demo"],
    }[command]
    with pytest.raises(SystemExit) as exited:
        cli.main([command, *where, flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{command}: error: argument {flag}: must be " in err and repr(value) in err
    # Not the engine's message, which names its own field ("invalid sampling option: top_p must be ...").
    assert "option:" not in err and (field is None or field not in err)
