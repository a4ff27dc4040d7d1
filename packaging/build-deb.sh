#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-deb.sh OUT_DIR (make deb)
# Builds the Debian packages from a copy of the tree (tracked and new,
# not-ignored files) in OUT_DIR/src, so that dpkg-buildpackage's debian/tmp,
# obj-* and ../*.deb never land in the worktree. The ML-KEM sources are
# fetched first (scripts/fetch-pqclean.sh, cached and hash-checked) and
# handed to the offline package build in SOTTO_PQCLEAN_DIR.
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

bash "$src/scripts/deps.sh" --packaging
bash "$src/scripts/fetch-pqclean.sh"
pq="${SOTTO_PQCLEAN_DIR:-$src/build/_deps/pqclean}"
pq="$(cd "$pq" && pwd)"

version="$(sed -n '1s/^[a-z0-9.+-]* (\([^)]*\)).*/\1/p' "$src/debian/changelog")"
rm -rf "$out/src"
tree="$out/src/sotto-$version"
mkdir -p "$tree"
(cd "$src" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf -) | tar -xf - -C "$tree"

cd "$tree"
SOTTO_PQCLEAN_DIR="$pq" DEB_BUILD_OPTIONS="noddebs parallel=$jobs${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
  dpkg-buildpackage -us -uc -b >"$out/dpkg-buildpackage.log" 2>&1 ||
  { tail -60 "$out/dpkg-buildpackage.log"; echo "build-deb: dpkg-buildpackage failed (log: $out/dpkg-buildpackage.log)" >&2; exit 1; }
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
echo "build-deb: $(cd "$out" && ls *.deb | tr '\n' ' ')in $out"
