"""gpt-oss desktop: the Qt chat window over the in-process engine. The only package that imports PySide6."""
