"""Data files shipped with gpt-oss desktop (vocabulary, demo model, icons)."""

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Absolute path of a bundled resource file."""
    return RESOURCES_DIR / name
