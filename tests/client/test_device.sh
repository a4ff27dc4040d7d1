# SPDX-License-Identifier: Apache-2.0
# test_device.sh: sotto device list / remove and sotto rotate-secret against
# the real server: the list marks this device, a rotated secret is saved and
# used by the next command, device 1 cannot be removed, an unknown device is
# named in the error, --help documents both commands. A device that appears
# on (or disappears from) the account between two connections, whoever added
# it, is reported at the next connection; one removed with 'device remove' is
# not.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob

s alice device list >"$T/d1" 2>&1
check "device list shows this device" contains "$T/d1" "device 1 (this device)"
s alice --json device list >"$T/d2" 2>&1
check "device list --json" contains "$T/d2" '"event":"device","device_id":1,"this_device":true'
cp -a "$T/alice" "$T/alicecopy" # a copy of the home made before the rotation
s alice rotate-secret >"$T/r1" 2>&1
check "rotate-secret saves the new secret" contains "$T/r1" "new device secret saved"
# The server keeps the old secret until the new one is used once (an answer
# lost after the commit must not lock the device out); rotate-secret uses
# it at once, so a copy holding the old secret is shut out right away.
s alicecopy device list >"$T/r2" 2>&1; rc=$?
check "a copy with the old secret cannot log in after rotate-secret" test $rc -ne 0
s alice device list >"$T/d3" 2>&1
check "the next login uses the new secret" contains "$T/d3" "device 1 (this device)"
s alice send bob "after rotation" >"$T/s1" 2>&1
check "sending works after rotation" contains "$T/s1" "Sent to bob."
s bob receive >"$T/b1" 2>&1
check "bob reads it" contains "$T/b1" "alice: after rotation"
s alice device remove 1 >"$T/x1" 2>&1; rc=$?
check "device 1 cannot be removed" test $rc -eq 1
check "... saying so" contains "$T/x1" "device 1 cannot be removed"
s alice device remove 7 >"$T/x2" 2>&1; rc=$?
check "an unknown device is an error" test $rc -eq 1
check "... naming it" contains "$T/x2" "no device 7"
s alice device remove x >"$T/x3" 2>&1; rc=$?
check "a bad ID is a usage error" test $rc -eq 2
# A second device appears on alice's account behind her back (the server, or
# someone holding her secret): her next connection says so, once.
sql "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)
     SELECT id, 2, zeroblob(32), 0, 0 FROM accounts WHERE username = 'alice';"
s alice receive >"$T/g1" 2>&1
check "a device added behind alice's back is reported" contains "$T/g1" "the devices of your account changed"
check "... naming it" contains "$T/g1" "(added 2)"
check "... and what to do" contains "$T/g1" "sotto device remove ID"
s alice --json receive >"$T/g2" 2>&1
check "... only once" lacks "$T/g2" "device_change"
sql "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)
     SELECT id, 3, zeroblob(32), 0, 0 FROM accounts WHERE username = 'alice';"
sql "DELETE FROM devices WHERE device_id = 2 AND account_id = (SELECT id FROM accounts WHERE username = 'alice');"
s alice --json receive >"$T/g3" 2>&1
check "--json: a device_change warning with both changes" contains "$T/g3" '"warning":"device_change"'
check "... added 3, removed 2" contains "$T/g3" "added 3; removed 2"
s alice device remove 3 >"$T/g4" 2>&1
check "alice removes device 3" contains "$T/g4" "removed"
s alice receive >"$T/g5" 2>&1
check "a device removed on purpose is not reported" lacks "$T/g5" "devices of your account"
s bob receive >"$T/g6" 2>&1
check "bob's first connection records his list silently" lacks "$T/g6" "devices of your account"

s alice device --help >"$T/h1" 2>&1
check "device --help" contains "$T/h1" "remove ID"
s alice rotate-secret --help >"$T/h2" 2>&1
check "rotate-secret --help" contains "$T/h2" "usage: sotto"
s alice --help >"$T/h3" 2>&1
check "sotto --help lists device and rotate-secret" grep -q "rotate-secret" "$T/h3"

finish
