#!/usr/bin/env bash
# Install mmcv 2.1.0 WITH its compiled ops into the environment of $PYTHON.
#
#   PYTHON=.venv/bin/python bash tools/install_mmcv.sh
#
# 1. A prebuilt wheel is used when pip finds one through PIP_FIND_LINKS (or
#    pip's configured find-links, or svd_mm's own wheel cache) AND its ops run
#    against the installed torch (a wheel built for another torch fails here).
# 2. Otherwise the mmcv 2.1.0 sdist is downloaded with pip, its C++ standard
#    is raised to what the installed torch's headers need (torch >= 2.14:
#    C++20; mmcv 2.1.0 hard-codes -std=c++17/14), and it is built with
#    MMCV_WITH_OPS=1 --no-build-isolation into a wheel kept in
#    $SVD_MM_CACHE/wheels/torch-<version>/ for the next environment.
#    CUDA ops are compiled when torch sees a GPU (or FORCE_CUDA=1).
# Either way the result is checked: mmcv.ops.nms and RoIAlign must run (on
# the GPU too when one is visible).
set -euo pipefail

PYTHON=${PYTHON:-python}
MMCV_VERSION=2.1.0
CACHE=${SVD_MM_CACHE:-$HOME/.cache/svd_mm}
TORCH_VERSION=$("$PYTHON" -c 'import torch; print(torch.__version__)')
WHEEL_DIR="$CACHE/wheels/torch-$TORCH_VERSION"
mkdir -p "$WHEEL_DIR"

check_ops() {
  "$PYTHON" - <<'PY'
import torch
import mmcv
from mmcv.ops import RoIAlign, nms

devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
for dev in devices:
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]], device=dev)
    scores = torch.tensor([0.9, 0.8, 0.7], device=dev)
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
    feat = torch.arange(64., device=dev).view(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 7., 7.]], device=dev)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feat, rois)
    assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all()
print(f'mmcv {mmcv.__version__}: ops nms and RoIAlign run on {devices}')
PY
}

installed_version=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("mmcv"))' 2>/dev/null || true)
if [ "$installed_version" = "$MMCV_VERSION" ] && check_ops 2>/dev/null; then
  echo "mmcv $MMCV_VERSION with working ops is already installed."
  exit 0
fi

# 1. A prebuilt wheel (PIP_FIND_LINKS, pip's find-links, our wheel cache).
#    --only-binary keeps pip from falling back to the sdist (that would build
#    without ops); mmcv's own dependencies (mmengine, opencv, ...) come from
#    the index as usual.
"$PYTHON" -m pip uninstall -y -q mmcv 2>/dev/null || true
if "$PYTHON" -m pip install --only-binary=mmcv --find-links "$WHEEL_DIR" \
     "mmcv==$MMCV_VERSION" "numpy<2.4"; then
  if check_ops; then
    exit 0
  fi
  echo "The prebuilt mmcv wheel failed the ops check above (built for another torch?); building from source."
  "$PYTHON" -m pip uninstall -y mmcv
fi

# 2. Build from the sdist.
cxx_std=$("$PYTHON" - <<'PY'
import torch
major, minor = (int(v) for v in torch.__version__.split('+')[0].split('.')[:2])
print('c++20' if (major, minor) >= (2, 14) else 'c++17')
PY
)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$PYTHON" -m pip download --no-deps --no-binary :all: --no-build-isolation \
  -d "$build" "mmcv==$MMCV_VERSION"
tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
src="$build/mmcv-$MMCV_VERSION"
# mmcv 2.1.0 passes -std=c++14 / -std=c++17 to the host and CUDA compilers.
sed -i -E "s/-std=c\+\+1[47]/-std=$cxx_std/g" "$src/setup.py"
grep -q -- "-std=$cxx_std" "$src/setup.py" || { echo "could not patch mmcv's C++ standard" >&2; exit 1; }
echo "Building mmcv $MMCV_VERSION with ops (-std=$cxx_std); this takes ~16 min on 2 cores."
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
  "$PYTHON" -m pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" "$src"
"$PYTHON" -m pip install "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl "numpy<2.4"
check_ops
