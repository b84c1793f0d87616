#!/usr/bin/env bash
# Set up (once, from the lock) and run the whole test suite: `bash scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export HF_HUB_OFFLINE=1
export TRITON_INTERPRET=1
# -P: the repository root stays off sys.path, so only the installed gpt_oss_desktop package is imported.
exec .venv/bin/python -P -m pytest -q "$@"
