"""The demo model's training mixture: plain problems, plain problems with tools offered, and tool problems.

Every cycle of a :class:`Mix` (:data:`BASE_MIX` from scratch, :data:`COPY_MIX` for the copy fine-tune) holds
each kind in a fixed share (and the efforts rotate), so any prefix of the data has the intended mix:

- ``plain``: the four families of :mod:`tools.demo.data` with no tools offered (today's behaviour, unchanged);
- ``no_call``: the same families while tools are offered that the question does not need (counting and comparing
  with any tools; arithmetic with python off; unit conversion with convert_units off): the answer has no call;
- ``python``, ``convert_units``, ``current_time``: the tool families of :mod:`tools.demo.tool_data`, each with a
  random setting that offers the tool needed (and often others).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Final

from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.tools.builtin_functions import CONVERT_UNITS
from gpt_oss_desktop.engine.vocab import get_encoding
from tools.demo.data import EFFORTS, FAMILIES, Example, Problem, completion_tokens, random_date, sample_problem
from tools.demo.tool_data import (
    TOOL_FAMILIES,
    ToolSetting,
    random_setting,
    render_tool_example,
    sample_tool_problem,
    tool_prompt,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Mix:
    """A training mixture: slots per kind in one cycle, and how the python slots split.

    ``small_share`` of the python problems use the arithmetic family's small numbers (python on: the model calls
    python for those too, so "python on vs off" is measured on the same held-out questions); ``wide_share`` use
    operands of 1 to 5 digits (tool_data.WIDE_DIGITS), whose results cannot be guessed, only copied; the rest are
    the large-number family.
    """

    cycle: tuple[tuple[str, int], ...]
    small_share: float
    wide_share: float = 0.0

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(kind for kind, n in self.cycle for _ in range(n))


# The mixture the base model is trained on from scratch (cycles of 20 examples).
BASE_MIX: Final = Mix(
    cycle=(("plain", 6), ("no_call", 3), ("python", 5), ("convert_units", 3), ("current_time", 3)),
    small_share=0.3,
)
# The fine-tune that teaches copying a tool's result (issue 20): twice the tool share, with wide python problems
# so that only a general copy circuit fits them; plain and no-call examples are replayed so nothing is forgotten.
COPY_MIX: Final = Mix(
    cycle=(("plain", 4), ("no_call", 2), ("python", 7), ("convert_units", 3), ("current_time", 4)),
    small_share=0.35,
    wide_share=0.3,
)
MIXES: Final[dict[str, Mix]] = {"base": BASE_MIX, "copy": COPY_MIX}


def render_plain(
    problem: Problem,
    setting: ToolSetting,
    effort: ReasoningEffort,
    current_date: str | None,
    encoding: HarmonyEncoding | None = None,
) -> Example:
    """A problem answered without a call while ``setting``'s tools are offered."""
    prompt = tool_prompt([ChatMessage.user(problem.question)], setting, effort, current_date, encoding)
    ids = prompt + completion_tokens(problem.analysis[effort], problem.final, encoding)
    return Example(ids, ((len(prompt), len(ids)),))


def _no_call_setting(rng: random.Random, family: str) -> ToolSetting:
    """Random tools, less the one the question would use (python for arithmetic, convert_units for conversion)."""
    setting = random_setting(rng)
    if family == "arithmetic":
        setting = dataclasses.replace(setting, python=False)
    elif family == "convert":
        functions = tuple(f for f in setting.functions if f.name != CONVERT_UNITS.name)
        setting = dataclasses.replace(setting, functions=functions)
    return setting


def make_example(
    kind: str, effort: ReasoningEffort, rng: random.Random, encoding: HarmonyEncoding, mix: Mix = BASE_MIX
) -> Example:
    """One training example of ``kind`` (a slot name of ``mix``) from the training split."""
    date = random_date(rng)
    if kind in TOOL_FAMILIES:
        small = kind == "python" and rng.random() < mix.small_share
        # drawn only when the mix has wide problems, so the base mixture's random stream is unchanged
        wide = kind == "python" and not small and mix.wide_share > 0 and rng.random() < mix.wide_share
        problem = sample_tool_problem(rng, kind, held_out=False, small=small, wide=wide)
        setting = random_setting(rng, need=problem.call.recipient)
        return render_tool_example(problem, setting, effort, date, encoding)
    family = rng.choice(FAMILIES)
    plain = sample_problem(rng, family, held_out=False)
    setting = ToolSetting(python=False, functions=()) if kind == "plain" else _no_call_setting(rng, family)
    return render_plain(plain, setting, effort, date, encoding)


def training_examples(
    count: int, seed: int, encoding: HarmonyEncoding | None = None, mix: Mix = BASE_MIX
) -> list[Example]:
    """``count`` examples: kinds in ``mix``'s shares, efforts in equal shares, random problems and tools."""
    enc = encoding if encoding is not None else get_encoding()
    rng = random.Random(seed)
    slots = mix.slots
    return [
        make_example(slots[i % len(slots)], EFFORTS[(i // len(slots)) % len(EFFORTS)], rng, enc, mix)
        for i in range(count)
    ]
