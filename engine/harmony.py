"""A small, torch-free conversation model and its rendering into harmony prompt tokens via ``openai_harmony``.

A conversation is a flat list of :class:`ChatMessage` s in the order they happened: user text, the assistant's
reasoning (``analysis``), tool calls and tool results, and the assistant's answer (``final``). A flat list, not
"turns", because inside one turn a tool loop interleaves reasoning, calls and results, and the renderer needs that
order.

:func:`render_prompt` prunes earlier turns' reasoning itself (docs/model.md#dropping-earlier-reasoning): harmony's
``auto_drop_analysis`` only drops analysis before the *first* final answer, and nothing at all while a tool call is in
progress, so a 3-turn chat would otherwise resend turn 2's chain of thought.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyEncoding,
    Message,
    RenderConversationConfig,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespaceConfig,
)
from openai_harmony import ReasoningEffort as HarmonyReasoningEffort

from gpt_oss_desktop.engine.errors import PromptTextError
from gpt_oss_desktop.engine.events import ANALYSIS, COMMENTARY, FINAL
from gpt_oss_desktop.engine.response_format import ResponseFormat
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call
from gpt_oss_desktop.engine.vocab import END, MESSAGE, START, get_encoding

DEFAULT_KNOWLEDGE_CUTOFF: Final = "2024-06"
# Default for ``current_date``: render today's date. Pass None to leave the date line out.
TODAY: Final = "today"
JSON_CONTENT_TYPE: Final = "<|constrain|>json"
# The built-in python tool's recipient, and the content type the model writes its code with.
PYTHON_TOOL: Final = "python"
PYTHON_CONTENT_TYPE: Final = "code"
# How the python tool is described to the model in the system message. Ours runs each call in a fresh process
# (stateless, as OpenAI's reference tool describes itself), so harmony's stock text ("a stateful Jupyter notebook",
# "/mnt/data") would promise the model things it does not get.
PYTHON_TOOL_DESCRIPTION: Final = (
    "Use this tool to run Python code while you reason, for arithmetic and other exact work. The code is not shown "
    "to the user. Each message you send to python runs as a new, stateless Python 3 program: nothing is kept "
    "between calls, so define everything you use and print() the values you need. What the program prints to "
    "stdout and stderr comes back to you. It has no internet access and a time limit of a few seconds."
)


class ReasoningEffort(enum.StrEnum):
    """How much the model reasons before answering (rendered as ``Reasoning: low|medium|high``)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    def to_harmony(self) -> HarmonyReasoningEffort:
        return {
            ReasoningEffort.LOW: HarmonyReasoningEffort.LOW,
            ReasoningEffort.MEDIUM: HarmonyReasoningEffort.MEDIUM,
            ReasoningEffort.HIGH: HarmonyReasoningEffort.HIGH,
        }[self]


