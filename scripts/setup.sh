#!/usr/bin/env bash
# One-command set-up: an isolated virtual environment with the pinned stack and an mmcv 2.0.1
# wheel built (once) from its source archive with the compiled ops. Safe to run again: it only
# does what is missing.  Environment knobs:
#   MMCAM_HOME    where the environment, the cached mmcv wheel and the logs live
#                 (default ~/.cache/mmcam)
#   MMCAM_WHEELS  where the built mmcv wheel is cached (default $MMCAM_HOME/wheels)
#   PYTHON        the interpreter to build the environment from (default python3.11 or python3)
#   MAX_JOBS      parallel compiles for the mmcv build (default: the number of cores)
# The screen shows the project's own steps; pip's and the compiler's full output goes to
# $MMCAM_HOME/logs/, and a failing step prints the end of its log and the log's path.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MMCAM_HOME=${MMCAM_HOME:-$HOME/.cache/mmcam}
VENV=$MMCAM_HOME/venv
WHEELS=${MMCAM_WHEELS:-$MMCAM_HOME/wheels}
LOGS=$MMCAM_HOME/logs
LOCK=$REPO/requirements/lock.txt
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
mkdir -p "$LOGS"
LOG=$LOGS/setup.log
: > "$LOG"
step_name=""
step_log=$LOG
started=$SECONDS

step() { step_name=$1; printf '[mmcam setup] %s\n' "$1"; echo "=== $1" >> "$LOG"; }
fail() {
  printf '\n[mmcam setup] FAILED at step: %s\n' "$step_name" >&2
  if [[ -s $step_log ]]; then
    printf '[mmcam setup] the end of %s:\n' "$step_log" >&2
    tail -n 25 "$step_log" | sed 's/^/    /' >&2
  fi
  printf '[mmcam setup] full log: %s\n' "$step_log" >&2
  printf '[mmcam setup] To start over, remove %s and run scripts/setup.sh again.\n' "$VENV" >&2
  printf '[mmcam setup] The dependency path and its known traps: docs/en/install.md.\n' >&2
}
trap fail ERR

stamp_of() { cat "$LOCK" "$REPO/requirements/test.txt" "$REPO/scripts/setup.sh" | sha256sum | cut -c1-16; }
STAMP=$(stamp_of)
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
pip_quiet() { "${PIP[@]}" "$@" >> "$LOG" 2>&1; }

