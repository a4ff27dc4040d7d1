# SPDX-License-Identifier: Apache-2.0
# test_link_floor.sh: a newly linked device checks the first list it is
# served against the version device 1 signed when it added it
# (docs/multi-device.md, "Linking"; issue 11), with the real server and CLI.
#
# alice (list version 1) links her laptop: the provisioning message says the
# list that adds it is version 2 at least, and the laptop keeps 2 as its
# floor. Before the laptop connects again, the operator (server stopped)
# deletes list version 2, so the server serves version 1. Checked:
#  - the laptop refuses it and says so plainly: the version it was served,
#    the version device 1 signed, device_hidden in --json; it records
#    nothing (it says so again at the next connect);
#  - the operator puts version 2 back: the laptop is quiet and reads;
#  - later rollback: with version 3 seen, version 2 served again is refused
#    (the floor moved with what the laptop recorded).
source "$(dirname "$0")/lib.sh" "$@"

start_server --device-change-burst 100
new_user alice
new_user bob
alice_id() { sql "SELECT id FROM accounts WHERE username = 'alice';"; }

# The laptop's hello (docs/multi-device.md, "A new device says hello") would
# record the list at once; without it (as when the list naming it is not
# served in time) its first list check is its next connect: the floor's case.
export SOTTO_TEST_NO_HELLO=1
check "alice links her laptop" link_device laptop alice laptop
unset SOTTO_TEST_NO_HELLO
check "the server holds list version 2" \
  test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(alice_id);")" = 2

# ---- the operator serves the list from before the laptop was added ----
stop_server
sql "CREATE TABLE kept AS SELECT * FROM devlists WHERE account_id = $(alice_id) AND version = 2;
     DELETE FROM devlists WHERE account_id = $(alice_id) AND version = 2;"
check "the server now serves version 1 (device 1 only)" \
  test "$(sql "SELECT max(version) FROM devlists WHERE account_id = $(alice_id);")" = 1
start_server --device-change-burst 100

s laptop receive >"$T/l1" 2>&1; rc=$?
check "the laptop still connects" test $rc -eq 0
check "the laptop refuses the older list, naming both versions" \
  contains "$T/l1" "the server serves version 1 of your device list, older than version 2 that device 1 signed when it added this device"
check "... and says what that means" contains "$T/l1" "contacts going by it may not send to this device (2)"
s laptop --json receive >"$T/l1j" 2>&1
check "--json: error device_hidden" contains "$T/l1j" '"code":"device_hidden"'
check "... with the floor" contains "$T/l1j" "older than version 2 that device 1 signed"
s laptop devices >"$T/l1d" 2>&1
check "it recorded nothing: the next connection says it again" \
  contains "$T/l1d" "older than version 2 that device 1 signed when it added this device"

# ---- the operator puts version 2 back ----
stop_server
sql "INSERT INTO devlists SELECT * FROM kept; DROP TABLE kept;"
start_server --device-change-burst 100
s laptop receive >"$T/l2" 2>&1; rc=$?
check "with version 2 back the laptop reads" test $rc -eq 0
check "... and is quiet" lacks "$T/l2" "device list"
s bob send alice "to both" >"$T/b1" 2>&1
check "bob sends to alice's two devices" contains "$T/b1" "Sent to alice."
s laptop receive >"$T/l3" 2>&1
check "the laptop gets it" contains "$T/l3" "bob: to both"

# ---- a later rollback: the recorded list is the floor from now on ----
check "alice links a tablet (version 3)" link_device tablet alice tablet
s laptop receive >/dev/null 2>&1
stop_server
sql "DELETE FROM devlists WHERE account_id = $(alice_id) AND version = 3;"
start_server --device-change-burst 100
s laptop receive >"$T/l4" 2>&1
check "the laptop, which saw version 3, refuses version 2 as a rollback" \
  contains "$T/l4" "the server serves an older device list of yours (version 2; you made 3)"

finish
