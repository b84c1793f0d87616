"""tools/bench/llama_bench_peer.py: the llama-bench command lines and the parsing of its JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tools.bench.llama_bench_peer import LlamaBenchCrash, llama_bench_command, parse_llama_bench_json, run_llama_round


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


# A stand-in llama-bench: crashes (SIGSEGV) unless "--repack 0" is given when FAKE_CRASH is set, and reports a speed
# that encodes its -p/-n/-d so the test can see which invocation measured what.
_FAKE_BENCH = """#!{python}
import json, os, signal, sys
args = sys.argv[1:]
opt = lambda flag: int(args[args.index(flag) + 1])
repack = "--repack" not in args or opt("--repack") != 0
if os.environ.get("FAKE_CRASH") and repack:
    os.kill(os.getpid(), signal.SIGSEGV)
record = {{"model_type": "gpt-oss fake", "model_size": 7, "n_threads": opt("-t"), "repack": repack,
          "avg_ts": 1000 * opt("-p") + opt("-n") + opt("-d") / 1000}}
print(json.dumps([record]))
"""


def _fake_bench(tmp_path: Path) -> Path:
    path = tmp_path / "llama-bench"
    path.write_text(_FAKE_BENCH.format(python=sys.executable))
    path.chmod(0o755)
    return path


def test_a_round_runs_prefill_then_decode_at_depth(tmp_path: Path) -> None:
    result = run_llama_round(_fake_bench(tmp_path), tmp_path / "m.gguf", threads=2, prompt_tokens=64, decode_tokens=8)
    assert result["prefill_tok_s"] == 64000 and result["decode_tok_s"] == 8.064
    assert result["threads"] == 2 and result["model_size_bytes"] == 7 and result["peak_rss_bytes"] > 0
    assert result["settings"]["repack"] is True and result["crash_before_repack_off"] == []


def test_a_crash_is_retried_without_repacked_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CRASH", "1")
    result = run_llama_round(_fake_bench(tmp_path), tmp_path / "m.gguf", threads=1, prompt_tokens=16, decode_tokens=4)
    assert result["prefill_tok_s"] == 16000 and result["settings"]["repack"] is False
    assert len(result["crash_before_repack_off"]) == 2 and "signal 11" in result["crash_before_repack_off"][0]
    with pytest.raises(LlamaBenchCrash):
        run_llama_round(
            _fake_bench(tmp_path), tmp_path / "m.gguf", threads=1, prompt_tokens=16, decode_tokens=4,
            extra=["--repack", "1"],
        )  # fmt: skip
