"""Synthetic harmony conversations the demo model is trained and evaluated on.

Four task families (small arithmetic, counting a letter in a word, comparing two numbers, unit conversion). Each
problem has one analysis text per reasoning effort, whose detail grows with the effort (low: one line; medium: a
few steps; high: step by step, ending with a check), and one final answer.

A fixed fraction of every family's problem space is *held out* (chosen by a hash of the problem, not of its
wording): training never sees those problems in any phrasing, and :mod:`tools.demo.evaluate` draws only from them.

Rendering uses the engine's own :func:`engine.harmony.render_prompt`, so training prompts are token-for-token what
the app sends. The ``Current date:`` line is the one thing render_prompt varies from day to day (it renders today's
date by default), so training prompts carry a random date, or none, and the model learns to ignore it.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from dataclasses import dataclass
from typing import Final

from openai_harmony import HarmonyEncoding, Message, Role

from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.vocab import RETURN, get_encoding

FAMILIES: Final = ("arithmetic", "count", "compare", "convert")
EFFORTS: Final = (ReasoningEffort.LOW, ReasoningEffort.MEDIUM, ReasoningEffort.HIGH)
# One problem in HELD_OUT_EVERY is reserved for evaluation.
HELD_OUT_EVERY: Final = 5
# Share of training prompts rendered without a "Current date:" line (the rest get a random date).
NO_DATE_SHARE: Final = 0.15

WORDS: Final = (
    "apple", "banana", "strawberry", "cherry", "orange", "lemon", "mango", "papaya", "coconut", "tomato",
    "potato", "carrot", "pepper", "garden", "window", "letter", "bottle", "button", "rabbit", "kitten",
    "puppy", "yellow", "purple", "silver", "summer", "winter", "mississippi", "melon", "balloon", "coffee",
    "cookie", "pizza", "happy", "little", "middle", "puzzle", "bubble", "pepperoni", "committee", "address",
    "success", "football", "basketball", "bookkeeper", "accommodate", "tennessee", "assessment", "parallel",
    "giraffe", "elephant", "umbrella", "chocolate", "pineapple", "dinosaur", "keyboard", "computer", "mountain",
    "river", "forest", "island",
)  # fmt: skip
# (from, to, factor): "7 km" -> "7000 m".
UNITS: Final = (
    ("km", "m", 1000),
    ("kg", "g", 1000),
    ("L", "mL", 1000),
    ("m", "cm", 100),
    ("cm", "mm", 10),
    ("h", "min", 60),
    ("min", "s", 60),
    ("days", "hours", 24),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One question with its reasoning at each effort and its final answer."""

    family: str
    key: str  # identity of the problem (not of its wording); decides the held-out split
    question: str
    analysis: dict[ReasoningEffort, str]
    final: str


