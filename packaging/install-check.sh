#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-check.sh BUILD_DIR WORK_DIR
#
# Installs BUILD_DIR into WORK_DIR/root (DESTDIR, the build's own prefix),
# then proves that a program can be written against the installed libsotto
# with nothing but its headers, its libraries and sotto.pc:
#   1. every installed header compiles on its own (-Wall -Wextra -Werror);
#   2. libsotto.so has SONAME libsotto.so.<major> and the usual symlinks;
#   3. examples/demo.c builds with `pkg-config --cflags --libs sotto` and runs
#      against the installed libsotto.so;
#   4. it builds again against libsotto.a alone (`pkg-config --static`), does
#      not need libsotto.so, and runs.
# ctest runs it as "install_example"; `make install-check` too.
set -euo pipefail

build="$(cd "$1" && pwd)"
work="$2"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cc="${CC:-cc}"

fail() {
  echo "install-check: FAIL: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work"
root="$work/root"
DESTDIR="$root" cmake --install "$build" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }

pc="$(find "$root" -name sotto.pc -path '*/pkgconfig/*' -print -quit)"
[ -n "$pc" ] || fail "no sotto.pc installed under $root"
prefix="$(sed -n 's/^prefix=//p' "$pc")"
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$root"
libdir="$root$(pkg-config --variable=libdir sotto | sed "s|^$root||")"
incdir="$root$(pkg-config --variable=includedir sotto | sed "s|^$root||")"
[ -d "$incdir/sotto" ] || fail "headers not in $incdir/sotto"
echo "install-check: prefix $prefix, sotto.pc version $(pkg-config --modversion sotto)"
echo "install-check: pkg-config --cflags --libs sotto: $(pkg-config --cflags --libs sotto)"
echo "install-check: pkg-config --static --libs sotto: $(pkg-config --static --libs sotto)"

# 1. Each public header stands alone.
for h in "$incdir"/sotto/*.h; do
  printf '#include <sotto/%s>\nint main(void) { return 0; }\n' "${h##*/}" >"$work/hdr.c"
  "$cc" -std=c11 -Wall -Wextra -Werror -Wstrict-prototypes $(pkg-config --cflags sotto) \
    -c "$work/hdr.c" -o "$work/hdr.o" || fail "header sotto/${h##*/} does not compile on its own"
done

# 2. The shared library: versioned file, SONAME, development symlink.
so="$(readlink -f "$libdir/libsotto.so")"
[ -f "$so" ] || fail "$libdir/libsotto.so is not a symlink to the library"
soname="$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
case "$soname" in
  libsotto.so.[0-9]*) ;;
  *) fail "SONAME of $so is '$soname'" ;;
esac
[ -e "$libdir/$soname" ] || fail "no $soname symlink in $libdir"
[ -f "$libdir/libsotto.a" ] || fail "no libsotto.a in $libdir"
echo "install-check: $(basename "$so"), SONAME $soname"

# 3. Dynamic: the demo against the installed headers, .so and sotto.pc only.
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/demo-shared" "$src/examples/demo.c" \
  $(pkg-config --cflags --libs sotto) || fail "examples/demo.c does not build with pkg-config --cflags --libs sotto"
readelf -d "$work/demo-shared" | grep "NEEDED.*\[$soname\]" >/dev/null || fail "demo-shared does not need $soname"
LD_LIBRARY_PATH="$libdir" "$work/demo-shared" >"$work/demo-shared.out" 2>&1 \
  || { tail -20 "$work/demo-shared.out"; fail "demo-shared exited non-zero"; }
LD_LIBRARY_PATH="$libdir" ldd "$work/demo-shared" | grep "libsotto.so.* => $libdir/" >/dev/null \
  || fail "demo-shared did not load the installed libsotto.so"

# 4. Static: libsotto.a plus what `pkg-config --static` names, nothing else.
static_libs="$(pkg-config --static --libs sotto | sed 's/-lsotto /-l:libsotto.a /')"
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/demo-static" "$src/examples/demo.c" \
  $(pkg-config --cflags sotto) $static_libs || fail "examples/demo.c does not link against libsotto.a alone"
if readelf -d "$work/demo-static" | grep "NEEDED.*libsotto" >/dev/null; then
  fail "demo-static still needs libsotto.so"
fi
"$work/demo-static" >"$work/demo-static.out" 2>&1 || { tail -20 "$work/demo-static.out"; fail "demo-static exited non-zero"; }

# 5. Nothing installed links the GPL test peer (README, "Licence").
while IFS= read -r f; do
  if readelf -d "$f" 2>/dev/null | grep "NEEDED.*libsignal" >/dev/null; then
    fail "${f#$root} links libsignal-protocol-c (GPLv3, test-only)"
  fi
done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
if nm "$libdir/libsotto.a" 2>/dev/null | grep " [TU] signal_" >/dev/null; then
  fail "libsotto.a contains or calls libsignal-protocol-c code"
fi

echo "install-check: examples/demo.c built and ran against the installed library (shared and static)"
