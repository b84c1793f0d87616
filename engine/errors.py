"""Typed errors the engine raises for problems a user can see and act on."""

from __future__ import annotations

from pathlib import Path


class EngineError(Exception):
    """Base class of every error the engine reports to a user."""


class CheckpointError(EngineError):
    """A checkpoint folder or file that cannot be loaded as it is.

    Attributes:
        path: the file (or folder) at fault.
        tensor: the tensor name at fault, when there is one.
        key: the JSON key at fault (``rope_scaling.factor``), when there is one.
    """

    def __init__(
        self, message: str, path: Path | str | None = None, tensor: str | None = None, *, key: str | None = None
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.tensor = tensor
        self.key = key
        self.reason = message
        where = []
        if path is not None:
            where.append(str(path))
        if tensor is not None:
            where.append(f"tensor {tensor!r}")
        if key is not None:
            where.append(f"key {key!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(CheckpointError):
    """A config.json that is missing, malformed, or not a gpt-oss config.

    A config.json is part of a checkpoint, so this is a :class:`CheckpointError`: whoever loads a checkpoint
    handles one error type for every malformed input.
    """

    def __init__(self, message: str, path: Path | str | None = None, key: str | None = None) -> None:
        super().__init__(message, path, key=key)


class MissingFilesError(CheckpointError):
    """A file or folder the checkpoint needs is not there: a wrong path, or a download that did not finish.

    ``path`` names what is missing (the folder, config.json, a shard).
    """


class NotAModelFolderError(CheckpointError):
    """A folder that holds no model at all: no config.json and no weights (an empty folder, a folder of documents).

    Not damage and not an interrupted download (a folder with a gpt-oss config.json or with weights is one of
    those): the user picked the wrong folder. The message reads "<folder> is not a model folder: <why>".
    """

    def __init__(self, message: str, path: Path | str) -> None:
        super().__init__(message, path)
        # "<folder> is not a model folder: ..." reads better than the usual "<folder>: ..." (still one path).
        self.args = (f"{path} is not a model folder: {message}",)


class UnsupportedCheckpointError(CheckpointError):
    """A readable checkpoint stored in a form this engine does not load: a tensor dtype or quantization other than
    gpt-oss's own layouts (OpenAI's original, Hugging Face MXFP4, Hugging Face dense)."""


class InsufficientMemoryError(EngineError):
    """Not enough host or GPU memory to load the model; the ``MemoryError`` or ``torch.OutOfMemoryError`` is the
    ``__cause__``.

    Attributes:
        device: the device the model was being loaded onto (``"cpu"``, ``"cuda:0"``).
    """

    def __init__(self, message: str, device: str) -> None:
        super().__init__(message)
        self.device = device


class UnsupportedDeviceError(EngineError):
    """The device asked for cannot run the model: this torch build has no CUDA, there is no such GPU, or no kernel
    in this torch build runs on the GPU's architecture.

    Attributes:
        device: the device asked for (``"cuda:1"``).
    """

    def __init__(self, message: str, device: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class VocabularyError(EngineError):
    """The bundled o200k_base vocabulary is missing or corrupted."""


class LoadCancelled(EngineError):
    """A model load stopped on request (its progress callback raised this); nothing of it stays loaded."""


class GenerationError(EngineError):
    """A generation request that cannot be run (e.g. a prompt longer than the context)."""


class PromptTextError(GenerationError):
    """A message whose text the tokenizer cannot encode in reasonable time (engine/harmony.check_encodable)."""


class QueueFullError(GenerationError):
    """A :class:`~engine.continuous_batcher.ContinuousBatcher` already has as many requests waiting as it accepts.

    Attributes:
        retry_after: seconds a client should wait before trying again (an estimate from recent step times; a server
            answers 429 with it as ``Retry-After``).
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
