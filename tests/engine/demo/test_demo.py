"""The shipped demo model: materialisation, loading through the normal loader, and well-formed harmony output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.cli import main as cli_main
from gpt_oss_desktop.engine.demo.materialize import (
    STAMP_NAME,
    demo_label,
    demo_root,
    expand_weights,
    is_materialized,
    load_manifest,
    materialize_demo,
    shipped_dir,
)
from gpt_oss_desktop.engine.events import ANALYSIS, FINAL, Done, FinishReason
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.model_ref import resolve_model_path
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV, user_data_dir
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.vocab import RETURN

MANIFEST = load_manifest()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("user-data")


@pytest.fixture(scope="module")
def model(data_dir: Path) -> Model:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(data_dir))
        return engine.load_model("demo", device="cpu")


def _generate(model: Model, question: str, effort: ReasoningEffort) -> Done:
    prompt = render_prompt([ChatMessage.user(question)], effort=effort)
    events = list(Generator(model, max_context=512).stream(prompt, SamplingParams(temperature=0.0, max_tokens=200)))
    done = events[-1]
    assert isinstance(done, Done)
    return done


def test_shipped_files_are_small_and_match_the_manifest() -> None:
    files = [p for p in shipped_dir().iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 10 * 1024 * 1024
    assert "toy" in MANIFEST["description"]
    assert MANIFEST["config"]["vocab_size"] == 201088


def test_materialises_a_standard_original_checkpoint(model: Model, data_dir: Path) -> None:
    root = demo_root(data_dir)
    assert sorted(p.name for p in (root / "original").iterdir()) == ["config.json", "dtypes.json", "model.safetensors"]
    assert is_materialized(root, MANIFEST)
    assert model.config.vocab_size == 201088
    assert model.config.sliding_layers == (True, False, True, False)
    assert demo_label(root / "original") == MANIFEST["description"]


@pytest.mark.parametrize(
    ("question", "effort"),
    [
        ("What is 17 + 25?", ReasoningEffort.HIGH),
        ('How many times does the letter "r" appear in "strawberry"?', ReasoningEffort.MEDIUM),
        ("Convert 3 km to m.", ReasoningEffort.LOW),
    ],
)
def test_greedy_generation_is_analysis_then_final(model: Model, question: str, effort: ReasoningEffort) -> None:
    done = _generate(model, question, effort)
    assert done.finish_reason is FinishReason.STOP
    assert done.malformed is None
    assert [m.channel for m in done.messages] == [ANALYSIS, FINAL]
    assert done.completion_ids[-1] == RETURN
    assert done.reasoning_tokens > 0 and done.final_tokens > 0


def test_unused_ids_get_the_shared_row() -> None:
    compact = load_file(str(shipped_dir() / MANIFEST["weights_file"]))
    full = expand_weights(compact, MANIFEST)
    used = MANIFEST["used_token_ids"]
    unused = next(i for i in range(1000, 201088) if i not in set(used))
    for name in ("embedding", "unembedding"):
        rows = compact[f"{name}.rows"]
        assert full[f"{name}.weight"].shape == (201088, rows.shape[1])
        assert torch.equal(full[f"{name}.weight"][unused], rows[-1])
        assert torch.equal(full[f"{name}.weight"][used[5]], rows[5])


def test_corrupt_materialisation_is_redone(tmp_path: Path) -> None:
    root = materialize_demo(tmp_path)
    weights = root / "original" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # a truncated file, as an interrupted copy would leave
    assert not is_materialized(root, MANIFEST)
    assert materialize_demo(tmp_path) == root
    assert weights.read_bytes() == good
    (root / STAMP_NAME).unlink()  # no stamp: treated as partial
    assert not is_materialized(root, MANIFEST)
    materialize_demo(tmp_path)
    assert is_materialized(root, MANIFEST)
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_model_references(monkeypatch: pytest.MonkeyPatch, data_dir: Path, model: Model) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert user_data_dir() == data_dir
    assert resolve_model_path("demo") == demo_root(data_dir)
    assert resolve_model_path("./demo") == Path("demo")  # a path, not the name
    assert resolve_model_path(Path("/x/demo")) == Path("/x/demo")


def test_user_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_data_dir() == tmp_path / "gpt-oss-desktop"


def test_info_labels_the_toy(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, model: Model, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert cli_main(["info", "demo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "toy demo model" in info["note"]
    assert info["layout"] == "original"
