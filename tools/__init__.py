"""Developer tools, run from a source checkout: benchmarks (``tools.bench``) and training and evaluating the demo
model (``tools.demo``).

Not part of the installed ``gpt_oss_desktop`` package nor of the bundle. From the repository root:
``python -m tools.demo.train ...``; the engine's ``bench`` and ``bench-batch`` commands import ``tools.bench``
through :func:`gpt_oss_desktop.engine.cli.source_tools.import_tool`.
"""
