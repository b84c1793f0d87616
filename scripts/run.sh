#!/usr/bin/env bash
# Set up (once) and run the engine CLI: `bash scripts/run.sh chat --model DIR "What is 17 + 25?"`.
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
exec .venv/bin/python -m engine "$@"
