"""The engine-facing interface the GUI depends on, so a remote backend can replace the local one untouched.

Nothing here imports Qt or torch. A backend loads one model at a time and streams one answer at a time as
:class:`engine.events.Delta` s followed by exactly one :class:`engine.events.Done`, or several answers at once as one
batch (an effort comparison).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gpt_oss_desktop.engine.events import Delta, Done, LoadProgress
from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool, ReasoningEffort

# The model reference that selects the bundled demo model (re-exported: the app reads it from here).
from gpt_oss_desktop.engine.model_ref import DEMO_MODEL as DEMO_MODEL
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.request_log import RequestListener


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the status bar shows about the loaded model."""

    name: str
    device: str  # a GPU's marketing name, or "CPU"
    context_length: int
    weights: str = "bf16"  # the local engine's load mode (engine.weights_mode): "q8" = 8-bit attention weights
    # What one more token of context costs in KV cache, for one chat (0: not known, e.g. a remote server)
    kv_bytes_per_token: int = 0


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One answer to generate: the whole visible conversation, rendered by the backend each turn, and the tools
    offered to the model (``tools`` in the developer message, the built-in ``python_tool`` and ``browser_tool`` in
    the system message; a remote server gets both as function tools, engine/remote/tool_wire.py)."""

    messages: tuple[ChatMessage, ...]
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    params: SamplingParams = field(default_factory=SamplingParams)
    instructions: str | None = None
    tools: tuple[FunctionTool, ...] = ()
    python_tool: bool = False
    browser_tool: bool = False


class LoadErrorKind(enum.StrEnum):
    """Categories of load failure, each with its own advice to the user."""

    NOT_A_MODEL = "not_a_model"
    MISSING_FILES = "missing_files"
    INVALID_CHECKPOINT = "invalid_checkpoint"
    UNSUPPORTED_CHECKPOINT = "unsupported_checkpoint"
    OUT_OF_MEMORY = "out_of_memory"
    UNSUPPORTED_DEVICE = "unsupported_device"
    UNEXPECTED = "unexpected"
    CANCELLED = "cancelled"
    # a remote server (app/backends/remote_backend.py)
    SERVER_UNREACHABLE = "server_unreachable"
    API_KEY = "api_key"
    UNKNOWN_MODEL = "unknown_model"
    NOT_AN_API = "not_an_api"
    TLS_FAILURE = "tls_failure"


_ADVICE: dict[LoadErrorKind, str] = {
    LoadErrorKind.NOT_A_MODEL: "Open the folder that holds the model (its config.json and .safetensors files), "
    "download a model, or try the demo model.",
    LoadErrorKind.MISSING_FILES: "Check the model folder, or download the model again. "
    "You can also try the demo model.",
    LoadErrorKind.INVALID_CHECKPOINT: "The model files look damaged or incomplete. Download the model again.",
    LoadErrorKind.UNSUPPORTED_CHECKPOINT: "These model files are stored in a form the app cannot load (converted or "
    "quantized differently). Download gpt-oss in its original or Hugging Face form.",
    LoadErrorKind.OUT_OF_MEMORY: "Close other programs that use GPU or system memory, or choose a smaller model.",
    LoadErrorKind.UNSUPPORTED_DEVICE: "Your GPU or driver is not supported. Update the driver, or run on the CPU.",
    LoadErrorKind.UNEXPECTED: "This looks like a bug. The log has details; please report it.",
    LoadErrorKind.CANCELLED: "Loading was cancelled. Choose a model to load when you are ready.",
    LoadErrorKind.SERVER_UNREACHABLE: "Check that the server is running and that its URL is right; Model ▸ Connect "
    "to a server… tests each step.",
    LoadErrorKind.API_KEY: "Enter the API key again in Model ▸ Connect to a server….",
    LoadErrorKind.UNKNOWN_MODEL: "Choose another model: Model ▸ Connect to a server… lists the ones the server has.",
    LoadErrorKind.NOT_AN_API: "Check the server's URL: an OpenAI-compatible API usually ends in /v1.",
    LoadErrorKind.TLS_FAILURE: "Check http:// versus https:// in the URL, and the server's certificate.",
}


class LoadError(Exception):
    """A model could not be loaded; ``advice`` tells the user what to do about it.

    Attributes:
        kind: the category, which picks the advice.
        message: what went wrong, as shown to the user; it names the model's folder (or the file at fault) once.
        model_ref: the model that was asked for (a folder, :data:`DEMO_MODEL` or a saved server ``server:<name>``).
    """

    def __init__(self, kind: LoadErrorKind, message: str, model_ref: str) -> None:
        super().__init__(kind, message, model_ref)
        self.kind = kind
        self.message = message
        self.model_ref = model_ref

    @property
    def advice(self) -> str:
        return _ADVICE[self.kind]

    def __str__(self) -> str:
        # The message already says where: prefixing model_ref gave "/x: /x: no such file or directory".
        return self.message


class RequestError(Exception):
    """A request that could not run at all (no model loaded, prompt longer than the context, ...)."""


class ChatBackend(Protocol):
    """Loads a model and streams answers. Every method is called from the GUI thread's event loop."""

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        ...

    async def load(self, model_ref: str, on_progress: LoadProgress | None = None) -> ModelInfo:
        """Load ``model_ref`` (a folder or :data:`DEMO_MODEL`), replacing any loaded model. Raises LoadError.

        ``on_progress`` is called on the GUI thread.
        """
        ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[Delta | Done, None]:
        """Deltas, then one Done. Raises RequestError before the first event if the request cannot run."""
        ...

    def stream_compare(self, requests: Sequence[ChatRequest]) -> AsyncGenerator[tuple[int, Delta | Done], None]:
        """Answer several requests at once (one batch): ``(index, Delta)`` pairs, and exactly one ``(index, Done)``
        per request, in the order they finish. Raises RequestError before the first event if the batch cannot run.
        :meth:`cancel` stops every request of the batch."""
        ...

    def cancel(self) -> None:
        """Stop the running answer (or every answer of a running comparison) after the current token; its stream
        still ends with a Done (per answer)."""
        ...

    def cancel_load(self) -> None:
        """Stop the running load soon; ``load`` then raises a LoadError of kind CANCELLED."""
        ...

    async def unload(self) -> None:
        """Free the loaded model's memory."""
        ...

    def close(self) -> None:
        """Stop the backend for good (at app exit); safe to call twice."""
        ...


