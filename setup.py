"""Maps the repository's top-level folders into one import namespace, ``gpt_oss_desktop``.

The folders stay where the design puts them (``app/``, ``engine/``, ``kernels/``, ``resources/``); installed, they
are ``gpt_oss_desktop.app`` and so on, so no generic top-level name (``kernels`` is also Hugging Face's package)
ever reaches site-packages. Everything else lives in pyproject.toml; only the package list needs code, because
setuptools' ``packages.find`` cannot add a prefix to the names it finds.
"""

from setuptools import find_packages, setup

NAMESPACE = "gpt_oss_desktop"
FOLDERS = ("app", "engine", "kernels", "resources")

packages = [f"{NAMESPACE}.{name}" for name in find_packages(include=[f"{folder}*" for folder in FOLDERS])]
setup(
    packages=packages,
    package_dir={f"{NAMESPACE}.{folder}": folder for folder in FOLDERS},
)
