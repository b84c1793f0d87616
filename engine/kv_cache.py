"""Key/value cache for several sequences ("slots") at once.

- Full-attention layers keep every position of a slot; their storage grows (doubling) up to ``capacity``.
- Sliding-window layers keep only a ring of ``window`` positions: position ``p`` lives at ring index ``p % window``.
- ``truncate`` rewinds a slot. Full layers rewind for free; a ring that has already overwritten positions the
  shorter prefix needs is restored from a snapshot taken at the end of an earlier prefill (the prompt boundary of
  a previous turn), so multi-turn chat reuses the whole previous prompt without keeping more than the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import GenerationError

logger = logging.getLogger(__name__)

_INITIAL_FULL_ALLOCATION = 256
_MAX_SNAPSHOTS_PER_SLOT = 4


@dataclass
class _RingSnapshot:
    """Ring contents of every sliding layer of one slot, valid for the first ``length`` tokens."""

    length: int
    keys: list[torch.Tensor]  # per sliding layer, [W, Hkv, D]
    values: list[torch.Tensor]


@dataclass
class _Slot:
    tokens: list[int] = field(default_factory=list)
    snapshots: list[_RingSnapshot] = field(default_factory=list)


class KVCache:
    """Preallocated per-slot K/V storage for every layer of one model."""

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        capacity: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.config = config
        self.batch_size = batch_size
        self.capacity = min(capacity, config.max_context_length)
        self.device = device
        self.dtype = dtype
        self._slots = [_Slot() for _ in range(batch_size)]
        # Per slot, the CUDA-graph decode runner captured against this cache's storage (engine/cuda_graph.py); it
        # lives here because it is only valid for these buffers.
        self.decode_graphs: dict[int, object] = {}
        kv_shape = (config.num_key_value_heads, config.head_dim)
        full_allocation = min(self.capacity, _INITIAL_FULL_ALLOCATION)
        # windows[l] > 0 marks a ring layer; its storage is [B, window, Hkv, D], full layers [B, alloc, Hkv, D].
        self.windows: list[int] = [config.window_for_layer(layer) for layer in range(config.num_hidden_layers)]
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for window in self.windows:
            rows = window if window > 0 else full_allocation
            self.keys.append(torch.zeros((batch_size, rows, *kv_shape), dtype=dtype, device=device))
            self.values.append(torch.zeros((batch_size, rows, *kv_shape), dtype=dtype, device=device))

    # ------------------------------------------------------------------------------------------------- queries
    def length(self, slot: int) -> int:
        """Number of tokens the slot holds."""
        return len(self._slots[slot].tokens)

    def tokens(self, slot: int) -> list[int]:
        """Copy of the token ids the slot holds, in order."""
        return list(self._slots[slot].tokens)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    # ------------------------------------------------------------------------------------------------- updates
    def reserve(self, slot: int, new_tokens: int) -> None:
        """Make room for ``new_tokens`` more tokens in ``slot``; raise :class:`GenerationError` past capacity."""
        needed = self.length(slot) + new_tokens
        if needed > self.capacity:
            raise GenerationError(f"context full: {needed} tokens needed, the context holds {self.capacity}")
        for layer, window in enumerate(self.windows):
            if window == 0 and self.keys[layer].shape[1] < needed:
                self._grow(layer, needed)

    def _grow(self, layer: int, needed: int) -> None:
        rows = self.keys[layer].shape[1]
        while rows < needed:
            rows *= 2
        rows = min(rows, self.capacity)
        for store in (self.keys, self.values):
            old = store[layer]
            grown = torch.zeros((old.shape[0], rows, *old.shape[2:]), dtype=old.dtype, device=old.device)
            grown[:, : old.shape[1]] = old
            store[layer] = grown

    def write(self, layer: int, slot: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``/``v`` ``[T, Hkv, D]`` for positions ``start .. start+T-1`` of ``slot``."""
        count = k.shape[0]
        window = self.windows[layer]
        if window == 0:
            self.keys[layer][slot, start : start + count] = k
            self.values[layer][slot, start : start + count] = v
            return
        # A ring only needs the newest ``window`` positions of this chunk.
        skip = max(0, count - window)
        positions = torch.arange(start + skip, start + count, device=k.device)
        ring_index = positions % window
        self.keys[layer][slot, ring_index] = k[skip:]
        self.values[layer][slot, ring_index] = v[skip:]

    def write_decode(
        self, layer: int, slots: torch.Tensor, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> None:
        """Store one new token per sequence of a decode batch: ``k``/``v`` ``[B, Hkv, D]`` at ``positions[b]`` of
        ``slots[b]`` (int64 ``[B]`` each, distinct slots), in one indexed copy for the whole batch."""
        window = self.windows[layer]
        rows = positions % window if window > 0 else positions
        self.keys[layer][slots, rows] = k
        self.values[layer][slots, rows] = v

    def history(self, layer: int, slot: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, values and absolute positions visible to a query at position ``end`` (exclusive on full layers).

        Full layers: the first ``end`` positions (a view, no copy). Ring layers: the ring's positions before
        ``end`` in ring order (positions are returned alongside, so order does not matter to attention).
        """
        window = self.windows[layer]
        if window == 0:
            positions = torch.arange(end, device=self.device)
            return self.keys[layer][slot, :end], self.values[layer][slot, :end], positions
        held = min(end, window)
        positions = torch.arange(end - held, end, device=self.device)
        ring_index = positions % window
        return self.keys[layer][slot, ring_index], self.values[layer][slot, ring_index], positions

    def commit(self, slot: int, token_ids: list[int]) -> None:
        """Record that ``token_ids`` were written to every layer of ``slot``."""
        self._slots[slot].tokens.extend(token_ids)

    def snapshot(self, slot: int) -> None:
        """Remember the slot's ring contents so a later ``truncate`` to this length is exact."""
        state = self._slots[slot]
        length = len(state.tokens)
        if any(s.length == length for s in state.snapshots):
            return
        ring_layers = [layer for layer, window in enumerate(self.windows) if window > 0]
        state.snapshots.append(
            _RingSnapshot(
                length=length,
                keys=[self.keys[layer][slot].clone() for layer in ring_layers],
                values=[self.values[layer][slot].clone() for layer in ring_layers],
            )
        )
        del state.snapshots[:-_MAX_SNAPSHOTS_PER_SLOT]

    def truncate(self, slot: int, n: int) -> int:
        """Keep the first ``n`` tokens of ``slot``; return how many are actually kept.

        The result is ``n`` unless a ring has already overwritten a position the shorter prefix needs and no
        snapshot covers it; then it is the longest exactly restorable length (possibly 0) and the caller must
        re-prefill from there.
        """
        state = self._slots[slot]
        current = len(state.tokens)
        n = max(0, min(n, current))
        if n == current:
            return n
        smallest_window = min((w for w in self.windows if w > 0), default=0)
        # A ring stays exact for any shorter prefix while nothing in it has been overwritten yet.
        rings_intact = smallest_window == 0 or current <= smallest_window
        kept = n
        if not rings_intact:
            usable = [s for s in state.snapshots if s.length <= n]
            if usable:
                best = max(usable, key=lambda s: s.length)
                ring_layers = [layer for layer, window in enumerate(self.windows) if window > 0]
                for index, layer in enumerate(ring_layers):
                    self.keys[layer][slot].copy_(best.keys[index])
                    self.values[layer][slot].copy_(best.values[index])
                kept = best.length
            else:
                kept = 0
        del state.tokens[kept:]
        state.snapshots = [s for s in state.snapshots if s.length <= kept]
        logger.debug("truncate slot %d: asked %d of %d, kept %d", slot, n, current, kept)
        return kept

    def reset(self, slot: int | None = None) -> None:
        """Forget the contents of one slot (or all)."""
        for index in range(self.batch_size) if slot is None else (slot,):
            self._slots[index] = _Slot()
