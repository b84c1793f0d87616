"""gpt-oss inference engine: checkpoints, the model, harmony and streaming generation. Never imports Qt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.model import Model

__all__ = ["load_model"]


def load_model(
    path: Any, device: Any = None, dtype: Any = None, on_progress: Any = None, weights: str = "bf16"
) -> Model:
    """Load a gpt-oss checkpoint folder (any supported layout), or ``"demo"`` (the built-in toy model).

    See :func:`engine.loader.load_model` (``on_progress`` reports progress and can cancel the load; ``weights="q8"``
    quantises the attention and unembedding weights to 8 bits).
    """
    from gpt_oss_desktop.engine.loader import load_model as _load_model

    return _load_model(path, device=device, dtype=dtype, on_progress=on_progress, weights=weights)
