"""``python -m gpt_oss_desktop.engine make-test-model`` and ``info`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gpt_oss_desktop.engine.cli as cli
from gpt_oss_desktop.engine.checkpoint import Layout, load_checkpoint


@pytest.fixture(autouse=True)
def _only_checkpoint_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # The other sub-commands live in modules this package does not own; keep these tests independent of them.
    monkeypatch.setattr(cli, "COMMANDS", {k: cli.COMMANDS[k] for k in ("info", "make-test-model")})


@pytest.mark.parametrize("layout", ["original", "hf", "hf-dense"])
def test_make_test_model_then_info(tmp_path: Path, layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert cli.main(["make-test-model", str(out), "--preset", "tiny", "--layout", layout, "--seed", "3"]) == 0
    assert "wrote tiny" in capsys.readouterr().out
    assert load_checkpoint(out).layout is Layout(layout)

    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"layout      {layout}" in text and "bfloat16" in text

    assert cli.main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == layout
    assert info["config"]["num_hidden_layers"] == 2
    assert info["tensor_bytes"] == info["mxfp4_bytes"] + info["other_bytes"]
    assert (info["mxfp4_bytes"] > 0) == (layout != "hf-dense")
    assert info["file_bytes"] > info["tensor_bytes"]
    assert info["dtypes"]["bfloat16"]["tensors"] > 0


def test_sharded_output_and_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert cli.main(["make-test-model", str(out), "--layout", "hf", "--shards", "2"]) == 0
    assert len(load_checkpoint(out).files) == 2
    assert cli.main(["make-test-model", str(out), "--layout", "hf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--force" in err
    assert cli.main(["make-test-model", str(out), "--layout", "original", "--force"]) == 0
    assert load_checkpoint(out).layout is Layout.ORIGINAL


@pytest.mark.parametrize("make_path", [lambda p: p / "missing", lambda p: p])
def test_bad_path_is_one_line_and_exit_2(tmp_path: Path, make_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_path(tmp_path)  # type: ignore[operator]
    assert cli.main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert str(path) in captured.err


def test_broken_checkpoint_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert cli.main(["make-test-model", str(out)]) == 0
    file = out / "model.safetensors"
    file.write_bytes(file.read_bytes()[:-10])
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "model.safetensors" in err
