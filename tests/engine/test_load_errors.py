"""load_model raises one error class per problem (engine/errors.py), each from a real broken checkpoint, so callers
sort errors by type and never by their text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine import load_model
from gpt_oss_desktop.engine.device_check import has_kernel_image
from gpt_oss_desktop.engine.errors import (
    CheckpointError,
    ConfigError,
    EngineError,
    MissingFilesError,
    NotAModelFolderError,
    UnsupportedCheckpointError,
    UnsupportedDeviceError,
)
from tests.helpers import broken_checkpoints as broken
from tests.helpers.capped_memory import LINUX_ONLY, load_with_capped_memory, write_200_mb_checkpoint


def _load_error(folder: Path, device: str = "cpu") -> EngineError:
    with pytest.raises(EngineError) as caught:
        load_model(folder, device=device, dtype="float32")
    return caught.value


@pytest.mark.parametrize("build", broken.MISSING, ids=lambda b: b.__name__)
def test_missing_files_are_missing_files_errors(tmp_path: Path, build: broken.Builder) -> None:
    folder = build(tmp_path)
    error = _load_error(folder)
    assert type(error) is MissingFilesError, error
    assert error.path is not None and folder in (error.path, *error.path.parents)


@pytest.mark.parametrize("build", broken.BAD_CONFIG, ids=lambda b: b.__name__)
def test_bad_configs_are_config_errors(tmp_path: Path, build: broken.Builder) -> None:
    error = _load_error(build(tmp_path))
    assert type(error) is ConfigError, error


@pytest.mark.parametrize("build", broken.DAMAGED, ids=lambda b: b.__name__)
def test_damaged_files_are_plain_checkpoint_errors(tmp_path: Path, build: broken.Builder) -> None:
    error = _load_error(build(tmp_path))
    assert type(error) is CheckpointError, error  # present but damaged: not missing, not unsupported


@pytest.mark.parametrize("build", broken.UNSUPPORTED, ids=lambda b: b.__name__)
def test_foreign_dtypes_are_unsupported_checkpoint_errors(tmp_path: Path, build: broken.Builder) -> None:
    error = _load_error(build(tmp_path))
    assert type(error) is UnsupportedCheckpointError, error
    assert error.tensor is not None  # names the tensor in the foreign dtype


@pytest.mark.parametrize("build", broken.NOT_A_MODEL, ids=lambda b: b.__name__)
def test_a_folder_without_config_or_weights_is_not_a_model_folder(tmp_path: Path, build: broken.Builder) -> None:
    folder = build(tmp_path)
    error = _load_error(folder)
    assert type(error) is NotAModelFolderError, error
    assert error.path == folder
    assert str(error).startswith(f"{folder} is not a model folder: ")
    assert "no weights" in str(error)


def test_weights_of_another_runtime_are_unsupported_and_named(tmp_path: Path) -> None:
    error = _load_error(broken.weights_of_another_runtime(tmp_path))
    assert type(error) is UnsupportedCheckpointError, error
    assert "gpt-oss-20b-Q4_K_M.gguf" in str(error)


def test_a_gpt_oss_config_without_weights_is_still_missing_files_not_the_wrong_folder(tmp_path: Path) -> None:
    # An interrupted download (the config came, the weights did not): "download again", not "open another folder".
    error = _load_error(broken.config_without_weights(tmp_path))
    assert type(error) is MissingFilesError, error


@pytest.mark.parametrize("build", broken.ALL, ids=lambda b: b.__name__)
def test_each_error_names_the_folder_once(tmp_path: Path, build: broken.Builder) -> None:
    folder = build(tmp_path)
    assert str(_load_error(folder)).count(str(folder)) == 1, str(_load_error(folder))


def test_a_device_without_cuda_or_out_of_range_is_refused_before_reading(tmp_path: Path) -> None:
    # cuda:99: a CPU-only build has no CUDA at all; a CUDA machine has no 100th GPU. Either way, refused up front:
    # the folder does not even exist, and the error is about the device.
    error = _load_error(tmp_path / "never-read", device="cuda:99")
    assert type(error) is UnsupportedDeviceError, error
    assert error.device == "cuda:99"


@pytest.mark.parametrize(
    ("capability", "arch_list", "runs"),
    [
        ((9, 0), ["sm_80", "sm_90"], True),
        ((8, 6), ["sm_80", "sm_90"], True),  # sm_80 binaries run on 8.6
        ((7, 5), ["sm_80", "sm_90"], False),  # older than any build: "no kernel image"
        ((12, 0), ["sm_80", "sm_90"], False),  # newer major, no PTX
        ((12, 0), ["sm_80", "sm_90", "compute_90"], True),  # PTX compiles for newer GPUs
        ((9, 0), ["sm_90a"], True),
        ((8, 0), ["sm_86"], False),  # a binary for a higher minor does not run on a lower one
    ],
)
def test_kernel_images_follow_cuda_compatibility(capability: tuple[int, int], arch_list: list[str], runs: bool) -> None:
    assert has_kernel_image(capability, arch_list) is runs


@pytest.fixture(scope="module")
def checkpoint_of_200_mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_200_mb_checkpoint(tmp_path_factory.mktemp("oom") / "small")


@pytest.mark.slow
@LINUX_ONLY
@pytest.mark.parametrize(
    ("headroom", "cause"),
    [
        (0.5, "OSError"),  # less than the files: mapping them fails (ENOMEM), which is not damage
        (1.5, "RuntimeError"),  # the files map, the float32 weights do not fit (torch's CPU allocator fails)
    ],
)
def test_running_out_of_memory_is_insufficient_memory(checkpoint_of_200_mb: Path, headroom: float, cause: str) -> None:
    outcome = load_with_capped_memory(
        checkpoint_of_200_mb,
        headroom,
        preload="""
            import gpt_oss_desktop.engine.model
            from gpt_oss_desktop.engine.errors import InsufficientMemoryError
            from gpt_oss_desktop.engine.loader import load_model
        """,
        attempt="""
            try:
                load_model(folder, device="cpu", dtype="float32")
            except InsufficientMemoryError as exc:
                cause = type(exc.__cause__).__name__
                print(json.dumps({"error": type(exc).__name__, "cause": cause, "device": exc.device}))
            else:
                print(json.dumps({"error": None}))
        """,
    )
    assert outcome == {"error": "InsufficientMemoryError", "cause": cause, "device": "cpu"}


def test_cuda_out_of_memory_is_insufficient_memory_too() -> None:
    # torch's own CUDA OOM type is a RuntimeError subclass; the loader catches it by type (no GPU needed to check
    # the class relation the loader relies on).
    assert issubclass(torch.OutOfMemoryError, RuntimeError)
