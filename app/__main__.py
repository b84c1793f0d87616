"""``python -m app``: the same as the ``gpt-oss-desktop`` command."""

from app.main import main

raise SystemExit(main())
