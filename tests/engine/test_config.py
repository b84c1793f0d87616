"""ModelConfig reads every config.json spelling and rejects what is not gpt-oss."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import CheckpointError, ConfigError

ORIGINAL_20B = {
    "num_hidden_layers": 24,
    "num_experts": 32,
    "experts_per_token": 4,
    "vocab_size": 201088,
    "hidden_size": 2880,
    "intermediate_size": 2880,
    "swiglu_limit": 7.0,
    "head_dim": 64,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "sliding_window": 128,
    "initial_context_length": 4096,
    "rope_theta": 150000,
    "rope_scaling_factor": 32.0,
    "rope_ntk_alpha": 1,
    "rope_ntk_beta": 32,
}

# The 20B in transformers' spelling (rope fields left to each test): the fields the two spellings share, plus its own
# names for the expert count and the context.
ORIGINAL_ONLY = {"num_experts", "initial_context_length"} | {key for key in ORIGINAL_20B if key.startswith("rope_")}
HF_COMMON = {
    "architectures": ["GptOssForCausalLM"],
    "model_type": "gpt_oss",
    **{key: value for key, value in ORIGINAL_20B.items() if key not in ORIGINAL_ONLY},
    "num_local_experts": 32,
    "num_experts_per_tok": 4,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
}
ROPE = {
    "rope_type": "yarn",
    "factor": 32.0,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "truncate": False,
    "original_max_position_embeddings": 4096,
}


def test_three_spellings_agree() -> None:
    original = ModelConfig.from_dict(ORIGINAL_20B)
    scaling = ModelConfig.from_dict({**HF_COMMON, "rope_theta": 150000, "rope_scaling": ROPE})
    parameters = ModelConfig.from_dict({**HF_COMMON, "rope_parameters": {**ROPE, "rope_theta": 150000.0}})
    assert original == scaling == parameters
    assert original.sliding_layers[:4] == (True, False, True, False)
    assert original.max_context_length == 131072


def test_yarn_bounds_are_the_unrounded_reference_values() -> None:
    concentration, low, high = ModelConfig.from_dict(ORIGINAL_20B).yarn_parameters()
    assert concentration == pytest.approx(1.3465735902799727, abs=1e-12)
    assert low == pytest.approx(8.092779115512402, abs=1e-9)
    assert high == pytest.approx(17.39802450158856, abs=1e-9)


def test_round_trips_through_both_writers() -> None:
    config = ModelConfig.from_dict(ORIGINAL_20B)
    assert config.to_original_dict() == ORIGINAL_20B
    assert ModelConfig.from_dict(config.to_hf_dict(mxfp4=True)) == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model_type": "llama", "num_hidden_layers": 2}, "not a gpt-oss config"),
        ({k: v for k, v in ORIGINAL_20B.items() if k != "num_experts"}, "missing num_experts"),
        ({**ORIGINAL_20B, "experts_per_token": 64}, "exceeds num_experts"),
        ({**ORIGINAL_20B, "num_key_value_heads": 7}, "multiple of"),
        ({**ORIGINAL_20B, "hidden_size": "big"}, "integer"),
        ({**HF_COMMON, "rope_scaling": {**ROPE, "rope_type": "linear"}}, "rope_type"),
        ({**HF_COMMON, "rope_scaling": {**ROPE, "truncate": True}}, "truncate"),
        ({**HF_COMMON, "layer_types": ["sliding_attention"]}, "layer_types"),
    ],
)
def test_rejects_with_a_clear_config_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(raw)


def test_from_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json"):
        ModelConfig.from_json(path)
    path.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        ModelConfig.from_json(path)


# ---------------------------------------------------------------------------------------------------- issue 15
# Every malformed value is a ConfigError (a CheckpointError) naming the file and the key, never another exception.
@pytest.mark.parametrize(
    ("text", "key"),
    [
        # non-finite numbers: OverflowError (int(inf)) before
        (json.dumps({**ORIGINAL_20B, "rope_scaling_factor": float("inf")}), "rope_scaling_factor"),
        (json.dumps(ORIGINAL_20B).replace('"hidden_size": 2880', '"hidden_size": 1e400'), "hidden_size"),
        # NaN loaded silently before; the model then printed "!!!!"
        (json.dumps({**ORIGINAL_20B, "rope_theta": float("nan")}), "rope_theta"),
        (json.dumps({**HF_COMMON, "swiglu_limit": float("nan"), "rope_scaling": ROPE}), "swiglu_limit"),
        (json.dumps({**HF_COMMON, "rope_scaling": {**ROPE, "factor": float("-inf")}}), "rope_scaling.factor"),
        # a string where an object belongs: AttributeError before
        (json.dumps({**HF_COMMON, "rope_scaling": "yarn"}), "rope_scaling"),
        # zero heads and no head_dim: ZeroDivisionError before
        (
            json.dumps({**{k: v for k, v in HF_COMMON.items() if k != "head_dim"}, "num_attention_heads": 0}),
            "num_attention_heads",
        ),
        # a float where an integer belongs: read as 4 before
        (json.dumps({**HF_COMMON, "num_local_experts": 4.7}), "num_local_experts"),
        # more digits than int() accepts: ValueError outside the handled types before
        (json.dumps(ORIGINAL_20B).replace('"vocab_size": 201088', '"vocab_size": ' + "9" * 5000), None),
        # nesting: RecursionError before
        (json.dumps({**HF_COMMON, "extra": None}).replace("null", "[" * 100_000 + "]" * 100_000), None),
    ],
)
def test_malformed_values_are_checkpoint_errors_naming_file_and_key(tmp_path: Path, text: str, key: str | None) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(CheckpointError) as info:
        ModelConfig.from_json(path)
    assert isinstance(info.value, ConfigError) and info.value.path == path and str(path) in str(info.value)
    assert info.value.key == key
    if key is not None:
        assert repr(key) in str(info.value)


def test_non_finite_values_are_refused_when_built_directly() -> None:
    config = ModelConfig.from_dict(ORIGINAL_20B)
    for key in ("rope_theta", "swiglu_limit", "rope_scaling_factor", "rms_norm_eps"):
        with pytest.raises(ConfigError, match=key):
            config.replace(**{key: float("nan")})
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        config.replace(num_hidden_layers=10**9)  # would build a billion-entry layer list


def test_a_config_error_is_a_checkpoint_error() -> None:
    assert issubclass(ConfigError, CheckpointError)
