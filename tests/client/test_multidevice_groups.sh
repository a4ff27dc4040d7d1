# SPDX-License-Identifier: Apache-2.0
# test_multidevice_groups.sh: groups across the devices of one account
# (docs/multi-device.md, docs/groups.md), with the real server and CLI:
# alice on two devices, bob on two, linked with 'sotto link' /
# 'sotto devices add':
#  - a group created on alice's primary appears on her laptop (GROUP_STATE,
#    content kind 19, to our own devices only);
#  - a group text from alice's laptop (its own chain) reaches both of bob's
#    devices and shows on alice's primary as sent by her;
#  - bob's laptop writes to the group with its own chain, and bob's
#    primary's chain stays readable next to it (sender keys per device);
#  - alice's primary's text shows on her laptop as hers;
#  - bob removes his laptop: alice's next group message starts a new chain
#    and the removed laptop gets nothing;
#  - a member added on alice's primary is added on her laptop; leaving on
#    the laptop leaves on the primary too.
source "$(dirname "$0")/lib.sh" "$@"

start_server --device-change-burst 100
new_user alice
new_user bob

# contacts first (a linked device gets the contacts with the provisioning)
s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice send bob "hi bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1

check "alice links her laptop" link_device alice-laptop alice laptop
check "bob links his laptop" link_device bob-laptop bob laptop
# every device learns the others' lists
for h in alice alice-laptop bob bob-laptop; do s $h receive >/dev/null 2>&1; done

# 1. a group made on alice's primary appears on her laptop
s alice group create team bob >"$T/g0" 2>&1
check "alice creates the group team with bob" test $? -eq 0
s alice-laptop receive >"$T/al1" 2>&1
s alice-laptop groups >"$T/alg1" 2>&1
check "alice's laptop has the group team, with bob in it" grep -qx "team: alice bob" "$T/alg1"
check "... and says so" contains "$T/al1" "the group team, made or joined on another device of yours, is on this one too (members: alice, bob)"
s bob receive >"$T/b1" 2>&1
s bob-laptop receive >"$T/bl1" 2>&1
check "bob's primary joined" contains "$T/b1" "added you to the group team"
check "bob's laptop joined" contains "$T/bl1" "added you to the group team"

# 2. alice's laptop writes to the group with its own chain
s alice-laptop group send team "from alice's laptop" >"$T/s2" 2>&1
check "alice's laptop sends to the group" test $? -eq 0
s bob receive >"$T/b2" 2>&1
s bob-laptop receive >"$T/bl2" 2>&1
check "bob's primary reads alice's laptop" contains "$T/b2" "from alice's laptop"
check "bob's laptop reads it too" contains "$T/bl2" "from alice's laptop"
s alice receive >"$T/a2" 2>&1
check "alice's primary shows her laptop's group text as hers" contains "$T/a2" "[team] to group: from alice's laptop"
check "... not as unreadable" lacks "$T/a2" "unreadable"
s alice history team >"$T/ah2" 2>&1
check "... and keeps it in the group's history" contains "$T/ah2" "from alice's laptop"

# 3. both of bob's devices write; both chains are readable everywhere
s bob-laptop group send team "from bob's laptop" >"$T/s3" 2>&1
check "bob's laptop sends to the group" test $? -eq 0
s bob group send team "from bob's primary" >"$T/s3b" 2>&1
check "bob's primary sends to the group" test $? -eq 0
s alice receive >"$T/a3" 2>&1
s alice-laptop receive >"$T/al3" 2>&1
check "alice's primary reads bob's laptop" contains "$T/a3" "from bob's laptop"
check "alice's primary reads bob's primary" contains "$T/a3" "from bob's primary"
check "alice's laptop reads bob's laptop" contains "$T/al3" "from bob's laptop"
check "alice's laptop reads bob's primary" contains "$T/al3" "from bob's primary"
check "... nothing unreadable on alice's laptop" lacks "$T/al3" "unreadable"
s bob receive >"$T/b3" 2>&1
s bob-laptop receive >"$T/bl3" 2>&1
check "bob's primary shows his laptop's text" contains "$T/b3" "from bob's laptop"
check "bob's laptop shows his primary's text" contains "$T/bl3" "from bob's primary"
# an older chain still works after the other device's distribution
s bob-laptop group send team "bob's laptop again" >/dev/null 2>&1
s alice receive >"$T/a3b" 2>&1
check "bob's laptop's chain was not replaced by his primary's" contains "$T/a3b" "bob's laptop again"

# 4. alice's primary writes: her laptop shows it
s alice group send team "from alice's primary" >"$T/s4" 2>&1
s alice-laptop receive >"$T/al4" 2>&1
check "alice's laptop shows her primary's group text as hers" contains "$T/al4" "[team] to group: from alice's primary"
s bob-laptop receive >/dev/null 2>&1
s bob receive >/dev/null 2>&1

# 5. bob removes his laptop: alice's next group message is not for it
bob_id=$(sql "SELECT id FROM accounts WHERE username = 'bob';")
lap=$(sql "SELECT devkey FROM devices WHERE account_id = $bob_id AND device_id = 2;")
check "bob's laptop has a device row" test -n "$lap"
s bob devices remove 2 >"$T/r5" 2>&1
check "bob removes his laptop" test $? -eq 0
s alice group send team "after the removal" >"$T/s5" 2>&1
check "alice's next group message goes out" test $? -eq 0
s bob receive >"$T/b5" 2>&1
check "bob's primary reads it (a new chain reached it)" contains "$T/b5" "after the removal"
s bob-laptop receive >"$T/bl5" 2>&1; rc=$?
check "the removed laptop cannot log in" test $rc -ne 0
check "... and got nothing" lacks "$T/bl5" "after the removal"
check "no envelope waits for bob's removed laptop" test "$(sql "SELECT count(*) FROM messages WHERE devkey = $lap;")" = 0

# 6. a member added on alice's primary is added on her laptop
new_user carol
s alice group add team carol >"$T/g6" 2>&1
check "alice adds carol on her primary" test $? -eq 0
s alice-laptop receive >"$T/al6" 2>&1
s alice-laptop groups >"$T/alg6" 2>&1
check "alice's laptop has carol in team" grep -qx "team: alice bob carol" "$T/alg6"
check "... and says who added her" contains "$T/al6" "alice added carol to the group team"

# 7. alice leaves on her laptop: her primary leaves too
s alice-laptop group leave team >"$T/g7" 2>&1
check "alice leaves team on her laptop" test $? -eq 0
s alice receive >"$T/a7" 2>&1
s alice groups >"$T/ag7" 2>&1
check "alice's primary no longer has team" lacks "$T/ag7" "team"
check "... and says so" contains "$T/a7" "alice left the group team"
s bob receive >"$T/b7" 2>&1
check "bob sees alice leave" contains "$T/b7" "alice left the group team"

finish
