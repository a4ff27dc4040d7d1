# SPDX-License-Identifier: Apache-2.0
# test_device.sh: sotto device list / remove and sotto rotate-secret against
# the real server: the list marks this device, a rotated secret is saved and
# used by the next command, device 1 cannot be removed, an unknown device is
# named in the error, --help documents both commands.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob

s alice device list >"$T/d1" 2>&1
check "device list shows this device" contains "$T/d1" "device 1 (this device)"
s alice --json device list >"$T/d2" 2>&1
check "device list --json" contains "$T/d2" '"event":"device","device_id":1,"this_device":true'
s alice rotate-secret >"$T/r1" 2>&1
check "rotate-secret saves the new secret" contains "$T/r1" "new device secret saved"
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
s alice device --help >"$T/h1" 2>&1
check "device --help" contains "$T/h1" "remove ID"
s alice rotate-secret --help >"$T/h2" 2>&1
check "rotate-secret --help" contains "$T/h2" "usage: sotto"
s alice --help >"$T/h3" 2>&1
check "sotto --help lists device and rotate-secret" grep -q "rotate-secret" "$T/h3"

finish
