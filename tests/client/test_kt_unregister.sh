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
#     writes to the new alice, who reads it;
#   - the compelled operator makes the log show bob's account deleted while it
#     is not (it plants a secret for bob's device 1, unregisters the account
#     through the real server, which logs the deletion markers, and puts every
#     row back): bob's device reports at its next connect that the log shows
#     his device list as deleted.
source "$(dirname "$0")/lib.sh" "$@"
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 missing"; exit 1; }
OPERATOR=$(dirname "$SERVER")/client_kt_operator
[ -x "$OPERATOR" ] || { echo "FAIL: $OPERATOR is not built"; exit 1; }

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
# What alice sent before (her receipt of bob's message) waits for bob, and
# names its sender 'alice': bob fetches it, or the name would stay held.
s bob receive >/dev/null 2>&1

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

# ---- the operator shows bob's account deleted in the log, while it is not ------------------
s bob kt status >"$T/o0" 2>&1
check "before: bob's device-list monitoring is ok" contains "$T/o0" "monitoring of your device list: ok"
FP=$("$SERVER" fingerprint --data "$T/srv")
out=$("$OPERATOR" key "$T/op.key")
secret=$(echo "$out" | sed -n 's/^secret //p'); sh=$(echo "$out" | sed -n 's/^secret_hash //p')
stop_server
rm -f "$T/before.db"
sql "VACUUM INTO '$T/before.db';"
bob_id=$(sql "SELECT id FROM accounts WHERE username = 'bob';")
sql "UPDATE devices SET secret_hash = X'$sh' WHERE account_id = $bob_id AND device_id = 1;"
start_server --kt 1
"$OPERATOR" unregister "$PORT" "$FP" bob "$secret" >"$T/op.out" 2>&1
check "the operator deletes bob's account through the server" contains "$T/op.out" "deleted"
check "... which logs the deletion markers of bob's name and list" \
  test "$(logged bob | cut -d: -f2) $(logged devices:bob | cut -d: -f2)" = "0 0"
stop_server
# every row of bob's back (kt_* stay: the log keeps the markers)
tables=$(sql "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'kt_%'
              AND name NOT LIKE 'sqlite_%' AND name <> 'held_names';")
restore="ATTACH '$T/before.db' AS b;"
for t in $tables; do restore="$restore INSERT OR IGNORE INTO main.\"$t\" SELECT * FROM b.\"$t\";"; done
sql "$restore DELETE FROM held_names WHERE canon = 'bob';"
check "... and puts bob's rows back" test "$(sql "SELECT id FROM accounts WHERE username = 'bob';")" = "$bob_id"
start_server --kt 1
s bob receive >"$T/o1" 2>&1
echo "  bob printed: $(grep -m1 'device list as deleted' "$T/o1")"
check "bob's device still logs in and reports his device list shown deleted in the log" contains "$T/o1" \
  "KEY TRANSPARENCY ALERT: the server's public log shows your account bob's device list as deleted"
s bob kt status >"$T/o2" 2>&1
check "... kt status says so too" contains "$T/o2" "device list as deleted"
finish
