#!/usr/bin/env bash
# Lay out build/namespace/gpt_oss_desktop/{app,engine,kernels,resources} as links to the repository's folders and
# print build/namespace. Tools that cannot follow setuptools' editable-install finder (mypy, PyInstaller) read the
# package through this tree, under the same names an installed wheel has.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/namespace/gpt_oss_desktop
mkdir -p "$tree"
for folder in app engine kernels resources; do
    ln -sfn "../../../$folder" "$tree/$folder"
done
echo "$PWD/build/namespace"
