"""What the screenshots show: the questions, the scripted model's reasoning and answers, and the earlier chats of
the sample history. Plain data, kept apart from the code that drives the window (app/shell/screenshot_states.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Reply:
    """One scripted assistant reply: the reasoning (harmony's analysis channel), then the answer."""

    thought: str
    answer: str


@dataclass(frozen=True)
class PythonCall:
    """A scripted call of the python tool: the reasoning before it, and the program."""

    thought: str
    code: str


@dataclass(frozen=True)
class EarlierChat:
    """A chat of the sample history, last active ``age`` before the screenshot was taken."""

    title: str
    question: str
    reply: Reply
    age: timedelta
    effort: str = "medium"


SKY_QUESTION = "Why is the sky blue?"
SKY = Reply(
    "The user asks why the sky is blue. Explain Rayleigh scattering: sunlight contains all visible wavelengths; "
    "air molecules are much smaller than the wavelength, so they scatter light with an intensity proportional to "
    "1/λ⁴. Blue (≈450 nm) scatters about 5.5 times more than red (≈700 nm). Violet scatters even more, but the sun "
    "emits less of it and our eyes are less sensitive to it. Mention sunsets for contrast. Keep it short.",
    "Sunlight is a mix of all colours. As it passes through the atmosphere, it hits nitrogen and oxygen molecules "
    "that are far smaller than the wavelength of light, and they scatter short wavelengths much more strongly than "
    "long ones (Rayleigh scattering, proportional to 1/λ⁴).\n\n"
    "Blue light is scattered about five times more than red, so it reaches your eyes from every direction of the "
    "sky. Violet is scattered even more, but the Sun emits less of it and our eyes are less sensitive to it.\n\n"
    "At sunset the light crosses much more air, most of the blue is scattered away before it reaches you, and the "
    "sky near the horizon turns orange and red.",
)
CLOUDS_QUESTION = "Then why are clouds white?"
CLOUDS = Reply(
    "Clouds are made of droplets around 10–20 µm, much larger than the wavelength of visible light. That is Mie "
    "scattering, which is nearly independent of wavelength, so all colours scatter equally and the result is white. "
    "Thick clouds look grey because less light gets through.",
    "Cloud droplets are much larger than air molecules, roughly 10–20 micrometres across. Particles that size "
    "scatter all visible wavelengths about equally (Mie scattering), so the light they send you keeps the mix of "
    "colours it arrived with, and a mix of all colours looks white. Thick or tall clouds look grey underneath "
    "because less light makes it through them.",
)

MARKDOWN_QUESTION = "How do I count word frequencies in a text file with Python? Compare the options."
MARKDOWN = Reply(
    "They want word counts from a file. collections.Counter is the idiomatic way; show a short function, "
    "lower-casing and splitting on non-letters with a regex. Then a small table comparing Counter, a plain dict and "
    "pandas value_counts on speed, memory and dependencies.",
    "Use `collections.Counter`: it counts anything iterable and gives you the most common items directly.\n\n"
    "```python\n"
    "import re\n"
    "from collections import Counter\n"
    "from pathlib import Path\n\n\n"
    "def word_counts(path: Path, top: int = 10) -> list[tuple[str, int]]:\n"
    '    text = path.read_text(encoding="utf-8").lower()\n'
    '    words = re.findall(r"[a-z\']+", text)\n'
    "    return Counter(words).most_common(top)\n"
    "```\n\n"
    "The options compared:\n\n"
    "| Approach | Speed | Memory | Needs |\n"
    "|---|---|---|---|\n"
    "| `Counter` | fast (C loop) | one dict | standard library |\n"
    "| plain `dict` loop | about 2× slower | one dict | standard library |\n"
    "| `pandas` `value_counts` | fast once loaded | a whole Series | pandas |\n\n"
    "For a single file, `Counter` is the simplest and quickest choice.",
)

# The effort comparison: a trick question low effort gets wrong and more thinking gets right, which is the point of
# comparing. Column order: low, medium, high (the scripted model replays one script per request, in order).
COMPARE_QUESTION = (
    "A bat and a ball cost $1.10 together. The bat costs $1.00 more than the ball. What does the ball cost?"
)
COMPARE = (
    Reply(
        "Bat plus ball is 1.10 and the bat is 1.00 more, so the ball is 0.10.",
        "The ball costs **$0.10**.",
    ),
    Reply(
        "Let the ball cost x. Then the bat costs x + 1.00, and x + (x + 1.00) = 1.10, so 2x = 0.10 and x = 0.05. "
        "Check: ball 0.05, bat 1.05, total 1.10, difference 1.00. Correct.",
        "The ball costs **$0.05** (the bat $1.05): together $1.10, and the bat is $1.00 more.",
    ),
    Reply(
        "The quick answer 0.10 is a known trap: with the ball at 0.10 the bat would be 1.10 and the total 1.20. "
        "Set the ball to x: the bat is x + 1.00, so 2x + 1.00 = 1.10 and x = 0.05. Check both conditions: "
        "0.05 + 1.05 = 1.10 and 1.05 − 0.05 = 1.00. Both hold. Explain why 0.10 is wrong in one line.",
        "The ball costs **$0.05** and the bat $1.05. The tempting answer, $0.10, fails the check: the bat would then "
        "cost $1.10 and the two together $1.20.",
    ),
)

# Typed into the sidebar's search box in the sidebar state; several earlier chats match it.
SEARCH_QUERY = "python"

EARLIER_CHATS = (
    EarlierChat(
        "Regex for ISO dates in Python",
        "A regex that matches ISO dates like 2026-03-14 in Python?",
        Reply(
            "A simple pattern with four, two and two digits; mention datetime.fromisoformat for validation.",
            'Use `re.fullmatch(r"\\d{4}-\\d{2}-\\d{2}", text)`, then `date.fromisoformat(text)` to reject '
            "impossible dates such as 2026-02-30.",
        ),
        timedelta(hours=3),
        "low",
    ),
    EarlierChat(
        "Plan a three-day trip to Lisbon",
        "Plan a three-day trip to Lisbon in April.",
        Reply(
            "Three days: Alfama and the castle, Belém, then Sintra as a day trip.",
            "Day 1: Alfama, the castle and a fado evening. Day 2: Belém and the LX Factory. Day 3: a day trip to "
            "Sintra.",
        ),
        timedelta(days=1, hours=2),
    ),
    EarlierChat(
        "Python: list or tuple?",
        "When should I use a tuple instead of a list in Python?",
        Reply(
            "Tuples are immutable and hashable; lists are for collections that change.",
            "Use a tuple for a fixed record (it can be a dict key); use a list for a collection you add to.",
        ),
        timedelta(days=3),
        "low",
    ),
    EarlierChat(
        "Explain the birthday paradox",
        "Explain the birthday paradox simply.",
        Reply(
            "23 people give over 50 % because there are 253 pairs.",
            "With 23 people there are 253 pairs, and the chance that none of them share a birthday drops just "
            "below one half.",
        ),
        timedelta(days=5),
    ),
    EarlierChat(
        "Rust or Go for a small CLI tool?",
        "Rust or Go for a small command-line tool?",
        Reply(
            "Both fine; Go builds faster and is simpler, Rust gives smaller binaries and more control.",
            "Go if you want to ship this week; Rust if you want the smallest, fastest binary and enjoy the "
            "compiler's help.",
        ),
        timedelta(days=12),
    ),
    EarlierChat(
        "Speed up a slow Python loop",
        "My Python loop over a million rows is slow. What can I do?",
        Reply(
            "Vectorise with NumPy, or move the loop into a comprehension; profile first.",
            "Profile first, then move the work into NumPy or pandas operations; a comprehension alone often gives 2×.",
        ),
        timedelta(days=35),
        "high",
    ),
    EarlierChat(
        "Sourdough starter schedule",
        "How often should I feed a sourdough starter?",
        Reply(
            "Room temperature: daily; fridge: weekly.",
            "At room temperature feed it once or twice a day; kept in the fridge, once a week is enough.",
        ),
        timedelta(days=70),
    ),
)


POWER_QUESTION = "What is 2 to the power of 64, exactly?"
POWER_CALL = PythonCall(
    thought="The user wants 2**64 exactly. That is a 20-digit number; I should compute it rather than recall it.",
    code="print(2 ** 64)",
)
POWER = Reply(
    thought="Python printed 18446744073709551616.",
    answer="2⁶⁴ = **18,446,744,073,709,551,616**.",
)

# Attached files: a question sent with a CSV (its bubble shows the file's chip), and the next message being written
# with two more files in the composer.
RAINFALL_QUESTION = "Which month was wettest, and by how much?"
RAINFALL_FILE = (
    "rainfall-2025.csv",
    "month,rain_mm\nJanuary,78\nFebruary,61\nMarch,54\nApril,49\nMay,42\nJune,21\nJuly,9\nAugust,12\n"
    "September,38\nOctober,96\nNovember,113\nDecember,102\n",
)
RAINFALL = Reply(
    "The file has monthly rainfall in mm. The maximum is November with 113 mm; the next is December with 102 mm, "
    "so November leads by 11 mm. The driest is July with 9 mm.",
    "**November** was the wettest month with **113 mm**, 11 mm more than December (102 mm). The driest was July, "
    "with 9 mm.",
)
NEXT_FILES = (
    ("plot_rainfall.py", 'import csv\n\nwith open("rainfall-2025.csv") as f:\n    rows = list(csv.DictReader(f))\n'),
    ("station-notes.md", "# Station\n\nThe gauge was moved in August; readings from then on are 3 % high.\n"),
)
NEXT_DRAFT = "Finish this script to plot the months as bars, and correct for the note"


@dataclass(frozen=True)
class BrowserCall:
    """A saved call of the browser tool: the reasoning before it, the call's arguments, and what the browser showed."""

    thought: str
    recipient: str
    arguments: str
    output: str


BROWSING_QUESTION = "When does the Perseid meteor shower peak this year, and when is the best time to watch?"
BROWSING_PAGE = "https://www.example.org/astronomy/perseids"
BROWSING_CALLS = (
    BrowserCall(
        "The user asks about this year's Perseid peak. Search the web for a current source.",
        "browser.search",
        '{"query": "Perseid meteor shower peak this year best time to watch"}',
        "[0] Perseid meteor shower peak this year best time to watch\n"
        "**viewing lines [0 - 6] of 6**\n\n"
        "L0: # Search Results\n"
        "L1: \n"
        "L2: * 【0†Perseid meteor shower: peak dates and viewing tips†www.example.org】\n"
        "L3:   The Perseids peak on the night of 12–13 August; the best hours are before dawn.\n"
        "L4: * 【1†Meteor showers calendar†skyguide.example.net】\n"
        "L5:   Dates, rates and moon phases for every major shower of the year.\n"
        "L6: ",
    ),
    BrowserCall(
        "The first result looks like an astronomy guide. Open it.",
        "browser.open",
        '{"id": 0, "cursor": 0}',
        f"[1] Perseid meteor shower: peak dates and viewing tips ({BROWSING_PAGE})\n"
        "**viewing lines [0 - 7] of 7**\n\n"
        "L0: # Perseid meteor shower: peak dates and viewing tips\n"
        "L1: \n"
        "L2: The Perseids are active from mid-July to late August. This year the shower\n"
        "L3: peaks on the night of 12–13 August, with up to 100 meteors an hour under\n"
        "L4: dark skies.\n"
        "L5: \n"
        "L6: The best time to look is between midnight and dawn, when the radiant in\n"
        "L7: Perseus is high. Give your eyes 20 minutes to adapt, away from city lights.",
    ),
)
BROWSING = Reply(
    "The page says the peak is the night of 12–13 August, up to 100 meteors an hour, best between midnight and "
    "dawn. Answer with that and cite the page.",
    "The Perseids peak on the **night of 12–13 August**, with up to about 100 meteors an hour under dark skies"
    "【1†L2-L4】.\n\n"
    "The best time to watch is **between midnight and dawn**, when the radiant in Perseus is high: find a dark spot "
    "away from city lights and give your eyes about 20 minutes to adapt【1†L6-L7】.",
)