@runtime_checkable
class ContextFitBackend(Protocol):
    """A backend that can leave out a long chat's oldest turns to fit its model's context (engine/context_fit.py)."""

    def set_fit_context(self, on: bool) -> None:
        """Fit long chats from the next answer on (True), or let them fail as too long (False)."""
        ...


@runtime_checkable
class ContextLengthBackend(Protocol):
    """A backend whose local engine lets chats grow to a chosen context (Model ▸ Context length)."""

    @property
    def context_length_setting(self) -> int:
        """The context the local engine allows a chat now."""
        ...

    async def set_context_length(self, length: int) -> ModelInfo | None:
        """Allow ``length`` tokens from the next answer on; the local model's new info when it is the one in use."""
        ...


@runtime_checkable
class WeightsBackend(Protocol):
    """A backend whose next local load can quantise the attention weights to 8 bits (Model ▸ 8-bit attention
    weights; engine.weights_mode)."""

    @property
    def weights_mode(self) -> str:
        """The mode the next load uses: ``"bf16"`` or ``"q8"``."""
        ...

    def set_weights_mode(self, mode: str) -> None:
        """Use ``mode`` from the next load on (the loaded model is kept as it is)."""
        ...


@runtime_checkable
class ServingBackend(Protocol):
    """A backend that can also serve its loaded model over the OpenAI-compatible API (Model ▸ Serve on localhost).

    The server shares the loaded model (no second copy); requests from outside run beside the app's own chats.
    """

    @property
    def server_url(self) -> str | None:
        """``http://127.0.0.1:PORT/v1`` while serving, else None."""
        ...

    async def start_server(self, config: ServerConfig, on_request: RequestListener | None = None) -> str:
        """Serve the loaded model; returns the base URL. Raises :class:`RequestError` (no model loaded, port taken)."""
        ...

    async def stop_server(self) -> None:
        """Stop serving (idempotent); requests in flight end cancelled."""
        ...
