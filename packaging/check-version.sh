#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-version.sh VERSION SOURCE_DIR [PROGRAM...] (ctest version_consistency)
# The version lives in CMakeLists.txt only; everything that repeats it must
# agree: CHANGELOG.md's newest entry, debian/changelog's newest entry, and
# `PROGRAM --version` of every installed program.
set -euo pipefail
v="$1"
src="$2"
shift 2
bad=0
cl="$(sed -n 's/^## \[\?\([0-9][0-9.]*\)\]\?.*/\1/p' "$src/CHANGELOG.md" | sed -n 1p)"
[ "$cl" = "$v" ] || { echo "CHANGELOG.md: newest entry is '$cl', CMakeLists.txt says $v" >&2; bad=1; }
dc="$(sed -n '1s/^[a-z0-9.+-]* (\([^)]*\)).*/\1/p' "$src/debian/changelog")"
[ "$dc" = "$v" ] || { echo "debian/changelog: newest entry is '$dc', CMakeLists.txt says $v" >&2; bad=1; }
for p in "$@"; do
  out="$("$p" --version)" || { echo "$p --version failed" >&2; bad=1; continue; }
  case "$out" in
    *" $v") ;;
    *) echo "$p --version prints '$out', expected '... $v'" >&2; bad=1 ;;
  esac
done
[ "$bad" = 0 ] && echo "version $v everywhere (CMakeLists.txt, CHANGELOG.md, debian/changelog, $# programs)"
exit "$bad"
