"""Entry script of the frozen app (PyInstaller starts here): the same as the ``gpt-oss-desktop`` command."""

import os
import sys
from pathlib import Path

if getattr(sys, "frozen", False):
    # The bundled ninja (see the spec) for torch.utils.cpp_extension, which builds the fused CPU kernel at first use.
    bundled_bin = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "bin"
    if bundled_bin.is_dir():
        os.environ["PATH"] = os.pathsep.join([str(bundled_bin), os.environ.get("PATH", "")])
    # The app's own cache folder, as kernels/cpu_build.py uses when TORCH_EXTENSIONS_DIR is unset; the build folders
    # in it are keyed by install (sys.prefix), so the bundle and a pip install never rebuild over each other.
    if not os.environ.get("TORCH_EXTENSIONS_DIR"):
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(cache) / "gpt-oss-desktop" / "torch_extensions")

from gpt_oss_desktop.app.main import main  # after PATH: nothing may look up ninja before it is set

raise SystemExit(main())
