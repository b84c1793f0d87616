"""The o200k_harmony vocabulary: the bundled BPE file, its integrity check, and the shared harmony encoding.

openai-harmony downloads ``o200k_base.tiktoken`` on first use unless ``TIKTOKEN_ENCODINGS_BASE`` names a folder holding
it (docs/model.md#vocabulary-file). A desktop app must work offline, so unless the user chose a folder themselves we
point harmony at the copy shipped in ``resources/``, after checking its SHA-256 ourselves: harmony's own check reports a
corrupt file with a cryptic message, ours names the file and what to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Final

from openai_harmony import HarmonyEncoding, HarmonyEncodingName, HarmonyError, load_harmony_encoding

from gpt_oss_desktop.engine.errors import VocabularyError
from gpt_oss_desktop.resources import resource_path

logger = logging.getLogger(__name__)

VOCAB_FILE_NAME: Final = "o200k_base.tiktoken"
VOCAB_SHA256: Final = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
ENCODINGS_BASE_ENV: Final = "TIKTOKEN_ENCODINGS_BASE"

# Special-token ids of o200k_harmony (docs/model.md#special-tokens); fixed by the tokenizer, so plain constants avoid
# loading the encoding just to name a token.
STARTOFTEXT: Final = 199998
ENDOFTEXT: Final = 199999
RETURN: Final = 200002
CONSTRAIN: Final = 200003
CHANNEL: Final = 200005
START: Final = 200006
END: Final = 200007
MESSAGE: Final = 200008
CALL: Final = 200012

# Tokens that end an assistant action: sampling stops on them (docs/model.md#stop-tokens). <|end|> is deliberately
# absent.
ASSISTANT_STOP_TOKENS: Final[frozenset[int]] = frozenset({RETURN, CALL})
# Tokens that close a message in the harmony grammar.
MESSAGE_STOP_TOKENS: Final[frozenset[int]] = frozenset({RETURN, END, CALL})

_lock = threading.Lock()
_encoding: HarmonyEncoding | None = None


def bundled_vocab_path() -> Path:
    """Path of the vocabulary file shipped with the app."""
    return resource_path(VOCAB_FILE_NAME)


def verify_vocab_file(path: Path) -> None:
    """Raise :class:`VocabularyError` unless ``path`` exists and has the expected SHA-256."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise VocabularyError(f"vocabulary file {path} is missing; reinstall gpt-oss desktop") from None
    except OSError as exc:
        raise VocabularyError(f"cannot read vocabulary file {path}: {exc}") from exc
    if digest != VOCAB_SHA256:
        raise VocabularyError(
            f"vocabulary file {path} is corrupted (SHA-256 {digest}, expected {VOCAB_SHA256}); "
            "reinstall gpt-oss desktop"
        )


def load_encoding(vocab_dir: Path | None = None) -> HarmonyEncoding:
    """Load a fresh o200k_harmony encoding (~0.16 s). Most callers want the shared :func:`get_encoding`.

    ``vocab_dir`` overrides where the vocabulary is read from. Without it, a user-set
    ``TIKTOKEN_ENCODINGS_BASE`` is respected (harmony checks that file's hash itself); otherwise the bundled
    folder is verified and used. The variable is left set so that any later harmony load in this process
    (tests, tools) also stays offline.
    """
    if vocab_dir is not None:
        verify_vocab_file(vocab_dir / VOCAB_FILE_NAME)
        os.environ[ENCODINGS_BASE_ENV] = str(vocab_dir)
    elif os.environ.get(ENCODINGS_BASE_ENV):
        logger.debug("using the user's %s=%s", ENCODINGS_BASE_ENV, os.environ[ENCODINGS_BASE_ENV])
    else:
        bundled = bundled_vocab_path()
        verify_vocab_file(bundled)
        os.environ[ENCODINGS_BASE_ENV] = str(bundled.parent)
    try:
        return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    except HarmonyError as exc:
        where = os.environ.get(ENCODINGS_BASE_ENV, "")
        raise VocabularyError(f"cannot load the harmony vocabulary from {where}: {exc}") from exc


def get_encoding() -> HarmonyEncoding:
    """The process-wide o200k_harmony encoding, loaded once on first use (thread-safe)."""
    global _encoding
    # Double-checked: the fast path takes no lock once loaded.
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = load_encoding()
    return _encoding
