#!/usr/bin/env bash
# The suite against the NEWEST versions pyproject.toml allows (not the lock), in its own virtualenv .venv-latest, to
# catch upstream changes before they reach the lock: `bash scripts/test-latest.sh [pytest args]`. Not part of CI.
#
# Prints which versions differ from requirements/constraints.txt and writes the full set to
# build/latest-versions.txt; when the suite passes, those versions can replace the lock's (see its header).
# torch: the newest CPU build from PyTorch's CPU index when it can be reached; otherwise the locked version (the
# default index's newest torch on Linux is a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-latest
LOCK=requirements/constraints.txt
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
started=$(date +%s)

echo "==> Creating $VENV from nothing"
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
pip_install() {
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "$@"
}
pip_install --upgrade pip

if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen(u.Request('$TORCH_CPU_INDEX/torch/', method='HEAD'), timeout=5)" \
    >/dev/null 2>&1; then
    echo "==> torch: the newest CPU build from $TORCH_CPU_INDEX"
    pip_install --no-deps --index-url "$TORCH_CPU_INDEX" torch
else
    torch_version=$(sed -n 's/^torch==//p' "$LOCK")
    echo "==> torch: $TORCH_CPU_INDEX cannot be reached; keeping the locked torch $torch_version"
    pip_install "torch==$torch_version"
fi

echo "==> The app, the test and packaging extras: newest allowed versions (no lock; torch stays as installed above)"
mkdir -p build
# Keep the torch chosen above: an eager upgrade would otherwise take the default index's newest (on Linux, CUDA) build.
"$VENV/bin/python" -c "import torch; print('torch==' + torch.__version__)" >build/latest-torch.txt
PYTHONWARNINGS=ignore pip_install --upgrade --upgrade-strategy eager -c build/latest-torch.txt -e ".[test,packaging]"
echo "    installed in $(($(date +%s) - started)) s"

"$VENV/bin/python" -m pip freeze --all --exclude-editable | grep -v '^#' | sed -E 's/\+[a-z0-9.]+$//' |
    sort -f >build/latest-versions.txt
echo "==> Versions that differ from $LOCK (lock -> latest):"
"$VENV/bin/python" - "$LOCK" build/latest-versions.txt <<'PY'
import re
import sys


def pins(path: str) -> dict[str, str]:
    out = {}
    for line in open(path, encoding="utf-8"):
        if "==" in line and not line.startswith("#"):
            name, version = line.strip().split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


lock, latest = pins(sys.argv[1]), pins(sys.argv[2])
changed = [f"    {n}: {lock.get(n, '-')} -> {latest.get(n, '-')}" for n in sorted(lock.keys() | latest.keys())
           if lock.get(n) != latest.get(n)]
print("\n".join(changed) or "    none")
PY

echo "==> The suite"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRITON_INTERPRET=1
exec "$VENV/bin/python" -P -m pytest -q "$@"
