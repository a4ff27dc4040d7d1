# SPDX-License-Identifier: Apache-2.0
# test_multidevice.sh: fan-out with the real server and CLI
# (docs/multi-device.md, "Per-device sessions and fan-out"): alice on two
# devices, bob on three, all linked with 'sotto link' / 'sotto devices add':
#  - a 1:1 text from alice reaches every device of bob, and alice's laptop
#    shows it as sent by her (a sent transcript);
#  - the laptop's text reaches bob's devices and shows on alice's primary as
#    sent by her;
#  - an offline device catches up when it connects;
#  - bob removes a device: alice is shown the change, her next texts reach
#    only the remaining devices, the removed one cannot log in;
#  - a group text reaches every device of bob.
# The stale-list case (ERR(30) met and retried within one connection), a
# ghost device row, a device key the bundle does not carry and a hidden
# device are in tests/client/multidevice_test.c (ctest
# client_multidevice_core): each CLI command is a new connection that
# fetches the list afresh.
source "$(dirname "$0")/lib.sh" "$@"

start_server --device-change-burst 100
new_user alice
new_user bob

# contacts first (a linked device gets the contacts with the provisioning)
s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1

check "alice links her laptop" link_device alice-laptop alice laptop
check "bob links his laptop" link_device bob-laptop bob laptop
check "bob links his phone" link_device bob-phone bob phone

# 1. one text, every device of bob
s alice send bob "hello all devices" >"$T/s1" 2>&1
check "alice sends to bob" contains "$T/s1" "Sent to bob."
check "... and is shown bob's devices" grep -q "bob's devices changed.*added device 2 'laptop'.*added device 3 'phone'" "$T/s1"
s bob receive >"$T/b1" 2>&1
s bob-laptop receive >"$T/bl1" 2>&1
check "bob's primary gets it" contains "$T/b1" "alice: hello all devices"
check "bob's laptop gets it" contains "$T/bl1" "alice: hello all devices"
s alice-laptop receive >"$T/al1" 2>&1
check "alice's laptop shows it as sent by her" grep -qE "to bob( \([a-z]+\))?: hello all devices" "$T/al1"
check "... not as a message from bob" lacks "$T/al1" "bob: hello all devices"

# 2. the laptop writes
s alice-laptop send bob "from the laptop" >"$T/s2" 2>&1
check "alice's laptop sends to bob" contains "$T/s2" "Sent to bob."
s bob receive >"$T/b2" 2>&1
s bob-laptop receive >"$T/bl2" 2>&1
check "bob's primary gets the laptop's text from alice" contains "$T/b2" "alice: from the laptop"
check "bob's laptop too" contains "$T/bl2" "alice: from the laptop"
s alice receive >"$T/a2" 2>&1
check "alice's primary shows the laptop's text as sent by her" grep -qE "to bob( \([a-z]+\))?: from the laptop" "$T/a2"
s alice history bob >"$T/h2" 2>&1
check "... and keeps it in her history with bob" contains "$T/h2" "from the laptop"

# 3. a group text
s alice group create team bob >"$T/g0" 2>&1
s alice group send team "to the team" >"$T/g1" 2>&1
check "alice writes to a group with bob" test $? -eq 0
s bob receive >"$T/b3" 2>&1
s bob-laptop receive >"$T/bl3" 2>&1
check "bob's primary reads the group text" contains "$T/b3" "to the team"
check "bob's laptop reads it too" contains "$T/bl3" "to the team"

# 4. the offline phone catches up
s bob-phone receive >"$T/bp1" 2>&1
check "bob's phone, offline until now, gets alice's first text" contains "$T/bp1" "alice: hello all devices"
check "... the laptop's" contains "$T/bp1" "alice: from the laptop"
check "... and the group text" contains "$T/bp1" "to the team"

# 5. bob removes his phone
s bob devices remove 3 >"$T/r1" 2>&1
check "bob removes his phone" test $? -eq 0
s alice send bob "after the removal" >"$T/s5" 2>&1
check "alice's next text goes out" contains "$T/s5" "Sent to bob."
check "... and she is shown the removal" grep -q "removed device 3 'phone'" "$T/s5"
s bob receive >"$T/b5" 2>&1
s bob-laptop receive >"$T/bl5" 2>&1
check "bob's primary gets it" contains "$T/b5" "alice: after the removal"
check "bob's laptop gets it" contains "$T/bl5" "alice: after the removal"
s bob-phone receive >"$T/bp5" 2>&1; rc=$?
check "the removed phone cannot log in" test $rc -ne 0
check "... and got nothing" lacks "$T/bp5" "after the removal"
bob_id=$(sql "SELECT id FROM accounts WHERE username = 'bob';")
check "bob's current list on the server names devices 1 and 2 only" \
  test "$(sql "SELECT hex(ids) FROM devlists WHERE account_id = $bob_id ORDER BY version DESC LIMIT 1;")" = 0000000100000002

