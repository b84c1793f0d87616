#!/usr/bin/env bash
# Smoke-test a built bundle: run its --self-test offscreen, from outside the source tree, with a throwaway data
# folder (so it proves the bundle needs nothing from the checkout or the user's files).
#
#   bash packaging/smoke.sh [path/to/gpt-oss-desktop]      # default dist/gpt-oss-desktop/gpt-oss-desktop
#
# Exit status is the self-test's (0 passed, 1 a step failed, 2 timed out). Prints one JSON line with the time.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=$(realpath "${1:-dist/gpt-oss-desktop/gpt-oss-desktop}")
if [ ! -x "$exe" ]; then
    echo "smoke.sh: no bundle at $exe; build it first: bash packaging/build.sh" >&2
    exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

started=$(date +%s%N)
status=0
(cd "$scratch" && env -u PYTHONPATH -u PYTHONHOME QT_QPA_PLATFORM=offscreen GPTOSS_DESKTOP_DATA_DIR="$scratch/data" \
    "$exe" --self-test --self-test-timeout 600) || status=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
printf '{"frozen_self_test_s": %d.%03d, "exit_status": %d}\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$status"
exit "$status"
