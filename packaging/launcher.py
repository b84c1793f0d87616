"""Entry script of the frozen app (PyInstaller starts here): the same as the ``gpt-oss-desktop`` command."""

import os
import sys
from pathlib import Path

if getattr(sys, "frozen", False):
    # The bundled ninja (see the spec) for torch.utils.cpp_extension, which builds the fused CPU kernel at first use.
    bundled_bin = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "bin"
    if bundled_bin.is_dir():
        os.environ["PATH"] = os.pathsep.join([str(bundled_bin), os.environ.get("PATH", "")])

from app.main import main  # after PATH: nothing may look up ninja before it is set

raise SystemExit(main())
