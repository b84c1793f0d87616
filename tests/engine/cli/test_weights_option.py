"""``--weights bf16|q8`` on every engine command that loads a model: the q8 load mode is used, the default stays
exact bf16, and an unknown value is refused naming the choices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.cli import main
from tests.helpers.models import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def test_tokens_with_q8_weights(tiny_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tokens", "--model", str(tiny_dir), "--prompt-ids", "1,2,3", "--max-tokens", "12"]
    assert main(argv) == 0
    exact = json.loads(capsys.readouterr().out)
    assert main([*argv, "--weights", "bf16"]) == 0
    assert json.loads(capsys.readouterr().out) == exact  # bf16 is the default
    assert main([*argv, "--weights", "q8"]) == 0
    q8 = json.loads(capsys.readouterr().out)
    assert len(q8) == 12 and q8[0] == exact[0]  # random weights: the first greedy token survives 8-bit weights


@pytest.mark.parametrize("command", ["chat", "serve", "tokens", "bench", "bench-batch"])
def test_an_unknown_weights_value_names_the_choices(
    command: str, tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--model", str(tiny_dir), "--prompt-ids", "1", "--weights", "q4"])
    assert exited.value.code == 2
    assert "argument --weights: invalid choice: 'q4' (choose from 'bf16', 'q8')" in capsys.readouterr().err


def test_chat_loads_with_the_chosen_weights(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpt_oss_desktop.engine import loader

    seen: list[str] = []
    real = loader.load_model

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(str(kwargs.get("weights")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "load_model", spy)
    argv = ["chat", "--model", str(tiny_dir), "--temperature", "0", "--max-tokens", "4", "hi", "--weights", "q8"]
    main(argv)  # the tiny model's 512-token vocabulary cannot hold a chat prompt: the load is what is checked
    assert seen == ["q8"]
    assert "outside the vocabulary" in capsys.readouterr().err
