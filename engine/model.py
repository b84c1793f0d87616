"""The gpt-oss transformer, written to read like docs/model.md#forward-pass.

One model definition serves every backend: the math of each hot op lives in ``kernels/`` (torch references that
the CPU path runs), reached through :mod:`engine.ops`.

Per block: ``x += Attn(RMSNorm(x))`` then ``x += MoE(RMSNorm(x))``; a final RMSNorm and an untied unembedding.
Precision: activations in ``dtype`` (bf16 by default); norms, softmax, routing weights and the MoE accumulation in
fp32; logits returned as fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.cpu_decode import CpuDecodeBlocks
from gpt_oss_desktop.engine.cuda_graph import decode_with_graph, graphs_requested
from gpt_oss_desktop.engine.errors import UnsupportedCheckpointError
from gpt_oss_desktop.engine.events import LoadProgress
from gpt_oss_desktop.engine.kv_cache import KVCache
from gpt_oss_desktop.engine.memory import release_file_pages
from gpt_oss_desktop.engine.ops import Ops, cpu_fused_enabled, select_ops
from gpt_oss_desktop.engine.weights_mode import DEFAULT_WEIGHTS, WeightsMode
from gpt_oss_desktop.kernels import bf16_packed, cpu_q8
from gpt_oss_desktop.kernels.bf16_packed import PackedBf16Weight
from gpt_oss_desktop.kernels.moe import DenseExperts, ExpertWeights, Mxfp4Experts
from gpt_oss_desktop.kernels.q8 import Q8_BLOCK, Q8Weight, quantize_q8, quantize_rows_ref
from gpt_oss_desktop.kernels.rope import rope_cos_sin, yarn_inv_freq

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttentionWeights:
    norm: torch.Tensor  # [H] fp32
    qkv_weight: torch.Tensor | Q8Weight | PackedBf16Weight  # [q + 2kv, H]; 12-bit on CPU, 8-bit in the q8 mode
    qkv_bias: torch.Tensor  # [q + 2kv]
    sinks: torch.Tensor  # [Hq] fp32
    out_weight: torch.Tensor | Q8Weight | PackedBf16Weight  # [H, q]; 12-bit on CPU, 8-bit in the q8 mode
    out_bias: torch.Tensor  # [H]


@dataclass(frozen=True)
class MoEWeights:
    norm: torch.Tensor  # [H] fp32
    gate_weight: torch.Tensor  # [E, H]
    gate_bias: torch.Tensor  # [E]
    mlp1: ExpertWeights  # [E, 2I, H]
    mlp1_bias: torch.Tensor  # [E, 2I]
    mlp2: ExpertWeights  # [E, H, I]
    mlp2_bias: torch.Tensor  # [E, H]


@dataclass(frozen=True)
class BlockWeights:
    attn: AttentionWeights
    mlp: MoEWeights


class Model:
    """A loaded gpt-oss model: weights, RoPE tables and the forward passes the generator needs.

    Build it with :func:`engine.load_model`; the constructor takes canonical (original-layout) tensor names.
    """

    def __init__(
        self,
        config: ModelConfig,
        tensors: Mapping[str, torch.Tensor],
        device: torch.device,
        dtype: torch.dtype,
        on_progress: LoadProgress | None = None,
        weights: WeightsMode = DEFAULT_WEIGHTS,
    ) -> None:
        """``on_progress(fraction, text)`` is called after each block; an exception it raises (e.g.
        :class:`engine.errors.LoadCancelled`) aborts the construction, which is how a load is cancelled.
        ``weights="q8"`` quantises the attention qkv/out weights and the unembedding to 8 bits (engine.weights_mode)."""
        self.config = config
        self.device = device
        self.dtype = dtype
        self.weights: WeightsMode = weights
        self.ops: Ops = select_ops(device)
        # Batch-1 decode by CUDA-graph replay (engine/cuda_graph.py): GPTOSS_CUDA_GRAPH, default on for CUDA only.
        # Turned off for good by the first capture that fails (the model then decodes eagerly).
        self.cuda_graphs = graphs_requested(device)

        def dense(name: str) -> torch.Tensor:
            return _to(tensors[name], device, dtype)

        def fp32(name: str) -> torch.Tensor:
            return _to(tensors[name], device, torch.float32)

        def projection(name: str) -> torch.Tensor | Q8Weight | PackedBf16Weight:
            if weights == "bf16":
                return packed_or_dense(name)
            # Quantised where the checkpoint tensor is (mapped from the file on CPU), then moved: no full-size copy in
            # the model dtype is made. Its file pages, read once here, are then dropped from this process's RSS.
            source = tensors[name]
            if source.shape[-1] % Q8_BLOCK:
                raise UnsupportedCheckpointError(
                    f"8-bit weights need rows of a multiple of {Q8_BLOCK} values, this one has {source.shape[-1]}",
                    tensor=name,
                )
            rows = cpu_q8.quantize_rows if source.device.type == "cpu" and cpu_fused_enabled() else quantize_rows_ref
            q = quantize_q8(source, done_rows=_release_rows, quantize_rows=rows)
            return Q8Weight(values=q.values.to(device), scales=q.scales.to(device))

        # The CPU backend's bf16 projections are held in 12 bits (kernels.bf16_packed, lossless: the GEMV gives the
        # same bits), which decode streams 25% faster; the checkpoint's pages, read once here, are then released.
        pack_bf16 = self.ops.name == "cpu" and device.type == "cpu" and dtype == torch.bfloat16
        pack_bf16 = pack_bf16 and cpu_fused_enabled() and bf16_packed.packing_wanted()

        def packed_or_dense(name: str) -> torch.Tensor | PackedBf16Weight:
            weight = dense(name)
            if not pack_bf16 or weight.dim() != 2:
                return weight
            packed = bf16_packed.pack(weight)
            if packed is None:
                return weight
            _release_rows(weight)
            return packed

        def experts(prefix: str) -> ExpertWeights:
            if f"{prefix}.blocks" in tensors:
                return Mxfp4Experts(
                    blocks=_to(tensors[f"{prefix}.blocks"], device, torch.uint8),
                    scales=_to(tensors[f"{prefix}.scales"], device, torch.uint8),
                )
            return DenseExperts(weight=dense(prefix))

        # Copies to a GPU take seconds per GB, so progress is reported per block (on CPU the weights stay mapped).
        layers = config.num_hidden_layers

        def report(done: int) -> None:
            if on_progress is not None:
                on_progress(done / (layers + 2), f"Loading layer {min(done, layers)} of {layers}")

        self.embedding = dense("embedding.weight")  # [V, H]
        report(0)
        self.blocks: list[BlockWeights] = []
        for n in range(config.num_hidden_layers):
            p = f"block.{n}"
            self.blocks.append(
                BlockWeights(
                    attn=AttentionWeights(
                        norm=fp32(f"{p}.attn.norm.scale"),
                        qkv_weight=projection(f"{p}.attn.qkv.weight"),
                        qkv_bias=dense(f"{p}.attn.qkv.bias"),
                        sinks=fp32(f"{p}.attn.sinks"),
                        out_weight=projection(f"{p}.attn.out.weight"),
                        out_bias=dense(f"{p}.attn.out.bias"),
                    ),
                    mlp=MoEWeights(
                        norm=fp32(f"{p}.mlp.norm.scale"),
                        gate_weight=dense(f"{p}.mlp.gate.weight"),
                        gate_bias=dense(f"{p}.mlp.gate.bias"),
                        mlp1=experts(f"{p}.mlp.mlp1_weight"),
                        mlp1_bias=dense(f"{p}.mlp.mlp1_bias"),
                        mlp2=experts(f"{p}.mlp.mlp2_weight"),
                        mlp2_bias=dense(f"{p}.mlp.mlp2_bias"),
                    ),
                )
            )
            report(n + 1)
        self.norm = fp32("norm.scale")
        self.unembedding = projection("unembedding.weight")  # [V, H]
        report(layers + 2)

        concentration, low, high = config.yarn_parameters()
        self._inv_freq = yarn_inv_freq(config.head_dim, config.rope_theta, config.rope_scaling_factor, low, high).to(
            device
        )
        self._concentration = concentration
        self._rope_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._sm_scale = config.head_dim**-0.5
        self._cpu_decode: CpuDecodeBlocks | None = None  # packed on the first CPU decode step

    # --------------------------------------------------------------------------------------------- public API
    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> KVCache:
        """A fresh cache with ``batch_size`` slots of up to ``max_context`` tokens each."""
        capacity = max_context if max_context is not None else self.config.max_context_length
        return KVCache(self.config, batch_size, capacity, self.device, self.dtype)

    @torch.inference_mode()
    def logits(self, token_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Full forward of one sequence from position 0 with no cache: fp32 logits ``[T, V]`` (for testing)."""
        return self._unembed(self.forward_hidden(self._as_ids(token_ids)))

    def forward_hidden(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden states of a batch of equal-length sequences from position 0, no cache.

        ``token_ids`` ``[T]`` or ``[B, T]`` -> ``[T, H]`` or ``[B, T, H]``. Not under inference_mode, so it is
        differentiable when the weights require grad (the demo model is trained through it, tools/demo/train.py).
        """
        ids = token_ids if token_ids.dim() == 2 else token_ids.reshape(1, -1)
        batch, length = ids.shape
        positions = torch.arange(length, device=self.device)
        cfg = self.config

        def attend(layer: int, attn: AttentionWeights, t: torch.Tensor) -> torch.Tensor:
            # Sequences are independent, so fold the batch into the head axis and run one attention call:
            # [B*T, heads, D] -> [T, B*heads, D]. Query head b*Hq + h then reads KV head b*Hkv + h // G, the GQA
            # rule within each sequence; every sequence shares positions 0..T-1.
            q, k, v = self._qkv(attn, t, positions.repeat(batch))

            def fold(x: torch.Tensor) -> torch.Tensor:
                return x.view(batch, length, -1, cfg.head_dim).transpose(0, 1).reshape(length, -1, cfg.head_dim)

            window = cfg.window_for_layer(layer)
            sinks = attn.sinks.repeat(batch)  # [B*Hq]
            o = self.ops.attention(fold(q), fold(k), fold(v), sinks, positions, positions, window, self._sm_scale)
            o = o.view(length, batch, -1, cfg.head_dim).transpose(0, 1).reshape(batch * length, -1, cfg.head_dim)
            return self._project_out(attn, o)  # [B*T, H]

        normed = self._run_blocks(self.embedding[ids.reshape(-1)], attend)  # [B*T, H]
        return normed.view(batch, length, -1) if token_ids.dim() == 2 else normed

    @torch.inference_mode()
    def prefill(self, token_ids: Sequence[int], cache: KVCache, slot: int = 0) -> torch.Tensor:
        """Append ``token_ids`` to ``slot`` and return fp32 logits ``[V]`` of the last one."""
        ids = self._as_ids(token_ids)
        if ids.numel() == 0:
            raise ValueError("prefill needs at least one token")
        start = cache.length(slot)
        cache.reserve(slot, ids.numel())
        positions = torch.arange(start, start + ids.numel(), device=self.device)

        def attend(layer: int, attn: AttentionWeights, t: torch.Tensor) -> torch.Tensor:
            return self._attention_cached(layer, attn, t, positions, cache, slot)

        normed = self._run_blocks(self.embedding[ids], attend)
        cache.commit(slot, [int(t) for t in ids.tolist()])
        cache.snapshot(slot)
        return self._unembed(normed[-1:])[0]

    @torch.inference_mode()
    def decode(self, token_ids: Sequence[int], cache: KVCache, slots: Sequence[int]) -> torch.Tensor:
        """One new token for each of ``slots`` (in one batch): fp32 logits ``[len(slots), V]``."""
        if len(token_ids) != len(slots):
            raise ValueError(f"{len(token_ids)} tokens for {len(slots)} slots")
        if len(slots) == 1 and self.cuda_graphs:
            token = int(token_ids[0])
            if not 0 <= token < self.config.vocab_size:
                raise ValueError(f"token id out of range [0, {self.config.vocab_size})")
            replayed = decode_with_graph(self, cache, slots[0], token)
            if replayed is not None:
                return replayed[None]
        ids = self._as_ids(token_ids)
        for slot in slots:
            cache.reserve(slot, 1)
        positions = torch.tensor([cache.length(s) for s in slots], device=self.device)
        slot_index = torch.as_tensor(list(slots), device=self.device)
        logits = self.decode_forward(ids, positions, slot_index, cache)
        for slot, token in zip(slots, ids.tolist(), strict=True):
            cache.commit(slot, [int(token)])
        return logits

    def decode_forward(
        self, ids: torch.Tensor, positions: torch.Tensor, slot_index: torch.Tensor, cache: KVCache
    ) -> torch.Tensor:
        """The device half of :meth:`decode`: fp32 logits ``[B, V]`` for token ``ids[b]`` at ``positions[b]`` of slot
        ``slot_index[b]`` (int64 ``[B]`` tensors on the model's device), writing their K/V into ``cache``.

        No host bookkeeping and no host sync (with the Triton ops): the cache must already have room (``reserve``)
        and the caller commits the tokens. This is what a CUDA graph captures (engine/cuda_graph.py)."""

        def attend(layer: int, attn: AttentionWeights, t: torch.Tensor) -> torch.Tensor:
            return self._attention_decode(layer, attn, t, positions, cache, slot_index)

        x = self.embedding[ids]
        normed = self._decode_blocks_in_one_call(x, positions, slot_index, cache)
        if normed is None:
            normed = self._run_blocks(x, attend)
        return self._unembed(normed)

    def reset_rope_cache(self) -> None:
        """Forget the RoPE tables kept for the last positions tensor (a graph capture must compute its own)."""
        self._rope_cache = None

    @property
    def nbytes(self) -> int:
        """Bytes of weights the model holds (MXFP4 experts counted packed)."""
        total = self.embedding.nbytes + self.unembedding.nbytes + self.norm.nbytes
        for block in self.blocks:
            a, m = block.attn, block.mlp
            total += sum(t.nbytes for t in (a.norm, a.qkv_weight, a.qkv_bias, a.sinks, a.out_weight, a.out_bias))
            total += sum(t.nbytes for t in (m.norm, m.gate_weight, m.gate_bias, m.mlp1_bias, m.mlp2_bias))
            total += m.mlp1.nbytes + m.mlp2.nbytes
        return total

    # --------------------------------------------------------------------------------------------- internals
    def _as_ids(self, token_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(token_ids, dtype=torch.long, device=self.device).reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"token id out of range [0, {self.config.vocab_size})")
        return ids

    def _run_blocks(
        self, x: torch.Tensor, attend: Callable[[int, AttentionWeights, torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """The residual stream through every block; returns the final-normed hidden states ``[T, H]``.

        Each residual add is fused with the norm that follows it (the next block's, or the final one), so the
        stream is read and written once per sub-layer. ``attend(layer, attn, normed)`` returns the projected
        attention output ``[T, H]`` for that layer.
        """
        eps = self.config.rms_norm_eps
        normed = self.ops.rmsnorm(x, self.blocks[0].attn.norm, eps)
        for layer, block in enumerate(self.blocks):
            x, normed = self.ops.add_rmsnorm(x, attend(layer, block.attn, normed), block.mlp.norm, eps)
            next_norm = self.blocks[layer + 1].attn.norm if layer + 1 < len(self.blocks) else self.norm
            x, normed = self.ops.add_rmsnorm(x, self._moe(block.mlp, normed), next_norm, eps)
        return normed

    def _qkv(
        self, attn: AttentionWeights, t: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Projections of the normed ``t`` with RoPE: q ``[T, Hq, D]``, k and v ``[T, Hkv, D]``."""
        cfg = self.config
        qkv = self.ops.linear(t, attn.qkv_weight, attn.qkv_bias)  # [T, q + 2kv]
        q, k, v = qkv.split((cfg.q_size, cfg.kv_size, cfg.kv_size), dim=-1)
        q = q.reshape(-1, cfg.num_attention_heads, cfg.head_dim)  # [T, Hq, D]
        k = k.reshape(-1, cfg.num_key_value_heads, cfg.head_dim)  # [T, Hkv, D]
        v = v.reshape(-1, cfg.num_key_value_heads, cfg.head_dim)
        cos, sin = self._rope_tables(positions)
        return self.ops.rope(q, cos, sin), self.ops.rope(k, cos, sin), v

    def _rope_tables(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin ``[T, D/2]`` for ``positions``. Every layer of one forward passes the same positions tensor, so
        the tables are computed once per forward, not once per layer (the last pair is kept with its tensor)."""
        cached = self._rope_cache
        if cached is not None and cached[0] is positions:
            return cached[1], cached[2]
        cos, sin = rope_cos_sin(positions, self._inv_freq, self._concentration)
        self._rope_cache = (positions, cos, sin)
        return cos, sin

    def _project_out(self, attn: AttentionWeights, o: torch.Tensor) -> torch.Tensor:
        return self.ops.linear(o.flatten(1), attn.out_weight, attn.out_bias)  # [T, Hq*D] -> [T, H]

    def _attention_cached(
        self,
        layer: int,
        attn: AttentionWeights,
        t: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        slot: int,
    ) -> torch.Tensor:
        q, k, v = self._qkv(attn, t, positions)
        start = int(positions[0])
        window = self.config.window_for_layer(layer)
        if window == 0:
            # Full layer: store first, then attend over the cache prefix (a view, no copy).
            cache.write(layer, slot, start, k, v)
            keys, values, key_pos = cache.history(layer, slot, start + k.shape[0])
        else:
            # Ring layer: read the older positions before this chunk overwrites them.
            old_k, old_v, old_pos = cache.history(layer, slot, start)
            keys = torch.cat((old_k, k))
            values = torch.cat((old_v, v))
            key_pos = torch.cat((old_pos, positions))
            cache.write(layer, slot, start, k, v)
        o = self.ops.attention(q, keys, values, attn.sinks, positions, key_pos, window, self._sm_scale)
        return self._project_out(attn, o)

    def _attention_decode(
        self,
        layer: int,
        attn: AttentionWeights,
        t: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        slot_index: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._qkv(attn, t, positions)  # one token per slot: [B, heads, D]
        cache.write_decode(layer, slot_index, positions, k, v)
        window = self.config.window_for_layer(layer)
        o = self.ops.attention_decode(
            q,
            cache.keys[layer],
            cache.values[layer],
            attn.sinks,
            slot_index,
            positions + 1,
            window,
            cache.windows[layer] > 0,
            self._sm_scale,
        )
        return self._project_out(attn, o)

    def _moe(self, mlp: MoEWeights, t: torch.Tensor) -> torch.Tensor:
        """MoE output ``[T, H]`` for the normed ``t`` (the caller adds it to the residual)."""
        cfg = self.config
        weights, indices = self.ops.router(t, mlp.gate_weight, mlp.gate_bias, cfg.experts_per_token)
        return self.ops.moe(
            t, weights, indices, mlp.mlp1, mlp.mlp1_bias, mlp.mlp2, mlp.mlp2_bias, cfg.swiglu_limit, cfg.swiglu_alpha
        )

    def _decode_blocks_in_one_call(
        self, x: torch.Tensor, positions: torch.Tensor, slot_index: torch.Tensor, cache: KVCache
    ) -> torch.Tensor | None:
        """What ``_run_blocks`` gives for a decode batch, from one C++ call on the CPU backend
        (engine/cpu_decode.py: the same kernels in the same order, so the same bits); None where that call does not
        take this step."""
        if self.ops.name != "cpu":
            return None
        if self._cpu_decode is None:
            self._cpu_decode = CpuDecodeBlocks.pack(self.blocks, self.norm, self.config)
        cos, sin = self._rope_tables(positions)
        return self._cpu_decode.run(x, cos, sin, slot_index, positions, cache)

    def _unembed(self, normed: torch.Tensor) -> torch.Tensor:
        return self.ops.unembed(normed, self.unembedding)  # [T, H] -> fp32 [T, V]


def _release_rows(rows: torch.Tensor) -> None:
    """Drop converted rows of a checkpoint tensor from the RSS (engine.memory.release_file_pages; a no-op unless they
    are mapped from the file)."""
    if rows.is_contiguous():
        release_file_pages(rows.data_ptr(), rows.nbytes)


def _to(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Move/cast only when needed, so memory-mapped bf16 weights stay zero-copy on CPU."""
    if tensor.device == device and tensor.dtype == dtype:
        return tensor
    return tensor.to(device=device, dtype=dtype)