def is_held_out(key: str) -> bool:
    """Whether the problem ``key`` is reserved for evaluation (stable across runs and platforms)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % HELD_OUT_EVERY == 0


# ------------------------------------------------------------------------------------------------- families
def _problem(family: str, key: str, question: str, analysis: tuple[str, str, str], final: str) -> Problem:
    """A :class:`Problem` whose ``analysis`` holds the low, medium and high effort texts, in that order."""
    return Problem(family, key, question, dict(zip(EFFORTS, analysis, strict=True)), final)


def _arithmetic(rng: random.Random) -> Problem:
    op = rng.choice("+-*")
    if op == "+":
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        c = a + b
    elif op == "-":
        a = rng.randint(10, 99)
        b = rng.randint(1, a)
        c = a - b
    else:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        c = a * b
    shown = {"+": "+", "-": "-", "*": rng.choice(("×", "*", "times"))}[op]
    sym = {"+": "+", "-": "-", "*": "×"}[op]
    expr = f"{a} {shown} {b}"
    question = rng.choice((f"What is {expr}?", f"Compute {expr}.", f"Calculate {expr}.", f"What's {expr}?"))
    low = f"{a} {sym} {b} = {c}."
    if op == "+":
        tens, ones = (a // 10 + b // 10) * 10, a % 10 + b % 10
        medium = (
            f"Add {a} and {b}. Tens: {a // 10 * 10} + {b // 10 * 10} = {tens}. Ones: {a % 10} + {b % 10} = {ones}. "
            f"Total: {tens} + {ones} = {c}."
        )
        high = (
            f"The user asks for {a} + {b}.\nStep 1: split {a} = {a // 10 * 10} + {a % 10} and {b} = {b // 10 * 10}"
            f" + {b % 10}.\nStep 2: tens: {a // 10 * 10} + {b // 10 * 10} = {tens}.\nStep 3: ones: {a % 10} + "
            f"{b % 10} = {ones}.\nStep 4: {tens} + {ones} = {c}.\nCheck: {c} - {b} = {a}, correct.\n"
            f"So the answer is {c}."
        )
    elif op == "-":
        mid = a - b // 10 * 10
        medium = f"Subtract {b} from {a}. First take away {b // 10 * 10}: {a} - {b // 10 * 10} = {mid}. "
        medium += f"Then take away {b % 10}: {mid} - {b % 10} = {c}."
        high = (
            f"The user asks for {a} - {b}.\nStep 1: split {b} = {b // 10 * 10} + {b % 10}.\nStep 2: {a} - "
            f"{b // 10 * 10} = {mid}.\nStep 3: {mid} - {b % 10} = {c}.\nCheck: {c} + {b} = {a}, correct.\n"
            f"So the answer is {c}."
        )
    else:
        part = a * (b - 1)
        medium = f"Multiply {a} by {b}. {a} × {b - 1} = {part}. Add one more {a}: {part} + {a} = {c}."
        high = (
            f"The user asks for {a} × {b}.\nStep 1: {a} × {b} is {b} groups of {a}.\nStep 2: {b - 1} groups: "
            f"{a} × {b - 1} = {part}.\nStep 3: one more group: {part} + {a} = {c}.\nCheck: {c} ÷ {b} = {a}, correct.\n"
            f"So the answer is {c}."
        )
    return _problem("arithmetic", f"arith:{a}{op}{b}", question, (low, medium, high), f"{a} {sym} {b} = {c}.")


def _count(rng: random.Random) -> Problem:
    word = rng.choice(WORDS)
    present = sorted(set(word))
    # Mostly letters that occur; sometimes one that does not (answer 0).
    absent = [x for x in "abcdefghijklmnopqrstuvwxyz" if x not in word]
    letter = rng.choice(present) if rng.random() < 0.8 else rng.choice(absent)
    n = word.count(letter)
    question = rng.choice(
        (
            f'How many times does the letter "{letter}" appear in "{word}"?',
            f'Count the letter "{letter}" in "{word}".',
            f'How many "{letter}" are in the word "{word}"?',
        )
    )
    spelled = " ".join(word)
    where = [str(i + 1) for i, ch in enumerate(word) if ch == letter]
    low = f'"{word}" has {n} "{letter}".'
    found = f"at positions {', '.join(where)}" if where else "nowhere"
    medium = f'Spell "{word}": {spelled}. The letter "{letter}" is {found}. That makes {n}.'
    walk: list[str] = []
    seen = 0
    for ch in word:
        if ch == letter:
            seen += 1
            walk.append(f"{ch} yes ({seen})")
        else:
            walk.append(f"{ch} no")
    high = (
        f'The user wants the number of "{letter}" in "{word}".\nStep 1: spell it: {spelled}.\nStep 2: go letter '
        f"by letter: {', '.join(walk)}.\nCheck: the matches are {found}, so {n} in total.\nSo the count is {n}."
    )
    times = "time" if n == 1 else "times"
    return _problem(
        "count",
        f"count:{word}:{letter}",
        question,
        (low, medium, high),
        f'The letter "{letter}" appears {n} {times} in "{word}".',
    )


def _compare(rng: random.Random) -> Problem:
    a, b = rng.sample(range(1, 1000), 2)
    larger = rng.random() < 0.6
    pick = max(a, b) if larger else min(a, b)
    other = min(a, b) if larger else max(a, b)
    kind = "larger" if larger else "smaller"
    question = rng.choice(
        (
            f"Which is {kind}, {a} or {b}?",
            f"Which number is {'bigger' if larger else 'smaller'}: {a} or {b}?",
            f"Of {a} and {b}, which is {kind}?",
        )
    )
    big, small = max(a, b), min(a, b)
    sa, sb = str(a), str(b)
    if len(sa) != len(sb):
        reason = f"{a} has {len(sa)} digits and {b} has {len(sb)}, so {big} is bigger."
    else:
        i = next(i for i in range(len(sa)) if sa[i] != sb[i])
        place = ("first", "second", "third")[i]
        reason = f"Both have {len(sa)} digits. The {place} digits differ: {sa[i]} vs {sb[i]}, so {big} is bigger."
    low = f"{pick} is {kind} than {other}."
    medium = f"Compare {a} and {b}. {reason} The {kind} one is {pick}."
    high = (
        f"The user wants the {kind} of {a} and {b}.\nStep 1: count digits: {a} has {len(sa)}, {b} has {len(sb)}."
        f"\nStep 2: {reason}\nStep 3: the {kind} number is {pick}.\nCheck: {big} - {small} = {big - small}, which is "
        f"positive, so {big} > {small}.\nSo the answer is {pick}."
    )
    return _problem(
        "compare",
        f"compare:{min(a, b)}:{max(a, b)}:{kind}",
        question,
        (low, medium, high),
        f"{pick} is {kind} than {other}.",
    )


def _convert(rng: random.Random) -> Problem:
    src, dst, factor = rng.choice(UNITS)
    value = rng.randint(1, 50)
    result = value * factor
    question = rng.choice(
        (
            f"Convert {value} {src} to {dst}.",
            f"How many {dst} are in {value} {src}?",
            f"What is {value} {src} in {dst}?",
        )
    )
    low = f"{value} {src} × {factor} = {result} {dst}."
    medium = f"1 {src} = {factor} {dst}. So {value} {src} = {value} × {factor} {dst} = {result} {dst}."
    high = (
        f"The user wants {value} {src} in {dst}.\nStep 1: 1 {src} = {factor} {dst}.\nStep 2: multiply: {value} × "
        f"{factor} = {result}.\nStep 3: the unit is {dst}.\nCheck: {result} ÷ {factor} = {value}, correct.\n"
        f"So {value} {src} = {result} {dst}."
    )
    return _problem(
        "convert", f"convert:{src}:{dst}:{value}", question, (low, medium, high), f"{value} {src} = {result} {dst}."
    )


_MAKERS: Final = {"arithmetic": _arithmetic, "count": _count, "compare": _compare, "convert": _convert}


def sample_problem(rng: random.Random, family: str, *, held_out: bool) -> Problem:
    """A random problem of ``family`` from the training part (``held_out=False``) or the held-out part."""
    while True:
        problem = _MAKERS[family](rng)
        if is_held_out(problem.key) == held_out:
            return problem


def held_out_problems(family: str, count: int, seed: int = 1234) -> list[Problem]:
    """``count`` distinct held-out problems of ``family`` (distinct by problem, not by wording)."""
    rng = random.Random(f"{seed}:{family}")
    out: dict[str, Problem] = {}
    for _ in range(100_000):
        problem = sample_problem(rng, family, held_out=True)
        out.setdefault(problem.key, problem)
        if len(out) == count:
            return list(out.values())
    raise ValueError(f"the {family} family has fewer than {count} held-out problems")


def random_date(rng: random.Random) -> str | None:
    """A "Current date:" value for a training prompt: any day in 2023-2035, or None (no date line)."""
    if rng.random() < NO_DATE_SHARE:
        return None
    day = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(13 * 365))
    return day.isoformat()


# ------------------------------------------------------------------------------------------------- rendering
def completion_tokens(analysis: str, final: str, encoding: HarmonyEncoding | None = None) -> list[int]:
    """What the model must generate after ``<|start|>assistant``:
    ``<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>``.
    """
    enc = encoding if encoding is not None else get_encoding()
    first = enc.render(Message.from_role_and_content(Role.ASSISTANT, analysis).with_channel("analysis"))
    second = enc.render(Message.from_role_and_content(Role.ASSISTANT, final).with_channel("final"))
    # Each render is <|start|>assistant<|channel|>…<|end|>; the prompt already ends with <|start|>assistant, and
    # the answer ends with <|return|> (the stop token) instead of <|end|> (docs/model.md#stop-tokens).
    return list(first[2:]) + list(second[:-1]) + [RETURN]


def final_tokens(final: str, encoding: HarmonyEncoding | None = None) -> list[int]:
    """A completion that is only the answer: ``<|channel|>final<|message|>…<|return|>``."""
    enc = encoding if encoding is not None else get_encoding()
    rendered = enc.render(Message.from_role_and_content(Role.ASSISTANT, final).with_channel("final"))
    return [*rendered[2:-1], RETURN]  # drop <|start|>assistant and <|end|>, as in completion_tokens


@dataclass(frozen=True, slots=True)
class Example:
    """One tokenised training conversation; the loss covers the tokens ``ids[start:end]`` of each span.

    A plain problem has one span (the completion after the prompt). A tool problem has two: the completion up to
    and including ``<|call|>``, and the completion after the tool's result to ``<|return|>``; the tool's message in
    between is input, not target. One sequence holds both targets because the second target's prompt (prompt, call,
    result) starts with the first target's prompt and completion, token for token (checked when rendering), so under
    causal attention the shared sequence trains exactly what the two separate examples would.
    """

    ids: list[int]
    spans: tuple[tuple[int, int], ...]

    @property
    def prompt_len(self) -> int:
        """Length of the first prompt (everything before the first target token)."""
        return self.spans[0][0]


def render_example(
    problem: Problem,
    effort: ReasoningEffort,
    current_date: str | None,
    encoding: HarmonyEncoding | None = None,
) -> Example:
    enc = encoding if encoding is not None else get_encoding()
    prompt = render_prompt([ChatMessage.user(problem.question)], effort=effort, current_date=current_date, encoding=enc)
    ids = prompt + completion_tokens(problem.analysis[effort], problem.final, enc)
    return Example(ids, ((len(prompt), len(ids)),))


def training_examples(count: int, seed: int, encoding: HarmonyEncoding | None = None) -> list[Example]:
    """``count`` examples: families and efforts in equal shares, random problems, wording and dates."""
    rng = random.Random(seed)
    out: list[Example] = []
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        effort = EFFORTS[(i // len(FAMILIES)) % len(EFFORTS)]
        problem = sample_problem(rng, family, held_out=False)
        out.append(render_example(problem, effort, random_date(rng), encoding))
    return out
