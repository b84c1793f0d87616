"""CUDA-graph replay of batch-1 decode: one captured step, replayed per token.

A batch-1 decode step on a GPU is a few hundred small kernel launches (about 10 per layer); at 20b sizes the host
spends longer issuing them than the GPU spends running them. A CUDA graph records the launches once and replays
them with one call. A graph replays fixed addresses and fixed shapes, so everything that changes from one token to
the next lives in tensors the graph reads on the device:

- the token id (``ids`` ``[1]``), written before each replay with ``fill_`` (a launch argument, no host sync);
- the position (:class:`DevicePosition`, ``[1]`` int64): the graph reads it for RoPE, the KV-cache row and the
  attention length (``position + 1``), and advances it by one at its end, so consecutive replays need nothing from
  the host; the host re-seeds it only when the cache length moved under it (a truncate or a prefill).

The KV cache's full-attention layers grow by reallocating (doubling), which moves their storage: the runner keeps
the storage addresses it captured against and captures again when they change (at most about log2(capacity/256)
times per cache). Anything that cannot be captured (a kernel backend that synchronises with the host, a device
that is not CUDA, an error during capture) falls back to eager decode, logged once.

Switch: ``GPTOSS_CUDA_GRAPH=1`` or ``0``; unset means on for CUDA devices and off elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.kv_cache import KVCache
    from gpt_oss_desktop.engine.model import Model

logger = logging.getLogger(__name__)

GRAPH_ENV = "GPTOSS_CUDA_GRAPH"
WARMUP_STEPS = 2  # eager runs on a side stream before capture: Triton compiles its kernels and cuBLAS its plans


def graphs_requested(device: torch.device) -> bool:
    """Whether batch-1 decode should replay a CUDA graph on ``device`` (``GPTOSS_CUDA_GRAPH`` or the default)."""
    value = os.environ.get(GRAPH_ENV, "").strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    if value:
        logger.warning("%s=%r is not 0 or 1; using the default", GRAPH_ENV, value)
    return device.type == "cuda"


def unavailable_reason(device: torch.device) -> str | None:
    """Why a CUDA graph cannot be captured on ``device``, or None when it can be tried."""
    if device.type != "cuda":
        return f"the model runs on {device.type}, not CUDA"
    if not torch.cuda.is_available():
        return "torch has no usable CUDA"
    return None


class DevicePosition:
    """The next position of one cache slot, held on the device for a replayed graph, with a host mirror.

    ``tensor`` (int64 ``[1]``) is what the graph reads; the graph's last op adds one to it. ``host`` is what the
    tensor holds as far as the host knows (None before the first seed), kept without reading the device.
    """

    def __init__(self, device: torch.device) -> None:
        self.tensor = torch.zeros(1, dtype=torch.int64, device=device)
        self.host: int | None = None

    def prepare(self, length: int) -> bool:
        """Make the tensor hold ``length`` (the cache length, i.e. the position the next token gets).

        Returns True when it had to be written: the host's cache moved (truncate, prefill) since the last replay.
        On the common path (one replay after another) it writes nothing."""
        if length < 0:
            raise ValueError(f"a position is never negative, got {length}")
        if self.host == length:
            return False
        self.tensor.fill_(length)
        self.host = length
        return True

    def advance_on_device(self) -> None:
        """Add one on the device: recorded into the graph as its last op (never called outside capture)."""
        self.tensor.add_(1)

    def replayed(self) -> None:
        """Account, on the host, for the add a replay just did on the device."""
        if self.host is None:
            raise RuntimeError("replayed before the position was ever prepared")
        self.host += 1


class CapturedStep(Protocol):
    def replay(self) -> None: ...


Capture = Callable[[Callable[[], None], Callable[[], None], torch.device], CapturedStep]
"""``capture(step, warmup, device)``: runs ``warmup`` eagerly, records ``step`` and returns something whose
``replay()`` re-runs it. ``warmup`` is ``step`` without its side effects on the graph's own inputs (the position
advance), so running it any number of times leaves the inputs as they were."""


def capture_cuda_graph(step: Callable[[], None], warmup: Callable[[], None], device: torch.device) -> CapturedStep:
    """Run ``warmup`` on a side stream (Triton compiles, cuBLAS picks its plans, the allocator settles), then
    capture ``step``."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_STEPS):
            warmup()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph


