#!/usr/bin/env bash
# Set up (once) and start the desktop app: `bash scripts/run.sh [--model PATH|demo]`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        # No NVIDIA GPU: take the CPU build of torch (the default wheel is a multi-GB CUDA build).
        .venv/bin/python -m pip install --quiet "torch==2.13.0"
    fi
    .venv/bin/python -m pip install --quiet -e .
fi
exec .venv/bin/python -P -m gpt_oss_desktop.app "$@"
