#!/usr/bin/env bash
# Set up (the first time) and start the desktop app: `bash scripts/run.sh [--model PATH|demo] [app options]`.
# The first run creates .venv and installs torch and the app from the lock (a few minutes, said step by step); later
# runs start at once, and bring .venv up to date when the lock or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

# After each install: build the fused CPU kernels now rather than before the first answer. Only where the engine has
# the command (`prepare-kernels --help` succeeds); the marker holds the install stamp it was run for.
installed=$(cat .venv/.installed-app)
if [ "$(cat .venv/.kernels-prepared 2>/dev/null)" != "$installed" ] &&
    .venv/bin/gpt-oss-desktop-engine prepare-kernels --help >/dev/null 2>&1; then
    started=$(date +%s)
    echo "==> Preparing the CPU kernels (compiles them for this CPU; a one-time step, seconds to a minute)"
    if .venv/bin/gpt-oss-desktop-engine prepare-kernels; then
        echo "    done in $(($(date +%s) - started)) s"
    else
        echo "    could not build them; the app uses the slower torch path and says so" >&2
    fi
    printf '%s\n' "$installed" >.venv/.kernels-prepared
fi

case " $* " in
*" -h "* | *" --help "*) ;;
*)
    # Qt aborts the process when its X11 plugin misses a system library, naming at most one: name them all first.
    .venv/bin/python -P -m gpt_oss_desktop.app.desktop.platform_check
    ;;
esac
echo "==> Starting gpt-oss desktop"
exec .venv/bin/python -P -m gpt_oss_desktop.app "$@"
