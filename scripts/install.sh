#!/usr/bin/env bash
# Create or update the virtualenv .venv with the app, from the lock (requirements/constraints.txt):
#   bash scripts/install.sh [EXTRAS]     e.g. `test` or `test,packaging` (the pyproject extras; none for the app)
# scripts/run.sh, scripts/test.sh and .ci/run call it; it says what it does and how long each step took.
#
# - torch first, as the build for this machine: with an NVIDIA GPU the default (CUDA) build; without one the CPU build
#   from PyTorch's CPU index, or the default index when that index cannot be reached.
# - then the app, every version pinned by the lock (pip -c).
# - stamps (.venv/.installed-app and one .venv/.installed-<extra> per extra) hold a hash of the lock, pyproject.toml
#   and setup.py: when every part asked for was installed from these files, nothing is installed; when they changed
#   (a `git pull`), the venv is brought up to date.
# Environment: PYTHON (default python3, 3.11 or newer), VENV (default .venv), TORCH_INDEX_URL (forces the index torch
# comes from; empty: the default index), INSTALLER (pip, the default, or uv: CI uses uv, which installs the same
# locked versions many times faster; uv does not read pip's configuration, so the find-links in it are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
LOCK=requirements/constraints.txt
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

step_started=0
step() {
    step_started=$(date +%s)
    printf '==> %s\n' "$*"
}
step_done() {
    printf '    done in %s s\n' "$(($(date +%s) - step_started))"
}

INSTALLER="${INSTALLER:-pip}"
# pip's own progress bars on a terminal; quiet in logs (CI, redirected output).
if [ -t 1 ]; then
    PIP_OUTPUT=(--progress-bar on)
else
    PIP_OUTPUT=(--quiet)
fi
UV_ARGS=(--quiet)
pip_install() {
    # (Timeouts go in PIP_TIMEOUT / UV_HTTP_TIMEOUT, which both installers read, rather than in flags.)
    if [ "$INSTALLER" = uv ]; then
        "$VENV/bin/uv" pip install --python "$VENV/bin/python" "${UV_ARGS[@]}" "$@"
    else
        "$VENV/bin/python" -m pip install --disable-pip-version-check "${PIP_OUTPUT[@]}" "$@"
    fi
}

locked() {
    # The locked version of one package ("torch" -> "2.13.0").
    sed -n "s/^$1==//p" "$LOCK"
}

has_nvidia_gpu() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

reachable() {
    # One quick request (5 s at most), so an unreachable index costs seconds, not pip's minutes of retries.
    "$VENV/bin/python" - "$1" <<'EOF' >/dev/null 2>&1
import sys
import urllib.request

urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=5).close()
EOF
}

stamp_value() {
    # (Python's hashlib rather than sha256sum, which macOS lacks.)
    "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(p, "rb").read() for p in sys.argv[1:])).hexdigest())' \
        "$LOCK" pyproject.toml setup.py
}

parts=(app)
IFS=',' read -r -a extra_list <<<"$EXTRAS"
for extra in "${extra_list[@]}"; do
    [ -n "$extra" ] && parts+=("$extra")
done
up_to_date() {
    local value part
    value=$(stamp_value)
    for part in "${parts[@]}"; do
        [ "$(cat "$VENV/.installed-$part" 2>/dev/null)" = "$value" ] || return 1
    done
}

started=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "install: needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)." >&2
        exit 1
    fi
    step "Creating the virtualenv $VENV ($("$PYTHON" --version))"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "install: '$PYTHON -m venv' failed. On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
        exit 1
    fi
    step_done
fi

if up_to_date; then
    exit 0 # installed from this lock already
fi

if [ "$INSTALLER" = uv ]; then
    step "Installing pip $(locked pip) and uv $(locked uv) (the locked versions)"
    INSTALLER=pip pip_install --upgrade -c "$LOCK" pip uv
    # uv ignores pip's configuration: pass on its find-links (on the development machines, the local torch wheel).
    while IFS= read -r link; do
        [ -n "$link" ] && UV_ARGS+=(--find-links "$link")
    done < <("$VENV/bin/python" -m pip config list 2>/dev/null | sed -n "s/^.*find-links='\(.*\)'$/\1/p" | tr ' ' '\n' |
        sort -u)
else
    step "Installing pip $(locked pip) (the locked version)"
    pip_install --upgrade -c "$LOCK" pip
fi
step_done

torch_version=$(locked torch)
if "$VENV/bin/python" -c "import torch" >/dev/null 2>&1 &&
    [ "$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')" = "$torch_version" ]; then
    : # torch of the locked version is there (CPU or CUDA build, as installed before)
elif [ -n "${TORCH_INDEX_URL+set}" ]; then
    step "Installing torch $torch_version from ${TORCH_INDEX_URL:-the default index} (one-time)"
    if [ -n "$TORCH_INDEX_URL" ]; then
        pip_install --no-deps --index-url "$TORCH_INDEX_URL" "torch==$torch_version"
    else
        pip_install -c "$LOCK" "torch==$torch_version"
    fi
    step_done
elif has_nvidia_gpu; then
    step "Installing torch $torch_version with CUDA for the NVIDIA GPU: about 3 GB to download, a one-time step"
    pip_install -c "$LOCK" "torch==$torch_version"
    step_done
elif reachable "$TORCH_CPU_INDEX/torch/"; then
    step "Installing torch $torch_version, CPU build: about 190 MB to download, 750 MB installed; a one-time step"
    # --no-deps: only torch comes from PyTorch's index; its dependencies come from the default index with the app's.
    PIP_TIMEOUT=30 PIP_RETRIES=2 UV_HTTP_TIMEOUT=30 \
        pip_install --no-deps --index-url "$TORCH_CPU_INDEX" "torch==$torch_version"
    step_done
else
    echo "    PyTorch's CPU index ($TORCH_CPU_INDEX) cannot be reached; taking torch from the default index."
    echo "    (On Linux, PyPI's default torch is the CUDA build: several GB. A local mirror may hold the CPU build.)"
    step "Installing torch $torch_version from the default index: a one-time step"
    pip_install -c "$LOCK" "torch==$torch_version"
    step_done
fi

step "Installing the app and its libraries${EXTRAS:+ (extras: $EXTRAS)}, versions from $LOCK"
extras="$EXTRAS"
if has_nvidia_gpu; then
    extras="${extras:+$extras,}gpu" # triton: the CUDA build of torch brings it; the extra keeps it pinned
fi
# PYTHONWARNINGS=ignore: setuptools warns, at length, that the data folders under resources/ look like packages missing
# from setup.py's list (harmless: they ship as package data); a first run should not greet the user with that.
PYTHONWARNINGS=ignore pip_install -c "$LOCK" -e ".${extras:+[$extras]}"
step_done

value=$(stamp_value)
for part in "${parts[@]}"; do
    printf '%s\n' "$value" >"$VENV/.installed-$part"
done
echo "==> Installed in $(($(date +%s) - started)) s"
