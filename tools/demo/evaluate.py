"""Measure the demo model: ``python -m tools.demo.evaluate [--per-family 50]`` prints JSON.

Greedy decoding on held-out problems (never in the training data, in any wording; tools.demo.data), for every
task family at every reasoning effort. Prompts are rendered exactly as the app renders them (render_prompt, today's
date). Reported:

- ``well_formed``: share of generations that are exactly an analysis message, then a final message, then
  ``<|return|>``, with nothing malformed according to the engine's stream parser and finish reason ``stop``;
- ``mean_analysis_tokens`` per effort (must rise strictly low < medium < high; ``analysis_rises``);
- ``accuracy`` per family (and per family and effort): the final answer equals the expected one exactly;
- ``tools``: tool use through the real tool loop with the app's default tools (python and both built-in functions;
  :mod:`tools.demo.evaluate_tools`): the share of well-formed calls; accuracy on large-number arithmetic
  (``python``), on the arithmetic family's held-out questions with python on (``arithmetic``; with no tools it is
  ``arithmetic_python_off``, the same questions as ``accuracy.arithmetic`` above), on conversions and on the time;
  and the share of tool-free questions (counting, comparing) answered without a call.

By default sequences are decoded in batches through :class:`engine.batch_generator.BatchGenerator` (prefill per
slot, batched decode) because one [V, H] unembedding read per step dominates the cost on a CPU. ``--sequential``
runs every prompt through :meth:`engine.generator.Generator.stream` instead: the app's own path, about ten times
slower.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from gpt_oss_desktop.engine.batch_generator import BatchGenerator
from gpt_oss_desktop.engine.events import ANALYSIS, FINAL, Done, FinishReason
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.model_ref import DEMO_MODEL
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser
from gpt_oss_desktop.engine.vocab import RETURN, get_encoding
from tools.demo.data import EFFORTS, FAMILIES, Problem, held_out_problems
from tools.demo.evaluate_tools import evaluate_tools


@dataclass(frozen=True, slots=True)
class Outcome:
    well_formed: bool
    analysis_tokens: int
    correct: bool


def judge(
    problem: Problem,
    completion: list[int],
    finish_reason: FinishReason,
    parser: HarmonyStreamParser,
) -> Outcome:
    """Score one completion that ``parser`` has fully consumed (``finish`` called)."""
    messages = parser.messages
    channels = [m.channel for m in messages]
    texts = ["".join(getattr(c, "text", "") for c in m.content) for m in messages]
    well_formed = (
        finish_reason is FinishReason.STOP
        and parser.malformed is None
        and channels == [ANALYSIS, FINAL]
        and all(m.recipient is None for m in messages)
        and bool(completion)
        and completion[-1] == RETURN
    )
    final = texts[-1].strip() if messages and channels[-1] == FINAL else ""
    return Outcome(well_formed, parser.counts.reasoning, final == problem.final)


def generate_batched(model: Model, prompts: list[list[int]], max_tokens: int, batch_size: int) -> list[Done]:
    """Greedy completions of ``prompts``, ``batch_size`` at a time, through the engine's batch loop."""
    batch = BatchGenerator(model, max_context=max(len(p) for p in prompts) + max_tokens + 1)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    out: list[Done] = []
    for start in range(0, len(prompts), batch_size):
        group = prompts[start : start + batch_size]
        dones = {i: e for i, e in batch.stream(group, [params] * len(group)) if isinstance(e, Done)}
        out += [dones[i] for i in range(len(group))]
    return out


def generate_sequential(model: Model, prompts: list[list[int]], max_tokens: int) -> list[Done]:
    """Greedy completions of ``prompts`` one by one through :meth:`Generator.stream` (the app's path)."""
    generator = Generator(model, max_context=max(len(p) for p in prompts) + max_tokens + 1)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    out: list[Done] = []
    for prompt in prompts:
        last = None
        for event in generator.stream(prompt, params):
            last = event
        assert isinstance(last, Done)  # a stream always ends with Done
        out.append(last)
    return out


def evaluate(
    model_ref: str,
    per_family: int,
    *,
    dtype: str,
    max_tokens: int,
    batch_size: int,
    sequential: bool,
    tool_per_family: int = 0,
) -> dict[str, Any]:
    started = time.perf_counter()
    model = load_model(model_ref, device="cpu", dtype=dtype)
    enc = get_encoding()
    cases: list[tuple[str, ReasoningEffort, Problem, list[int]]] = []
    for family in FAMILIES:
        for problem in held_out_problems(family, per_family):
            for effort in EFFORTS:
                prompt = render_prompt([ChatMessage.user(problem.question)], effort=effort)
                cases.append((family, effort, problem, prompt))

    def generate(prompts: list[list[int]]) -> list[Done]:
        if sequential:
            return generate_sequential(model, prompts, max_tokens)
        return generate_batched(model, prompts, max_tokens, batch_size)

    results = [(list(d.completion_ids), d.finish_reason) for d in generate([c[3] for c in cases])]

    outcomes: dict[tuple[str, ReasoningEffort], list[Outcome]] = {}
    for (family, effort, problem, _), (completion, reason) in zip(cases, results, strict=True):
        parser = HarmonyStreamParser(enc)
        for token in completion:
            parser.feed(token)
        parser.finish()
        outcomes.setdefault((family, effort), []).append(judge(problem, completion, reason, parser))

    def share(items: list[Outcome], attr: str) -> float:
        return round(sum(bool(getattr(o, attr)) for o in items) / len(items), 4)

    every = [o for items in outcomes.values() for o in items]
    by_effort = {e: [o for f in FAMILIES for o in outcomes[(f, e)]] for e in EFFORTS}
    mean_analysis = {
        e.value: round(sum(o.analysis_tokens for o in by_effort[e]) / len(by_effort[e]), 1) for e in EFFORTS
    }
    lengths = list(mean_analysis.values())
    accuracy = {f: share([o for e in EFFORTS for o in outcomes[(f, e)]], "correct") for f in FAMILIES}
    tools = evaluate_tools(tool_per_family, generate) if tool_per_family else None
    if tools is not None:
        tools["arithmetic_python_off"] = accuracy["arithmetic"]
    return {
        "model": model_ref,
        "dtype": dtype,
        "path": "generator" if sequential else "batched",
        "per_family": per_family,
        "generations": len(every),
        "well_formed": share(every, "well_formed"),
        "well_formed_by_effort": {e.value: share(by_effort[e], "well_formed") for e in EFFORTS},
        "mean_analysis_tokens": mean_analysis,
        "analysis_rises": all(a < b for a, b in itertools.pairwise(lengths)),
        "accuracy": accuracy,
        "accuracy_by_effort": {f: {e.value: share(outcomes[(f, e)], "correct") for e in EFFORTS} for f in FAMILIES},
        "tools": tools,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.demo.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEMO_MODEL, help="model to evaluate (default: the shipped demo)")
    p.add_argument("--per-family", type=int, default=50, help="held-out problems per family (each at 3 efforts)")
    p.add_argument(
        "--tool-per-family",
        type=int,
        default=50,
        help="held-out problems per tool group (each at 3 efforts, through the tool loop); 0 skips tools",
    )
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32, help="sequences decoded together (batched path)")
    p.add_argument("--sequential", action="store_true", help="use Generator.stream per prompt (the app's path)")
    args = p.parse_args(argv)
    report = evaluate(
        args.model,
        args.per_family,
        dtype=args.dtype,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        sequential=args.sequential,
        tool_per_family=args.tool_per_family,
    )
    print(json.dumps(report, indent=2))  # noqa: T201 - the report is this command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
