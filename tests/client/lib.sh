# SPDX-License-Identifier: Apache-2.0
# lib.sh: shared helpers of the end-to-end client tests (sourced).
#
# Each test runs the real sotto-server on 127.0.0.1 (a free port, real TLS,
# a fresh data directory) and several client homes under one temporary
# directory, removed at exit. Every wait is bounded; every check prints one
# line, and the test exits non-zero if any failed.
#
# usage in a test:  source lib.sh "$@"   (args: path of sotto, of sotto-server)
set -u

SOTTO=${1:?usage: test.sh PATH/TO/sotto PATH/TO/sotto-server}
SERVER=${2:?usage: test.sh PATH/TO/sotto PATH/TO/sotto-server [PATH/TO/client_store_scan]}
SCAN=${3:-}
for b in "$SOTTO" "$SERVER"; do
  [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
done
command -v timeout >/dev/null || { echo "FAIL: timeout(1) missing"; exit 1; }
# Argon2id at the store's real limits costs about a second of CPU per run of
# the client, and these tests run it hundreds of times. Unless a test sets
# SOTTO_TEST_REAL_KDF=1 (client_basic and client_errors do, and the C test
# client_store checks the real limits and the migration), the tests drive
# sotto-test, the same sources built with test hooks and never installed,
# with SOTTO_TEST_KDF=fast (libsodium's minimum: 1 pass, 8 MiB).
if [ -z "${SOTTO_TEST_REAL_KDF:-}" ]; then
  SOTTO=$(dirname "$SOTTO")/sotto-test
  [ -x "$SOTTO" ] || { echo "FAIL: $SOTTO is not built"; exit 1; }
  export SOTTO_TEST_KDF=fast
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sotto-client-test.XXXXXX")
SPID=
PORT=
FAILS=0
CHECKS=0
export SOTTO_PASSPHRASE="correct horse battery staple"
# Sanitizer builds: reports of every process go to files that finish checks,
# so a report from a command whose output a test ignores still fails it.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$T/sanitizer"

cleanup() {
  if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $1"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $1"; }
# check DESCRIPTION COMMAND...: passes if the command succeeds.
# A failed contains/lacks shows the end of the file it read, so that a
# failure seen once (under load, in CI) can be understood from the log.
check() {
  local d=$1; shift
  if "$@" >/dev/null; then ok "$d"; else
    bad "$d"
    if { [ "$1" = contains ] || [ "$1" = lacks ]; } && [ -f "$2" ]; then
      echo "     --- $2 (last 12 lines):"; tail -12 "$2" | sed 's/^/     | /'
    fi
  fi
}
# contains FILE TEXT / lacks FILE TEXT (fixed strings)
contains() { grep -qF -- "$2" "$1"; }
# The server removes a deleted blob's file just after it answered (the last
# DONE; docs/server.md "Removing files"): these wait for it, at most 5 s.
gone_soon() {
  local i f any
  for i in $(seq 1 100); do
    any=0
    for f in "$@"; do [ -e "$f" ] && any=1; done
    [ "$any" = 0 ] && return 0
    sleep 0.05
  done
  return 1
}
blob_files_soon() {
  local i
  for i in $(seq 1 100); do
    [ "$(ls "$T/srv/blobs" | wc -l)" -eq "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
lacks() { ! grep -qF -- "$2" "$1"; }
# flip_byte FILE OFFSET: the byte at OFFSET complemented in place. (Writing a
# fixed byte instead left the file unchanged whenever it already held that
# byte: 1 run in 256 on random ciphertext, and the "altered" file passed.)
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [ -n "$b" ] || { echo "flip_byte: $1 has no byte $2" >&2; return 1; }
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# Starts the server on PORT (or a random free one) with extra options.
# The data directory $T/srv survives restarts.
start_server() {
  local want=${PORT:-} tries=0 i
  mkdir -p "$T/srv"
  while [ $tries -lt 20 ]; do
    tries=$((tries + 1))
    PORT=${want:-$((20000 + RANDOM % 40000))}
    # Emptied here, not by the background job's redirection: that one runs
    # after the fork, so on a loaded machine the loop below could still read
    # the previous server's "listening" line and return before this server
    # listens (clients then met "cannot reach the server" after a restart).
    : >"$T/server.out"
    "$SERVER" --data "$T/srv" --listen "127.0.0.1:$PORT" --register-rate 600 --register-burst 100 \
      --log-level 0 "$@" >"$T/server.out" 2>"$T/server.err" &
    SPID=$!
    for i in $(seq 1 100); do
      if grep -q '^listening' "$T/server.out" 2>/dev/null; then return 0; fi
      if ! kill -0 "$SPID" 2>/dev/null; then break; fi
      sleep 0.1
    done
    kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
    SPID=
    [ -n "$want" ] && sleep 0.5   # the same port again (a restart): wait for it to be free
  done
  echo "FAIL could not start sotto-server:"; cat "$T/server.err"; exit 1
}

stop_server() {
  if [ -n "$SPID" ]; then
    kill -TERM "$SPID" 2>/dev/null
    if ! timeout 20 tail --pid="$SPID" -f /dev/null; then kill -KILL "$SPID"; fi
    wait "$SPID" 2>/dev/null
    SPID=
  fi
}

# s USER ARGS...: runs sotto with USER's home, bounded in time.
s() { local who=$1; shift; timeout 60 "$SOTTO" --home "$T/$who" "$@"; }

# new_user NAME: init + register on the running server.
new_user() {
  s "$1" init >"$T/$1.init" 2>&1 && s "$1" register --server "127.0.0.1:$PORT" "$1" >"$T/$1.reg" 2>&1 ||
    { echo "FAIL setting up $1:"; cat "$T/$1.init" "$T/$1.reg"; exit 1; }
}

# sql STATEMENT: edits the server's database (a malicious or
# crashing server, simulated).
# With a busy timeout: the running server may hold the write lock for a
# moment (a commit batch); without one sqlite3 fails at once with "database
# is locked" (seen under ThreadSanitizer's slowdown in client_device).
sql() { sqlite3 -cmd ".timeout 10000" "$T/srv/sotto.db" "$1"; }

finish() {
  stop_server
  if ls "$T"/sanitizer.* >/dev/null 2>&1; then
    bad "sanitizer reports:"; cat "$T"/sanitizer.*
  fi
  if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS of $CHECKS checks FAILED"
    echo "--- server stderr"; tail -20 "$T/server.err" 2>/dev/null
    exit 1
  fi
  echo "all $CHECKS checks passed"
  exit 0
}

# link_device WHO OWNER NAME: links home WHO as a device of OWNER named NAME
# (`sotto link` in the background, `sotto devices add --yes CODE` on OWNER);
# 0 if the new device says it is linked. Output in $T/WHO.link, $T/WHO.add.
link_device() {
  local who=$1 owner=$2 name=$3 i code=
  rm -f "$T/$who.link"
  ( timeout 120 "$SOTTO" --home "$T/$who" link --server "127.0.0.1:$PORT" --name "$name" >"$T/$who.link" 2>&1
    echo "exit=$?" >>"$T/$who.link" ) &
  local pid=$!
  for i in $(seq 1 200); do
    if grep -q '^code: \|^exit=' "$T/$who.link" 2>/dev/null; then break; fi
    sleep 0.1
  done
  code=$(sed -n 's/^code: //p' "$T/$who.link")
  s "$owner" devices add --yes "$code" >"$T/$who.add" 2>&1
  wait "$pid"
  grep -q "exit=0" "$T/$who.link"
}
