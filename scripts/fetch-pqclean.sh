#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches the ML-KEM sources sotto builds (PQClean, as shipped in the npm package
# pqclean@0.8.1), checks the tarball against the sha512 pinned below and unpacks
# only what cmake/pqclean.cmake compiles:
#
#   package/deps/PQClean/crypto_kem/ml-kem-768/clean/    (sources + LICENSE, CC0)
#   package/deps/PQClean/crypto_kem/ml-kem-1024/clean/   (sources + LICENSE, CC0)
#   package/deps/PQClean/common/compat.h                 (branch barrier macro)
#   package/LICENSE, package/package.json                 (npm wrapper, MIT)
#
# PQClean's common/fips202.c and common/randombytes.c are deliberately NOT
# unpacked: lib/pq/ replaces them (no heap allocation, no exit(), no generic
# global symbol names).
#
# Destination: $SOTTO_PQCLEAN_DIR, default <repo>/build/_deps/pqclean.
#
# --offline: only verify an already unpacked tree against the stamp and the
# pinned integrity; never fetch (debian/rules: package builds are offline).
# Idempotent: when the stamp file exists and every unpacked file still matches
# the checksums recorded in it, nothing is fetched or written. Any hash
# mismatch stops the script with a non-zero status.
set -euo pipefail

PQCLEAN_SPEC="pqclean@0.8.1"
PQCLEAN_TARBALL="pqclean-0.8.1.tgz"
# `npm view pqclean@0.8.1 dist.integrity`, checked against the downloaded file.
PQCLEAN_INTEGRITY="sha512-+5FtknAJdiNtVBiyLiKW3OnanhcqSWy44KCaZz1tELhalp5HfuIcxNsX9uS0t7ne2tEWc7NBd4GpiQBTGTIJBA=="

PQ_ROOT="package/deps/PQClean"
MEMBERS=(
  package/LICENSE
  package/package.json
  "$PQ_ROOT/common/compat.h"
  "$PQ_ROOT/crypto_kem/ml-kem-768/clean"
  "$PQ_ROOT/crypto_kem/ml-kem-1024/clean"
)
KEM_SOURCES=(cbd indcpa kem ntt poly polyvec reduce symmetric-shake verify)

offline=0
if [ "${1:-}" = "--offline" ]; then
  offline=1
elif [ -n "${1:-}" ]; then
  echo "usage: fetch-pqclean.sh [--offline]" >&2
  exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${SOTTO_PQCLEAN_DIR:-$repo_root/build/_deps/pqclean}"
stamp="$dest/.stamp"

die() {
  echo "fetch-pqclean: ERROR: $*" >&2
  exit 1
}

if [ "$offline" = 1 ]; then
  # Same checks as stamp_ok below, without creating or locking anything.
  d="${SOTTO_PQCLEAN_DIR:-$repo_root/build/_deps/pqclean}"
  if [ -f "$d/.stamp" ] && [ "$(head -n 1 "$d/.stamp")" = "$PQCLEAN_SPEC $PQCLEAN_INTEGRITY" ] &&
    (cd "$d" && tail -n +2 .stamp | sha256sum --check --quiet --strict - >/dev/null 2>&1); then
    echo "fetch-pqclean: $PQCLEAN_SPEC in $d verified (offline)"
    exit 0
  fi
  die "no verified $PQCLEAN_SPEC in $d and --offline: run scripts/fetch-pqclean.sh (or make deps) first, then pass SOTTO_PQCLEAN_DIR=$d"
fi

for tool in npm openssl base64 tar sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run 'make deps' or install it)"
done

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

# Serialize concurrent runs (parallel make, two build trees) on the same cache.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dest/.lock"
  flock 9
fi

integrity_of() {
  printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
}

# The stamp holds the pinned integrity string on its first line, then a
# sha256sum manifest of every unpacked file. It is written last, so a run that
# died half-way never looks finished.
stamp_ok() {
  [ -f "$stamp" ] || return 1
  [ "$(head -n 1 "$stamp")" = "$PQCLEAN_SPEC $PQCLEAN_INTEGRITY" ] || return 1
  (cd "$dest" && tail -n +2 "$stamp" | sha256sum --check --quiet --strict - >/dev/null 2>&1)
}

if stamp_ok; then
  echo "fetch-pqclean: $PQCLEAN_SPEC already unpacked and verified in $dest"
  exit 0
fi
if [ -f "$stamp" ]; then
  echo "fetch-pqclean: stamp present but the unpacked files do not match it; unpacking again" >&2
fi
rm -f "$stamp"

tmp="$(mktemp -d "$dest/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# 1. The tarball: reuse a cached copy only if it matches the pin.
tarball="$dest/$PQCLEAN_TARBALL"
if [ -f "$tarball" ] && [ "$(integrity_of "$tarball")" = "$PQCLEAN_INTEGRITY" ]; then
  echo "fetch-pqclean: using cached $tarball"
else
  rm -f "$tarball"
  echo "fetch-pqclean: npm pack $PQCLEAN_SPEC"
  (cd "$tmp" && npm pack "$PQCLEAN_SPEC" --ignore-scripts --silent >/dev/null) \
    || die "npm pack $PQCLEAN_SPEC failed (network? registry?)"
  [ -f "$tmp/$PQCLEAN_TARBALL" ] || die "npm pack did not produce $PQCLEAN_TARBALL"
  got="$(integrity_of "$tmp/$PQCLEAN_TARBALL")"
  if [ "$got" != "$PQCLEAN_INTEGRITY" ]; then
    echo "fetch-pqclean: ERROR: INTEGRITY MISMATCH for $PQCLEAN_SPEC" >&2
    echo "fetch-pqclean:   pinned:   $PQCLEAN_INTEGRITY" >&2
    echo "fetch-pqclean:   download: $got" >&2
    echo "fetch-pqclean: the tarball was discarded; nothing was unpacked" >&2
    exit 1
  fi
  mv "$tmp/$PQCLEAN_TARBALL" "$tarball"
fi

# 2. Unpack only the members we compile, into a scratch directory first.
mkdir "$tmp/x"
tar -xzf "$tarball" -C "$tmp/x" --no-same-owner --no-same-permissions "${MEMBERS[@]}" \
  || die "could not unpack the wanted members of $tarball"

for set in ml-kem-768 ml-kem-1024; do
  d="$tmp/x/$PQ_ROOT/crypto_kem/$set/clean"
  for f in "${KEM_SOURCES[@]}"; do
    [ -f "$d/$f.c" ] || die "$set/clean/$f.c missing from $tarball"
  done
  for f in LICENSE api.h kem.h params.h; do
    [ -f "$d/$f" ] || die "$set/clean/$f missing from $tarball"
  done
done

# 3. Replace any previous unpacked tree, then record the manifest and stamp.
rm -rf "$dest/package"
mv "$tmp/x/package" "$dest/package"
{
  echo "$PQCLEAN_SPEC $PQCLEAN_INTEGRITY"
  (cd "$dest" && find package -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
} >"$tmp/stamp"
mv "$tmp/stamp" "$stamp"

stamp_ok || die "verification of the freshly unpacked tree failed"
echo "fetch-pqclean: $PQCLEAN_SPEC verified ($PQCLEAN_INTEGRITY) and unpacked into $dest"
