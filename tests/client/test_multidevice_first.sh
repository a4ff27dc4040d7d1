# SPDX-License-Identifier: Apache-2.0
# test_multidevice_first.sh: a first message from a contact's linked device
# (docs/multi-device.md, "A first message from a linked device"), with the
# real server and CLI. bob links his laptop and writes from it to people who
# never talked to him:
#  - carol gets it as a message request from bob; her safety number for bob
#    is the one bob's device 1 (and his laptop) computes: his account key;
#  - the operator, with the server stopped, breaks the signature of bob's
#    stored list before dave receives: refused with a plain sentence, bob is
#    not trusted, no request;
#  - the operator serves bob's older list (without the laptop) before erin
#    receives: refused ("not in their signed device list"), nothing trusted;
#    with key transparency on (FIRST_KT=1, test_multidevice_first_kt.sh) the
#    log's newer list is what refuses it.
source "$(dirname "$0")/lib.sh" "$@"
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 missing"; exit 1; }
KT=${FIRST_KT:-0}
SRVARGS=(--device-change-burst 100)
[ "$KT" = 1 ] && SRVARGS+=(--kt 1)

start_server "${SRVARGS[@]}"
new_user bob
new_user carol
new_user dave
new_user erin
bob_id() { sql "SELECT id FROM accounts WHERE username = 'bob';"; }

check "bob links his laptop" link_device bob-laptop bob laptop
s bob receive >/dev/null 2>&1
s bob-laptop receive >/dev/null 2>&1

# ---- the operator breaks the signature of bob's list --------------------------
s bob-laptop send dave "dave, it is bob" >"$T/d0" 2>&1
check "bob's laptop writes to dave, a stranger" contains "$T/d0" "Sent to dave."
stop_server
v2=$(sql "SELECT hex(list) FROM devlists WHERE account_id = $(bob_id) AND version = 2;")
check "the server holds bob's list version 2" test -n "$v2"
last=${v2: -2}
flip=$(printf '%02X' $(( 0x$last ^ 1 )))
sql "UPDATE devlists SET list = X'${v2:0:${#v2}-2}$flip' WHERE account_id = $(bob_id) AND version = 2;"
start_server "${SRVARGS[@]}"
s dave receive >"$T/d1" 2>&1
check "dave refuses it: the list does not verify" \
  contains "$T/d1" "a message from bob's device 2 was refused: their device list on the server does not verify"
check "... the text is not shown" lacks "$T/d1" "dave, it is bob"
s dave requests >"$T/d2" 2>&1
check "... no request from bob" lacks "$T/d2" "bob"
s dave --json safety-number bob >"$T/d3" 2>&1
check "... bob's key is not trusted (no safety number)" lacks "$T/d3" '"number"'
stop_server
sql "UPDATE devlists SET list = X'$v2' WHERE account_id = $(bob_id) AND version = 2;"
start_server "${SRVARGS[@]}"

# ---- the operator serves bob's older list (without the laptop) ----------------
s bob-laptop send erin "erin, it is bob" >"$T/e0" 2>&1
check "bob's laptop writes to erin, a stranger" contains "$T/e0" "Sent to erin."
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id) AND version = 2;"
start_server "${SRVARGS[@]}"
s erin receive >"$T/e1" 2>&1
if [ "$KT" = 1 ]; then
  check "erin refuses it: the log holds a newer list (key transparency)" \
    contains "$T/e1" "a message from bob's device 2 was refused: the server's public log holds a newer device list of theirs"
else
  check "erin refuses it: the laptop is not in the list served" \
    contains "$T/e1" "a message from bob's device 2 was refused: that device is not in their signed device list"
fi
check "... the text is not shown" lacks "$T/e1" "erin, it is bob"
s erin requests >"$T/e2" 2>&1
check "... no request from bob" lacks "$T/e2" "bob"
s erin --json safety-number bob >"$T/e3" 2>&1
check "... bob's key is not trusted (no safety number)" lacks "$T/e3" '"number"'
stop_server
sql "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES($(bob_id), 2, 0, X'0000000100000002', X'$v2');"
start_server "${SRVARGS[@]}"

# ---- the real thing: carol gets bob's first message from his laptop ----------
s bob-laptop send carol "hello carol, from my laptop" >"$T/c0" 2>&1
check "bob's laptop writes to carol, a stranger" contains "$T/c0" "Sent to carol."
s carol receive >"$T/c1" 2>&1
check "carol gets it as a message request from bob" contains "$T/c1" "(request) bob: hello carol, from my laptop"
check "... nothing refused" lacks "$T/c1" "refused"
s carol requests >"$T/c2" 2>&1
check "carol's requests list bob" contains "$T/c2" "bob (1 message)"
s carol requests accept bob >/dev/null 2>&1
s carol send bob "hi bob" >"$T/c3" 2>&1
check "carol answers bob (both his devices)" contains "$T/c3" "Sent to bob."
s bob receive >"$T/b1" 2>&1
check "bob's device 1 gets carol's answer" contains "$T/b1" "carol: hi bob"
s bob-laptop receive >"$T/l1" 2>&1
check "bob's laptop gets it too" contains "$T/l1" "carol: hi bob"
s carol --json safety-number bob >"$T/sn_c" 2>&1
s bob --json safety-number carol >"$T/sn_b" 2>&1
s bob-laptop --json safety-number carol >"$T/sn_l" 2>&1
nc=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_c")
nb=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_b")
nl=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_l")
check "carol has a safety number for bob" test "${#nc}" -eq 60
check "... equal to the one bob's device 1 computes" test "$nc" = "$nb"
check "... and to his laptop's" test "$nc" = "$nl"
finish
