#!/usr/bin/env bash
# The C++ compiler for scripts/setup.sh's one-time mmcv build (set as CXX; ninja calls it once
# per op source). It changes how mmcv's 77 op sources compile, not what they compile to:
#   * a precompiled header: every source spends most of its time parsing torch's headers
#     (ATen under C++20), the same work 77 times; the first compile makes
#     $MMCV_PCH_DIR/torch_ops.hpp.gch from <torch/types.h> (what mmcv's op helpers include)
#     with that compile's own flags (under a lock), and every compile then loads it with
#     -include (-Winvalid-pch says so if gcc ever ignores it). <torch/extension.h> would also
#     hold Python and pybind11: a 790 MB header that loads slower than it parses;
#   * no -g: Python's default CFLAGS ask for debug information, which made each object
#     2.5 MB and the wheel 32 MB, and nobody debugs mmcv's CPU ops from this wheel;
#   * progress: each finished object appends a line to $MMCV_PROGRESS, which setup.sh counts.
# Anything that is not the compile of one C++ source (linking, version probes) passes through.
set -uo pipefail
REAL=${MMCV_REAL_CXX:-c++}
if [[ $(basename -- "$REAL") == mmcv_cxx.sh ]]; then REAL=c++; fi  # never call itself

source_file=""
args=()
for arg in "$@"; do
  case $arg in
    -g|-g1|-g2|-g3|-ggdb) ;;                     # no debug information
    *.cpp|*.cc) source_file=$arg; args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
if [[ -z $source_file || -z ${MMCV_PCH_DIR:-} ]] || ! printf '%s\n' "$@" | grep -qx -- '-c'; then
  exec "$REAL" "$@"
fi

header=$MMCV_PCH_DIR/torch_ops.hpp
# The PCH is built with this compile's flags minus its source, output and dependency file,
# so gcc accepts it for every op source (they all share these flags).
pch_args=()
skip=0
for arg in "${args[@]}"; do
  if (( skip )); then skip=0; continue; fi
  case $arg in
    -c|-MMD|-MD) ;;
    -o|-MF|-MQ|-MT) skip=1 ;;
    "$source_file") ;;
    *) pch_args+=("$arg") ;;
  esac
done
(
  flock 9
  if [[ ! -f $header.gch ]]; then
    printf '#include <torch/types.h>\n' > "$header"
    "$REAL" "${pch_args[@]}" -x c++-header "$header" -o "$header.gch.tmp" \
      && mv "$header.gch.tmp" "$header.gch"
  fi
) 9>"$MMCV_PCH_DIR/.lock"

"$REAL" -include "$header" -Winvalid-pch "${args[@]}"
status=$?
if (( status == 0 )) && [[ -n ${MMCV_PROGRESS:-} ]]; then
  echo "$source_file" >> "$MMCV_PROGRESS"
fi
exit $status