# 6. a file to bob's two devices: the blob counts one fetch per device that
#    gets its pointer (bob's two, and alice's laptop through the transcript)
head -c 300000 /dev/urandom >"$T/two.bin"
ls "$T/srv/blobs" >"$T/blobs.before" 2>/dev/null
s alice send bob --file "$T/two.bin" "for both" >"$T/s6" 2>&1
check "alice sends bob a file (exit $?)" test -n "$(ls "$T/srv/blobs" | grep -vxFf "$T/blobs.before")"
BLOB=$(ls "$T/srv/blobs" | grep -vxFf "$T/blobs.before" | head -1)
check "... created for three fetches (bob's two devices, alice's laptop)" \
  test "$(sql "SELECT fetches FROM blobs WHERE hex(id) = upper('$BLOB');")" = 3
s bob receive >"$T/b6" 2>&1
check "bob's primary saves it" cmp -s "$T/bob/downloads/two.bin" "$T/two.bin"
check "... and the blob stays for his laptop" test -e "$T/srv/blobs/$BLOB"
s bob-laptop receive >"$T/bl6" 2>&1
check "bob's laptop saves it too (same bytes)" cmp -s "$T/bob-laptop/downloads/two.bin" "$T/two.bin"
check "... and the blob stays for alice's laptop" test -e "$T/srv/blobs/$BLOB"
s alice-laptop receive >"$T/al6" 2>&1
check "alice's laptop saves the file she sent from her primary (same bytes)" \
  cmp -s "$T/alice-laptop/downloads/two.bin" "$T/two.bin"
check "... and then the blob is gone" gone_soon "$T/srv/blobs/$BLOB"

# 7. a device linked after the upload and before the send: the blob is
#    created for three fetches (bob's two devices, alice's laptop, as her
#    records say); the send finds bob's new tablet in his signed list and
#    sets the fetches to four (BLOB_FETCHES) before the pointer leaves, so
#    the tablet, fetching last, still gets the file. (Before, the third
#    fetch deleted the blob and the tablet found it gone.)
head -c 200000 /dev/urandom >"$T/late.bin"
ls "$T/srv/blobs" >"$T/blobs.before" 2>/dev/null
rm -f "$T/hold" "$T/hold.uploaded"
( SOTTO_TEST_ATTACH_HOLD="$T/hold" s alice send bob --file "$T/late.bin" "late device" >"$T/s7" 2>&1
  echo "exit=$?" >>"$T/s7" ) &
spid=$!
for i in $(seq 1 300); do [ -e "$T/hold.uploaded" ] && break; sleep 0.1; done
check "alice's file is uploaded (her send waits)" test -e "$T/hold.uploaded"
BLOB=$(ls "$T/srv/blobs" | grep -vxFf "$T/blobs.before" | head -1)
check "... its blob created for three fetches" \
  test "$(sql "SELECT fetches FROM blobs WHERE hex(id) = upper('$BLOB');")" = 3
check "bob links his tablet meanwhile" link_device bob-tablet bob tablet
touch "$T/hold"
wait "$spid"
check "alice's send goes out" contains "$T/s7" "exit=0"
check "... and the blob now waits for four fetches" \
  test "$(sql "SELECT fetches FROM blobs WHERE hex(id) = upper('$BLOB');")" = 4
s bob receive >"$T/b7" 2>&1
s bob-laptop receive >"$T/bl7" 2>&1
s alice-laptop receive >"$T/al7" 2>&1
check "bob's primary saves it" cmp -s "$T/bob/downloads/late.bin" "$T/late.bin"
check "bob's laptop saves it" cmp -s "$T/bob-laptop/downloads/late.bin" "$T/late.bin"
check "alice's laptop saves it" cmp -s "$T/alice-laptop/downloads/late.bin" "$T/late.bin"
check "... and the blob stays for the tablet" test -e "$T/srv/blobs/$BLOB"
s bob-tablet receive >"$T/bt7" 2>&1
check "bob's tablet, linked after the upload, saves it too (same bytes)" \
  cmp -s "$T/bob-tablet/downloads/late.bin" "$T/late.bin"
check "... and then the blob is gone" gone_soon "$T/srv/blobs/$BLOB"

finish
