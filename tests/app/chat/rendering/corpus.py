"""Realistic chat-model Markdown for the rendering tests: prose, headings, lists, tables, quotes and code fences."""

from __future__ import annotations

import random

FIXED = """# Plan

Here is **what** we will do, with `inline code` and a [link](https://example.org).

1. Parse the *input*
2. Validate it
   - nested point
3. Emit output

Some <b>raw HTML</b> that must stay text.

```python
def add(a: int, b: int) -> int:
    \"\"\"Add.\"\"\"
    return a + b
```

> A quote
> over two lines

| name | value |
|------|-------|
| a    | 1     |

- loose item

- another loose item

```
plain block
```

Setext heading
--------------

Final words ~~struck~~.
"""

_WORDS = ["the", "model", "reads", "tokens", "and", "writes", "answers", "with", "care", "while", "user", "code"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 14))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(_WORDS)}()`"
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"**{rng.choice(_WORDS)}**"
    return " ".join(words).capitalize() + "."


def _block(rng: random.Random, index: int) -> str:
    kind = rng.choice(["para", "para", "list", "olist", "code", "heading", "quote", "table"])
    if kind == "para":
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) + "\n"
    if kind == "list":
        return "".join(f"- {_sentence(rng)}\n" for _ in range(rng.randint(2, 5)))
    if kind == "olist":
        return "".join(f"{i + 1}. {_sentence(rng)}\n" for i in range(rng.randint(2, 5)))
    if kind == "code":
        lines = [
            f"def step_{index}_{i}(x: int) -> int:\n    return x * {i}  # {rng.choice(_WORDS)}\n" for i in range(3)
        ]
        return "```python\n" + "".join(lines) + "```\n"
    if kind == "heading":
        return f"## Section {index}\n"
    if kind == "quote":
        return f"> {_sentence(rng)}\n"
    return "| key | value |\n|-----|-------|\n" + "".join(f"| {rng.choice(_WORDS)} | {i} |\n" for i in range(3))


def generate(n_chars: int, seed: int = 0) -> str:
    """Markdown of about ``n_chars`` characters."""
    rng = random.Random(seed)
    blocks: list[str] = []
    total = 0
    while total < n_chars:
        block = _block(rng, len(blocks))
        blocks.append(block)
        total += len(block) + 1
    return "\n".join(blocks)


def tokenize(text: str, seed: int = 0) -> list[str]:
    """Split into 1-6 character pieces, roughly like BPE tokens (and splitting lines and fences arbitrarily)."""
    rng = random.Random(seed)
    out: list[str] = []
    i = 0
    while i < len(text):
        n = rng.randint(1, 6)
        out.append(text[i : i + n])
        i += n
    return out
