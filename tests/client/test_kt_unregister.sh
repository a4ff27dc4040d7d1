# SPDX-License-Identifier: Apache-2.0
# test_kt_unregister.sh: key transparency meets UNREGISTER (issue 12). The
# real sotto-server (--kt 1), the real CLI:
#   - alice unregisters: the log gets the deletion markers (version 1, an
#     empty value) of her name and of her device list; bob, who knew her, is
#     told there is no such user, nothing is queued, and no key-transparency
#     failure or alert is shown;
#   - after the quarantine dave registers the name 'alice': the log holds his
#     key and his device list as version 2 of the same labels (after the
#     markers; the server's version-0 VRF made ahead of the batch is not the
#     one logged); bob's client checks them against the log like any key and
#     sees a changed key (held), not a log failure, and once he verified it
#     writes to the new alice, who reads it.
source "$(dirname "$0")/lib.sh" "$@"
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 missing"; exit 1; }

logged() { sql "SELECT version || ':' || length(value) FROM kt_values WHERE label = '$1';"; }
no_kt_failure() { ! grep -Eq "public log|KEY TRANSPARENCY|key transparency" "$1"; }

start_server --kt 1
new_user alice
new_user bob
s alice send bob "hello bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "hello alice" >"$T/b0" 2>&1
check "bob's first message to alice goes out (checked against the log)" contains "$T/b0" "Sent to alice."
s alice receive >/dev/null 2>&1
check "alice's key and device list are logged as version 0" \
  test "$(logged alice) $(logged devices:alice)" = "0:37 0:36"

s alice unregister --yes >"$T/u1" 2>&1
check "alice unregisters" contains "$T/u1" "Deleted the account 'alice'"
check "... the log holds the deletion markers of her name and list (version 1, empty)" \
  test "$(logged alice) $(logged devices:alice)" = "1:0 1:0"
queued=$(sql "SELECT count(*) FROM messages;")
s bob send alice "are you gone?" >"$T/u2" 2>&1; rc=$?
check "bob is told alice is gone" test $rc -eq 1
check "... clearly" contains "$T/u2" "there is no user 'alice'"
check "... without a key-transparency failure or alert" no_kt_failure "$T/u2"
check "... and nothing is queued" test "$(sql "SELECT count(*) FROM messages;")" = "$queued"

stop_server
sql "UPDATE held_names SET until_ms = 0 WHERE canon = 'alice';"
start_server --kt 1
s dave init >/dev/null 2>&1
s dave register --server "127.0.0.1:$PORT" alice >"$T/d0" 2>&1
check "after the quarantine dave registers the name alice" contains "$T/d0" "Registered 'alice'"
check "... the log holds his key and list as version 2 (after the markers)" \
  test "$(logged alice) $(logged devices:alice)" = "2:37 2:36"
s dave send bob "I am the new alice" >"$T/d1" 2>&1
check "dave writes to bob as alice" contains "$T/d1" "Sent to bob."
s bob receive >"$T/b1" 2>&1
check "bob sees the new alice as a changed key, held" \
  contains "$T/b1" "from a new, unverified key claiming to be alice (held"
check "... not as a key-transparency failure" no_kt_failure "$T/b1"
number() { s "$1" --json safety-number "$2" 2>/dev/null | sed -n 's/.*"number":"\([0-9]*\)".*/\1/p'; }
n_new=$(number bob alice)
check "bob verifies the new alice's key" s bob verify alice "$n_new"
s bob send alice "who are you?" >"$T/b2" 2>&1
check "bob can write to the new alice (her key and list proved by the log)" contains "$T/b2" "Sent to alice."
check "... without a key-transparency failure" no_kt_failure "$T/b2"
s dave receive >"$T/d2" 2>&1
check "... and dave reads it" contains "$T/d2" "bob: who are you?"
finish
