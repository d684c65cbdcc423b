#!/usr/bin/env bash
# One-command set-up: an isolated virtual environment with the pinned stack and an mmcv 2.0.1
# wheel built (once) from its source archive with the compiled ops. Safe to run again: it only
# does what is missing.  Environment knobs:
#   MMCAM_HOME    where the environment and the cached mmcv wheel live (default ~/.cache/mmcam)
#   MMCAM_WHEELS  where the built mmcv wheel is cached (default $MMCAM_HOME/wheels)
#   PYTHON      the interpreter to build the environment from (default python3.11 or python3)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MMCAM_HOME=${MMCAM_HOME:-$HOME/.cache/mmcam}
VENV=$MMCAM_HOME/venv
WHEELS=${MMCAM_WHEELS:-$MMCAM_HOME/wheels}
LOCK=$REPO/requirements/lock.txt
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
step_name=""

step() { step_name=$1; printf '\n[mmcam setup] %s\n' "$1"; }
fail() {
  printf '\n[mmcam setup] FAILED at step: %s\n' "$step_name" >&2
  printf '[mmcam setup] Read the output above for the cause. To start over, remove %s and run scripts/setup.sh again.\n' "$VENV" >&2
  printf '[mmcam setup] The dependency path and its known traps are described in docs/en/install.md.\n' >&2
}
trap fail ERR

stamp_of() { cat "$LOCK" "$REPO/requirements/test.txt" "$REPO/scripts/setup.sh" | sha256sum | cut -c1-16; }
STAMP=$(stamp_of)

step "checking the interpreter ($PY)"
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 9), sys.version' \
  || { echo "Python >= 3.9 is needed; set PYTHON=/path/to/python3.11" >&2; false; }

if [[ -f $VENV/.mmcam-stamp && $(cat "$VENV/.mmcam-stamp") == "$STAMP" ]]; then
  step "environment $VENV is up to date (stamp $STAMP)"
else
  if [[ ! -x $VENV/bin/python ]]; then
    step "creating the virtual environment $VENV"
    "$PY" -m venv "$VENV"
  else
    step "updating the virtual environment $VENV to the pins"
  fi
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
  "${PIP[@]}" install -q --upgrade pip wheel

  step "installing torch and torchvision (pinned in $LOCK; the PyPI builds run on the CPU)"
  # Both pinned explicitly: the CPU-only torch file that pip may find locally breaks torchvision.
  "${PIP[@]}" install -q -c "$LOCK" torch torchvision

  MMCV_WHEEL=$(ls "$WHEELS"/mmcv-2.0.1-*.whl 2>/dev/null | head -1 || true)
  if [[ -z $MMCV_WHEEL ]]; then
    step "building mmcv 2.0.1 with ops from source (once; about 10 minutes on 2 cores)"
    build=$(mktemp -d)
    # mmcv's setup.py imports pkg_resources (gone from setuptools >= 70) and torch (a build
    # input), so both the download's metadata step and the build run without isolation.
    "${PIP[@]}" install -q 'setuptools<70' ninja
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$build" mmcv==2.0.1
    tar -xzf "$build"/mmcv-2.0.1.tar.gz -C "$build"
    # torch >= 2.5 headers need C++17, 2.14 needs C++20; mmcv 2.0.1 hard-codes c++14.
    sed -i 's/-std=c++14/-std=c++20/g' "$build/mmcv-2.0.1/setup.py"
    mkdir -p "$WHEELS"
    (cd "$build/mmcv-2.0.1" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=0 \
       "$VENV/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$build/dist" . )
    mv "$build"/dist/mmcv-2.0.1-*.whl "$WHEELS/"
    rm -rf "$build"
    MMCV_WHEEL=$(ls "$WHEELS"/mmcv-2.0.1-*.whl | head -1)
  else
    step "reusing the cached mmcv wheel $MMCV_WHEEL"
  fi

  step "installing mmcv, mmengine, mmpretrain, mmdet, mmyolo, grad-cam and the test tools"
  "${PIP[@]}" install -q -c "$LOCK" "$MMCV_WHEEL" -r "$REPO/requirements/test.txt" \
     mmengine mmpretrain mmdet mmyolo grad-cam
  echo "$STAMP" > "$VENV/.mmcam-stamp"
fi

step "installing mmcam itself (editable, from $REPO)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$REPO"

step "checking that the stack imports together"
"$VENV/bin/python" - <<'PY'
import mmcv, mmengine, mmdet, mmyolo, mmpretrain, pytorch_grad_cam, torch, mmcam
from mmcv.ops import nms  # the compiled ops are present
print(f'mmcam {mmcam.__version__} | torch {torch.__version__} | mmcv {mmcv.__version__} | '
      f'mmengine {mmengine.__version__} | mmdet {mmdet.__version__} | mmyolo {mmyolo.__version__} | '
      f'mmpretrain {mmpretrain.__version__}')
PY
trap - ERR
echo "[mmcam setup] ready: $VENV"
