"""Graph-replayed batch-1 decode against eager decode, step for step: the check the first GPU machine runs.

``python -m gpt_oss_desktop.engine.cuda_graph_check [--preset tiny] [--steps 40] [--prompt 20]`` builds a model on
random weights on the CUDA device (``TRITON_INTERPRET`` must be unset so the Triton kernels are compiled, not
interpreted), prefills the same prompt into two caches, then feeds the same tokens to eager decode (graphs off) and to
graph replay, and prints JSON: the largest logit difference, greedy-token agreement, how many captures happened, and
the time per token of each (the wall time of each step, synchronised; a measurement, never asserted on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from gpt_oss_desktop.engine.cuda_graph import decode_graph_for, unavailable_reason
from gpt_oss_desktop.engine.model import Model


@dataclass(frozen=True)
class GraphCheck:
    steps: int
    max_abs_logit_diff: float
    max_logit: float
    greedy_agreement: float
    captures: int
    eager_ms_per_token: float
    graph_ms_per_token: float


def compare_graph_with_eager(model: Model, prompt: list[int], steps: int, capacity: int) -> GraphCheck:
    """Decode ``steps`` tokens (the eager path's greedy choices, fed to both) after ``prompt``, eagerly and by graph
    replay, in two caches of ``capacity`` tokens."""
    eager_cache = model.new_cache(1, capacity)
    graph_cache = model.new_cache(1, capacity)
    wanted = model.cuda_graphs
    model.cuda_graphs = False
    eager_logits = [model.prefill(prompt, eager_cache)]
    graph_prefill = model.prefill(prompt, graph_cache)
    tokens: list[int] = []
    eager_s = 0.0
    for _ in range(steps):
        token = int(eager_logits[-1].argmax())
        tokens.append(token)
        started = time.perf_counter()
        eager_logits.append(model.decode([token], eager_cache, [0])[0])
        _sync(model.device)
        eager_s += time.perf_counter() - started
    model.cuda_graphs = True
    graph_logits = [graph_prefill]
    graph_s = 0.0
    try:
        for token in tokens:
            started = time.perf_counter()
            graph_logits.append(model.decode([token], graph_cache, [0])[0])
            _sync(model.device)
            graph_s += time.perf_counter() - started
        runner = decode_graph_for(model, graph_cache, 0)
        captures = runner.captures if runner is not None else 0
    finally:
        model.cuda_graphs = wanted
    eager = torch.stack(eager_logits[1:]).float()
    graph = torch.stack(graph_logits[1:]).float()
    agree = (eager.argmax(-1) == graph.argmax(-1)).float().mean().item()
    # Includes the first step, which captures (and warms up): a long --steps run amortises it.
    per_graph_step = graph_s / steps
    return GraphCheck(
        steps=steps,
        max_abs_logit_diff=float((eager - graph).abs().max()),
        max_logit=float(eager.abs().max()),
        greedy_agreement=agree,
        captures=captures,
        eager_ms_per_token=round(eager_s / steps * 1e3, 3),
        graph_ms_per_token=round(per_graph_step * 1e3, 3),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    from gpt_oss_desktop.engine.checkpoint.presets import get_preset
    from gpt_oss_desktop.engine.checkpoint.synthetic import random_weights

    parser = argparse.ArgumentParser(description="CUDA-graph decode against eager decode; prints JSON.")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--prompt", type=int, default=20, help="prompt tokens (random ids)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    reason = unavailable_reason(device)
    if reason is not None:
        sys.stderr.write(f"error: {reason}\n")
        return 2
    config = get_preset(args.preset)
    model = Model(config, random_weights(config, seed=0), device, getattr(torch, args.dtype))
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, config.vocab_size, (args.prompt,), generator=generator).tolist()
    check = compare_graph_with_eager(model, prompt, args.steps, capacity=args.prompt + args.steps + 1)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(device), "backend": model.ops.name,
                              "preset": args.preset, "dtype": args.dtype} | asdict(check)  # fmt: skip
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
