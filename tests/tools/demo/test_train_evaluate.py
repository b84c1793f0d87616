"""Training and evaluating the demo model from tools/: a two-step training run writes weights the engine
materialises and loads, and the evaluation reports on them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine.demo.materialize import load_manifest, materialize_demo
from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.vocab import get_encoding
from tools.demo import evaluate, train
from tools.demo.data import FAMILIES


@pytest.fixture
def torch_settings_restored() -> Iterator[None]:
    # train() sets the thread count and deterministic algorithms for the whole process, as its own command should.
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def trained(tmp_path: Path, torch_settings_restored: None) -> Path:
    out = tmp_path / "compact"
    args = train.parse_args(["--out", str(out), "--steps", "2", "--batch-size", "2", "--threads", "1"])
    stats = train.train(args)
    assert stats["steps"] == 2 and stats["examples"] == 4
    return out


def test_every_parameter_is_trained() -> None:
    # The engine's fused CPU kernels have no autograd; training must reach every layer, not just the unembedding.
    config = train.DEMO_CONFIG.replace(vocab_size=300)
    params = train.init_params(config, torch.Generator().manual_seed(0))
    model = train.training_model(config, dict(params))
    hidden = model.forward_hidden(torch.randint(0, 300, (2, 40)))
    torch.nn.functional.linear(hidden, model.unembedding).logsumexp(-1).mean().backward()
    assert [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_training_writes_weights_the_engine_materialises_and_loads(trained: Path, tmp_path: Path) -> None:
    manifest = load_manifest(trained)
    assert manifest["weights_file"] == train.WEIGHTS_NAME and manifest["training"]["steps"] == 2
    root = materialize_demo(tmp_path / "data", source=trained)
    model = load_model(root, device="cpu")
    assert model.config.vocab_size == train.DEMO_CONFIG.vocab_size
    assert model.config.num_hidden_layers == train.DEMO_CONFIG.num_hidden_layers


def test_a_fine_tune_starts_from_trained_weights(trained: Path, tmp_path: Path) -> None:
    base = load_manifest(trained)
    out = tmp_path / "tuned"
    argv = ["--init", str(trained), "--mix", "copy", "--digit-weight", "3", "--out", str(out)]
    stats = train.train(train.parse_args([*argv, "--steps", "1", "--batch-size", "2", "--threads", "1"]))
    assert stats["init"]["version"] == base["version"] and stats["mix"] == "copy"
    tuned = load_manifest(out)
    assert set(base["used_token_ids"]) <= set(tuned["used_token_ids"])
    assert tuned["version"] != base["version"]  # other weights, so the materialised copy gets a new folder
    start, _, _ = train.load_init(trained)
    after, _, _ = train.load_init(out)
    # one step moved the weights from where the base run left them, not from a fresh initialisation
    qkv = "block.0.attn.qkv.weight"
    assert not torch.equal(start[qkv], after[qkv])
    assert (start[qkv] - after[qkv]).abs().max() < 0.01  # Adam moves each weight by about lr (3e-3) at most
    model = load_model(materialize_demo(tmp_path / "data", source=out), device="cpu")
    assert model.config.num_hidden_layers == train.DEMO_CONFIG.num_hidden_layers


def test_a_token_new_to_the_fine_tune_starts_as_the_shared_row() -> None:
    init = {
        "embedding.weight": torch.tensor([[1.0], [2.0], [9.0]]),  # ids 10, 20, then the shared row
        "unembedding.weight": torch.tensor([[3.0], [4.0], [8.0]]),
        "norm.scale": torch.tensor([5.0]),
    }
    params = train.start_params(init, [10, 20], [10, 15, 20])
    assert params["embedding.weight"].flatten().tolist() == [1.0, 9.0, 2.0, 9.0]
    assert params["unembedding.weight"].flatten().tolist() == [3.0, 8.0, 4.0, 8.0]
    assert params["norm.scale"].requires_grad and params["norm.scale"].tolist() == [5.0]


def test_digit_tokens_weigh_more() -> None:
    enc = get_encoding()
    ids = [enc.encode(t, allowed_special=set())[0] for t in ("123", " apple", "7")]
    assert train.digit_weights(ids, 3.0).tolist() == [3.0, 1.0, 3.0, 1.0]  # the shared row last


def test_evaluation_reports_every_family_and_effort(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = materialize_demo(tmp_path / "data", source=trained)
    argv = ["--model", str(root), "--per-family", "1", "--tool-per-family", "1", "--max-tokens", "4"]
    assert evaluate.main([*argv, "--batch-size", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == "batched" and report["generations"] == 12  # 4 families x 3 efforts
    assert set(report["accuracy"]) == set(FAMILIES)
    assert 0.0 <= report["well_formed"] <= 1.0
    tools = report["tools"]
    assert tools["episodes"] == 18  # (3 tool groups + arithmetic, counting, comparing) x 3 efforts
    assert set(tools["accuracy"]) == {"python", "convert_units", "current_time", "arithmetic", "count", "compare"}
    assert tools["arithmetic_python_off"] == report["accuracy"]["arithmetic"]


def test_batched_and_sequential_evaluation_agree(trained: Path, tmp_path: Path) -> None:
    # Both paths run the engine's one generation loop; greedy, they must produce the same completions.
    root = str(materialize_demo(tmp_path / "data", source=trained))
    options = {"dtype": "bfloat16", "max_tokens": 6, "batch_size": 4}
    batched = evaluate.evaluate(root, 1, sequential=False, tool_per_family=1, **options)  # type: ignore[arg-type]
    sequential = evaluate.evaluate(root, 1, sequential=True, tool_per_family=1, **options)  # type: ignore[arg-type]
    for key in ("well_formed", "mean_analysis_tokens", "accuracy_by_effort", "tools"):
        assert batched[key] == sequential[key]
