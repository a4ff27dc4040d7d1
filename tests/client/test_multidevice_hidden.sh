# SPDX-License-Identifier: Apache-2.0
# test_multidevice_hidden.sh: a server that hides a linked device from
# senders, with the real server and CLI (docs/multi-device.md, "What a
# client checks"; issue 11, "a server that hides a device from senders (the
# device notices: it stops receiving and says so)").
#
# alice links her laptop (list version 2: devices 1 and 2); bob and the
# laptop exchange texts. Then the operator, with the server stopped, deletes
# list version 2 from the database (the server cannot sign a list without
# the laptop, so serving the older list, version 1, is the only way it has to
# hide the laptop from senders that did not see version 2). Checked:
#  - the laptop notices at its next connect and says so plainly (device list
#    event, error device_hidden in --json, or the rollback it sees), and
#    what it had received stays in its history;
#  - bob, who saw version 2, refuses the older list with a clear error and
#    sends nothing (nothing lost: nothing was taken as sent);
#  - carol, new, who never saw a list of alice, reaches device 1 only: the
#    hidden device is what the server achieved, and the laptop was told;
#  - the operator puts the row back: everything flows again, bob's text
#    reaches both of alice's devices.
source "$(dirname "$0")/lib.sh" "$@"

start_server --device-change-burst 100
new_user alice
new_user bob
new_user carol
alice_id() { sql "SELECT id FROM accounts WHERE username = 'alice';"; }

s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1

rm -f "$T/laptop.link"
( timeout 120 "$SOTTO" --home "$T/laptop" link --server "127.0.0.1:$PORT" --name laptop >"$T/laptop.link" 2>&1
  echo "exit=$?" >>"$T/laptop.link" ) &
lpid=$!
for i in $(seq 1 200); do
  grep -q '^code: \|^exit=' "$T/laptop.link" 2>/dev/null && break
  sleep 0.1
done
code=$(sed -n 's/^code: //p' "$T/laptop.link")
s alice devices add --yes "$code" >"$T/add" 2>&1
wait "$lpid"
check "alice links her laptop" contains "$T/laptop.link" "exit=0"

s bob send alice "before hiding" >"$T/b1" 2>&1
check "bob sends to alice's two devices" contains "$T/b1" "Sent to alice."
s laptop receive >"$T/l1" 2>&1
check "the laptop gets it" contains "$T/l1" "bob: before hiding"
s laptop receive >"$T/l1b" 2>&1
check "the laptop's connection is quiet (no complaint yet)" lacks "$T/l1b" "device list"

# ---- the operator hides the laptop ----
stop_server
cp "$T/srv/sotto.db" "$T/sotto.db.before"
check "the server holds list version 2" test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(alice_id);")" = 2
sql "CREATE TABLE hidden AS SELECT * FROM devlists WHERE account_id = $(alice_id) AND version = 2;
     DELETE FROM devlists WHERE account_id = $(alice_id) AND version = 2;"
check "the operator dropped version 2 (the server now serves version 1: device 1 only)" \
  test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(alice_id);")" = 1
start_server --device-change-burst 100

s laptop receive >"$T/l2" 2>&1; rc=$?
check "the laptop still connects and reads" test $rc -eq 0
check "the laptop notices at its next connect and says the server serves an older list" \
  contains "$T/l2" "the server serves an older device list of yours (version 1; you made 2)"
check "... that contacts may not send to it, plainly" contains "$T/l2" "contacts going by it may not send to this device (2)"
check "... and that only device 1 can publish the list again" contains "$T/l2" "only device 1 can publish your list again"
check "... without claiming it published the list itself" lacks "$T/l2" "published again"
s laptop --json receive >"$T/l2j" 2>&1
check "--json: error device_hidden" contains "$T/l2j" '"code":"device_hidden"'
s laptop history bob >"$T/lh" 2>&1
check "the laptop keeps what it received before" contains "$T/lh" "before hiding"

# bob saw version 2: he refuses the older list, and nothing is taken as sent
s bob send alice "while hidden" >"$T/b2" 2>&1; rc=$?
check "bob refuses alice's older list" test $rc -eq 1
check "... saying so" contains "$T/b2" "the server serves an older device list of alice (version 1, you saw 2)"
check "... and that nothing was sent" contains "$T/b2" "nothing was sent"
# carol never saw a list of alice: the server's version 1 hides the laptop
s carol send alice "carol here" >"$T/c1" 2>&1
check "carol, new, sends by the served list (device 1 only)" contains "$T/c1" "Sent to alice."
s laptop receive >"$T/l3" 2>&1
check "the hidden laptop does not get it (what hiding does) ..." lacks "$T/l3" "carol here"
check "... and says again that it is left out" contains "$T/l3" "contacts going by it may not send to this device (2)"

# ---- device 1 publishes again; the operator's edit is undone ----
s alice receive >"$T/a2" 2>&1
check "alice's device 1 gets carol's text (nothing lost)" contains "$T/a2" "carol: carol here"
check "device 1 notices the rollback and publishes a newer list" \
  contains "$T/a2" "the server serves an older device list of yours (version 1; you made 2); your signed device list was published again"
check "the server holds version 3 (devices 1 and 2)" \
  test "$(sql "SELECT max(version) || ':' || (SELECT hex(ids) FROM devlists WHERE account_id = $(alice_id) ORDER BY version DESC LIMIT 1) FROM devlists WHERE account_id = $(alice_id);")" = "3:0000000100000002"
s laptop receive >"$T/l4" 2>&1
check "the laptop is quiet again" lacks "$T/l4" "may not send to this device"
s bob send alice "after the repair" >"$T/b3" 2>&1
check "bob takes version 3 and sends" contains "$T/b3" "Sent to alice."
s carol send alice "carol again" >"$T/c2" 2>&1
check "carol sends too" contains "$T/c2" "Sent to alice."
s laptop receive >"$T/l5" 2>&1
check "the laptop gets bob's text" contains "$T/l5" "bob: after the repair"
check "... and carol's" contains "$T/l5" "carol: carol again"
s alice receive >"$T/a4" 2>&1
check "device 1 gets both" grep -q "after the repair" "$T/a4"
check "... carol's too" contains "$T/a4" "carol: carol again"
s bob send alice "while hidden" >"$T/b4" 2>&1
check "bob sends the refused text again" contains "$T/b4" "Sent to alice."
s laptop receive >/dev/null 2>&1
s laptop history bob >"$T/lh2" 2>&1
check "nothing lost: the laptop's history with bob has every text" \
  grep -q "before hiding" "$T/lh2"
check "... including the one resent after the repair" contains "$T/lh2" "while hidden"
finish
