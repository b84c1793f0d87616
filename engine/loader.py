"""``load_model``: checkpoint folder -> ready :class:`engine.model.Model` on a device and dtype."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.device_check import check_device
from gpt_oss_desktop.engine.errors import InsufficientMemoryError
from gpt_oss_desktop.engine.events import LoadProgress
from gpt_oss_desktop.engine.memory import limit_heap_fragmentation
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.model_ref import resolve_model_path
from gpt_oss_desktop.engine.weights_mode import DEFAULT_WEIGHTS, WeightsMode, parse_weights_mode

logger = logging.getLogger(__name__)


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_model(
    path: str | Path,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    on_progress: LoadProgress | None = None,
    weights: WeightsMode | str = DEFAULT_WEIGHTS,
) -> Model:
    """Load any supported checkpoint layout, or ``"demo"`` (the built-in toy model, see engine.model_ref).

    ``dtype`` defaults to bf16; ``torch.float32`` works on CPU. ``on_progress(fraction, text)`` is called as the
    load advances, on this thread; to cancel, raise :class:`engine.errors.LoadCancelled` from it. ``weights``:
    ``"bf16"`` keeps the checkpoint's dense weights, ``"q8"`` quantises attention and unembedding weights to 8 bits
    (engine.weights_mode).

    Raises:
        EngineError: ``weights`` names no load mode.
        UnsupportedDeviceError: ``device`` cannot run the model (checked before anything is read).
        InsufficientMemoryError: the weights do not fit in the device's (or the host's) memory.
        CheckpointError: the checkpoint cannot be loaded; its subclasses say why (see ``load_checkpoint``).
    """
    started = time.perf_counter()
    weights_mode = parse_weights_mode(weights)
    limit_heap_fragmentation()
    resolved_device = torch.device(device) if device is not None else default_device()
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[
            dtype
        ]
    resolved_dtype = dtype if dtype is not None else torch.bfloat16
    check_device(resolved_device)
    if on_progress is not None:
        on_progress(0.0, "Checking the checkpoint")
    checkpoint = load_checkpoint(resolve_model_path(path))
    try:
        model = Model(
            checkpoint.config, checkpoint.tensors, resolved_device, resolved_dtype, on_progress, weights=weights_mode
        )
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise InsufficientMemoryError(_out_of_memory(resolved_device), str(resolved_device)) from exc
    except RuntimeError as exc:
        # torch's CPU allocator reports a failed allocation as a plain RuntimeError (c10::Error, not
        # OutOfMemoryError): its text is the only mark it has, so it is read here, where the allocation happens.
        if _CPU_ALLOCATION_FAILED not in str(exc):
            raise
        raise InsufficientMemoryError(_out_of_memory(resolved_device), str(resolved_device)) from exc
    logger.info(
        "loaded %s (%s layout) in %.2f s on %s/%s, %s weights",
        checkpoint.root,
        checkpoint.layout,
        time.perf_counter() - started,
        resolved_device,
        resolved_dtype,
        weights_mode,
    )
    return model


_CPU_ALLOCATION_FAILED = "DefaultCPUAllocator: can't allocate memory"


def _out_of_memory(device: torch.device) -> str:
    where = "system memory" if device.type == "cpu" else f"{device} memory"
    return f"not enough {where} to load the model"
