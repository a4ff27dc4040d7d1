#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
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
mandir="$(find "$work/ic/root" -type d -name man -path '*/share/man' -print -quit)"
for page in "$mandir"/man*/*; do
  bash "$src/packaging/check-man.sh" render "$page"
done

step "Debian packages"
bash "$src/packaging/build-deb.sh" "$debout"
debout="$(cd "$debout" && pwd)"
for d in "$debout"/*.deb; do
  echo "--- dpkg-deb --contents ${d##*/}"
  dpkg-deb --contents "$d" | awk '{ $2 = $3 = $4 = $5 = ""; print "  " $0 }' | tr -s ' '
done
echo "--- lintian"
# Errors and warnings fail; info and pedantic tags are printed.
lintian --fail-on error,warning --display-info --pedantic "$debout"/*.changes | tee "$work/lintian.txt"
echo "lintian: $(grep -c '^[EW]:' "$work/lintian.txt" || true) errors/warnings, $(grep -c '^[IPX]:' "$work/lintian.txt" || true) info/pedantic"

step "unpack the .debs into a throwaway root"
# dpkg-deb -x: a root with no system in it cannot run maintainer scripts
# (postinst calls adduser), so they are checked as text below.
r="$work/debroot"
mkdir -p "$r"
for d in "$debout"/*.deb; do
  dpkg-deb -x "$d" "$r"
  dpkg-deb -e "$d" "$r/DEBIAN.${d##*/}"
done
"$r/usr/bin/sotto" --version
"$r/usr/sbin/sotto-server" --version
unit="$r/lib/systemd/system/sotto-server.service"
ctl="$r/DEBIAN.$(cd "$debout" && ls sotto-server_*.deb)"
fail() { echo "install-check: FAIL: $*" >&2; exit 1; }
[ -f "$unit" ] || fail "no unit in the sotto-server package"
grep -qx "ExecStart=/usr/sbin/sotto-server --config /etc/sotto/server.conf" "$unit" ||
  fail "the packaged unit does not run /usr/sbin/sotto-server --config /etc/sotto/server.conf"
grep -qx "ConditionPathExists=/etc/sotto/server.conf" "$unit" || fail "the packaged unit starts without /etc/sotto/server.conf"
[ ! -e "$r/etc/sotto/server.conf" ] || fail "the package ships /etc/sotto/server.conf: it would start unconfigured"
grep -q "adduser --system" "$ctl/postinst" || fail "sotto-server.postinst does not create the system user"
grep -q "install -d -m 0700 -o sotto -g sotto /var/lib/sotto" "$ctl/postinst" || fail "sotto-server.postinst does not create /var/lib/sotto"
# Enabling happens only for a unit that was enabled before (upgrades).
awk '/deb-systemd-helper enable/ && prev !~ /was-enabled/ { bad = 1 } NF && $1 !~ /^#/ { prev = $0 } END { exit bad }' "$ctl/postinst" ||
  fail "sotto-server.postinst enables the service on a fresh install"
sh -n "$ctl/postinst"
echo "sotto-server: unit runs --config /etc/sotto/server.conf once it exists; postinst creates user sotto and /var/lib/sotto; not enabled"
PKG_CONFIG_PATH="$(dirname "$(find "$r" -name sotto.pc -print -quit)")" PKG_CONFIG_SYSROOT_DIR="$r" \
  bash -c 'cc -std=c11 -Wall -Werror -o "$0/demo" "$1/examples/demo.c" $(pkg-config --cflags --libs sotto)' "$work" "$src"
LD_LIBRARY_PATH="$(dirname "$(find "$r" -name 'libsotto.so.*' -type f -print -quit)")" "$work/demo" >"$work/demo.out"
echo "the packaged libsotto-dev builds examples/demo.c with pkg-config only; it runs against the packaged libsotto0"
step "done"
