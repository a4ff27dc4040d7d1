#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs the threaded tests of a ThreadSanitizer build (make tsan):
#   scripts/tsan.sh BUILD_DIR JOBS REGEX
# Each test selected by REGEX (ctest -R) runs on its own with TSAN_OPTIONS
# pointing log_path into a directory of that test, so a report from any
# process the test starts (the real sotto-server, sotto, sotto-witness),
# even one whose exit status the test ignores or that it kills, fails that
# test. Suppressions (tests/tsan.supp) cover third-party libraries only.
# Reports and each test's ctest output: build-tsan/tsan-reports/TEST/
# (TSAN_REPORTS=DIR elsewhere). Plain `ctest` in build-tsan/ does not catch
# a report of a child process whose exit status the test ignores.
set -u
B=$1
J=${2:-2}
R=$3
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$B" && pwd)
OUT=${TSAN_REPORTS:-$B/tsan-reports}
rm -rf "$OUT"
mkdir -p "$OUT"
# halt_on_error=0: a process goes on after a report (the report is in its
# file at once); exitcode=66 makes its exit status say so all the same.
export TSAN_BASE="halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$SRC/tests/tsan.supp"

mapfile -t TESTS < <(ctest --test-dir "$B" -N -R "$R" | sed -n 's/^ *Test *#[0-9]*: //p')
[ "${#TESTS[@]}" -gt 0 ] || { echo "tsan: no test matches '$R'"; exit 1; }

run_one() {
  local t=$1 d=$OUT/$1 rc
  mkdir -p "$d"
  TSAN_OPTIONS="$TSAN_BASE:log_path=$d/tsan" \
    ctest --test-dir "$B" -R "^$t\$" --output-on-failure >"$d/ctest.log" 2>&1
  rc=$?
  if ls "$d"/tsan.* >/dev/null 2>&1; then
    echo "FAIL $t: ThreadSanitizer reports ($d/tsan.*)"
    return 1
  fi
  if [ $rc -ne 0 ] || ! grep -q "100% tests passed" "$d/ctest.log"; then
    echo "FAIL $t: the test failed ($d/ctest.log)"
    return 1
  fi
  if grep -q "Not Run\|\*\*\*Skipped" "$d/ctest.log"; then
    echo "skip $t"
  else
    echo "ok   $t"
  fi
}
export -f run_one
export B OUT

start=$(date +%s)
printf '%s\n' "${TESTS[@]}" | xargs -P "$J" -I{} bash -c 'run_one "$1"' _ {}
end=$(date +%s)
bad=0
for t in "${TESTS[@]}"; do
  d=$OUT/$t
  if ls "$d"/tsan.* >/dev/null 2>&1; then
    bad=$((bad + 1))
    echo "=== $t: ThreadSanitizer reports"
    cat "$d"/tsan.*
  elif ! grep -q "100% tests passed" "$d/ctest.log"; then
    bad=$((bad + 1))
    echo "=== $t: failed"
    tail -60 "$d/ctest.log"
  fi
done
echo "tsan: ${#TESTS[@]} tests, $bad failed, $((end - start)) s"
[ $bad -eq 0 ]
