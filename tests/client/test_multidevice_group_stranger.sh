# SPDX-License-Identifier: Apache-2.0
# test_multidevice_group_stranger.sh: a group message from a linked device of
# an account the receiver never talked to (docs/multi-device.md, "A first
# message from a linked device"), with the real server and CLI:
#  - carol makes a group with bob, dave and erin; dave and erin never talked
#    to bob; bob writes to the group from his laptop (device 2): dave reads
#    it, after the same checks as a first pairwise message from that device
#    (bob's signed list fetched, his device 1's key checked, the laptop
#    listed under the key it used);
#  - bob's third device ("ghost") writes to the group; before erin receives,
#    the operator deletes the list that names it (the server keeps the device
#    row: a device the account's signed list does not name): erin refuses
#    the ghost's sender key and its group message, and still reads the
#    laptop's message.
source "$(dirname "$0")/lib.sh" "$@"
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 missing"; exit 1; }
SRVARGS=(--device-change-burst 100)

start_server "${SRVARGS[@]}"
new_user bob
new_user carol
new_user dave
new_user erin
bob_id() { sql "SELECT id FROM accounts WHERE username = 'bob';"; }

# carol knows bob, dave and erin; dave and erin know carol, not bob
for u in bob dave erin; do
  s $u send carol "hi carol from $u" >/dev/null 2>&1
done
s carol receive >/dev/null 2>&1
for u in bob dave erin; do s carol requests accept $u >/dev/null 2>&1; s carol send $u "hi $u" >/dev/null 2>&1; done
for u in bob dave erin; do s $u receive >/dev/null 2>&1; done

check "bob links his laptop" link_device bob-laptop bob laptop
s bob receive >/dev/null 2>&1
s bob-laptop receive >/dev/null 2>&1

s carol group create club bob dave erin >"$T/g0" 2>&1
check "carol makes the group club with bob, dave and erin" test $? -eq 0
for h in bob bob-laptop dave erin; do s $h receive >"$T/$h.join" 2>&1; done
check "bob's laptop joined club" contains "$T/bob-laptop.join" "added you to the group club"
check "dave joined club" contains "$T/dave.join" "added you to the group club"

# bob's third device, linked now; it writes to the group at once
check "bob links a third device" link_device bob-ghost bob ghost
s bob receive >/dev/null 2>&1
s bob-laptop receive >/dev/null 2>&1
s bob-ghost receive >/dev/null 2>&1

s bob-laptop group send club "hello club, from bob's laptop" >"$T/s1" 2>&1
check "bob's laptop writes to club" test $? -eq 0
s dave receive >"$T/d1" 2>&1
check "dave (never talked to bob) reads bob's laptop in club" \
  contains "$T/d1" "[club] bob: hello club, from bob's laptop"
check "... nothing refused" lacks "$T/d1" "refused"
s dave --json safety-number bob >"$T/d2" 2>&1
s bob-laptop --json safety-number dave >"$T/d3" 2>&1
nd=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/d2")
nb=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/d3")
check "dave's safety number for bob equals the one bob's laptop computes (his account key)" test -n "$nd" -a "$nd" = "$nb"

s bob-ghost group send club "ghost in club" >"$T/s2" 2>&1
check "bob's third device writes to club" test $? -eq 0
stop_server
sql "DELETE FROM devlists WHERE account_id = $(bob_id) AND version = 3;"
check "the server still has the third device's row" \
  test "$(sql "SELECT count(*) FROM devices WHERE account_id = $(bob_id) AND device_id = 3;")" = 1
start_server "${SRVARGS[@]}"
s erin receive >"$T/e1" 2>&1
check "erin reads bob's laptop in club" contains "$T/e1" "[club] bob: hello club, from bob's laptop"
check "erin refuses the device the served list does not name" contains "$T/e1" "a message from bob's device 3 was refused"
check "... its group text is not shown" lacks "$T/e1" "ghost in club"
s erin history club >"$T/e2" 2>&1
check "... nor kept in club's history" lacks "$T/e2" "ghost in club"
finish
