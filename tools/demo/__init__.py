"""Training (``python -m tools.demo.train``) and evaluating (``python -m tools.demo.evaluate``) the toy demo model;
its synthetic data (``tools.demo.data``). The runtime part, materialising the shipped weights, is
``gpt_oss_desktop.engine.demo``."""
