"""The terminal chat's turn loop, shared by ``chat --model`` (the local engine) and ``chat --server`` (a remote one).

With a prompt: one answer, exit status 1 if it failed. Without: read a line, answer it, keep what the model said
(even a cut-off answer) so the next turn has the context; an empty line or Ctrl-D ends the chat. A message that
cannot be answered at all (too long for the context, refused by the server) is dropped, and the chat goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from gpt_oss_desktop.engine.events import Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, ChatSession, from_harmony


def converse(
    session: ChatSession,
    prompt: str | None,
    answer: Callable[[ChatSession], Done],
    refused: type[Exception],
    intro: str,
) -> int:
    """Run one answer (``prompt``) or an interactive chat; ``answer(turn)`` prints one answer and returns its Done,
    raising ``refused`` for a message it could not send at all."""
    if prompt is not None:
        done = answer(session.with_messages(ChatMessage.user(prompt)))
        return 1 if done.finish_reason is FinishReason.ERROR else 0
    sys.stdout.write(f"{intro} Empty line or Ctrl-D to quit; Ctrl-C stops an answer.\n")
    while True:
        try:
            text = input("> ")
        except (EOFError, KeyboardInterrupt):
            sys.stdout.write("\n")
            return 0
        if not text.strip():
            return 0
        turn = session.with_messages(ChatMessage.user(text))
        try:
            done = answer(turn)
        except refused as exc:
            sys.stderr.write(f"error: {exc}\nThat message was not sent; the chat goes on without it.\n")
            continue
        # render_prompt prunes this turn's reasoning once the user speaks again.
        session = turn.with_messages(*from_harmony(done.messages))
