#!/usr/bin/env bash
# ci-install-check.sh BUILD DEB_OUT (make install-check, part of make check)
#   1. make install into a scratch DESTDIR; examples/demo.c built with
#      pkg-config only against it, shared and static, and run
#      (packaging/install-check.sh); `make uninstall` leaves nothing behind;
#   2. every installed man page renders with man -l without a warning;
#   3. the Debian packages: built (packaging/build-deb.sh), listed with
#      dpkg-deb --contents, checked by lintian (errors and warnings fail),
#      unpacked into a throwaway dpkg root, where the programs run and the
#      demo builds against libsotto-dev with pkg-config only and runs.
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "$1" && pwd)"
debout="$2"
t0=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/tmp}/sotto-install-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { echo "== install-check: $* ($(($(date +%s) - t0))s)"; }

step "make install into a scratch DESTDIR, examples/demo.c against it"
bash "$src/packaging/install-check.sh" "$build" "$work/ic"
prefix="$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")"
make -s -C "$src" install BUILD="$build" PREFIX="$prefix" DESTDIR="$work/root" >"$work/make-install.log"
echo "installed tree (make install DESTDIR=\$D PREFIX=$prefix):"
(cd "$work/root" && find . \( -type f -o -type l \) | sort | sed 's|^\.|  $D|')
make -s -C "$src" uninstall BUILD="$build" PREFIX="$prefix" DESTDIR="$work/root" >"$work/make-uninstall.log"
left="$(cd "$work/root" && find . \( -type f -o -type l \) | sed 's|^\./||')"
[ -z "$left" ] || { echo "install-check: FAIL: make uninstall left: $left" >&2; exit 1; }
echo "make uninstall: nothing left behind"

step "man -l renders every installed page"
mandir="$(find "$work/ic/root" -type d -name man -path '*/share/man' | head -n 1)"
for page in "$mandir"/man*/*; do
  bash "$src/packaging/check-man.sh" render "$page"
done

step "Debian packages"
bash "$src/packaging/build-deb.sh" "$debout"
debout="$(cd "$debout" && pwd)"
for d in "$debout"/*.deb; do
  echo "--- dpkg-deb --contents ${d##*/}"
  dpkg-deb --contents "$d" | awk '{ print "  " $1, $NF }'
done
echo "--- lintian"
# Errors and warnings fail; info and pedantic tags are printed.
lintian --fail-on error,warning --info --display-info "$debout"/*.changes | tee "$work/lintian.txt"
echo "lintian: $(grep -c '^[EW]:' "$work/lintian.txt" || true) errors/warnings, $(grep -c '^[IPX]:' "$work/lintian.txt" || true) info/pedantic"

step "unpack the .debs into a throwaway dpkg root"
r="$work/dpkgroot"
mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
: >"$r/var/lib/dpkg/status"
: >"$r/var/lib/dpkg/available"
# --unpack runs no maintainer script but preinst (we have none); configure
# would run postinst (adduser) inside the root, which has no system in it.
dpkg --root="$r" --force-depends --force-not-root --unpack "$debout"/*.deb >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log"; exit 1; }
dpkg --root="$r" -l | awk '/^[a-z][a-zA-Z] / { print "  " $1, $2, $3 }'
"$r/usr/bin/sotto" --version
"$r/usr/sbin/sotto-server" --version
[ -f "$r/lib/systemd/system/sotto-server.service" ] || { echo "install-check: FAIL: no unit in the package" >&2; exit 1; }
grep -q "^ExecStart=/usr/sbin/sotto-server --config /etc/sotto/server.conf$" "$r/lib/systemd/system/sotto-server.service" ||
  { echo "install-check: FAIL: the packaged unit does not run /usr/sbin/sotto-server --config /etc/sotto/server.conf" >&2; exit 1; }
grep -q "adduser --system" "$r/var/lib/dpkg/info/sotto-server.postinst" ||
  { echo "install-check: FAIL: sotto-server.postinst does not create the system user" >&2; exit 1; }
if grep -q "deb-systemd-invoke start\|systemctl.*start" "$r/var/lib/dpkg/info/sotto-server.postinst"; then
  echo "install-check: FAIL: sotto-server.postinst starts the service" >&2
  exit 1
fi
sh -n "$r/var/lib/dpkg/info/sotto-server.postinst"
PKG_CONFIG_PATH="$(dirname "$(find "$r" -name sotto.pc | head -n 1)")" PKG_CONFIG_SYSROOT_DIR="$r" \
  bash -c 'cc -std=c11 -Wall -Werror -o "$0/demo" "$1/examples/demo.c" $(pkg-config --cflags --libs sotto)' "$work" "$src"
LD_LIBRARY_PATH="$(dirname "$(find "$r" -name 'libsotto.so.*' -type f | head -n 1)")" "$work/demo" >"$work/demo.out"
echo "the packaged libsotto-dev builds examples/demo.c with pkg-config only; it runs against the packaged libsotto0"
step "done"
