"""How a model's dense projection weights are held after loading: ``bf16`` (the checkpoint's exact values, the
default; on the CPU held losslessly in 12 bits each, ``kernels.bf16_packed``) or ``q8`` (attention qkv/out and the
unembedding quantised to 8 bits at load time, ``kernels.q8``; smaller and a little less exact). The CLI's
``--weights`` and the app's model setting both name these."""

from __future__ import annotations

from typing import Final, Literal, cast

from gpt_oss_desktop.engine.errors import EngineError

WeightsMode = Literal["bf16", "q8"]
WEIGHTS_MODES: Final[tuple[WeightsMode, ...]] = ("bf16", "q8")
DEFAULT_WEIGHTS: Final[WeightsMode] = "bf16"


def parse_weights_mode(value: str) -> WeightsMode:
    """``value`` as a :data:`WeightsMode`.

    Raises:
        EngineError: ``value`` names no load mode (the message lists them).
    """
    if value not in WEIGHTS_MODES:
        raise EngineError(f"unknown weights mode {value!r}; choose one of {', '.join(WEIGHTS_MODES)}")
    return cast(WeightsMode, value)
