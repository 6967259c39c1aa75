#!/usr/bin/env bash
# Create (or complete) the svd_mm environment in a virtualenv:
#   bash tools/install_deps.sh [VENV]        (default .venv; `make` calls it)
# Order matters: torch, then mmcv with compiled ops, then the toolboxes and
# svd_mm in editable mode. Honours PIP_FIND_LINKS (prebuilt mmcv wheel).
#   SVD_MM_KEEP_TORCH=1  keep an already installed torch (e.g. a CUDA build on
#                        a GPU cluster) instead of installing requirements/torch.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON_BIN:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q "setuptools>=77,<82" wheel packaging
if [ "${SVD_MM_KEEP_TORCH:-0}" = 1 ] && "$PY" -c 'import torch' 2>/dev/null; then
  echo "Keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')."
else
  "$PY" -m pip install -r requirements/torch.txt
fi
# numpy first so the mmcv build and everything after see the pinned one.
"$PY" -m pip install -q "numpy<2.4"
PYTHON="$PY" bash tools/install_mmcv.sh
"$PY" -m pip install -r requirements/runtime.txt -r requirements/tests.txt
"$PY" -m pip install --no-deps --no-build-isolation -e .
"$PY" -c 'import svd_mm, mmdet, mmpretrain, mmseg; print("svd_mm", svd_mm.__version__, "ready")'
