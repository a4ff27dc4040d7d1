#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# spdx.sh [--check] [FILE...]
#
# Every source file we wrote starts with an SPDX-License-Identifier line
# (after a #! line, if any). Without --check, adds
# "SPDX-License-Identifier: Apache-2.0" in the file type's comment syntax to
# each file that has no SPDX line in its first 10 lines (idempotent: a file
# that has one, whatever the licence, is left alone). With --check, lists the
# files without one and exits 1 (ctest lint_spdx).
#
# Files: the repository's tracked and new (not ignored) files, or FILE...
# Sources: C (.c .h .h.in), CMake (CMakeLists.txt, .cmake), shell (.sh and
# any #! script), Makefile, JavaScript (.js .mjs .cjs), Python (.py), the
# linker version script (.map), man page sources (man/*.in), and the
# configured templates (.pc.in, .service.in). Data (tests/vectors/,
# fuzz/corpus/), documentation and licence texts are not sources.
set -euo pipefail

check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

list_files() {
  if [ $# -gt 0 ]; then
    printf '%s\n' "$@"
  elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard
  else
    find . -type f ! -path './.git/*' ! -path './build*' ! -path './obj-*' ! -path './debian/.debhelper/*' |
      sed 's|^\./||'
  fi
}

# Prints the comment prefix/suffix for a file, or nothing if it is not a source.
style_of() {
  local f="$1" base="${1##*/}" first=""
  case "$f" in
    tests/vectors/* | fuzz/corpus/* | debian/tmp/* | debian/.debhelper/*) return ;;
  esac
  case "$base" in
    *.c | *.h | *.h.in | *.map) echo "/* | */" ;;
    CMakeLists.txt | *.cmake | *.sh | Makefile | *.mk | *.py | *.pc.in | *.service.in) echo "# |" ;;
    *.js | *.mjs | *.cjs) echo "// |" ;;
    *.[1-8].in) echo '.\" |' ;;
    *.*) ;; # other extensions: documentation, data, configuration
    *)
      [ -f "$f" ] && IFS= read -r first <"$f" || true
      case "$first" in
        '#!'*node*) echo "// |" ;;
        '#!'*) echo "# |" ;;
      esac
      ;;
  esac
}

missing=0
fixed=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  st="$(style_of "$f")"
  [ -n "$st" ] || continue
  if head -n 10 "$f" | grep "SPDX-License-Identifier:" >/dev/null; then
    continue
  fi
  if [ "$check" = 1 ]; then
    echo "spdx: $f has no SPDX-License-Identifier line (run scripts/spdx.sh)" >&2
    missing=$((missing + 1))
    continue
  fi
  pre="${st%%|*}"
  post="${st#*|}"
  line="${pre}SPDX-License-Identifier: Apache-2.0${post}"
  tmp="$(mktemp "$f.spdx.XXXXXX")"
  if head -n 1 "$f" | grep '^#!' >/dev/null; then
    { head -n 1 "$f"; printf '%s\n' "$line"; tail -n +2 "$f"; } >"$tmp"
  else
    { printf '%s\n' "$line"; cat "$f"; } >"$tmp"
  fi
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  fixed=$((fixed + 1))
done < <(list_files "$@")

if [ "$check" = 1 ]; then
  if [ "$missing" -gt 0 ]; then
    echo "spdx: $missing source files without an SPDX line" >&2
    exit 1
  fi
  echo "spdx: every source file has an SPDX-License-Identifier line"
else
  echo "spdx: added the Apache-2.0 SPDX line to $fixed files"
fi
