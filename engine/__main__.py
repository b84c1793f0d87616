"""``python -m engine``: the engine's command-line interface."""

import sys

from engine.cli import main

sys.exit(main())
