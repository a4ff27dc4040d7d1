#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-man.sh: keeps the man pages honest (ctest man_*).
#
#   check-man.sh render PAGE          man -l renders PAGE without a warning
#   check-man.sh drift PAGE PROGRAM   PAGE documents exactly what PROGRAM's
#                                     --help (and each `PROGRAM CMD --help`)
#                                     lists: options, commands, environment
#   check-man.sh api PAGE LIBRARY.so  PAGE names every function LIBRARY.so
#                                     exports, and no function it does not
#
# A man page "documents" an option or command with a .TP entry whose tag line
# starts with it (.B \-\-json, .BI "\-\-home " DIR, .B "group create" ...).
set -euo pipefail

mode="$1"
page="$2"
name="${page##*/}"
bad=0
problem() {
  echo "$name: $*" >&2
  bad=1
}

# The tag lines of every .TP entry, as plain text.
tags() {
  awk 'prev ~ /^\.TP/ { print } { prev = $0 }' "$page" |
    sed -e 's/^\.[A-Z]*[ ]*//' -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/"//g' -e 's/\\//g'
}

case "$mode" in
  render)
    out="$(mktemp)"
    # -ww: every groff warning; man's own diagnostics land on stderr as well.
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l "$page" 2>"$out" >/dev/null || problem "man -l failed"
    if [ -s "$out" ]; then
      problem "man -l $page warns:"
      cat "$out" >&2
    fi
    rm -f "$out"
    [ "$bad" = 0 ] && echo "$name: renders without warnings"
    ;;

  drift)
    prog="$3"
    pname="$(basename "$prog")"
    [ "$pname" = sotto-cli ] && pname=sotto
    main_help="$("$prog" --help)"
    # Commands: the "commands:" block and the words after the program's name
    # in its usage lines ("usage: sotto-server fingerprint --data DIR").
    cmds="$( (printf '%s\n' "$main_help" | awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }'
              printf '%s\n' "$main_help" | sed -n "s/^\(usage: \+\| \+\)$pname \([a-z][a-z-]*\)\b.*/\2/p") | sort -u)"
    declare -A help_opts=() help_cmds=() where=()
    add_opts() { # text, where-label
      local o
      for o in $(printf '%s\n' "$1" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
        help_opts[$o]=1
        [ -n "${where[$o]:-}" ] || where[$o]="$2"
      done
    }
    add_opts "$main_help" "$pname --help"
    for c in $cmds; do
      help_cmds[$c]=1
      h="$("$prog" "$c" --help 2>/dev/null)" || continue
      add_opts "$h" "$pname $c --help"
      # Sub-commands named in its usage line: "group create NAME ... | group send ...".
      for s in $(head -n 1 <<<"$h" | grep -o -- "\b$c [a-z][a-z-]*" | awk '{ print $2 }' | sort -u); do
        help_cmds["$c $s"]=1
      done
    done
    envs="$(printf '%s\n' "$main_help" | awk '/^environment:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [A-Z]/ { print $1 }')"

    declare -A man_opts=() man_cmds=()
    while IFS= read -r t; do
      first="${t%% *}"
      case "$first" in
        --*) man_opts[$first]=1 ;;
        [a-z]*)
          # the leading lowercase words: "group create NAME USER..." -> "group create"
          words="$(printf '%s\n' "$t" | grep -o '^[a-z][a-z-]*\( [a-z][a-z-]*\)*' || true)"
          man_cmds[$words]=1
          ;;
      esac
    done < <(tags)

    for o in "${!help_opts[@]}"; do
      [ -n "${man_opts[$o]:-}" ] || problem "option $o is listed by '${where[$o]}' but has no .TP entry in $name"
    done
    for o in "${!man_opts[@]}"; do
      [ -n "${help_opts[$o]:-}" ] || problem "documents option $o, which no '$pname ... --help' lists (removed or renamed?)"
    done
    for c in "${!help_cmds[@]}"; do
      # "group" is documented by its sub-commands "group create", ...
      covered="${man_cmds[$c]:-}"
      for m in "${!man_cmds[@]}"; do
        case "$m" in "$c "*) covered=1 ;; esac
      done
      [ -n "$covered" ] || problem "command '$c' is listed by '$pname --help' but has no .TP entry in $name"
    done
    for c in "${!man_cmds[@]}"; do
      [ -n "${help_cmds[$c]:-}" ] || problem "documents command '$c', which '$pname --help' does not list (removed or renamed?)"
    done
    for e in $envs; do
      grep -q "^\.B $e\b\|^\.BR\? $e\b\|^$e\b" "$page" || problem "environment variable $e is listed by '$pname --help' but not documented in $name"
    done
    [ "$bad" = 0 ] && echo "$name: ${#help_opts[@]} options and ${#help_cmds[@]} commands, the same in --help and the page"
    ;;

  api)
    lib="$3"
    text="$(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' "$page")"
    exported="$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u)"
    n=0
    for s in $exported; do
      n=$((n + 1))
      grep -qw -- "$s" <<<"$text" || problem "$s is exported by ${lib##*/} but not described in $name"
    done
    for s in $(printf '%s\n' "$text" | grep -o '\bsotto_[a-z0-9_]*(' | tr -d '(' | sort -u); do
      grep -qx -- "$s" <<<"$exported" || problem "describes $s(), which ${lib##*/} does not export"
    done
    [ "$bad" = 0 ] && echo "$name: all $n exported functions described"
    ;;
  *)
    echo "usage: check-man.sh render PAGE | drift PAGE PROGRAM | api PAGE LIBRARY" >&2
    exit 2
    ;;
esac
exit "$bad"
