"""Every broken checkpoint gets the advice that fits it: classify_load_error sorts the engine's typed errors by type.

Each case is a real load (app.backends.local_engine.load_local_model, the app's loader) of a real broken folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_oss_desktop.app.backends.chat_backend import LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.local_engine import classify_load_error, load_local_model
from gpt_oss_desktop.engine.errors import CheckpointError, InsufficientMemoryError, UnsupportedDeviceError
from tests.helpers import broken_checkpoints as broken
from tests.helpers.capped_memory import LINUX_ONLY, load_with_capped_memory, write_200_mb_checkpoint

CASES = [
    *((build, LoadErrorKind.MISSING_FILES) for build in broken.MISSING),
    *((build, LoadErrorKind.INVALID_CHECKPOINT) for build in (*broken.BAD_CONFIG, *broken.DAMAGED)),
    *((build, LoadErrorKind.UNSUPPORTED_CHECKPOINT) for build in (*broken.UNSUPPORTED, *broken.OTHER_FORMAT)),
    *((build, LoadErrorKind.NOT_A_MODEL) for build in broken.NOT_A_MODEL),
]


def _kind_of_load(folder: Path, device: str = "cpu") -> LoadErrorKind:
    # Any exception: whatever the loader raises is what gets classified.
    with pytest.raises(Exception) as caught:
        load_local_model(str(folder), device=device, dtype="float32")
    return classify_load_error(caught.value, str(folder)).kind


@pytest.mark.parametrize(("build", "kind"), CASES, ids=lambda case: getattr(case, "__name__", str(case)))
def test_each_broken_checkpoint_gets_its_kind(tmp_path: Path, build: broken.Builder, kind: LoadErrorKind) -> None:
    assert _kind_of_load(build(tmp_path)) is kind


def _load_error_of(folder: Path) -> LoadError:
    with pytest.raises(Exception) as caught:
        load_local_model(str(folder), device="cpu", dtype="float32")
    return classify_load_error(caught.value, str(folder))


@pytest.mark.parametrize("build", broken.ALL, ids=lambda build: build.__name__)
def test_the_message_names_the_folder_once(tmp_path: Path, build: broken.Builder) -> None:
    # Shown as is in the banner: "/x: /x: no such file or directory" was the message of a missing folder.
    folder = build(tmp_path)
    error = _load_error_of(folder)
    assert str(error) == error.message
    assert error.message.count(str(folder)) == 1, error.message


def test_an_error_without_a_path_gets_the_model_ref_once() -> None:
    error = classify_load_error(InsufficientMemoryError("not enough system memory", "cpu"), "/models/big")
    assert str(error) == "/models/big: not enough system memory"
    unexpected = classify_load_error(RuntimeError("boom"), "/models/big")
    assert str(unexpected) == "/models/big: boom"
    assert str(classify_load_error(RuntimeError(), "/m")) == "/m: RuntimeError"
    # A custom loader's own OSError: its file once, not "/m: [Errno 2] No such file or directory: '/m/x'"
    missing = classify_load_error(FileNotFoundError(2, "No such file or directory", "/m/x"), "/m")
    assert str(missing) == "/m/x: No such file or directory" and missing.kind is LoadErrorKind.MISSING_FILES


@pytest.mark.parametrize("build", broken.NOT_A_MODEL, ids=lambda build: build.__name__)
def test_a_folder_that_is_not_a_model_says_so_and_suggests_another(tmp_path: Path, build: broken.Builder) -> None:
    folder = build(tmp_path)
    error = _load_error_of(folder)
    assert error.kind is LoadErrorKind.NOT_A_MODEL
    assert error.message.startswith(f"{folder} is not a model folder: ")
    assert "config.json" in error.message and "no weights" in error.message
    advice = error.advice.lower()
    assert "open" in advice and "download a model" in advice and "demo" in advice
    assert "damaged" not in advice and "again" not in advice  # nothing was damaged or downloaded


def test_a_truncated_checkpoint_is_still_damaged(tmp_path: Path) -> None:
    error = _load_error_of(broken.truncated_weights(tmp_path))
    assert error.kind is LoadErrorKind.INVALID_CHECKPOINT
    assert "Download the model again" in error.advice


def test_a_missing_tensor_is_damage_though_its_message_says_missing(tmp_path: Path) -> None:
    # The file is there and readable but incomplete: "download again", not "check the folder". The text says
    # "missing tensor", which message matching took for missing files.
    folder = broken.tensor_left_out(tmp_path)
    with pytest.raises(CheckpointError, match="missing tensor"):
        load_local_model(str(folder), dtype="float32")
    assert _kind_of_load(folder) is LoadErrorKind.INVALID_CHECKPOINT


def test_a_device_that_cannot_run_the_model_is_unsupported_device(tmp_path: Path) -> None:
    folder = broken.truncated_weights(tmp_path)  # never read: the device is refused first
    with pytest.raises(UnsupportedDeviceError):
        load_local_model(str(folder), device="cuda:99")
    assert _kind_of_load(folder, device="cuda:99") is LoadErrorKind.UNSUPPORTED_DEVICE


@pytest.mark.slow
@LINUX_ONLY
@pytest.mark.parametrize("headroom", [0.5, 1.5], ids=["files-do-not-map", "weights-do-not-fit"])
def test_a_checkpoint_too_big_for_memory_is_out_of_memory(tmp_path: Path, headroom: float) -> None:
    # 0.5: mmap fails with ENOMEM, an OSError like a damaged file's ("files look damaged" was the advice);
    # 1.5: the files map, torch's CPU allocator fails for the float32 weights (a bug report was the advice).
    kind = load_with_capped_memory(
        write_200_mb_checkpoint(tmp_path / "small"),
        headroom,
        preload="""
            from gpt_oss_desktop.app.backends.local_engine import classify_load_error, load_local_model
            import gpt_oss_desktop.engine.loader, gpt_oss_desktop.engine.model
        """,
        attempt="""
            try:
                load_local_model(str(folder), device="cpu", dtype="float32")
            except Exception as exc:
                print(json.dumps(classify_load_error(exc, str(folder)).kind.value))
        """,
    )
    assert kind == "out_of_memory"
