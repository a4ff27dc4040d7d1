#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# uninstall.sh BUILD PREFIX DESTDIR (make uninstall)
# Removes from $DESTDIR what `make install` put there: the list is what
# `cmake --install BUILD` installs, staged into a scratch directory (so it
# is right even when install_manifest.txt is missing or stale). Then removes
# the directories of ours that became empty (include/sotto, doc/sotto-server).
set -euo pipefail
build="$1"
prefix="$2"
destdir="$3"

[ -f "$build/CMakeCache.txt" ] || { echo "uninstall: no build in $build (run make install first)" >&2; exit 1; }
configured="$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")"
if [ "$configured" != "$prefix" ]; then
  echo "uninstall: $build is configured for PREFIX=$configured, not $prefix; run 'make install PREFIX=$prefix' first or pass PREFIX=$configured" >&2
  exit 1
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" cmake --install "$build" >/dev/null
n=0
while IFS= read -r rel; do
  target="$destdir/$rel"
  if [ -e "$target" ] || [ -L "$target" ]; then
    rm -f "$target"
    echo "removed $target"
    n=$((n + 1))
  fi
done < <(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
# Our own directories, deepest first, only if empty now.
while IFS= read -r rel; do
  rmdir "$destdir/$rel" 2>/dev/null || true
done < <(cd "$stage" && find . -mindepth 1 -type d -name '*sotto*' | sed 's|^\./||' | sort -r)
while IFS= read -r rel; do
  rmdir "$destdir/$rel" 2>/dev/null || true
done < <(cd "$stage" && find . -mindepth 1 -type d -path '*sotto*' | sed 's|^\./||' | sort -r)
echo "uninstall: removed $n files from ${destdir:-/}$prefix"
