# SPDX-License-Identifier: Apache-2.0
# test_offline.sh: messages wait for an offline recipient, survive a server
# restart, arrive in order; an envelope pushed again (an ack lost in a
# crash) is shown once; receive --follow prints pushes as they come.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob

# Bob is offline; Alice writes three times.
for i in 1 2 3; do s alice send bob "offline message $i" >/dev/null 2>&1 || bad "send $i"; done
stop_server
start_server   # same data directory, same port
s bob receive >"$T/r1" 2>&1
check "after a server restart bob gets all three" test "$(grep -c 'alice: offline message' "$T/r1")" -eq 3
grep -q . "$T/r1" && [ "$(grep -c "alice: offline message" "$T/r1")" -ne 3 ] && { echo "--- r1:"; cat "$T/r1"; }
check "... in order" test "$(grep -o 'message [0-9]' "$T/r1" | tr -d '\n')" = "message 1message 2message 3"

# A re-delivered envelope (the server never saw the ack) is shown once.
s alice send bob "exactly once" >/dev/null 2>&1
stop_server
sql "CREATE TABLE saved AS SELECT * FROM messages WHERE sender = 'alice';"   # not bob's receipts to alice
start_server
s bob receive >"$T/r2" 2>&1
check "bob reads it" contains "$T/r2" "alice: exactly once"
stop_server
sql "INSERT INTO messages SELECT * FROM saved; UPDATE devices SET queue_count = queue_count + 1;"
check "the server holds the envelope again" test "$(sql "SELECT count(*) FROM messages WHERE sender = 'alice';")" -eq 1
start_server
s bob receive >"$T/r3" 2>&1
check "the duplicate push is not shown again" lacks "$T/r3" "exactly once"
stop_server
check "... and was acked away" test "$(sql "SELECT count(*) FROM messages WHERE sender = 'alice';")" -eq 0
start_server
s bob history alice >"$T/h" 2>&1
check "history has it once" test "$(grep -c 'exactly once' "$T/h")" -eq 1

# The session still works both ways after all that.
s bob send alice "still here" >/dev/null 2>&1
s alice receive >"$T/r4" 2>&1
check "bob -> alice afterwards" contains "$T/r4" "bob: still here"

# Pre-key stock: when the server says it runs low, the client tops it up.
stop_server
bob_dk=$(sql "SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = 'bob';")
sql "DELETE FROM onetime WHERE devkey = $bob_dk AND key_id % 20 != 0;"
check "bob's one-time pre-keys run low" test "$(sql "SELECT count(*) FROM onetime WHERE devkey = $bob_dk;")" -lt 10
start_server
s bob receive >/dev/null 2>&1
stop_server
check "the next login tops them up (100 EC + 20 KEM)" test "$(sql "SELECT count(*) FROM onetime WHERE devkey = $bob_dk;")" -ge 120
start_server
s carol init >/dev/null 2>&1
s carol register --server "127.0.0.1:$PORT" carol >/dev/null 2>&1
s carol send bob "a new contact after the top-up" >/dev/null 2>&1
s bob receive >"$T/r5" 2>&1
check "a session from the new pre-keys works" contains "$T/r5" "carol: a new contact after the top-up"

# receive --follow: pushes are printed as they arrive.
"$SOTTO" --home "$T/bob" --json receive --follow >"$T/f" 2>"$T/f.err" &
FPID=$!
sleep 1
s alice send bob "pushed live" >/dev/null 2>&1
for i in $(seq 1 100); do grep -q "pushed live" "$T/f" && break; sleep 0.1; done
check "--follow prints a pushed message" contains "$T/f" '"from":"alice","text":"pushed live"'
kill -TERM "$FPID"
timeout 20 tail --pid="$FPID" -f /dev/null
wait "$FPID"; rc=$?
check "--follow stops cleanly on SIGTERM" test $rc -eq 0
finish