# Builds the mmcv wheel into $WHEELS, compiling through scripts/mmcv_cxx.sh (a precompiled
# torch header, no debug information, one progress line per finished object).
build_mmcv() {
  local build jobs total done_now left elapsed pid real_cxx=${CXX:-c++}
  build=$(mktemp -d)
  jobs=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
  # mmcv's setup.py imports pkg_resources (gone from setuptools >= 70) and torch (a build
  # input), so both the download's metadata step and the build run without isolation.
  pip_quiet install 'setuptools<70' ninja
  pip_quiet download --no-deps --no-binary :all: --no-build-isolation -d "$build" mmcv==2.0.1
  tar -xzf "$build"/mmcv-2.0.1.tar.gz -C "$build"
  # torch >= 2.5 headers need C++17, 2.14 needs C++20; mmcv 2.0.1 hard-codes c++14.
  sed -i 's/-std=c++14/-std=c++20/g' "$build/mmcv-2.0.1/setup.py"
  total=$(ls "$build"/mmcv-2.0.1/mmcv/ops/csrc/pytorch/*.cpp \
            "$build"/mmcv-2.0.1/mmcv/ops/csrc/pytorch/cpu/*.cpp | wc -l)
  mkdir -p "$build/pch" "$WHEELS"
  : > "$build/progress"
  step_log=$LOGS/mmcv-build.log
  (cd "$build/mmcv-2.0.1" && MMCV_WITH_OPS=1 MAX_JOBS=$jobs FORCE_CUDA=0 \
     CXX="$REPO/scripts/mmcv_cxx.sh" MMCV_REAL_CXX="$real_cxx" \
     MMCV_PCH_DIR="$build/pch" MMCV_PROGRESS="$build/progress" \
     "$VENV/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$build/dist" . \
     > "$step_log" 2>&1) &
  pid=$!
  local t0=$SECONDS last=-1 shown=-100
  while kill -0 "$pid" 2>/dev/null; do
    done_now=$(wc -l < "$build/progress")
    # A line when the count moved, at most every 15 s (and at the start and the end).
    if (( done_now != last && (SECONDS - shown >= 15 || done_now == 0 || done_now == total) )); then
      shown=$SECONDS
      elapsed=$((SECONDS - t0))
      if (( done_now > 0 && done_now < total )); then
        left=$(( (elapsed * (total - done_now) / done_now + 59) / 60 ))
        printf '[mmcam setup] compiling mmcv ops %d/%d (about %d min left)\n' "$done_now" "$total" "$left"
      elif (( done_now == 0 )); then
        printf '[mmcam setup] compiling mmcv ops 0/%d (the first one also precompiles the torch headers)\n' "$total"
      else
        printf '[mmcam setup] compiling mmcv ops %d/%d, linking and packing the wheel\n' "$done_now" "$total"
      fi
      last=$done_now
    fi
    sleep 5
  done
  wait "$pid"
  printf '[mmcam setup] mmcv built in %d min %02d s\n' $(( (SECONDS - t0) / 60 )) $(( (SECONDS - t0) % 60 ))
  mv "$build"/dist/mmcv-2.0.1-*.whl "$WHEELS/"
  rm -rf "$build"
  step_log=$LOG
}

step "checking the interpreter ($PY); full log in $LOG"
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 9), sys.version' \
  || { echo "Python >= 3.9 is needed; set PYTHON=/path/to/python3.11" >&2; false; }

if [[ -f $VENV/.mmcam-stamp && $(cat "$VENV/.mmcam-stamp") == "$STAMP" ]]; then
  step "environment $VENV is up to date (stamp $STAMP)"
else
  if [[ ! -x $VENV/bin/python ]]; then
    step "creating the virtual environment $VENV"
    "$PY" -m venv "$VENV" >> "$LOG" 2>&1
  else
    step "updating the virtual environment $VENV to the pins"
  fi
  pip_quiet install --upgrade pip wheel

  step "installing torch and torchvision (pinned in $LOCK; the PyPI builds run on the CPU)"
  # Both pinned explicitly: the CPU-only torch file that pip may find locally breaks torchvision.
  pip_quiet install -c "$LOCK" torch torchvision

  MMCV_WHEEL=$(ls "$WHEELS"/mmcv-2.0.1-*.whl 2>/dev/null | head -1 || true)
  if [[ -z $MMCV_WHEEL ]]; then
    step "building mmcv 2.0.1 with ops from source (once; a few minutes on 2 cores)"
    build_mmcv
    MMCV_WHEEL=$(ls "$WHEELS"/mmcv-2.0.1-*.whl | head -1)
  else
    step "reusing the cached mmcv wheel $MMCV_WHEEL"
  fi

  step "installing mmcv, mmengine, mmpretrain, mmdet, mmyolo, grad-cam and the test tools"
  pip_quiet install -c "$LOCK" "$MMCV_WHEEL" -r "$REPO/requirements/test.txt" \
     mmengine mmpretrain mmdet mmyolo grad-cam
  echo "$STAMP" > "$VENV/.mmcam-stamp"
fi

# The report test drives a real browser: Debian's Chromium, installed once when missing
# (root or password-less sudo; apt's output goes to $LOGS/apt.log). Without it that one test
# skips and says why; nothing else needs it.
if ! command -v chromium > /dev/null 2>&1; then
  APT=()
  if [[ $(id -u) == 0 ]]; then APT=(apt-get)
  elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then APT=(sudo -n apt-get)
  fi
  if (( ${#APT[@]} )); then
    step "installing Chromium (Debian package, for the HTML report's browser test; log in $LOGS/apt.log)"
    if ! { DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -qq &&
           DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends \
             chromium; } >> "$LOGS/apt.log" 2>&1; then
      printf '[mmcam setup] Chromium could not be installed (see %s); the browser test will skip\n' "$LOGS/apt.log"
    fi
  else
    printf '[mmcam setup] note: Chromium is missing and apt-get needs root; the browser test will skip (apt-get install chromium)\n'
  fi
fi

step "installing mmcam itself (editable, from $REPO)"
pip_quiet install --no-deps --no-build-isolation -e "$REPO"

step "checking that the stack imports together"
"$VENV/bin/python" - <<'PY'
import mmcv, mmengine, mmdet, mmyolo, mmpretrain, pytorch_grad_cam, torch, mmcam
from mmcv.ops import nms  # the compiled ops are present
print(f'[mmcam setup] mmcam {mmcam.__version__} | torch {torch.__version__} | mmcv {mmcv.__version__} | '
      f'mmengine {mmengine.__version__} | mmdet {mmdet.__version__} | mmyolo {mmyolo.__version__} | '
      f'mmpretrain {mmpretrain.__version__}')
PY
trap - ERR
echo "[mmcam setup] ready: $VENV ($((SECONDS - started)) s)"
