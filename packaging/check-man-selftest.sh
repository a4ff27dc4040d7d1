#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-man-selftest.sh PAGE PROGRAM (ctest man_drift_selftest)
# The drift check must fail, and name the culprit, when a page loses an
# option or a command, or documents one the program does not have.
set -euo pipefail
page="$1"
prog="$2"
here="$(dirname "${BASH_SOURCE[0]}")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n="${page##*/}"

expect_fail() { # description, doctored page, expected message
  local out
  if out="$(bash "$here/check-man.sh" drift "$2" "$prog" 2>&1)"; then
    echo "selftest: FAIL: $1 went unnoticed" >&2
    exit 1
  fi
  grep -qF -- "$3" <<<"$out" || { echo "selftest: FAIL: $1: expected '$3', got: $out" >&2; exit 1; }
  echo "selftest: $1 -> $3"
}

# 1. The .TP entry of --json removed.
mkdir -p "$tmp/1" && awk '/^\.TP$/ { tp = $0; next } tp != "" { if ($0 !~ /\\-\\-json$/) print tp; tp = "" } { print }' "$page" >"$tmp/1/$n"
expect_fail "a missing option" "$tmp/1/$n" "option --json is listed by 'sotto --help' but has no .TP entry in $n"
# 2. A .TP entry for an option that does not exist.
mkdir -p "$tmp/2" && sed 's/^\.SH ENVIRONMENT$/.TP\n.B \\-\\-frobnicate\nNo such option.\n&/' "$page" >"$tmp/2/$n"
expect_fail "an invented option" "$tmp/2/$n" "documents option --frobnicate, which no 'sotto ... --help' lists"
# 3. A command removed (its .TP tag renamed).
mkdir -p "$tmp/3" && sed 's/^\.B contacts$/.B kontacts/' "$page" >"$tmp/3/$n"
expect_fail "a missing command" "$tmp/3/$n" "command 'contacts' is listed by 'sotto --help' but has no .TP entry in $n"
# 4. The untouched page passes.
bash "$here/check-man.sh" drift "$page" "$prog" >/dev/null
echo "selftest: the real page passes"
