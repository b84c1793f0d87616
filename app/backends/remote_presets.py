"""The servers Model ▸ Connect to a server… knows: each one's documented base URL, whether it wants a key, and how
it takes the reasoning effort and earlier reasoning. Qt-free.

Base URLs are those each project or provider documents for its OpenAI-compatible API (local servers at their
default ports). The reasoning style says how the effort is sent (``reasoning_effort`` at the top level, or
``reasoning: {effort}`` for OpenRouter); ``send_reasoning_back`` is False where the provider rejects reasoning
fields in input messages (Groq answers 400).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from gpt_oss_desktop.engine.remote.connection import ReasoningStyle


class PresetId(enum.StrEnum):
    THIS_APP = "this_app"
    VLLM = "vllm"
    SGLANG = "sglang"
    OLLAMA = "ollama"
    LM_STUDIO = "lm_studio"
    LLAMA_CPP = "llama_cpp"
    OPENROUTER = "openrouter"
    TOGETHER = "together"
    GROQ = "groq"
    NOVITA = "novita"
    QUBRID = "qubrid"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Preset:
    """One kind of server.

    ``needs_key``: the server refuses requests without an API key (hosted APIs); local servers run without one
    unless started with one. ``suggested_model``: the gpt-oss model id the provider documents, offered before a
    Refresh lists the real ones.
    """

    id: PresetId
    label: str
    base_url: str
    needs_key: bool
    reasoning_style: ReasoningStyle = ReasoningStyle.REASONING_EFFORT
    send_reasoning_back: bool = True
    suggested_model: str = ""
    key_env_var: str = ""  # the environment variable the provider's docs use for the key


PRESETS: Final[tuple[Preset, ...]] = (
    Preset(PresetId.THIS_APP, "This app's server (Serve on localhost)", "http://127.0.0.1:8000/v1", False),
    Preset(PresetId.VLLM, "vLLM", "http://localhost:8000/v1", False, suggested_model="openai/gpt-oss-120b"),
    Preset(PresetId.SGLANG, "SGLang", "http://localhost:30000/v1", False, suggested_model="openai/gpt-oss-120b"),
    Preset(PresetId.OLLAMA, "Ollama", "http://localhost:11434/v1", False, suggested_model="gpt-oss:20b"),
    Preset(PresetId.LM_STUDIO, "LM Studio", "http://localhost:1234/v1", False, suggested_model="openai/gpt-oss-20b"),
    Preset(PresetId.LLAMA_CPP, "llama.cpp server", "http://localhost:8080/v1", False),
    Preset(
        PresetId.OPENROUTER,
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        True,
        ReasoningStyle.REASONING_OBJECT,
        suggested_model="openai/gpt-oss-120b",
        key_env_var="OPENROUTER_API_KEY",
    ),
    Preset(
        PresetId.TOGETHER,
        "Together AI",
        "https://api.together.xyz/v1",
        True,
        suggested_model="openai/gpt-oss-120b",
        key_env_var="TOGETHER_API_KEY",
    ),
    Preset(
        PresetId.GROQ,
        "Groq",
        "https://api.groq.com/openai/v1",
        True,
        send_reasoning_back=False,
        suggested_model="openai/gpt-oss-120b",
        key_env_var="GROQ_API_KEY",
    ),
    Preset(
        PresetId.NOVITA,
        "Novita AI",
        "https://api.novita.ai/v3/openai",
        True,
        suggested_model="openai/gpt-oss-120b",
        key_env_var="NOVITA_API_KEY",
    ),
    Preset(
        PresetId.QUBRID,
        "Qubrid AI",
        "https://platform.qubrid.com/v1",
        True,
        suggested_model="openai/gpt-oss-120b",
        key_env_var="QUBRID_API_KEY",
    ),
    Preset(PresetId.CUSTOM, "Custom (any OpenAI-compatible server)", "", False),
)

_BY_ID: Final = {preset.id: preset for preset in PRESETS}


def preset(preset_id: PresetId | str) -> Preset:
    """The preset with this id (Custom for an id this version does not know, e.g. from newer settings)."""
    try:
        return _BY_ID[PresetId(preset_id)]
    except ValueError:
        return _BY_ID[PresetId.CUSTOM]
