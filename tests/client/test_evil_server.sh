# SPDX-License-Identifier: Apache-2.0
# test_evil_server.sh: a malicious server cannot wedge, stall or bloat the
# client. A relay (evil_server.c, real TLS with the server's own
# certificate, the real codec) sits between the clients and the real
# sotto-server and
#  - pushes malformed envelopes (a bad sender name, a body over the cap, a
#    body shorter than declared, an unknown frame, a DRAINED with trailing
#    bytes) before a real one: each is reported, the envelopes are acked, the
#    real message is delivered, and the next receive finds nothing left;
#  - floods envelopes without end: receive ends by its --timeout with a clear
#    error, its peak memory bounded, and one summary line for the thousands
#    it could not decrypt;
#  - trickles one byte every 100 ms: receive ends by its --timeout;
#  - pushes 1,300 malformed envelopes at once: all acked, receive completes;
#  - plays a server from before BLOB_FETCHES (0x47: it closes the connection
#    on it): a file whose fan-out grew since the upload's count still goes
#    out (the client reconnects and sends without it), as before that
#    request (the blob keeps the count of its CREATE).
# And with the real server alone: 150 envelopes from one sender that nobody
# can decrypt give a few lines and one summary, not 150 lines.
source "$(dirname "$0")/lib.sh" "$@"

EVIL=${4:-}
[ -x "$EVIL" ] || { echo "FAIL: the malicious server (client_evil_server) is not built"; exit 1; }
# Peak resident memory allowed for a receive under a flood: the event queue
# is bounded by 8 MiB of bodies (the passphrase KDF alone takes 64 MiB).
RSS_MAX_KB=${RSS_MAX_KB:-131072}

EPID=
evil_cleanup() {
  if [ -n "$EPID" ]; then kill -TERM "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null; fi
  cleanup
}
trap evil_cleanup EXIT

start_server
echo pass >"$T/mode"
"$EVIL" proxy "$T/srv" "$PORT" "$T/mode" "$T/evil.log" >"$T/evil.out" 2>"$T/evil.err" &
EPID=$!
for i in $(seq 1 100); do grep -q '^listening' "$T/evil.out" 2>/dev/null && break; sleep 0.1; done
EPORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$T/evil.out")
[ -n "$EPORT" ] || { echo "FAIL the malicious relay did not start:"; cat "$T/evil.err"; exit 1; }

# Both register through the relay: they pin its certificate (the server's).
REAL_PORT=$PORT
PORT=$EPORT
new_user alice
new_user bob
PORT=$REAL_PORT

# (a) Malformed envelopes, then a real one.
s alice send bob "hello through the relay" >/dev/null 2>&1
echo bad >"$T/mode"
s bob receive --timeout 20 >"$T/a.out" 2>"$T/a.err"; rc=$?
check "bad envelopes: receive succeeds (exit 0)" test $rc -eq 0
check "bad envelopes: the real message is delivered" contains "$T/a.out" "alice: hello through the relay"
check "bad sender name: reported" contains "$T/a.err" "malformed envelope (id 900000001"
check "body over the cap: reported" contains "$T/a.err" "malformed envelope (id 900000002"
check "unknown frame: reported" contains "$T/a.err" "malformed frame (type 0x9f"
check "the rest (a short body, a bad DRAINED): summed up" contains "$T/a.err" "2 more malformed frames from the server were skipped"
check "the sender's bad name is not printed" lacks "$T/a.err" "Mallory"
for id in 900000001 900000002 900000003; do
  check "envelope $id acked" grep -qx "ack $id" "$T/evil.log"
done
s alice send bob "second one" >/dev/null 2>&1
s bob --json receive --timeout 20 >"$T/a2.out" 2>"$T/a2.err"; rc=$?
check "--json: receive succeeds" test $rc -eq 0
check "--json: the message is an event" contains "$T/a2.out" '"text":"second one"'
check "--json: the bad envelope is an event with its code" contains "$T/a2.out" '"warning":"bad_envelope"'
echo pass >"$T/mode"
s bob receive --timeout 20 >"$T/a3.out" 2>&1
check "nothing is wedged: the next receive finds no message" contains "$T/a3.out" "No new messages."

# (b) A flood of envelopes without end.
echo flood >"$T/mode"
# (Under ASan, freed memory waits in a quarantine of 256 MiB by default: a
# small one keeps the peak about what the program itself holds.)
ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8" \
  "$EVIL" measure 60 "$SOTTO" --home "$T/bob" receive --timeout 5 >"$T/b.out" 2>"$T/b.err"
