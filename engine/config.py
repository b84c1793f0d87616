"""gpt-oss model configuration, read from any of the config.json spellings in circulation.

Three spellings exist (spec §1.1, pitfall 16):
- OpenAI's ``original/config.json``: exactly 16 ``ModelConfig`` fields (``num_experts``, ``rope_ntk_beta``, ...).
- Hugging Face ``config.json`` with ``rope_scaling`` (transformers 4.55).
- Hugging Face ``config.json`` with ``rope_parameters`` (transformers >= 5), ``rope_theta`` inside it.
All are normalised into one frozen :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_oss_desktop.engine.errors import ConfigError

# The 16 keys of OpenAI's original/config.json, in the order OpenAI writes them.
ORIGINAL_CONFIG_KEYS: tuple[str, ...] = (
    "num_hidden_layers",
    "num_experts",
    "experts_per_token",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "swiglu_limit",
    "head_dim",
    "num_attention_heads",
    "num_key_value_heads",
    "sliding_window",
    "initial_context_length",
    "rope_theta",
    "rope_scaling_factor",
    "rope_ntk_alpha",
    "rope_ntk_beta",
)

MXFP4_BLOCK = 32  # values per MXFP4 scale group (spec §3.1.2)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Architecture hyper-parameters of a gpt-oss model.

    ``sliding_layers[i]`` is True when layer ``i`` uses the banded (sliding-window) mask.
    """

    num_hidden_layers: int
    num_experts: int
    experts_per_token: int
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    head_dim: int
    num_attention_heads: int
    num_key_value_heads: int
    sliding_window: int
    initial_context_length: int = 4096
    rope_theta: float = 150000.0
    rope_scaling_factor: float = 32.0
    rope_ntk_alpha: float = 1.0
    rope_ntk_beta: float = 32.0
    swiglu_limit: float = 7.0
    swiglu_alpha: float = 1.702
    rms_norm_eps: float = 1e-5
    max_context_length: int = 131072
    sliding_layers: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        positive = (
            "num_hidden_layers",
            "num_experts",
            "experts_per_token",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "head_dim",
            "num_attention_heads",
            "num_key_value_heads",
            "initial_context_length",
            "max_context_length",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.sliding_window < 0:
            raise ConfigError(f"sliding_window must be >= 0, got {self.sliding_window}")
        if self.experts_per_token > self.num_experts:
            raise ConfigError(f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(f"head_dim must be even for rotate-half RoPE, got {self.head_dim}")
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % MXFP4_BLOCK:
                raise ConfigError(f"{name} must be a multiple of {MXFP4_BLOCK} (the MXFP4 group size)")
        if not self.sliding_layers:
            # Reference rule: even layers (0, 2, ...) slide, odd layers are full (spec §2.4 step 6).
            object.__setattr__(self, "sliding_layers", tuple(i % 2 == 0 for i in range(self.num_hidden_layers)))
        if len(self.sliding_layers) != self.num_hidden_layers:
            raise ConfigError(f"layer_types has {len(self.sliding_layers)} entries for {self.num_hidden_layers} layers")

    # ----------------------------------------------------------------------------------------------- derived sizes
    @property
    def q_size(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_key_value_heads * self.head_dim

    @property
    def qkv_size(self) -> int:
        return self.q_size + 2 * self.kv_size

    def window_for_layer(self, layer: int) -> int:
        """Number of keys a query sees on ``layer`` (including itself); 0 means unbounded."""
        return self.sliding_window if self.sliding_layers[layer] else 0

    # ----------------------------------------------------------------------------------------------- parsing
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: Path | str | None = None) -> ModelConfig:
        """Build a config from any known spelling; raise :class:`ConfigError` for anything else."""
        try:
            if "num_local_experts" in raw or raw.get("model_type") is not None or "architectures" in raw:
                return cls._from_hf(raw, source)
            return cls._from_original(raw, source)
        except ConfigError as exc:
            if exc.path is None and source is not None:
                raise ConfigError(str(exc), source) from None
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"malformed gpt-oss config: {exc}", source) from None

    @classmethod
    def from_json(cls, path: Path | str) -> ModelConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config.json not found", path) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config: {exc}", path) from None
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold a JSON object", path)
        return cls.from_dict(raw, path)

    @classmethod
    def _from_original(cls, raw: Mapping[str, Any], source: Path | str | None) -> ModelConfig:
        missing = [key for key in ORIGINAL_CONFIG_KEYS if key not in raw]
        if missing:
            raise ConfigError("not a gpt-oss config: missing " + ", ".join(missing), source)
        initial = int(raw["initial_context_length"])
        factor = float(raw["rope_scaling_factor"])
        return cls(
            num_hidden_layers=_int(raw, "num_hidden_layers"),
            num_experts=_int(raw, "num_experts"),
            experts_per_token=_int(raw, "experts_per_token"),
            vocab_size=_int(raw, "vocab_size"),
            hidden_size=_int(raw, "hidden_size"),
            intermediate_size=_int(raw, "intermediate_size"),
            head_dim=_int(raw, "head_dim"),
            num_attention_heads=_int(raw, "num_attention_heads"),
            num_key_value_heads=_int(raw, "num_key_value_heads"),
            sliding_window=_int(raw, "sliding_window"),
            initial_context_length=initial,
            rope_theta=float(raw["rope_theta"]),
            rope_scaling_factor=factor,
            rope_ntk_alpha=float(raw["rope_ntk_alpha"]),
            rope_ntk_beta=float(raw["rope_ntk_beta"]),
            swiglu_limit=float(raw["swiglu_limit"]),
            max_context_length=int(initial * max(factor, 1.0)),
        )

    @classmethod
    def _from_hf(cls, raw: Mapping[str, Any], source: Path | str | None) -> ModelConfig:
        model_type = raw.get("model_type")
        archs = raw.get("architectures") or []
        if model_type != "gpt_oss" and "GptOssForCausalLM" not in archs:
            raise ConfigError(f"not a gpt-oss config (model_type={model_type!r}, architectures={archs!r})", source)
        rope: Mapping[str, Any] = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "yarn"))
        if rope_type != "yarn":
            raise ConfigError(f"unsupported rope_type {rope_type!r}; gpt-oss uses yarn", source)
        if rope.get("truncate", False):
            # gpt-oss needs the unrounded YaRN correction range (spec pitfall 3).
            raise ConfigError("rope truncate=true is not gpt-oss's YaRN (bounds must stay unrounded)", source)
        theta = rope.get("rope_theta", raw.get("rope_theta", 150000.0))
        initial = int(rope.get("original_max_position_embeddings", raw.get("initial_context_length", 4096)))
        factor = float(rope.get("factor", 32.0))
        layers = _int(raw, "num_hidden_layers")
        layer_types = raw.get("layer_types")
        sliding: tuple[bool, ...] = ()
        if layer_types is not None:
            known = {"sliding_attention": True, "full_attention": False}
            try:
                sliding = tuple(known[t] for t in layer_types)
            except KeyError as exc:
                raise ConfigError(f"unknown layer type {exc.args[0]!r}", source) from None
        experts = raw.get("num_local_experts", raw.get("num_experts"))
        top_k = raw.get("num_experts_per_tok", raw.get("experts_per_token"))
        if experts is None or top_k is None:
            raise ConfigError("not a gpt-oss config: missing num_local_experts/num_experts_per_tok", source)
        for key in ("hidden_act",):
            if key in raw and raw[key] not in ("silu", None):
                raise ConfigError(f"unexpected {key}={raw[key]!r}", source)
        if raw.get("tie_word_embeddings", False):
            raise ConfigError("gpt-oss has an untied unembedding; tie_word_embeddings=true is not gpt-oss", source)
        return cls(
            num_hidden_layers=layers,
            num_experts=int(experts),
            experts_per_token=int(top_k),
            vocab_size=_int(raw, "vocab_size"),
            hidden_size=_int(raw, "hidden_size"),
            intermediate_size=_int(raw, "intermediate_size"),
            head_dim=int(raw.get("head_dim") or raw["hidden_size"] // raw["num_attention_heads"]),
            num_attention_heads=_int(raw, "num_attention_heads"),
            num_key_value_heads=_int(raw, "num_key_value_heads"),
            sliding_window=int(raw.get("sliding_window") or 0),
            initial_context_length=initial,
            rope_theta=float(theta),
            rope_scaling_factor=factor,
            rope_ntk_alpha=float(rope.get("beta_slow", 1.0)),
            rope_ntk_beta=float(rope.get("beta_fast", 32.0)),
            swiglu_limit=float(raw.get("swiglu_limit", 7.0)),
            swiglu_alpha=float(raw.get("swiglu_alpha", 1.702)),
            rms_norm_eps=float(raw.get("rms_norm_eps", 1e-5)),
            max_context_length=int(raw.get("max_position_embeddings") or initial * max(factor, 1.0)),
            sliding_layers=sliding,
        )

    # ----------------------------------------------------------------------------------------------- writing
    def to_original_dict(self) -> dict[str, Any]:
        """The 16-field ``original/config.json`` spelling."""
        out: dict[str, Any] = {key: getattr(self, key) for key in ORIGINAL_CONFIG_KEYS}
        for key in ("rope_theta", "rope_ntk_alpha", "rope_ntk_beta"):
            value = out[key]
            if float(value).is_integer():
                out[key] = int(value)  # OpenAI writes these as integers
        return out

    def to_hf_dict(self, *, mxfp4: bool) -> dict[str, Any]:
        """A transformers-compatible ``config.json`` (rope_parameters spelling, with rope_scaling mirrored)."""
        rope = {
            "rope_type": "yarn",
            "factor": self.rope_scaling_factor,
            "beta_fast": self.rope_ntk_beta,
            "beta_slow": self.rope_ntk_alpha,
            "truncate": False,
            "original_max_position_embeddings": self.initial_context_length,
            "rope_theta": self.rope_theta,
        }
        out: dict[str, Any] = {
            "architectures": ["GptOssForCausalLM"],
            "model_type": "gpt_oss",
            "num_hidden_layers": self.num_hidden_layers,
            "num_local_experts": self.num_experts,
            "num_experts_per_tok": self.experts_per_token,
            "experts_per_token": self.experts_per_token,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "head_dim": self.head_dim,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "sliding_window": self.sliding_window,
            "layer_types": ["sliding_attention" if s else "full_attention" for s in self.sliding_layers],
            "initial_context_length": self.initial_context_length,
            "max_position_embeddings": self.max_context_length,
            "rope_theta": self.rope_theta,
            "rope_parameters": rope,
            "rope_scaling": {k: v for k, v in rope.items() if k != "rope_theta"},
            "swiglu_limit": self.swiglu_limit,
            "swiglu_alpha": self.swiglu_alpha,
            "rms_norm_eps": self.rms_norm_eps,
            "attention_bias": True,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "tie_word_embeddings": False,
            # The real ids (<|return|>, <|endoftext|>); None for toy vocabularies, where transformers rejects them.
            "eos_token_id": 200002 if self.vocab_size > 200002 else None,
            "pad_token_id": 199999 if self.vocab_size > 199999 else None,
            "use_cache": True,
        }
        if mxfp4:
            out["quantization_config"] = {
                "quant_method": "mxfp4",
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
            }
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------------------------------------- YaRN
    def yarn_parameters(self) -> tuple[float, float, float]:
        """(concentration, low, high) of the YaRN NTK-by-parts correction, unrounded (spec §2.5)."""
        if self.rope_scaling_factor <= 1.0:
            return 1.0, 0.0, 0.0  # plain RoPE: no YaRN blending, no temperature
        concentration = 0.1 * math.log(self.rope_scaling_factor) + 1.0
        d_half = self.head_dim / 2
        low = (
            d_half
            * math.log(self.initial_context_length / (self.rope_ntk_beta * 2 * math.pi))
            / math.log(self.rope_theta)
        )
        high = (
            d_half
            * math.log(self.initial_context_length / (self.rope_ntk_alpha * 2 * math.pi))
            / math.log(self.rope_theta)
        )
        return concentration, low, high


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return int(value)
