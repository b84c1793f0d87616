"""Text the tokenizer would stall on (engine/harmony.check_encodable): one unbroken run of letters, punctuation or
whitespace longer than MAX_UNBROKEN_RUN is refused with a typed error before it reaches openai_harmony's encoder,
whose time grows with the square of such a run's length; ordinary long text passes."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.engine.errors import GenerationError, PromptTextError
from gpt_oss_desktop.engine.harmony import MAX_UNBROKEN_RUN, ChatMessage, check_encodable, render_prompt

LONG = MAX_UNBROKEN_RUN + 1


@pytest.mark.parametrize("run", ["a" * LONG, "é" * LONG, "=" * LONG, " " * LONG, "\n" * LONG, "日本" * (LONG // 2 + 1)])
def test_a_run_too_long_to_encode_is_refused_with_a_typed_error(run: str) -> None:
    with pytest.raises(PromptTextError, match="without a break") as raised:
        render_prompt([ChatMessage.user("Look: " + run + " (end)")])
    assert isinstance(raised.value, GenerationError)  # the app and the server treat it as a request that cannot run


@pytest.mark.parametrize(
    "text",
    [
        "a" * MAX_UNBROKEN_RUN,  # at the limit
        "word " * 50_000,  # long, but in pieces
        "1234567890" * 20_000,  # digits are split into threes by the encoder
        ("x" * 1000 + ".") * 100,
    ],
)
def test_long_text_in_pieces_passes(text: str) -> None:
    check_encodable(text)
    assert render_prompt([ChatMessage.user(text)])


def test_instructions_are_checked_too() -> None:
    with pytest.raises(PromptTextError):
        render_prompt([ChatMessage.user("hi")], instructions="-" * LONG)
