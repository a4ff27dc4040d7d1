#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fuzz-run.sh BUILD SECONDS JOBS: every libFuzzer target in BUILD/bin
# replays its corpus (fuzz/corpus/NAME), then fuzzes for SECONDS on a
# scratch copy (new finds are not written into the repository); JOBS targets
# at once (each fuzzer is one process on one core). A crash, leak or
# sanitizer report fails the run: the target's last 40 lines of output are
# printed and the crashing input is left as crash-* (libFuzzer's name) in the
# current directory.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: fuzz-run.sh BUILD SECONDS JOBS" >&2; exit 2; }
export FUZZ_SECONDS=$2
run_one() {
  local f=$1 n tmp out
  n=${f##*/fuzz_}
  tmp=$(mktemp -d)
  if ! cp -r "fuzz/corpus/$n/." "$tmp/" 2>/dev/null; then
    echo "== $n: FAILED: no corpus fuzz/corpus/$n (each target's corpus is replayed by ctest too)"
    rm -rf "$tmp"
    return 1
  fi
  if "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$tmp" >/dev/null 2>"$tmp.log"; then
    echo "== $n: ${FUZZ_SECONDS}s, clean"
    rm -rf "$tmp" "$tmp.log"
    return 0
  fi
  out=$(tail -40 "$tmp.log")
  printf '== %s: FAILED\n%s\n' "$n" "$out"
  rm -rf "$tmp" "$tmp.log"
  return 1
}
export -f run_one
targets=("$1"/bin/fuzz_*)
[ -e "${targets[0]}" ] || { echo "fuzz-run.sh: no fuzz targets in $1/bin (make fuzz)" >&2; exit 1; }
if printf '%s\n' "${targets[@]}" | xargs -P "$3" -I{} bash -c 'run_one "$1"' _ {}; then
  echo "fuzz: all ${#targets[@]} targets ran clean"
else
  echo "fuzz: a target failed (above)" >&2
  exit 1
fi
