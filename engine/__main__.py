"""``python -m gpt_oss_desktop.engine``: the engine's command-line interface."""

import sys

from gpt_oss_desktop.engine.cli import main

sys.exit(main())
