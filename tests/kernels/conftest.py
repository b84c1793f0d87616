"""The ``cpu_isa`` fixture: runs a fused-CPU-kernel test once per instruction-set level (kernels.cpu_build).

Levels this CPU lacks, or whose variant cannot be built here, are skipped with the reason. Each variant is compiled
once per test session (then loaded from the build cache keyed by source, flags and level).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpt_oss_desktop.kernels import cpu_build


@pytest.fixture(params=cpu_build.LEVEL_NAMES)
def cpu_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    level: str = request.param
    if level not in cpu_build.supported_levels():
        pytest.skip(f"this CPU ({cpu_build.cpu_model_name()}) lacks {level}")
    status = cpu_build.load_level(level)
    if not status.ok:
        pytest.skip(f"the {level} CPU kernels could not be built here: {status.reason}")
    with cpu_build.use_level(level):
        yield level
