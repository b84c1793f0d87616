"""Chat history persistence: SQLite storage, search, and Markdown/JSON export. No Qt here."""

from .attachments import Attachment, message_text
from .errors import (
    ChatNotFoundError,
    CorruptDatabaseError,
    ForeignDatabaseError,
    HistoryError,
    ImportFormatError,
    SchemaTooNewError,
    SearchCancelledError,
    StoreClosedError,
)
from .export import REASONING_LABEL, chat_from_json, chat_to_json, chat_to_markdown
from .models import (
    CHAT_KINDS,
    EFFORTS,
    ROLES,
    AnswerStats,
    Chat,
    ChatKind,
    ChatSummary,
    Effort,
    Message,
    Role,
    SearchHit,
    StoredToolCall,
)
from .schema import SCHEMA_VERSION
from .searcher import HistorySearcher
from .store import ChatStore, title_from_prompt

__all__ = [
    "CHAT_KINDS",
    "EFFORTS",
    "REASONING_LABEL",
    "ROLES",
    "SCHEMA_VERSION",
    "AnswerStats",
    "Attachment",
    "Chat",
    "ChatKind",
    "ChatNotFoundError",
    "ChatStore",
    "ChatSummary",
    "CorruptDatabaseError",
    "Effort",
    "ForeignDatabaseError",
    "HistoryError",
    "HistorySearcher",
    "ImportFormatError",
    "Message",
    "Role",
    "SchemaTooNewError",
    "SearchCancelledError",
    "SearchHit",
    "StoreClosedError",
    "StoredToolCall",
    "chat_from_json",
    "chat_to_json",
    "chat_to_markdown",
    "message_text",
    "title_from_prompt",
]
