#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the libsignal TEST PEER: @signalapp/libsignal-client@0.103.0 from npm
# (the Rust libsignal behind a Node binding; AGPL-3.0). It is used only by the
# interop tests and benchmarks in tests/libsignal/ and bench/, driven over a
# pipe by tests/libsignal/node/driver.js; nothing sotto builds or installs links
# or ships it.
#
# Pinning: tests/libsignal/node/package-lock.json fixes the exact versions and
# sha512 integrity of the package and its two dependencies; `npm ci` refuses a
# tarball whose hash differs. This script also checks that the lock file still
# carries the integrity string pinned below (the registry's
# `npm view @signalapp/libsignal-client@0.103.0 dist.integrity`), so a lock
# file edited by hand cannot widen the pin silently.
#
# Destination: $SOTTO_LIBSIGNAL_NODE_DIR, default <repo>/build/_deps/libsignal-node
# (not committed). Idempotent: a stamp records the lock file's hash and the
# installed package version; when both still match, nothing is fetched.
set -euo pipefail

SPEC_NAME="@signalapp/libsignal-client"
SPEC_VERSION="0.103.0"
SPEC_INTEGRITY="sha512-eTPT0ebDsoriIjeMjuB882H51UpFXnWDIu43VX0uBSM6iryKmCa0zxabncrS6xG0KJqAc+Modjkhk0nk+w2k+A=="

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/tests/libsignal/node"
dest="${SOTTO_LIBSIGNAL_NODE_DIR:-$repo_root/build/_deps/libsignal-node}"

die() {
  echo "fetch-libsignal-node: ERROR: $*" >&2
  exit 1
}

for tool in node npm sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run 'make deps' as root: nodejs and npm are Debian packages)"
done

lock="$src/package-lock.json"
[ -f "$lock" ] || die "$lock missing"
# The pin in the lock file must be exactly ours.
node -e '
  const l = require(process.argv[1]);
  const p = l.packages && l.packages["node_modules/" + process.argv[2]];
  if (!p || p.version !== process.argv[3] || p.integrity !== process.argv[4]) {
    console.error("lock file pin:", p ? p.version + " " + p.integrity : "absent");
    process.exit(1);
  }' "$lock" "$SPEC_NAME" "$SPEC_VERSION" "$SPEC_INTEGRITY" \
  || die "package-lock.json does not pin $SPEC_NAME@$SPEC_VERSION with $SPEC_INTEGRITY"

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dest/.lock"
  flock 9
fi

want="$(cat "$src/package.json" "$lock" | sha256sum | cut -d' ' -f1) $SPEC_VERSION"
installed_version() {
  node -e 'try { console.log(require(process.argv[1]).version) } catch (e) { process.exit(1) }' \
    "$dest/node_modules/$SPEC_NAME/package.json" 2>/dev/null
}
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$want" ] \
   && [ "$(installed_version || true)" = "$SPEC_VERSION" ]; then
  echo "fetch-libsignal-node: $SPEC_NAME@$SPEC_VERSION already installed in $dest"
  exit 0
fi

rm -f "$dest/.stamp"
cp "$src/package.json" "$lock" "$dest/"
echo "fetch-libsignal-node: npm ci $SPEC_NAME@$SPEC_VERSION (integrity-checked) into $dest"
# --ignore-scripts: the package ships prebuilt binaries (node-gyp-build picks
# prebuilds/linux-x64 at run time); no install script needs to run.
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --silent) \
  || die "npm ci failed (network? registry? integrity mismatch?)"
[ "$(installed_version || true)" = "$SPEC_VERSION" ] || die "installed version is not $SPEC_VERSION"
# The binding must load on this machine, or every interop test would fail later
# with a less clear message.
(cd "$dest" && node -e 'require(process.argv[1]).PrivateKey.generate()' "$SPEC_NAME") \
  || die "$SPEC_NAME installed but does not load on this machine"
echo "$want" >"$dest/.stamp"
echo "fetch-libsignal-node: $SPEC_NAME@$SPEC_VERSION installed and verified in $dest"
