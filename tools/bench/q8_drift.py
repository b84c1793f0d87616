"""How far the 8-bit weights (``--weights q8``) drift from the exact bf16 ones, measured on the decode path.

Both models are fed the same prompt one token at a time through ``Model.decode`` (the path whose GEMVs the load mode
changes; prefill-sized batches take another), then continue greedily:
- ``relative_logit_error``: ``||q8 - bf16|| / ||bf16||`` over the logits of every prompt position (Frobenius norms);
  ``median_position_error``: the median of the same ratio per position. A random-weight model (the ``mini`` preset)
  has positions where attention sits on a near-tie and any change of rounding moves the logits by tens of percent
  (bf16 against fp32 weights does it too), and those few positions dominate the first figure;
- ``teacher_forced_agreement``: the q8 model fed the bf16 model's greedy continuation, the share of steps where its
  own argmax is the token bf16 chose (each step judged from the same context);
- ``free_running_prefix``: greedy tokens both models produce identically, from the start, before the first
  difference (once they differ, the contexts differ and later tokens say little).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gpt_oss_desktop.engine.model import Model


@dataclass(frozen=True)
class DecodeRun:
    prompt_logits: torch.Tensor  # fp32 [P, V], the logits after each prompt token
    argmax: list[int]  # the model's argmax at each continuation step


def decode_run(model: Model, prompt: list[int], steps: int, forced: list[int] | None = None) -> DecodeRun:
    """Feed ``prompt`` token by token, then ``steps`` more tokens: the model's own argmax (greedy), or ``forced``."""
    cache = model.new_cache(1, len(prompt) + steps + 1)
    rows: list[torch.Tensor] = []
    logits = torch.empty(0)
    for token in prompt:
        logits = model.decode([token], cache, [0])[0]  # [V] fp32
        rows.append(logits.clone())
    chosen: list[int] = []
    for i in range(steps):
        chosen.append(int(torch.argmax(logits)))
        if i + 1 < steps:
            logits = model.decode([forced[i] if forced is not None else chosen[-1]], cache, [0])[0]
    return DecodeRun(prompt_logits=torch.stack(rows), argmax=chosen)


def drift_report(reference: Model, candidate: Model, prompt: list[int], steps: int) -> dict[str, Any]:
    """The three drift figures of ``candidate`` (q8) against ``reference`` (bf16); see the module docstring."""
    ref = decode_run(reference, prompt, steps)
    free = decode_run(candidate, prompt, steps)
    forced = decode_run(candidate, prompt, steps, forced=ref.argmax)
    delta = (free.prompt_logits - ref.prompt_logits).norm() / ref.prompt_logits.norm()
    per_position = (free.prompt_logits - ref.prompt_logits).norm(dim=-1) / ref.prompt_logits.norm(dim=-1)  # [P]
    agree = sum(a == b for a, b in zip(forced.argmax, ref.argmax, strict=True))
    prefix = next((i for i, (a, b) in enumerate(zip(free.argmax, ref.argmax, strict=True)) if a != b), steps)
    return {
        "prompt_tokens": len(prompt),
        "greedy_tokens": steps,
        "relative_logit_error": round(float(delta), 5),
        "median_position_error": round(float(per_position.median()), 5),
        "teacher_forced_agreement": round(agree / steps, 4),
        "free_running_prefix": prefix,
    }
