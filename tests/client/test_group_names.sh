# SPDX-License-Identifier: Apache-2.0
# test_group_names.sh: no ghost members, a proper leave, and a member's new
# identity key said in the group (docs/client.md, "Groups").
#  - group create/add with a name nobody registered is refused and nothing is
#    stored or sent: whoever registers that name later gets nothing (before,
#    the name stayed in the member list and was sent every sender key);
#  - group leave NAME (group remove NAME yourself still works) and the others
#    see "X left the group", structured in --json;
#  - a message under a member's name from a new identity key is announced in
#    every group that member is in (receive and history of the group).
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
new_user carol
new_user mallory

# ---- unknown names --------------------------------------------------------------
s alice group create team bob ghost_user >"$T/c1" 2>&1; rc=$?
check "create with an unknown member is refused (exit 1)" test $rc -eq 1
check "... naming it" contains "$T/c1" "there is no user 'ghost_user' on the server"
s alice groups >"$T/g1" 2>&1
check "... and nothing is stored" lacks "$T/g1" "team"
s alice --json group create team bob ghost_user >"$T/c1j" 2>/dev/null
check "... --json: error unknown_user" contains "$T/c1j" '"error":"unknown_user"'
s bob receive >"$T/b1" 2>&1
check "... and bob was told nothing" lacks "$T/b1" "team"

check "create with known members works" s alice group create team bob carol
s alice group add team typo_carol >"$T/a1" 2>&1; rc=$?
check "add of an unknown name is refused (exit 1)" test $rc -eq 1
check "... naming it" contains "$T/a1" "there is no user 'typo_carol' on the server"
s alice groups >"$T/g2" 2>&1
check "... the member list is unchanged" contains "$T/g2" "team: alice bob carol"
check "... without the unknown name" lacks "$T/g2" "typo_carol"
s bob --json receive >"$T/j0" 2>&1
s carol receive >/dev/null 2>&1
# alice is no contact of theirs yet: the invitation waits until accepted (docs/client.md, "Conversations").
s bob requests accept alice >/dev/null 2>&1; s carol requests accept alice >/dev/null 2>&1
check "bob's --json: the join as fields (type group_joined, by, members)" \
  grep -q '"type":"group_joined".*"by":"alice","members":\["alice","bob","carol"\]' "$T/j0"
s bob groups >"$T/g3" 2>&1
check "bob's list has no unknown name either" lacks "$T/g3" "typo_carol"
# The name is registered later: it gets no group, no key.
new_user typo_carol
s bob group send team "secret plans" >/dev/null 2>&1
s typo_carol receive >"$T/t1" 2>&1
check "whoever registers the name later gets nothing" contains "$T/t1" "No new messages."

# ---- leave ------------------------------------------------------------------------
s carol group leave team >"$T/l1" 2>&1; rc=$?
check "group leave: exit 0" test $rc -eq 0
check "... says so" contains "$T/l1" "You left the group team"
s carol groups >"$T/g4" 2>&1
check "... carol has no team any more" lacks "$T/g4" "team"
s alice receive >"$T/r1" 2>&1
check "alice sees 'carol left the group team'" contains "$T/r1" "* carol left the group team"
s bob --json receive >"$T/r1j" 2>&1
check "bob's --json: type group_member_left, by and member fields" \
  grep -q '"type":"group_member_left".*"by":"carol".*"member":"carol"' "$T/r1j"
s alice groups >"$T/g5" 2>&1
check "alice's list: team: alice bob" grep -qx "team: alice bob" "$T/g5"
check "group remove NAME yourself still leaves" s bob group remove team bob
s alice receive >"$T/r2" 2>&1
check "... alice sees 'bob left the group team'" contains "$T/r2" "bob left the group team"
s carol group leave team >"$T/l2" 2>&1; rc=$?
check "leaving a group you are not in: exit 1, unknown_group" test $rc -eq 1
check "... says so" contains "$T/l2" "you are in no group called 'team'"

# ---- a member's identity change, shown in the group -------------------------------
s alice group create crew bob carol >/dev/null 2>&1
s alice group create other carol >/dev/null 2>&1
for u in bob carol; do s $u receive >/dev/null 2>&1; done
s bob send alice "hello" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
# mallory writes as "bob" from his own key (his client names itself bob, the
# server relabels the envelope): a new identity key under bob's name.
export SOTTO_TEST_ADDRESS_AS=bob
s mallory send alice "it's bob, new phone" >/dev/null 2>&1
unset SOTTO_TEST_ADDRESS_AS
stop_server
sql "UPDATE messages SET sender = 'bob' WHERE sender = 'mallory';"
start_server
s alice receive >"$T/r3" 2>&1
check "the held message is shown" contains "$T/r3" "from a new, unverified key claiming to be bob"
check "... and the change is said in the group crew" \
  contains "$T/r3" "* bob, a member of the group crew, wrote from a new identity key"
check "... not in a group bob is not in" lacks "$T/r3" "group other"
s alice history crew >"$T/h3" 2>&1
check "history crew shows it" contains "$T/h3" "bob, a member of the group crew, wrote from a new identity key"
s alice --json history crew >"$T/h3j" 2>&1
check "... --json: type group_member_identity_changed with group and member" \
  grep -q '"type":"group_member_identity_changed".*"group":"crew".*"member":"bob"' "$T/h3j"

finish
