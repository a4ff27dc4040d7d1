# SPDX-License-Identifier: Apache-2.0
# test_multidevice_ghost.sh: signed device lists against a server that lies
# (docs/multi-device.md). Every account's device 1 publishes its signed list
# when it connects; a sender checks the recipient's list before each message.
#  - the ghost: the operator adds a device row for bob and edits the stored
#    list in the database: alice's client refuses to send and says so, and
#    nothing reaches bob's queue;
#  - a rollback: the server serves an older list of bob than alice saw, or
#    none at all: refused;
#  - bob notices when the server's copy of his own list is missing or older
#    than the one he signed, and publishes a newer one;
#  - the requisition report lists the versions.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
bob_id() { sql "SELECT id FROM accounts WHERE username = 'bob';"; }
bob_queue() { sql "SELECT count(*) FROM messages m JOIN devices d ON d.devkey = m.devkey WHERE d.account_id = $(bob_id);"; }

check "registering published bob's signed list (version 1, device 1)" \
  test "$(sql "SELECT version || ':' || hex(ids) FROM devlists WHERE account_id = $(bob_id);")" = "1:00000001"
s alice send bob "hello" >"$T/a1" 2>&1
check "alice sends to bob (his list verifies)" contains "$T/a1" "Sent to bob."
s bob receive >"$T/b1" 2>&1
check "bob reads it" contains "$T/b1" "alice: hello"

# ---- the ghost: a device row and a list the account's devices never signed ----
stop_server
sql "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)
     VALUES($(bob_id), 2, zeroblob(32), 0, 0);"
# The operator's list: bob's version 1 bytes with version 2 and device 2 in
# the id set the server routes by (it cannot sign: the signature stays v1's).
sql "INSERT INTO devlists(account_id, version, ms, ids, list)
     SELECT account_id, 2, ms, X'0000000100000002',
            substr(list, 1, 39) || X'00000002' || substr(list, 44) FROM devlists
     WHERE account_id = $(bob_id) AND version = 1;"
start_server
before=$(bob_queue)
s alice send bob "for bob only" >"$T/g1" 2>&1; rc=$?
check "ghost: alice's send is refused" test $rc -eq 1
check "... saying the list does not verify" contains "$T/g1" "bob's device list on the server does not verify"
check "... and that nothing was sent" contains "$T/g1" "nothing was sent"
check "... nothing reached any of bob's devices" test "$(bob_queue)" = "$before"
s alice --json send bob "for bob only" >"$T/g2" 2>&1
check "--json: the refusal is devlist_invalid" contains "$T/g2" '"devlist_invalid"'
s alice history bob >"$T/g3" 2>&1
check "alice's history has no message that went out to the ghost" lacks "$T/g3" "for bob only"
# A text queued while the server was down meets the ghost when it goes out:
# it waits in the outbox (not failed, not sent).
stop_server
s alice send bob "queued during the ghost" >"$T/q1" 2>&1
check "a text written while the server is down is queued" contains "$T/q1" "Queued for bob"
start_server
s alice receive >"$T/q2" 2>&1
s alice --json history bob >"$T/q3" 2>&1
check "... it is not sent to the ghost list: still queued" grep -q '"text":"queued during the ghost".*"state":"queued"' "$T/q3"
check "... nothing reached bob's devices" test "$(bob_queue)" = "$before"
# The operator gives up: the forged version goes, bob's own is served again.
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id) AND version = 2;"
start_server
s alice send bob "after the ghost" >"$T/g4" 2>&1
check "with bob's own list back, sending works" contains "$T/g4" "Sent to bob."
s alice --json history bob >"$T/q4" 2>&1
check "... and the queued text went too" grep -q '"text":"queued during the ghost".*"state":"sent"' "$T/q4"

# ---- bob notices the server lost his list, and publishes a newer one ----
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id);"
start_server
s bob receive >"$T/h1" 2>&1
check "bob: the server no longer has his list, and he says so" contains "$T/h1" "the server no longer has your device list (you made version 1)"
check "... bob read alice's message" contains "$T/h1" "alice: after the ghost"
check "... and the one queued during the ghost" contains "$T/h1" "alice: queued during the ghost"
check "... and bob published version 2" \
  test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(bob_id);")" = 2
s alice send bob "v2" >"$T/h2" 2>&1
check "alice takes bob's version 2" contains "$T/h2" "Sent to bob."

# ---- a rollback: the server serves an older list bob really signed ----
v2=$(sql "SELECT hex(list) FROM devlists WHERE account_id = $(bob_id) AND version = 2;")
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id);"
start_server
s bob receive >/dev/null 2>&1                          # bob publishes version 3
s alice send bob "takes v3" >"$T/r1" 2>&1
check "alice takes version 3" contains "$T/r1" "Sent to bob."
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id);"
sql "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES($(bob_id), 2, 0, X'00000001', X'$v2');"
start_server
before=$(bob_queue)
s alice send bob "rolled back" >"$T/r2" 2>&1; rc=$?
check "rollback: an older (validly signed) list of bob is refused" test $rc -eq 1
check "... saying so" contains "$T/r2" "the server serves an older device list of bob (version 2, you saw 3)"
check "... and that nothing was sent" contains "$T/r2" "nothing was sent"
check "... nothing reached bob's queue" test "$(bob_queue)" = "$before"
s alice --json send bob "rolled back" >"$T/r3" 2>&1
check "--json: devlist_rollback" contains "$T/r3" '"devlist_rollback"'
s bob receive >"$T/r4" 2>&1
check "bob notices the server serves his list older than he made it" \
  contains "$T/r4" "the server serves an older device list of yours (version 2; you made 3)"
s alice send bob "after bob republished" >"$T/r5" 2>&1
check "bob's newer list (version 4) ends the rollback for alice" contains "$T/r5" "Sent to bob."
check "... version 4 is stored" test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(bob_id);")" = 4

# ---- the list gone altogether: not a pre-multi-device account to alice ----
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id);"
start_server
s alice send bob "no list" >"$T/n1" 2>&1; rc=$?
check "a list that vanished is refused as a rollback" test $rc -eq 1
check "... saying so" contains "$T/n1" "the server no longer shows bob's signed device list"

# ---- the requisition report shows the history ----
stop_server
"$SERVER" requisition --data "$T/srv" alice >"$T/q1" 2>&1
check "requisition: alice's device list history" contains "$T/q1" '"device_lists": ['
check "... version 1 with device 1" contains "$T/q1" '"version": 1, "time": "'
start_server

finish
