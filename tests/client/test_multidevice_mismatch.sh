# SPDX-License-Identifier: Apache-2.0
# test_multidevice_mismatch.sh: the list an ERR(30) carries is checked like
# any other (docs/multi-device.md, "Mismatched devices"). A relay in front of
# the real server (evil_server.c, mode "mismatch") answers alice's SEND_MULTI
# to bob with ERR(30) and a list of its choosing:
#  - a forged list (bob's current one with its signature broken): refused
#    with the plain sentence, nothing sent (no second SEND_MULTI), nothing
#    recorded (her next send through an honest server just works);
#  - bob's older list (version 1 after she saw version 2): refused as a
#    rollback, nothing sent;
#  - a list of another account (carol's): refused, nothing sent.
source "$(dirname "$0")/lib.sh" "$@"

EVIL=${4:-}
[ -x "$EVIL" ] || { echo "FAIL: the malicious server (client_evil_server) is not built"; exit 1; }

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

# Everyone goes through the relay (they pin its certificate: the server's).
PORT=$EPORT
new_user alice
new_user bob
new_user carol
check "bob links his laptop (his list is now version 2)" link_device bob-laptop bob laptop
bob_id() { sql "SELECT id FROM accounts WHERE username = '$1';"; }
list_hex() { sql "SELECT hex(list) FROM devlists WHERE account_id = $(bob_id "$1") AND version = $2;"; }
bob_queue() { sql "SELECT count(*) FROM messages m JOIN devices d ON d.devkey = m.devkey WHERE d.account_id = $(bob_id bob);"; }
mismatches() { grep -c '^mismatch ' "$T/evil.log" 2>/dev/null || true; }

s alice send bob "first" >"$T/a1" 2>&1
check "alice sends to bob's two devices (she records his version 2)" contains "$T/a1" "Sent to bob."

v1=$(list_hex bob 1)
v2=$(list_hex bob 2)
c1=$(list_hex carol 1)
check "the database holds bob's versions 1 and 2 and carol's version 1" test -n "$v1" -a -n "$v2" -a -n "$c1"
# forged: version 2 with the last byte of the account signature flipped
last=${v2: -2}
flip=$(printf '%02X' $((0x$last ^ 0x01)))
echo "${v2:0:${#v2}-2}$flip" | xxd -r -p >"$T/forged.bin"
echo "$v1" | xxd -r -p >"$T/older.bin"
echo "$c1" | xxd -r -p >"$T/carol.bin"

# ---- a forged list in the ERR(30) ----
echo "mismatch $T/forged.bin" >"$T/mode"
before=$(bob_queue)
m0=$(mismatches)
s alice send bob "second" >"$T/f1" 2>&1; rc=$?
check "forged list: the send fails (exit 1)" test "$rc" -eq 1
check "... with the plain sentence" contains "$T/f1" "bob's device list on the server does not verify"
check "... which says nothing was sent" contains "$T/f1" "nothing was sent"
check "... after exactly one SEND_MULTI (no resend to the forged list's devices)" test "$(mismatches)" -eq $((m0 + 1))
check "... and nothing reached bob's queue" test "$(bob_queue)" = "$before"

# ---- an older list in the ERR(30) ----
echo "mismatch $T/older.bin" >"$T/mode"
m0=$(mismatches)
s alice send bob "third" >"$T/o1" 2>&1; rc=$?
check "older list: the send fails (exit 1)" test "$rc" -eq 1
check "... as a rollback, plainly" contains "$T/o1" "the server serves an older device list of bob (version 1, you saw 2)"
check "... after exactly one SEND_MULTI" test "$(mismatches)" -eq $((m0 + 1))
check "... nothing reached bob's queue" test "$(bob_queue)" = "$before"

# ---- another account's list in the ERR(30) ----
echo "mismatch $T/carol.bin" >"$T/mode"
m0=$(mismatches)
s alice send bob "fourth" >"$T/c1" 2>&1; rc=$?
check "carol's list for bob: the send fails (exit 1)" test "$rc" -eq 1
check "... refused as a list that does not verify for bob" contains "$T/c1" "bob's device list on the server does not verify (it names another account)"
check "... after exactly one SEND_MULTI" test "$(mismatches)" -eq $((m0 + 1))

# ---- nothing was recorded: through an honest server the next send just works ----
echo pass >"$T/mode"
s alice send bob "fifth" >"$T/p1" 2>&1; rc=$?
check "honest again: alice's next text goes out" test "$rc" -eq 0
check "... with no rollback or list-change complaint (her record is still version 2)" \
  lacks "$T/p1" "older device list"
s bob receive >"$T/b1" 2>&1
s bob-laptop receive >"$T/b2" 2>&1
check "bob's device 1 reads 'first' and 'fifth'" contains "$T/b1" "alice: fifth"
check "bob's laptop reads 'fifth'" contains "$T/b2" "alice: fifth"
for w in second third fourth; do
  check "... '$w' reached neither of bob's devices" lacks "$T/b1" "alice: $w"
  check "... nor the laptop ('$w')" lacks "$T/b2" "alice: $w"
done

finish