m=$(grep '^exit=' "$T/b.out")
echo "     flood: $m"
rc=$(echo "$m" | sed -n 's/^exit=\([0-9]*\).*/\1/p'); rss=$(echo "$m" | sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p')
check "flood: receive ends by itself, with an error" test -n "$rc" -a "${rc:-0}" -ne 0 -a -n "$(echo "$m" | grep killed=0)"
check "flood: the error says the timeout ended it" contains "$T/b.err" "did not finish sending the queue within the timeout"
check "flood: peak memory ${rss:-?} KiB <= $RSS_MAX_KB KiB" test -n "$rss" -a "${rss:-0}" -le "$RSS_MAX_KB"
n=$(grep -c 'from mallory could not be decrypted' "$T/b.out")
check "flood: a few lines and one summary ($n lines)" test "$n" -le 4
check "flood: the summary counts the rest" grep -q 'more messages from mallory could not be decrypted and were dropped' "$T/b.out"
check "flood: the relay pushed more than was shown" test "$(grep -c '^ack 8' "$T/evil.log")" -gt 4

# (c) A trickle: one byte every 100 ms of a frame that never ends.
echo trickle >"$T/mode"
"$EVIL" measure 60 "$SOTTO" --home "$T/bob" receive --timeout 3 >"$T/c.out" 2>"$T/c.err"
m=$(grep '^exit=' "$T/c.out")
echo "     trickle: $m"
rc=$(echo "$m" | sed -n 's/^exit=\([0-9]*\).*/\1/p')
check "trickle: receive ends by itself, with an error" test -n "$rc" -a "${rc:-0}" -ne 0 -a -n "$(echo "$m" | grep killed=0)"
# The stall hits whatever the client is waiting for: a request made at login
# ("did not answer in time") or the queue ("within the timeout").
check "trickle: the error says the timeout ended it" grep -qE "within the timeout|did not answer in time" "$T/c.err"

# (d) A burst of 1,300 malformed envelopes and DRAINED, then silence: more
# than the client's event queue holds, so the end waits in its read buffer.
echo burst >"$T/mode"
s bob receive --timeout 30 >"$T/e.out" 2>"$T/e.err"; rc=$?
check "burst: receive succeeds (exit 0)" test $rc -eq 0
check "burst: the rest are summed up" contains "$T/e.err" "1297 more malformed frames from the server were skipped"
check "burst: all 1300 acked" test "$(grep '^ack 70000' "$T/evil.log" | sort -u | wc -l)" -eq 1300
echo pass >"$T/mode"

# Finding 5 with the real server: 150 envelopes of 60,000 bytes from alice
# that nobody can decrypt (9 MB, more than the client's event queue holds at
# once: the end of the queue, DRAINED included, waits in its read buffer
# meanwhile).
stop_server
bob_dk=$(sql "SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = 'bob';")
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)
     INSERT INTO messages(devkey, sender, sender_device, device_id, type, ts, body)
     SELECT $bob_dk, 'alice', 1, 1, 2, CAST(strftime('%s', 'now') AS INTEGER) * 1000 + i, randomblob(60000) FROM n;
     UPDATE devices SET queue_count = queue_count + 150, queue_bytes = queue_bytes + 150 * 60000 WHERE devkey = $bob_dk;"
start_server
s bob receive --timeout 50 >"$T/d.out" 2>&1; rc=$?
check "150 unreadable: receive succeeds" test $rc -eq 0
# The first asks alice to resend (one line), the next 16 are covered by that
# request, then 3 lines and one summary of the other 130.
check "150 unreadable: one retry request" test "$(grep -c 'from alice could not be decrypted; a fresh session was started' "$T/d.out")" -eq 1
check "150 unreadable: 3 lines and one summary" test "$(grep -c 'from alice could not be decrypted' "$T/d.out")" -eq 5
check "150 unreadable: the summary says 130 more, 133 dropped in all" contains "$T/d.out" \
  "130 more messages from alice could not be decrypted and were dropped (133 in all)"
s bob receive --timeout 20 >"$T/d2.out" 2>&1
check "150 unreadable: nothing left" contains "$T/d2.out" "No new messages."

# (e) A server from before BLOB_FETCHES. bob links a laptop (through the
# relay); alice's records still say one device of bob, so her file's blob is
# created for one fetch and the fan-out finds two: her BLOB_FETCHES gets
# CLOSE(malformed), she reconnects and sends the file all the same.
PORT=$EPORT
check "old server: bob links a laptop" link_device bob-laptop bob laptop
PORT=$REAL_PORT
head -c 100000 /dev/urandom >"$T/old.bin"
echo old >"$T/mode"
s alice send bob --file "$T/old.bin" >"$T/f.out" 2>&1; rc=$?
check "old server: the file is sent (exit $rc)" test $rc -eq 0
check "old server: the relay closed on BLOB_FETCHES" grep -qx "old: blob_fetches" "$T/evil.log"
s bob receive --timeout 20 >"$T/f2.out" 2>&1
check "old server: bob's primary saves the file" cmp -s "$T/bob/downloads/old.bin" "$T/old.bin"
echo pass >"$T/mode"

finish
