"""An effort comparison as a history entry, kept in memory (export and continue work without a store) and mirrored
to the store by :class:`~gpt_oss_desktop.app.chat.chat_session.ChatSession` (no Qt here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from gpt_oss_desktop.app.chat.conversation import Turn
from gpt_oss_desktop.app.history import Attachment, Chat, Message, title_from_prompt
from gpt_oss_desktop.app.history.models import check_effort, check_role, utc_now
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams

INCLUDE_CONTEXT_KEY: Final = "include_context"


def _row(
    position: int,
    column: int,
    role: str,
    text: str,
    *,
    analysis: str = "",
    effort: str | None,
    complete: bool,
    attachments: tuple[Attachment, ...] = (),
) -> Message:
    return Message(
        id=0,
        chat_id=0,
        position=position,
        column=column,
        role=check_role(role),
        text=text,
        analysis=analysis,
        effort=check_effort(effort),
        stats={},
        complete=complete,
        created_at=utc_now(),
        attachments=attachments,
    )


def context_records(turns: Sequence[Turn]) -> list[Message]:
    """Turns as history rows at positions 0, 1, ... (as the store copies them), saved with a comparison."""
    records: list[Message] = []
    for turn in turns:
        records.append(
            _row(len(records), 0, "user", turn.user, effort=None, complete=True, attachments=turn.attachments)
        )
        if turn.answered:
            effort = turn.effort.value if turn.effort else None
            records.append(
                _row(len(records), 0, "assistant", turn.answer, analysis=turn.reasoning, effort=effort, complete=True)
            )
    return records


def sampling_record(params: SamplingParams) -> dict[str, Any]:
    return {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}


def new_comparison(
    prompt: str,
    context: Sequence[Turn],
    efforts: Sequence[ReasoningEffort],
    params: SamplingParams,
    model: str,
    *,
    attachments: tuple[Attachment, ...] = (),
    title: str | None = None,
) -> Chat:
    """A comparison before it runs: the context, the prompt with its attached files and one empty, incomplete answer
    per effort. ``title``: the entry's name (default: from the prompt)."""
    rows = context_records(context)
    position = len(rows)
    rows.append(_row(position, 0, "user", prompt, effort=None, complete=True, attachments=attachments))
    rows += [
        _row(position + 1, column, "assistant", "", effort=effort.value, complete=False)
        for column, effort in enumerate(efforts)
    ]
    now = utc_now()
    return Chat(
        id=0,
        kind="comparison",
        title=title_from_prompt(prompt) if title is None else title,
        created_at=now,
        updated_at=now,
        system_instructions="",
        developer_instructions="",
        model=model,
        sampling=sampling_record(params),
        meta={INCLUDE_CONTEXT_KEY: bool(context)},
        deleted_at=None,
        messages=tuple(rows),
    )


def answer_position(chat: Chat) -> int:
    """Where a comparison's answers sit (one position, one column per effort)."""
    return max((m.position for m in chat.messages), default=0)


def context_of(chat: Chat) -> list[Message]:
    """The messages a comparison was asked with, before its prompt."""
    return [m for m in chat.messages if m.position < answer_position(chat) - 1]


def _prompt_message(chat: Chat) -> Message | None:
    last = answer_position(chat)
    return next((m for m in chat.messages if m.position == last - 1 and m.role == "user"), None)


def prompt_of(chat: Chat) -> str:
    message = _prompt_message(chat)
    return message.text if message is not None else ""


def prompt_attachments_of(chat: Chat) -> tuple[Attachment, ...]:
    """The files attached to a comparison's prompt (none for comparisons saved before prompts could have them)."""
    message = _prompt_message(chat)
    return message.attachments if message is not None else ()


def answers_of(chat: Chat) -> list[Message]:
    """The comparison's answers, in column order."""
    last = answer_position(chat)
    return sorted((m for m in chat.messages if m.position == last and m.role == "assistant"), key=_column)


def with_answer(chat: Chat, column: int, text: str, reasoning: str, stats: Mapping[str, Any]) -> Chat:
    """``chat`` with the answer of ``column`` filled in and complete."""
    last = answer_position(chat)
    messages = tuple(
        replace(m, text=text, analysis=reasoning, stats=dict(stats), complete=True)
        if m.role == "assistant" and m.column == column and m.position == last
        else m
        for m in chat.messages
    )
    return replace(chat, messages=messages)


def _column(message: Message) -> int:
    return message.column
