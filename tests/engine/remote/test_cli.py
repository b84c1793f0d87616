"""``python -m gpt_oss_desktop.engine chat --server URL --api-model NAME``: a real process against our own server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

from gpt_oss_desktop.engine.harmony import ReasoningEffort
from tests.engine.remote.conftest import OWN_KEY, QUESTION
from tests.engine.remote.test_own_server import GREEDY, ask

STATS = re.compile(
    r"^\[(\d+) prompt \((\d+) cached\), (\d+) reasoning, (\d+) answer, \d+ other tokens \| TTFT [\d.]+ s \| "
    r"[\d.]+ tok/s \| (\w+)\]$"
)


def chat(*args: str, stdin: str | None = None, key: str | None = OWN_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEMO_KEY"}
    if key is not None:
        env["DEMO_KEY"] = key
    return subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.engine", "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_one_answer_streams_reasoning_answer_and_the_servers_counts(own_server: Any) -> None:
    expected = ask(own_server, ReasoningEffort.LOW)
    done = expected.done
    result = chat(
        *("--server", own_server.base_url, "--api-model", "demo", "--api-key-env", "DEMO_KEY"),
        *("--effort", "low", "--temperature", "0", "--max-tokens", str(GREEDY.max_tokens), QUESTION[0].text),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"[reasoning] {expected.reasoning}".splitlines()[0]
    assert expected.text in result.stdout and "\x1b[" not in result.stdout  # no colours when not a terminal
    stats = STATS.match(lines[-1])
    assert stats, lines[-1]
    counts = tuple(int(stats.group(i)) for i in range(1, 5))
    assert counts == (done.prompt_tokens, done.reused_prompt_tokens, done.reasoning_tokens, done.final_tokens)
    assert stats.group(5) == "stop"  # and no "counts estimated": our server reports reasoning tokens


def test_interactive_chat_keeps_the_history(own_server: Any) -> None:
    result = chat(
        *("--server", own_server.base_url, "--api-model", "demo", "--api-key-env", "DEMO_KEY"),
        *("--effort", "low", "--temperature", "0", "--max-tokens", "60"),
        stdin="What is 2+2?\nAnd 3+3?\n\n",
    )
    assert result.returncode == 0, result.stderr
    stats = [STATS.match(line) for line in result.stdout.splitlines()]
    prompts = [int(m.group(1)) for m in stats if m]
    assert len(prompts) == 2 and prompts[1] > prompts[0]  # the second turn carried the first


def test_mistakes_are_one_line_each(own_server: Any) -> None:
    both = chat("--model", "demo", "--server", own_server.base_url, "hi")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    wrong_key = chat(
        "--server", own_server.base_url, "--api-model", "demo", "--api-key-env", "DEMO_KEY", "hi", key="not-the-key"
    )
    assert wrong_key.returncode == 2
    (line,) = wrong_key.stderr.strip().splitlines()
    assert line.startswith(f"error: {own_server.base_url} rejected the API key (")
    assert line.endswith("; enter the key again (or check its permissions)")
    assert "not-the-key" not in wrong_key.stderr + wrong_key.stdout


def test_json_schema_holds_the_answer_on_a_local_model_and_through_a_server(own_server: Any, tmp_path: Path) -> None:
    # The same answer twice: held by this process's channel guard (--model), and sent as response_format to our
    # server, which holds it with its own guard. Both must parse and follow the schema (checked by jsonschema), and,
    # greedy on the same weights and prompt, agree token for token.
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    schema_file = tmp_path / "result.json"
    schema_file.write_text(json.dumps(schema))
    common = ("--effort", "low", "--temperature", "0", "--max-tokens", "600", "--json-schema", str(schema_file))
    local = chat("--model", "demo", *common, "What is 17 + 25?")
    remote = chat(
        *("--server", own_server.base_url, "--api-model", "demo", "--api-key-env", "DEMO_KEY"),
        *common,
        "What is 17 + 25?",
    )
    answers = []
    for result in (local, remote):
        assert result.returncode == 0, result.stderr
        (answer,) = [line for line in result.stdout.splitlines() if line.lstrip().startswith("{")]
        jsonschema.validate(json.loads(answer), schema)
        answers.append(answer)
    assert answers[0] == answers[1]


def test_a_json_schema_file_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    array = tmp_path / "list.json"
    array.write_text('{"type": "array"}')
    cut = tmp_path / "cut.json"
    cut.write_text('{"type": "object", "properties": {')
    for path, why in [
        (array, "must describe an object, not 'array'"),
        (cut, "the file may be cut short"),
        (tmp_path / "missing.json", "no such file"),
    ]:
        result = chat("--model", "demo", "--json-schema", str(path), "hi")
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert line.startswith("error: --json-schema: ") and why in line, line
