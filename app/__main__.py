"""``python -m gpt_oss_desktop.app``: the same as the ``gpt-oss-desktop`` command."""

from gpt_oss_desktop.app.main import main

raise SystemExit(main())
