# SPDX-License-Identifier: Apache-2.0
# test_group.sh: a Sender Keys group of three, then four; membership only in
# end-to-end messages (the server's files never name the group); a removed
# member cannot read what follows, even when the server hands it the
# ciphertext.
source "$(dirname "$0")/lib.sh" "$@"

start_server
for u in alice bob carol dave; do new_user $u; done
devkey() { sql "SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = '$1';"; }

s alice group create family bob carol >"$T/g1" 2>&1
check "alice creates the group" contains "$T/g1" "Group family: created. Members: alice bob carol"
s bob receive >"$T/b1" 2>&1
s carol receive >"$T/c1" 2>&1
check "bob is told he was added" contains "$T/b1" "* alice added you to the group family (members: alice, bob, carol)"
check "carol is told she was added" contains "$T/c1" "* alice added you to the group family"
# alice is no contact of theirs yet: the invitation waits until accepted (docs/client.md, "Conversations").
s bob requests accept alice >/dev/null 2>&1; s carol requests accept alice >/dev/null 2>&1

s alice group send family "Dinner at mine on Friday?" >/dev/null 2>&1
s bob group send family "Count me in." >/dev/null 2>&1
s carol group send family "Me too!" >/dev/null 2>&1
s alice receive >"$T/a2" 2>&1; s bob receive >"$T/b2" 2>&1; s carol receive >"$T/c2" 2>&1
check "bob reads alice" contains "$T/b2" "[family] alice: Dinner at mine on Friday?"
check "carol reads alice" contains "$T/c2" "[family] alice: Dinner at mine on Friday?"
check "alice reads bob" contains "$T/a2" "[family] bob: Count me in."
check "carol reads bob" contains "$T/c2" "[family] bob: Count me in."
check "alice reads carol" contains "$T/a2" "[family] carol: Me too!"
check "bob reads carol" contains "$T/b2" "[family] carol: Me too!"
s bob --json groups >"$T/gl" 2>&1
check "groups lists the members" contains "$T/gl" '"group":"family","members":["alice","bob","carol"]'

# Dave joins: he hears of it, reads what comes next, can write.
s bob group add family dave >"$T/g2" 2>&1
check "bob adds dave" contains "$T/g2" "Members: alice bob carol dave"
for u in alice carol dave; do s $u receive >"$T/$u.3" 2>&1; done
check "alice learns dave was added" contains "$T/alice.3" "* bob added dave to the group family"
check "dave is told" contains "$T/dave.3" "* bob added you to the group family (members: alice, bob, carol, dave)"
s dave requests accept bob >/dev/null 2>&1
s alice group send family "Welcome, dave." >/dev/null 2>&1
s dave group send family "Thanks!" >/dev/null 2>&1
for u in bob carol dave; do s $u receive >"$T/$u.4" 2>&1; done
s alice receive >"$T/alice.4" 2>&1
check "dave reads alice" contains "$T/dave.4" "[family] alice: Welcome, dave."
check "carol reads dave" contains "$T/carol.4" "[family] dave: Thanks!"
check "alice reads dave" contains "$T/alice.4" "[family] dave: Thanks!"

# Carol is removed. Every remaining member switches to a fresh sender key.
s alice group remove family carol >"$T/g3" 2>&1
check "alice removes carol" contains "$T/g3" "Group family: removed carol. Members: alice bob dave"
for u in bob carol dave; do s $u receive >"$T/$u.5" 2>&1; done
check "bob learns carol was removed" contains "$T/bob.5" "* alice removed carol from the group family"
check "carol learns she was removed" contains "$T/carol.5" "* alice removed you from the group family"
s alice group send family "Carol cannot read this." >/dev/null 2>&1
s bob group send family "Nor this." >/dev/null 2>&1

# A server that hands carol the new ciphertexts anyway gains nothing.
stop_server
carol_dk=$(devkey carol); dave_dk=$(devkey dave)
sql "INSERT INTO messages(devkey, sender, sender_device, device_id, type, ts, body)
     SELECT $carol_dk, sender, sender_device, device_id, type, ts, body FROM messages
     WHERE devkey = $dave_dk AND type = 4; UPDATE devices SET queue_count = queue_count + 2 WHERE devkey = $carol_dk;"
start_server
s carol receive >"$T/c6" 2>&1
check "carol got the ciphertexts" test "$(grep -c 'could not be decrypted' "$T/c6")" -eq 2
check "carol cannot read alice's message after removal" lacks "$T/c6" "Carol cannot read this."
check "carol cannot read bob's message after removal" lacks "$T/c6" "Nor this."
s dave receive >"$T/d6" 2>&1
check "dave reads alice after the removal" contains "$T/d6" "[family] alice: Carol cannot read this."
check "dave reads bob after the removal" contains "$T/d6" "[family] bob: Nor this."
s carol group send family "let me back in" >"$T/c7" 2>&1; rc=$?
check "carol can no longer send to the group" test $rc -eq 1 -a -n "$(grep "no group called 'family'" "$T/c7")"

# The server never learned the group: its files do not contain its name or
# any message text.
stop_server
check "no group name in the server's data" test -z "$(grep -rl -a 'family' "$T/srv")"
check "no message text in the server's data" test -z "$(grep -rl -a -e 'Dinner at mine' -e 'Carol cannot' "$T/srv")"
finish