def _storage_key(cache: KVCache) -> tuple[int, ...]:
    """The addresses a captured step bakes in: every layer's key and value storage."""
    return tuple(t.data_ptr() for t in (*cache.keys, *cache.values))


class DecodeGraph:
    """Batch-1 decode of one cache slot by graph replay. ``step`` takes the place of ``model.decode([t], cache,
    [slot])[0]``; the first call (and the first after the cache's storage moved) captures."""

    def __init__(self, model: Model, cache: KVCache, slot: int, capture: Capture | None = None) -> None:
        self.model = model
        self.cache = cache
        self.slot = slot
        self._capture = capture if capture is not None else capture_cuda_graph
        device = model.device
        self.ids = torch.zeros(1, dtype=torch.long, device=device)  # [1] token id the graph embeds
        self.position = DevicePosition(device)
        self.slot_index = torch.tensor([slot], dtype=torch.long, device=device)
        self.logits: torch.Tensor | None = None  # [1, V] fp32, written by every replay
        self._captured: CapturedStep | None = None
        self._storage: tuple[int, ...] = ()
        self.captures = 0

    def _forward(self) -> None:
        # The model keeps the RoPE tables of the last positions tensor it saw; that is our position tensor, whose
        # value changes between runs, so every run (and the capture) must compute the tables afresh.
        self.model.reset_rope_cache()
        self.logits = self.model.decode_forward(self.ids, self.position.tensor, self.slot_index, self.cache)

    def _record(self) -> None:
        """The captured step: the forward, then the device-side position advance."""
        self._forward()
        self.position.advance_on_device()

    def step(self, token: int) -> torch.Tensor:
        """Decode ``token`` at the slot's next position; fp32 logits ``[V]`` (a fresh tensor, not the graph's)."""
        cache, slot = self.cache, self.slot
        cache.reserve(slot, 1)  # may grow (move) a full layer's storage: checked just below
        self.ids.fill_(token)
        self.position.prepare(cache.length(slot))
        storage = _storage_key(cache)
        if self._captured is None or storage != self._storage:
            # The warmup runs of a capture compute this very step (same inputs, same K/V rows written), so the
            # capture's side effects are the step's own; the replay below then writes the same values again.
            self._captured = None
            self._captured = self._capture(self._record, self._forward, self.model.device)
            self._storage = storage
            self.captures += 1
            self.model.reset_rope_cache()
            logger.info("captured a decode graph for slot %d at position %d", slot, cache.length(slot))
        self._captured.replay()
        self.position.replayed()
        cache.commit(slot, [token])
        assert self.logits is not None  # set by the capture's forward
        return self.logits[0].clone()


def decode_graph_for(model: Model, cache: KVCache, slot: int) -> DecodeGraph | None:
    """The slot's graph runner (created on first use), or None when graphs are off or failed for this cache."""
    if not model.cuda_graphs:
        return None
    runner = cache.decode_graphs.get(slot)
    if runner is None:
        reason = unavailable_reason(model.device)
        if reason is not None:
            logger.info("CUDA-graph decode off: %s", reason)
            model.cuda_graphs = False
            return None
        runner = DecodeGraph(model, cache, slot)
        cache.decode_graphs[slot] = runner
    return runner if isinstance(runner, DecodeGraph) else None


def decode_with_graph(model: Model, cache: KVCache, slot: int, token: int) -> torch.Tensor | None:
    """Logits ``[V]`` of ``token`` decoded by graph replay, or None when the caller must decode eagerly.

    A failed capture turns graphs off for this model (logged once, with the reason) and returns None before
    anything was committed to the cache, so eager decode of the same token follows cleanly."""
    runner = decode_graph_for(model, cache, slot)
    if runner is None:
        return None
    try:
        return runner.step(token)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:  # capture rejected something (a host sync, an unsupported op): decode eagerly
        if runner._captured is not None:
            raise  # a replay failing is a real error, not a capture limitation
        logger.warning("CUDA-graph decode unavailable, decoding eagerly: %s", exc)
        model.cuda_graphs = False
        cache.decode_graphs.clear()
        return None
