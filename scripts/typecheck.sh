#!/usr/bin/env bash
# Type-check the package under its installed names (gpt_oss_desktop.*): `bash scripts/typecheck.sh [mypy args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/namespace_tree.sh >/dev/null
exec "${MYPY:-.venv/bin/mypy}" "$@"
