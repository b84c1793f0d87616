"""tools/bench/llama_bench_peer.py: the llama-bench command lines and the parsing of its JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench.llama_bench_peer import llama_bench_command, parse_llama_bench_json


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_decode_runs_after_a_prompt_deep_cache() -> None:
    command = llama_bench_command(Path("bin/llama-bench"), Path("m.gguf"), threads=2, prompt=0, gen=32, depth=512)
    assert command[0] == "bin/llama-bench" and _option(command, "-m") == "m.gguf"
    assert (_option(command, "-p"), _option(command, "-n"), _option(command, "-d")) == ("0", "32", "512")
    assert _option(command, "-t") == "2" and _option(command, "-r") == "1" and _option(command, "-o") == "json"


def test_extra_options_come_last() -> None:
    command = llama_bench_command(
        Path("b"), Path("m.gguf"), threads=1, prompt=512, gen=0, depth=0, extra=["--repack", "0"]
    )
    assert command[-2:] == ["--repack", "0"] and _option(command, "-p") == "512"


def test_json_after_log_lines_is_parsed() -> None:
    record = {"n_prompt": 512, "n_gen": 0, "avg_ts": 123.4, "model_type": "gpt-oss ?B MXFP4 MoE"}
    stdout = "load_backend: loaded CPU backend\n" + json.dumps([record], indent=2)
    assert parse_llama_bench_json(stdout) == [record]


@pytest.mark.parametrize("stdout", ["error: failed to load model\n", "[]"])
def test_output_without_records_is_an_error(stdout: str) -> None:
    with pytest.raises(ValueError):
        parse_llama_bench_json(stdout)
