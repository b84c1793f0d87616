"""Every broken checkpoint gets the advice that fits it: classify_load_error sorts the engine's typed errors by type.

Each case is a real load (app.backends.local_engine.load_local_model, the app's loader) of a real broken folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_oss_desktop.app.backends.chat_backend import LoadErrorKind
from gpt_oss_desktop.app.backends.local_engine import classify_load_error, load_local_model
from gpt_oss_desktop.engine.errors import CheckpointError, UnsupportedDeviceError
from tests.helpers import broken_checkpoints as broken
from tests.helpers.capped_memory import LINUX_ONLY, load_with_capped_memory, write_200_mb_checkpoint

CASES = [
    *((build, LoadErrorKind.MISSING_FILES) for build in broken.MISSING),
    *((build, LoadErrorKind.INVALID_CHECKPOINT) for build in (*broken.BAD_CONFIG, *broken.DAMAGED)),
    *((build, LoadErrorKind.UNSUPPORTED_CHECKPOINT) for build in broken.UNSUPPORTED),
]


def _kind_of_load(folder: Path, device: str = "cpu") -> LoadErrorKind:
    # Any exception: whatever the loader raises is what gets classified.
    with pytest.raises(Exception) as caught:
        load_local_model(str(folder), device=device, dtype="float32")
    return classify_load_error(caught.value, str(folder)).kind


@pytest.mark.parametrize(("build", "kind"), CASES, ids=lambda case: getattr(case, "__name__", str(case)))
def test_each_broken_checkpoint_gets_its_kind(tmp_path: Path, build: broken.Builder, kind: LoadErrorKind) -> None:
    assert _kind_of_load(build(tmp_path)) is kind


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
