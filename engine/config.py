"""gpt-oss model configuration, read from any of the config.json spellings in circulation.

Three spellings exist (docs/model.md#config-spellings, docs/model.md#pitfall-config-key-drift):
- OpenAI's ``original/config.json``: exactly 16 ``ModelConfig`` fields (``num_experts``, ``rope_ntk_beta``, ...).
- Hugging Face ``config.json`` with ``rope_scaling`` (transformers 4.55).
- Hugging Face ``config.json`` with ``rope_parameters`` (transformers >= 5), ``rope_theta`` inside it.
All are normalised into one frozen :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_oss_desktop.engine.errors import ConfigError
from gpt_oss_desktop.engine.input_files import read_json
from gpt_oss_desktop.kernels.mxfp4 import MXFP4_BLOCK  # values per MXFP4 scale group

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


# A real config.json is ~2 KB; anything this large is not one (and is not read into memory).
MAX_CONFIG_BYTES = 4 * 1024 * 1024

# Upper bounds on sizes, far above any real model (gpt-oss-120b: 36 layers, 128 experts, 201,088 tokens, 131,072
# positions). They keep a malformed config from building, say, a billion-entry layer list before a shape check
# could say what is wrong.
SIZE_LIMITS: dict[str, int] = {
    "num_hidden_layers": 4096,
    "num_experts": 1 << 16,
    "experts_per_token": 1 << 16,
    "vocab_size": 1 << 24,
    "hidden_size": 1 << 20,
    "intermediate_size": 1 << 20,
    "head_dim": 1 << 16,
    "num_attention_heads": 1 << 16,
    "num_key_value_heads": 1 << 16,
    "sliding_window": 1 << 24,
    "initial_context_length": 1 << 24,
    "max_context_length": 1 << 24,
}

# Float fields and the open lower bound each must exceed (all must be finite). rope_theta is a logarithm's base
# (YaRN divides by log(rope_theta)), so it must exceed 1; the others are scales, betas and limits.
FLOAT_LOWER_BOUNDS: dict[str, float] = {
    "rope_theta": 1.0,
    "rope_scaling_factor": 0.0,
    "rope_ntk_alpha": 0.0,
    "rope_ntk_beta": 0.0,
    "swiglu_limit": 0.0,
    "swiglu_alpha": 0.0,
    "rms_norm_eps": 0.0,
}


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
                raise ConfigError(f"must be a positive integer, got {value!r}", key=name)
        window = self.sliding_window
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ConfigError(f"must be an integer >= 0, got {window!r}", key="sliding_window")
        for name, limit in SIZE_LIMITS.items():
            if getattr(self, name) > limit:
                raise ConfigError(f"{getattr(self, name)} is implausibly large (at most {limit})", key=name)
        for name, lower in FLOAT_LOWER_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"must be a number, got {value!r}", key=name)
            if not math.isfinite(value) or value <= lower:
                # NaN here would not fail loudly: the model would run and print garbage ("!!!!").
                raise ConfigError(f"must be a finite number > {lower:g}, got {value!r}", key=name)
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
            # Reference rule: even layers (0, 2, ...) slide, odd layers are full (docs/model.md#sliding-window).
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

    def kv_cache_bytes(self, context: int, element_bytes: int = 2) -> int:
        """Bytes of K and V one sequence of ``context`` tokens keeps: the sliding layers their window only."""
        rows = sum(min(context, self.window_for_layer(layer)) or context for layer in range(self.num_hidden_layers))
        return rows * 2 * self.kv_size * element_bytes  # K and V, [Hkv, D] each per row

    def kv_bytes_per_token(self, element_bytes: int = 2) -> int:
        """What one more token costs once the context is past every window: the full-attention layers' K and V."""
        full_layers = sum(1 for layer in range(self.num_hidden_layers) if self.window_for_layer(layer) == 0)
        return full_layers * 2 * self.kv_size * element_bytes

    # ----------------------------------------------------------------------------------------------- parsing
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: Path | str | None = None) -> ModelConfig:
        """Build a config from any known spelling; raise :class:`ConfigError` naming the key for anything else."""
        try:
            if not isinstance(raw, Mapping):
                raise ConfigError(f"must hold a JSON object, not {type(raw).__name__}")
            fields = _Fields(raw)
            if "num_local_experts" in raw or raw.get("model_type") is not None or "architectures" in raw:
                return cls._from_hf(fields)
            return cls._from_original(fields)
        except ConfigError as exc:
            if exc.path is None and source is not None:
                raise ConfigError(exc.reason, source, exc.key) from None
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
            # A safety net: every value is checked explicitly above, but a malformed file must never escape as
            # anything other than a ConfigError.
            raise ConfigError(f"malformed gpt-oss config ({type(exc).__name__}: {exc})", source) from None

    @classmethod
    def from_json(cls, path: Path | str) -> ModelConfig:
        path = Path(path)
        raw = read_json(path, MAX_CONFIG_BYTES, error=ConfigError)
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold a JSON object", path)
        return cls.from_dict(raw, path)

    @classmethod
    def _from_original(cls, f: _Fields) -> ModelConfig:
        missing = [key for key in ORIGINAL_CONFIG_KEYS if key not in f.raw]
        if missing:
            raise ConfigError("not a gpt-oss config: missing " + ", ".join(missing))
        initial = f.integer("initial_context_length", high=SIZE_LIMITS["initial_context_length"])
        factor = f.number("rope_scaling_factor", above=0.0)
        return cls(
            num_hidden_layers=f.size("num_hidden_layers"),
            num_experts=f.size("num_experts"),
            experts_per_token=f.size("experts_per_token"),
            vocab_size=f.size("vocab_size"),
            hidden_size=f.size("hidden_size"),
            intermediate_size=f.size("intermediate_size"),
            head_dim=f.size("head_dim"),
            num_attention_heads=f.size("num_attention_heads"),
            num_key_value_heads=f.size("num_key_value_heads"),
            sliding_window=f.integer("sliding_window", low=0, high=SIZE_LIMITS["sliding_window"]),
            initial_context_length=initial,
            rope_theta=f.number("rope_theta", above=1.0),
            rope_scaling_factor=factor,
            rope_ntk_alpha=f.number("rope_ntk_alpha", above=0.0),
            rope_ntk_beta=f.number("rope_ntk_beta", above=0.0),
            swiglu_limit=f.number("swiglu_limit", above=0.0),
            max_context_length=_scaled_context(initial, factor, "rope_scaling_factor"),
        )

    @classmethod
    def _from_hf(cls, f: _Fields) -> ModelConfig:
        raw = f.raw
        model_type = raw.get("model_type")
        archs = raw.get("architectures") or []
        if not isinstance(archs, list):
            raise ConfigError(f"must be a list of class names, got {archs!r}", key="architectures")
        if model_type != "gpt_oss" and "GptOssForCausalLM" not in archs:
            raise ConfigError(f"not a gpt-oss config (model_type={model_type!r}, architectures={archs!r})")
        rope_key = "rope_parameters" if raw.get("rope_parameters") else "rope_scaling"
        rope = f.section(rope_key)
        rope_type = rope.raw.get("rope_type", rope.raw.get("type", "yarn"))
        if rope_type != "yarn":
            raise ConfigError(f"unsupported rope_type {rope_type!r}; gpt-oss uses yarn", key=f"{rope_key}.rope_type")
        truncate = rope.raw.get("truncate", False)
        if not isinstance(truncate, bool):
            raise ConfigError(f"must be true or false, got {truncate!r}", key=f"{rope_key}.truncate")
        if truncate:
            # gpt-oss needs the unrounded YaRN correction range (docs/model.md#pitfall-unrounded-yarn).
            raise ConfigError("rope truncate=true is not gpt-oss's YaRN (bounds must stay unrounded)")
        theta = rope.number("rope_theta", above=1.0) if "rope_theta" in rope.raw else None
        if theta is None:
            theta = f.number("rope_theta", above=1.0, default=150000.0)
        initial_limit = SIZE_LIMITS["initial_context_length"]
        if rope.raw.get("original_max_position_embeddings") is not None:
            initial = rope.integer("original_max_position_embeddings", high=initial_limit)
        else:
            initial = f.integer("initial_context_length", high=initial_limit, default=4096)
        factor = rope.number("factor", above=0.0, default=32.0)
        layers = f.size("num_hidden_layers")
        sliding = _layer_types(raw.get("layer_types"))
        experts_key = "num_local_experts" if "num_local_experts" in raw else "num_experts"
        top_k_key = "num_experts_per_tok" if "num_experts_per_tok" in raw else "experts_per_token"
        if experts_key not in raw or top_k_key not in raw:
            raise ConfigError("not a gpt-oss config: missing num_local_experts/num_experts_per_tok")
        hidden_act = raw.get("hidden_act")
        if hidden_act not in ("silu", None):
            raise ConfigError(f"unexpected value {hidden_act!r}", key="hidden_act")
        if raw.get("tie_word_embeddings", False):
            raise ConfigError("gpt-oss has an untied unembedding; tie_word_embeddings=true is not gpt-oss")
        hidden = f.size("hidden_size")
        heads = f.size("num_attention_heads")
        if raw.get("head_dim") is not None:
            head_dim = f.size("head_dim")
        elif hidden % heads:
            raise ConfigError(f"absent, and hidden_size {hidden} is not a multiple of {heads} heads", key="head_dim")
        else:
            head_dim = hidden // heads
        window = f.integer("sliding_window", low=0, high=SIZE_LIMITS["sliding_window"], default=0)
        if raw.get("max_position_embeddings") is not None:
            max_context = f.integer("max_position_embeddings", high=SIZE_LIMITS["max_context_length"])
        else:
            max_context = _scaled_context(initial, factor, f"{rope_key}.factor")
        return cls(
            num_hidden_layers=layers,
            num_experts=f.size(experts_key, limit="num_experts"),
            experts_per_token=f.size(top_k_key, limit="experts_per_token"),
            vocab_size=f.size("vocab_size"),
            hidden_size=hidden,
            intermediate_size=f.size("intermediate_size"),
            head_dim=head_dim,
            num_attention_heads=heads,
            num_key_value_heads=f.size("num_key_value_heads"),
            sliding_window=window,
            initial_context_length=initial,
            rope_theta=theta,
            rope_scaling_factor=factor,
            rope_ntk_alpha=rope.number("beta_slow", above=0.0, default=1.0),
            rope_ntk_beta=rope.number("beta_fast", above=0.0, default=32.0),
            swiglu_limit=f.number("swiglu_limit", above=0.0, default=7.0),
            swiglu_alpha=f.number("swiglu_alpha", above=0.0, default=1.702),
            rms_norm_eps=f.number("rms_norm_eps", above=0.0, default=1e-5),
            max_context_length=max_context,
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
        """(concentration, low, high) of the YaRN NTK-by-parts correction, unrounded (docs/model.md#rope-and-yarn)."""
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


_REQUIRED: Any = object()


class _Fields:
    """Typed reads of one JSON object's keys; every bad value is a :class:`ConfigError` naming its key.

    ``prefix`` names the object inside config.json (``rope_scaling.``), so errors read ``rope_scaling.factor``.
    """

    def __init__(self, raw: Mapping[str, Any], prefix: str = "") -> None:
        self.raw = raw
        self.prefix = prefix

    def _value(self, key: str, default: Any) -> Any:
        value = self.raw.get(key)
        if value is None:
            if default is _REQUIRED:
                raise ConfigError("missing" if key not in self.raw else "must not be null", key=self.prefix + key)
            return default
        return value

    def integer(self, key: str, *, low: int = 1, high: int, default: Any = _REQUIRED) -> int:
        """An integer in [low, high]. ``4.0`` is read as 4, but ``4.7`` (or ``"4"``, ``true``) is an error."""
        value = self._value(key, default)
        name = self.prefix + key
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"must be an integer, got {value!r}", key=name)
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ConfigError(f"must be an integer, got {value!r}", key=name)
        number = int(value)
        if number < low:
            raise ConfigError(f"must be at least {low}, got {number}", key=name)
        if number > high:
            raise ConfigError(f"{number} is implausibly large (at most {high})", key=name)
        return number

    def size(self, key: str, *, limit: str | None = None) -> int:
        """A positive size, bounded by :data:`SIZE_LIMITS` (of ``limit``, the canonical name, or ``key``)."""
        return self.integer(key, high=SIZE_LIMITS[limit or key])

    def number(self, key: str, *, above: float, default: Any = _REQUIRED) -> float:
        """A finite number greater than ``above`` (NaN and infinities are refused, not propagated)."""
        value = self._value(key, default)
        name = self.prefix + key
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"must be a number, got {value!r}", key=name)
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(f"{value} is too large for a number", key=name) from None
        if not math.isfinite(number):
            raise ConfigError(f"must be a finite number, got {value!r}", key=name)
        if number <= above:
            raise ConfigError(f"must be greater than {above:g}, got {value!r}", key=name)
        return number

    def section(self, key: str) -> _Fields:
        """A nested object (absent or null reads as empty); a string or list there is an error."""
        value = self.raw.get(key)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a JSON object, got {value!r}", key=self.prefix + key)
        return _Fields(value, f"{self.prefix}{key}.")


def _layer_types(value: Any) -> tuple[bool, ...]:
    """HF ``layer_types`` (list of "sliding_attention"/"full_attention") as per-layer "slides" flags."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"must be a list of layer types, got {value!r}", key="layer_types")
    known = {"sliding_attention": True, "full_attention": False}
    sliding = []
    for item in value:
        if not isinstance(item, str) or item not in known:
            raise ConfigError(f"unknown layer type {item!r}", key="layer_types")
        sliding.append(known[item])
    return tuple(sliding)


def _scaled_context(initial: int, factor: float, factor_key: str) -> int:
    """``initial * max(factor, 1)`` positions, refused (naming ``factor_key``) when implausibly many."""
    limit = SIZE_LIMITS["max_context_length"]
    scaled = initial * max(factor, 1.0)  # finite: both operands are finite and bounded above
    if scaled > limit:
        raise ConfigError(f"{factor:g} x {initial} positions is implausibly many (at most {limit})", key=factor_key)
    return int(scaled)