class ChatRole(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call as ``functions.<name>``; ``parameters`` is a JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation.

    user:      ``text``.
    assistant: ``text`` on ``channel`` (analysis = reasoning, final = answer, commentary = preamble); a tool call
               has ``recipient`` (``functions.get_weather``), usually ``content_type`` ``<|constrain|>json``, and the
               JSON arguments as ``text``.
    tool:      ``name`` (``functions.get_weather``) and the tool's output as ``text``, on the ``channel`` of the call
               it answers (commentary when None: function calls; python is called on analysis).
    """

    role: ChatRole
    text: str
    channel: str | None = None
    recipient: str | None = None
    name: str | None = None
    content_type: str | None = None

    def __post_init__(self) -> None:
        if self.role is ChatRole.ASSISTANT and self.channel is None:
            raise ValueError("assistant messages need a channel (analysis, commentary or final)")
        if self.role is ChatRole.TOOL and not self.name:
            raise ValueError("tool messages need the tool's name, e.g. 'functions.get_weather'")

    @classmethod
    def user(cls, text: str) -> ChatMessage:
        return cls(ChatRole.USER, text)

    @classmethod
    def analysis(cls, text: str) -> ChatMessage:
        return cls(ChatRole.ASSISTANT, text, channel=ANALYSIS)

    @classmethod
    def final(cls, text: str) -> ChatMessage:
        return cls(ChatRole.ASSISTANT, text, channel=FINAL)

    @classmethod
    def tool_call(
        cls, recipient: str, arguments: str, *, channel: str = COMMENTARY, content_type: str | None = JSON_CONTENT_TYPE
    ) -> ChatMessage:
        return cls(ChatRole.ASSISTANT, arguments, channel=channel, recipient=recipient, content_type=content_type)

    @classmethod
    def tool_result(cls, name: str, output: str, *, channel: str | None = None) -> ChatMessage:
        """A tool's output for the model; ``channel`` is the call's (harmony answers on the channel it was asked on)."""
        return cls(ChatRole.TOOL, output, channel=channel, name=name)

    @property
    def is_prunable_reasoning(self) -> bool:
        """Pure chain of thought: an assistant analysis message that is not a tool call."""
        return self.role is ChatRole.ASSISTANT and self.channel == ANALYSIS and self.recipient is None

    @property
    def is_builtin_tool_traffic(self) -> bool:
        """A call of a built-in tool (python, the browser) on ``analysis``, or its result: part of the reasoning as
        harmony sees it (it drops the analysis channel of finished turns), and bulky (a browser page is ~1k tokens)."""
        if self.channel != ANALYSIS:
            return False
        name = self.recipient if self.role is ChatRole.ASSISTANT else self.name if self.role is ChatRole.TOOL else None
        name = (name or "").strip()
        return name == PYTHON_TOOL or is_browser_call(name)


def assistant_turn(final: str, analysis: str | None = None) -> list[ChatMessage]:
    """The messages of a plain assistant reply (optional reasoning, then the answer)."""
    out = [ChatMessage.analysis(analysis)] if analysis else []
    out.append(ChatMessage.final(final))
    return out


def from_harmony(messages: Iterable[Message]) -> list[ChatMessage]:
    """Convert parsed assistant/tool messages (e.g. ``Done.messages``) into :class:`ChatMessage` s for history."""
    out: list[ChatMessage] = []
    for message in messages:
        text = "".join(c.text for c in message.content if isinstance(c, TextContent))
        role = message.author.role
        if role is Role.ASSISTANT:
            # A salvaged message may lack a channel; keep its text as an answer rather than lose it.
            out.append(
                ChatMessage(
                    ChatRole.ASSISTANT,
                    text,
                    channel=message.channel or FINAL,
                    recipient=message.recipient,
                    content_type=message.content_type,
                )
            )
        elif role is Role.USER:
            out.append(ChatMessage.user(text))
        elif role is Role.TOOL:
            out.append(ChatMessage.tool_result(message.author.name or "tool", text, channel=message.channel))
        # system/developer messages are rebuilt by render_prompt from its arguments
    return out


def prune_reasoning(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Drop chain-of-thought of finished turns: analysis messages before the last user message, the built-in tools'
    calls and results among them (python, the browser: on ``analysis`` they are reasoning to harmony too).

    Why the engine prunes itself instead of harmony: docs/model.md#dropping-earlier-reasoning.

    The current turn (after the last user message) keeps its reasoning, tool calls and tool results, so a tool loop
    continues with its chain of thought. Earlier function calls and their results stay (they are facts the answers
    may rest on, on the ``commentary`` channel harmony keeps).
    """
    last_user = max((i for i, m in enumerate(messages) if m.role is ChatRole.USER), default=-1)
    return [
        m for i, m in enumerate(messages) if i > last_user or not (m.is_prunable_reasoning or m.is_builtin_tool_traffic)
    ]


def _to_harmony_message(message: ChatMessage) -> Message:
    if message.role is ChatRole.USER:
        return Message.from_role_and_content(Role.USER, message.text)
    if message.role is ChatRole.TOOL:
        assert message.name is not None  # checked in __post_init__
        return (
            Message.from_author_and_content(Author.new(Role.TOOL, message.name), message.text)
            .with_recipient("assistant")
            .with_channel(message.channel or COMMENTARY)
        )
    out = Message.from_role_and_content(Role.ASSISTANT, message.text)
    if message.channel is not None:
        out = out.with_channel(message.channel)
    if message.recipient is not None:
        out = out.with_recipient(message.recipient)
    if message.content_type is not None:
        out = out.with_content_type(message.content_type)
    return out


def build_conversation(
    messages: Sequence[ChatMessage],
    *,
    effort: ReasoningEffort = ReasoningEffort.MEDIUM,
    instructions: str | None = None,
    knowledge_cutoff: str = DEFAULT_KNOWLEDGE_CUTOFF,
    current_date: str | None = TODAY,
    tools: Sequence[FunctionTool] | None = None,
    python_tool: bool = False,
    browser_tool: bool = False,
) -> Conversation:
    """The harmony ``Conversation`` :func:`render_prompt` renders (system, developer, pruned history)."""
    system = SystemContent.new().with_reasoning_effort(effort.to_harmony()).with_knowledge_cutoff(knowledge_cutoff)
    if current_date == TODAY:
        current_date = datetime.date.today().isoformat()
    if current_date is not None:
        system = system.with_conversation_start_date(current_date)
    if browser_tool:
        # Built-in tools live in the system message (harmony), developer functions in the developer message. The
        # browser is described in harmony's own words: the ones gpt-oss was trained with (engine/tools/browser).
        system = system.with_browser_tool()
    if python_tool:
        system = system.with_tools(ToolNamespaceConfig(name=PYTHON_TOOL, description=PYTHON_TOOL_DESCRIPTION, tools=[]))
    harmony_messages = [Message.from_role_and_content(Role.SYSTEM, system)]
    if instructions or tools:
        developer = DeveloperContent.new()
        if instructions:
            developer = developer.with_instructions(instructions)
        if tools:
            developer = developer.with_function_tools(
                [
                    ToolDescription.new(t.name, t.description, parameters=dict(t.parameters) if t.parameters else None)
                    for t in tools
                ]
            )
        harmony_messages.append(Message.from_role_and_content(Role.DEVELOPER, developer))
    harmony_messages.extend(_to_harmony_message(m) for m in prune_reasoning(messages))
    return Conversation.from_messages(harmony_messages)


def render_prompt(
    messages: Sequence[ChatMessage],
    *,
    effort: ReasoningEffort = ReasoningEffort.MEDIUM,
    instructions: str | None = None,
    knowledge_cutoff: str = DEFAULT_KNOWLEDGE_CUTOFF,
    current_date: str | None = TODAY,
    tools: Sequence[FunctionTool] | None = None,
    python_tool: bool = False,
    browser_tool: bool = False,
    response_format: ResponseFormat | None = None,
    encoding: HarmonyEncoding | None = None,
) -> list[int]:
    """Prompt tokens for the assistant's next message, ending with ``<|start|>assistant``.

    History is stored with ``<|end|>`` (``<|call|>`` for tool calls), never ``<|return|>``; earlier turns' reasoning
    is pruned (see :func:`prune_reasoning`). ``instructions`` and ``tools`` go in a developer message;
    ``python_tool`` offers the built-in python tool (:data:`PYTHON_TOOL_DESCRIPTION`) in the system message, and
    ``browser_tool`` the built-in browser (``browser.search|open|find``).
    ``current_date`` is ``"YYYY-MM-DD"``, :data:`TODAY` (default) or None for no date line. ``response_format``
    ends the developer message with the answer's JSON format (engine/response_format.py).
    """
    conversation = build_conversation(
        messages,
        effort=effort,
        instructions=instructions,
        knowledge_cutoff=knowledge_cutoff,
        current_date=current_date,
        tools=tools,
        python_tool=python_tool,
        browser_tool=browser_tool,
    )
    enc = encoding if encoding is not None else get_encoding()
    # Our pruning already did the right thing; harmony's own rule would drop a different set
    # (docs/model.md#dropping-earlier-reasoning).
    config = RenderConversationConfig(auto_drop_analysis=False)
    for text in (instructions or "", *(message.text for message in messages)):
        check_encodable(text)
    try:
        tokens = list(enc.render_conversation_for_completion(conversation, Role.ASSISTANT, config))
    except BaseException as exc:
        # A panic in openai_harmony's Rust (pyo3's PanicException derives from BaseException, so nothing else would
        # catch it): a request that cannot be rendered, not the end of the thread or server that asked.
        if type(exc).__name__ == "PanicException":
            raise PromptTextError(f"the conversation could not be encoded: {exc}") from None
        raise
    return tokens if response_format is None else _with_response_format(tokens, response_format, enc)


# openai_harmony's encoder takes time quadratic in the length of one unbroken run of letters, of punctuation or of
# whitespace (a BPE piece): 10,000 letters take 0.06 s, 40,000 take 0.9 s, 80,000 mixed letters 4 s, and a 2 MiB run
# panics. No text a model should read has such a run; a file of them (or a request made to stall a server) is refused
# before it reaches the encoder. 16,384 keeps the worst case near 0.15 s.
MAX_UNBROKEN_RUN: Final = 16_384
_LONG_RUN: Final = re.compile(
    rf"[^\W\d_]{{{MAX_UNBROKEN_RUN + 1},}}|[^\w\s]{{{MAX_UNBROKEN_RUN + 1},}}|\s{{{MAX_UNBROKEN_RUN + 1},}}"
)


def check_encodable(text: str) -> None:
    """Raise :class:`PromptTextError` if ``text`` holds a run longer than :data:`MAX_UNBROKEN_RUN` characters of
    letters, of punctuation or of whitespace, which the encoder would take minutes over (or panic on)."""
    if len(text) <= MAX_UNBROKEN_RUN:
        return
    found = _LONG_RUN.search(text)
    if found is not None:
        raise PromptTextError(
            f"a message holds {len(found.group()):,} characters in a row without a break (at character "
            f"{found.start():,}); at most {MAX_UNBROKEN_RUN:,} can be encoded"
        )


def _with_response_format(tokens: list[int], response_format: ResponseFormat, enc: HarmonyEncoding) -> list[int]:
    """``tokens`` (a rendered prompt) with a ``# Response Formats`` section at the end of the developer message, or
    in a developer message of its own after the system message where there is none.

    openai_harmony has no field for the section. Its rendering is kept (the developer message's instructions and
    tools, and the system message's line about the functions' channel, which it writes only for a developer message
    with tools), and the developer message's text is encoded again with the section after it, as harmony encodes a
    message's text (special tokens' names as plain text): a split encoding would differ where BPE joins across it.
    """
    role = enc.encode("developer", disallowed_special=())
    system_end = tokens.index(END) + 1
    head = [START, *role, MESSAGE]
    if tokens[system_end : system_end + len(head)] == head:
        body_start = system_end + len(head)
        body_end = tokens.index(END, body_start)
        text = f"{enc.decode_utf8(tokens[body_start:body_end])}\n\n{response_format.prompt_section()}"
        return [*tokens[:body_start], *enc.encode(text, disallowed_special=()), *tokens[body_end:]]
    section = enc.encode(response_format.prompt_section(), disallowed_special=())
    return [*tokens[:system_end], *head, *section, END, *tokens[system_end:]]


@dataclass(frozen=True, slots=True)
class ChatSession:
    """Immutable snapshot of a chat: settings plus history. ``with_*`` return new sessions."""

    messages: tuple[ChatMessage, ...] = ()
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    instructions: str | None = None
    tools: tuple[FunctionTool, ...] = field(default=())
    response_format: ResponseFormat | None = None

    def with_messages(self, *new: ChatMessage) -> ChatSession:
        return ChatSession(self.messages + new, self.effort, self.instructions, self.tools, self.response_format)

    def prompt(self, *, current_date: str | None = TODAY, encoding: HarmonyEncoding | None = None) -> list[int]:
        return render_prompt(
            self.messages,
            effort=self.effort,
            instructions=self.instructions,
            current_date=current_date,
            tools=self.tools or None,
            response_format=self.response_format,
            encoding=encoding,
        )
