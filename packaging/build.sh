#!/usr/bin/env bash
# Build the one-folder Linux bundle dist/gpt-oss-desktop/ and its archive dist/gpt-oss-desktop-<version>-linux-<arch>.tar.gz.
#
#   bash packaging/build.sh              # with .venv/bin/python if it exists, else python3; PYTHON=... overrides
#
# Needs the app and PyInstaller installed in that Python: `pip install -e ".[packaging]"`. The bundle holds whatever
# torch that Python has (the CPU build in CI; a CUDA torch gives a GPU bundle, with Triton). Knobs: see the spec.
# Prints one JSON line with the build time and the sizes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed in $PYTHON; run: $PYTHON -m pip install -e '.[packaging]'" >&2
    exit 1
fi
version=$("$PYTHON" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
archive="dist/gpt-oss-desktop-${version}-linux-$(uname -m).tar.gz"

started=$(date +%s)
rm -rf dist/gpt-oss-desktop "$archive"
# offscreen: PyInstaller's Qt hooks start a QtCore process to find the plugins; no display is needed for that.
QT_QPA_PLATFORM=offscreen "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/gpt-oss-desktop.spec
built=$(date +%s)
tar -C dist -czf "$archive" gpt-oss-desktop
archived=$(date +%s)

bundle_bytes=$(du -sb dist/gpt-oss-desktop | cut -f1)
archive_bytes=$(stat -c %s "$archive")
printf '{"build_s": %d, "archive_s": %d, "bundle_bytes": %d, "bundle_mib": %d, "archive_bytes": %d, "archive_mib": %d, "archive": "%s"}\n' \
    $((built - started)) $((archived - built)) "$bundle_bytes" $((bundle_bytes / 1048576)) \
    "$archive_bytes" $((archive_bytes / 1048576)) "$archive"
