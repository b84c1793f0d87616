"""One typed signature per hot op of the model: the Protocols every backend implements.

The engine's backends (``engine.ops``: ``cpu``, the torch references with the fused C++ kernels swapped in where they
fit, and ``triton``) are bundles of functions, one per op. Each bundle field is typed with the Protocol below, so mypy
checks every implementation (the ``*_ref`` references, the Triton kernels, the CPU dispatchers) against this one
definition: a parameter added, dropped, renamed or retyped in one backend is a type error, not a runtime surprise.

Implementations may take more than the Protocol asks, as long as it is optional (the Triton kernels' keyword-only
``out=`` buffers, ``router_ref``'s ``linear=``); they may not take less. Shapes and semantics are documented on the
references (``kernels.rmsnorm``, ``kernels.rope``, ``kernels.attention``, ``kernels.router``, ``kernels.moe``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from gpt_oss_desktop.kernels.bf16_packed import PackedBf16Weight
    from gpt_oss_desktop.kernels.moe import ExpertWeights
    from gpt_oss_desktop.kernels.q8 import Q8Weight

__all__ = [
    "AddRmsNorm",
    "Attention",
    "AttentionDecode",
    "Linear",
    "Moe",
    "Projection",
    "RmsNorm",
    "Rope",
    "Router",
    "Unembed",
]


class RmsNorm(Protocol):
    """``rmsnorm_ref``: x ``[..., H]`` normalised and scaled by ``scale [H]``, in x's dtype."""

    def __call__(self, x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor: ...


class AddRmsNorm(Protocol):
    """``add_rmsnorm_ref``: ``(x + delta, rmsnorm(x + delta))``, the sum rounded to the dtype first."""

    def __call__(
        self, x: torch.Tensor, delta: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class Rope(Protocol):
    """``rope_ref``: rotate-half RoPE of x ``[T, heads, D]`` by ``cos``/``sin`` ``[T, D/2]``."""

    def __call__(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor: ...


class Attention(Protocol):
    """``attention_ref``: prefill attention with learned sinks, by positions (optional sliding ``window``)."""

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        sinks: torch.Tensor,
        q_pos: torch.Tensor,
        k_pos: torch.Tensor,
        window: int,
        sm_scale: float,
    ) -> torch.Tensor: ...


class AttentionDecode(Protocol):
    """``attention_decode_ref``: one query per sequence, read straight from the KV cache store."""

    def __call__(
        self,
        q: torch.Tensor,
        k_store: torch.Tensor,
        v_store: torch.Tensor,
        sinks: torch.Tensor,
        slots: torch.Tensor,
        lengths: torch.Tensor,
        window: int,
        ring: bool,
        sm_scale: float,
    ) -> torch.Tensor: ...


class Router(Protocol):
    """``router_ref``: top-``k`` experts per token, ``(weights fp32 [T, k], indices int64 [T, k])``."""

    def __call__(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class Moe(Protocol):
    """``moe_ref``: the MoE MLP (mlp1, SwiGLU, mlp2, routing-weighted sum) of x ``[T, H]``."""

    def __call__(
        self,
        x: torch.Tensor,
        routing_weights: torch.Tensor,
        expert_indices: torch.Tensor,
        mlp1: ExpertWeights,
        mlp1_bias: torch.Tensor,
        mlp2: ExpertWeights,
        mlp2_bias: torch.Tensor,
        swiglu_limit: float,
        swiglu_alpha: float,
    ) -> torch.Tensor: ...


class Linear(Protocol):
    """``F.linear``: ``x [T, K] @ weight [N, K].T + bias [N]``, in x's dtype.

    Positional-only, because ``F.linear`` itself names its first parameter ``input``.
    """

    def __call__(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, /) -> torch.Tensor: ...


class Projection(Protocol):
    """:class:`Linear` over the model's dense projections (attention qkv and out), whose weight is bf16/fp32, bf16 held
    in 12 bits on the CPU (``kernels.bf16_packed.PackedBf16Weight``) or, in the ``--weights q8`` load mode, 8-bit
    (``kernels.q8.Q8Weight``)."""

    def __call__(
        self, x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight, bias: torch.Tensor | None = None, /
    ) -> torch.Tensor: ...


class Unembed(Protocol):
    """The unembedding: fp32 logits ``[T, V]`` of x ``[T, H]`` against ``weight [V, H]`` (dense, packed or 8-bit)."""

    def __call__(self, x: torch.Tensor, weight: torch.Tensor | Q8Weight | PackedBf16Weight) -> torch.Tensor: ...
