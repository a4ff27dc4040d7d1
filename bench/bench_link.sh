#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_link.sh: the time to link a device end to end with the real CLI and
# a real sotto-server on 127.0.0.1 (run by `bench/run link`;
# docs/benchmarks.md, "Linking").
#
#   bench_link.sh SOTTO SOTTO_SERVER [--json] [--runs N] [--smoke]
#
# Each run: a fresh account (init + register, not timed); `sotto --home NEW
# link` starts and prints its code (not timed: the new device's home and
# keys are made while the person reads the code); then the clock starts,
# `sotto devices add --yes CODE` runs on device 1, and the clock stops when
# both it and `sotto link` have exited (both sides done).
#
# Floor: in the same run, `sotto devices` on device 1 (one process: the
# home unlocked with its real passphrase KDF, TLS, AUTH, one request), i.e.
# what `devices add` costs without the link's crypto, its extra round trips
# and its waits (the new device's `sotto link` runs beside it, on the other
# core, and has unlocked its home before the clock starts).
#
# Row link_time (ms, median of N runs) with the floor beside it; --smoke:
# one run, figures not judged, fails if a link fails.
set -u
SOTTO=${1:?usage: bench_link.sh SOTTO SOTTO_SERVER [--json] [--runs N] [--smoke]}
SERVER=${2:?usage: bench_link.sh SOTTO SOTTO_SERVER [--json] [--runs N] [--smoke]}
shift 2
json=0
runs=7
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=1 ;;
    --smoke) runs=1 ;;
    --runs)
      [ $# -ge 2 ] || { echo "bench_link: --runs needs a value" >&2; exit 2; }
      case "$2" in '' | *[!0-9]*) echo "bench_link: --runs: a number 1..100" >&2; exit 2 ;; esac
      runs=$2
      [ "$runs" -ge 1 ] && [ "$runs" -le 100 ] || { echo "bench_link: --runs: a number 1..100" >&2; exit 2; }
      shift
      ;;
    *) echo "bench_link: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

T=$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-link.XXXXXX")
SPID=
cleanup() {
  if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT
export SOTTO_PASSPHRASE="bench link passphrase"

fail() { echo "bench_link: $*" >&2; [ -f "$T/server.err" ] && tail -5 "$T/server.err" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
s() { local who=$1; shift; timeout 60 "$SOTTO" --home "$T/$who" "$@"; }

mkdir -p "$T/srv"
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 40000))
  "$SERVER" --data "$T/srv" --listen "127.0.0.1:$PORT" --register-rate 600 --register-burst 1000 \
    --device-change-burst 1000 --log-level 0 >"$T/server.out" 2>"$T/server.err" &
  SPID=$!
  for _ in $(seq 1 100); do
    grep -q '^listening' "$T/server.out" 2>/dev/null && break 2
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=
done
[ -n "$SPID" ] || fail "sotto-server does not start"

link_ms=()
floor_ms=()
for r in $(seq 1 "$runs"); do
  u="acct$r"
  s "$u" init >"$T/$u.init" 2>&1 && s "$u" register --server "127.0.0.1:$PORT" "$u" >"$T/$u.reg" 2>&1 ||
    fail "setting up $u: $(cat "$T/$u.init" "$T/$u.reg")"
  ( timeout 120 "$SOTTO" --home "$T/new$r" link --server "127.0.0.1:$PORT" --name "new$r" >"$T/new$r.link" 2>&1
    echo "exit=$?" >>"$T/new$r.link" ) &
  lpid=$!
  code=
  for _ in $(seq 1 600); do
    code=$(sed -n 's/^code: //p' "$T/new$r.link" 2>/dev/null)
    [ -n "$code" ] && break
    grep -q '^exit=' "$T/new$r.link" 2>/dev/null && break
    sleep 0.05
  done
  [ -n "$code" ] || fail "run $r: 'sotto link' printed no code: $(cat "$T/new$r.link")"
  t0=$(now_ms)
  s "$u" devices add --yes "$code" >"$T/$u.add" 2>&1 || fail "run $r: devices add: $(cat "$T/$u.add")"
  wait "$lpid"
  t1=$(now_ms)
  grep -q '^exit=0' "$T/new$r.link" || fail "run $r: sotto link: $(cat "$T/new$r.link")"
  link_ms+=($((t1 - t0)))
  t0=$(now_ms)
  s "$u" devices >"$T/$u.d1" 2>&1 || fail "run $r: devices on device 1: $(cat "$T/$u.d1")"
  t1=$(now_ms)
  grep -q "device 2 'new$r'" "$T/$u.d1" || fail "run $r: device 1 does not list the new device: $(cat "$T/$u.d1")"
  floor_ms+=($((t1 - t0)))
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
lm=$(median "${link_ms[@]}")
fm=$(median "${floor_ms[@]}")
[ "$lm" -gt 0 ] && [ "$fm" -gt 0 ] || fail "a row measured nothing"
ratio=$(awk -v a="$lm" -v b="$fm" 'BEGIN { printf "%.2f", a / b }')
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
if [ "$json" = 1 ]; then
  printf '{"bench":"link_time","unit":"ms","sotto":%s,"floor":%s,"ratio":%s,"runs":%s,"load1":"%s"}\n' \
    "$lm" "$fm" "$ratio" "$runs" "$load"
else
  echo "Linking a device end to end (real CLI, real sotto-server on 127.0.0.1, $runs runs, load $load)"
  echo "link_time: from 'devices add --yes CODE' on device 1 until it and 'sotto link' have both exited"
  echo "floor:     'sotto devices' on device 1 (unlock, TLS, AUTH, one request)"
  printf '%-10s %-4s %8s %8s %6s\n' row unit sotto floor ratio
  printf '%-10s %-4s %8s %8s %6s\n' link_time ms "$lm" "$fm" "$ratio"
  echo "runs (ms): link ${link_ms[*]}; floor ${floor_ms[*]}"
fi
