# SPDX-License-Identifier: Apache-2.0
# test_receive_busy.sh: the W1 regression (issue 9). A local failure while
# receiving (the store held by another writer) is an error with a clear
# message and a non-zero status, never taken for a lost connection: before
# the client core, `receive` signalled "reconnect" with the same value as
# its failure status, so it retried silently (and, with --follow, forever).
# Nothing is lost: the envelope stays on the server and comes next time.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
s alice send bob "first" >/dev/null 2>&1 || bad "alice sends"
s bob receive >"$T/r0" 2>&1
check "bob reads the first message" contains "$T/r0" "alice: first"

# hold_lock HOME: another writer (sqlite3 fed through a FIFO) holds the
# store's write lock until release_lock closes the FIFO.
hold_lock() {
  rm -f "$T/lock.fifo" "$T/lock.out"
  mkfifo "$T/lock.fifo"
  # -bail and a busy timeout: 'locked' is printed only once the lock is
  # really held (the client may be committing at that moment).
  sqlite3 -bail "$T/$1/sotto.db" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
  LPID=$!
  exec 9>"$T/lock.fifo"
  printf '.timeout 20000\nBEGIN IMMEDIATE;\nSELECT %s;\n' "'locked'" >&9
  for i in $(seq 1 300); do grep -qx locked "$T/lock.out" 2>/dev/null && return 0; sleep 0.1; done
  bad "could not take the store lock"
}
release_lock() { exec 9>&-; wait "$LPID" 2>/dev/null; }

# --follow: connected first, then the lock is taken and a message arrives.
"$SOTTO" --home "$T/bob" receive --follow >"$T/f" 2>"$T/f.err" &
FPID=$!
s alice send bob "sync" >/dev/null 2>&1
for i in $(seq 1 100); do grep -q "alice: sync" "$T/f" 2>/dev/null && break; sleep 0.1; done
check "receive --follow is connected" contains "$T/f" "alice: sync"
hold_lock bob
s alice send bob "while locked" >/dev/null 2>&1 || bad "alice sends while bob's store is locked"
# The store waits BUSY_TIMEOUT (10 s) for the lock, then gives up: the
# receive must end then, not reconnect and wait on.
if timeout 45 tail --pid="$FPID" -f /dev/null; then
  wait "$FPID"; rc=$?
  check "receive --follow ends with a failure status when the store is busy" test "$rc" -eq 1
else
  kill -TERM "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null
  bad "receive --follow ends with a failure status when the store is busy (it kept running)"
fi
check "... and says why, plainly" contains "$T/f.err" "is busy (another sotto is writing); try again"
check "... the message was not shown" lacks "$T/f" "while locked"
release_lock

# Plain receive with the store held: a failure, promptly, and JSON says "busy".
hold_lock bob
s bob --json receive --timeout 40 >"$T/j" 2>"$T/j.err"; rc=$?
check "plain receive fails (status 1) while the store is busy" test "$rc" -eq 1
check "... with the busy error in JSON" contains "$T/j" '"error":"busy"'
release_lock

# Without the lock, the envelope that stayed on the server arrives once.
s bob receive --json >"$T/r1" 2>&1
check "afterwards the held-back message arrives" contains "$T/r1" '"text":"while locked"'
check "... (global --json after the command works)" contains "$T/r1" '"event":"message"'
s bob history alice >"$T/h" 2>&1
check "... and is in the history once" test "$(grep -c 'while locked' "$T/h")" -eq 1
finish
