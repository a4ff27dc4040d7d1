# SPDX-License-Identifier: Apache-2.0
# test_identity.sh: an identity change is a decision, not a notice. The change
# is made the way an attacker holding the server (with a removed group member)
# would: mallory's messages are relabelled as coming from bob in the server's
# database. They are held in quarantine under a verified (alice) and an
# unverified (carol) contact's name: shown as from a new, unverified key, no
# group change applied, nothing sent to the verified contact; 'sotto trust'
# (or a verify of the new number) releases them; the next send to the new key
# asks first and is refused in a script without --yes.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
new_user carol
new_user mallory

s bob send alice "hello alice" >/dev/null 2>&1
s bob send carol "hello carol" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s carol receive >/dev/null 2>&1
# bob wrote first: a message request until accepted (docs/client.md, "Conversations").
s alice requests accept bob >/dev/null 2>&1; s carol requests accept bob >/dev/null 2>&1
s alice --json safety-number bob >"$T/sn1" 2>&1
n1=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn1")
check "alice verifies bob" s alice verify bob "$n1"

# bob's group with mallory in it; mallory keeps a copy of his home, then is removed.
s bob group create team alice carol mallory >/dev/null 2>&1
for u in alice carol mallory; do s $u receive >/dev/null 2>&1; done
s mallory requests accept bob >/dev/null 2>&1   # bob's invitation (he is no contact of mallory's)
cp -a "$T/mallory" "$T/mallory_old"
s bob group remove team mallory >/dev/null 2>&1
for u in alice carol mallory; do s $u receive >/dev/null 2>&1; done
s alice groups >"$T/g0" 2>&1
check "mallory was removed" contains "$T/g0" "team: bob alice carol"

# A server that only relabels an envelope gains nothing: every pairwise
# message names its sender and recipient under the MAC (docs/protocol.md,
# "Addresses"), so carol's message relabelled as bob's is refused as
# unreadable, neither shown as bob's nor held.
s carol send alice "carol here" >/dev/null 2>&1
stop_server
sql "UPDATE messages SET sender = 'bob' WHERE sender = 'carol';"
start_server
s alice receive >"$T/r0" 2>&1
check "a relabelled envelope (carol's, as bob's) is refused" contains "$T/r0" "a message from bob could not be decrypted"
check "... not shown as bob's" lacks "$T/r0" "carol here"

# With the old copy, mallory re-adds himself (a higher epoch) and writes as
# "bob": his client also names itself bob in the addresses (a test hook of
# sotto-test stands for a modified client), and the server relabels the
# envelopes.
export SOTTO_TEST_ADDRESS_AS=bob
s mallory_old group remove team carol >/dev/null 2>&1
s mallory_old group add team carol >/dev/null 2>&1
s mallory_old send alice "it's bob, new phone" >/dev/null 2>&1
s mallory_old send carol "it's bob, new phone" >/dev/null 2>&1
unset SOTTO_TEST_ADDRESS_AS
stop_server
sql "UPDATE messages SET sender = 'bob' WHERE sender = 'mallory';"
start_server

# alice verified bob: everything held, no group change, nothing sent to "bob".
s alice receive >"$T/r1" 2>&1
check "alice: the text is shown as from a new, unverified key" \
  contains "$T/r1" "from a new, unverified key claiming to be bob (held; not from the bob you know): it's bob, new phone"
check "alice: a group change from it is held, not applied" \
  contains "$T/r1" "a group change from a new, unverified key claiming to be bob is held and NOT applied"
check "alice: the text is not shown as bob's" lacks "$T/r1" "bob: it's bob"
s alice groups >"$T/g1" 2>&1
check "alice: mallory was not re-added" contains "$T/g1" "team: bob alice carol"
check "alice: ... (the group is unchanged)" lacks "$T/g1" "mallory"
s alice send bob "are you really bob?" </dev/null >"$T/s1" 2>&1; rc=$?
check "alice: send to the verified bob with a new key held is refused" test $rc -eq 1
check "... with an actionable message" contains "$T/s1" "bob's identity key changed since you verified it, so nothing was sent"
s alice --json send bob "really?" </dev/null >"$T/s1j" 2>/dev/null
check "... also in --json" contains "$T/s1j" '"error":"identity_changed"'
s alice group send team "meeting at 5" </dev/null >"$T/gs1" 2>&1
check "alice: group text is not sent to the blocked bob" contains "$T/gs1" "this message was not sent to them"
s alice contacts >"$T/c1" 2>&1
check "contacts shows the held key" contains "$T/c1" "KEY CHANGED since verified: a new key is held"
s alice --json safety-number bob >"$T/sn2" 2>&1
n2=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn2")
check "safety-number shows the new key's number" test -n "$n2" -a "$n1" != "$n2"
check "... and says a new key is held" contains "$T/sn2" '"new_key_held":true'
s alice verify bob "$n1" >/dev/null 2>&1; rc=$?
check "the old number does not accept the new key" test $rc -eq 1
s alice receive >"$T/r1b" 2>&1
check "a re-receive does not release anything" lacks "$T/r1b" "alice: it's bob"

# carol never verified bob: held just the same; her trusted session still works.
s carol receive >"$T/r2" 2>&1
check "carol: held too" contains "$T/r2" "from a new, unverified key claiming to be bob (held"
s carol --json receive >"$T/r2j" 2>&1
s carol groups >"$T/g2" 2>&1
check "carol: still in the group, mallory not re-added" contains "$T/g2" "team: bob alice carol"
s carol send bob "hmm" </dev/null >"$T/s3" 2>&1
check "carol: sending to the bob she knows works (not blocked)" contains "$T/s3" "Sent to bob."
check "... and she is told a new key is held" contains "$T/s3" "held"
s bob receive >"$T/b3" 2>&1
check "the real bob reads it" contains "$T/b3" "carol: hmm"

# carol accepts the new key: the held messages are processed now.
s carol trust bob >"$T/t2" 2>&1
check "carol trust bob releases the held messages" contains "$T/t2" "Released 3 held messages of bob."
check "... the text now decrypts as bob's" contains "$T/t2" "bob: it's bob, new phone"
s carol groups >"$T/g3" 2>&1
check "... and the group change applies then" contains "$T/g3" "mallory"
s carol trust bob >/dev/null 2>&1; rc=$?
check "a second trust has nothing to release" test $rc -eq 1
# Sending to the new key after an unverified change asks; a script is refused.
s carol send bob "is that you?" </dev/null >"$T/s4" 2>&1; rc=$?
check "carol: send after the key change is refused without a terminal" test $rc -eq 1
check "... saying plainly what changed" contains "$T/s4" "you accepted their new key with 'sotto trust' without verifying it"
check "... and that nothing was sent" contains "$T/s4" "nothing was sent to bob because their identity key changed"
if command -v script >/dev/null; then
  # On a terminal (a pty from script(1)) it asks; "n" sends nothing.
  printf 'n\n' | timeout 60 script -qec "'$SOTTO' --home '$T/carol' send bob 'is that you?'" /dev/null >"$T/s4t" 2>&1
  check "on a terminal it asks" contains "$T/s4t" "Send to the new key anyway? [y/N]"
  check "... and 'n' sends nothing" contains "$T/s4t" "nothing was sent to bob because their identity key changed"
else
  bad "script(1) is missing (util-linux): the terminal question is not tested"
fi
s carol send --yes bob "is that you?" </dev/null >"$T/s5" 2>&1
check "carol: --yes sends" contains "$T/s5" "Sent to bob."
s carol send bob "again" </dev/null >"$T/s6" 2>&1
check "... and the next send does not ask again" contains "$T/s6" "Sent to bob."
# The server reroutes bob's queue to mallory: he reads only what carol chose to
# send to the new key, not what went before it.
stop_server
devkey() { sql "SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = '$1';"; }
sql "UPDATE messages SET devkey = $(devkey mallory), sender = 'carol' WHERE devkey = $(devkey bob) AND sender = 'carol';"
start_server
SOTTO_TEST_ADDRESS_AS=bob s mallory_old receive >"$T/m1" 2>&1
check "(the new key was mallory's: he reads what carol sent with --yes)" contains "$T/m1" "carol: is that you?"

# alice verifies the new number: accepted and released.
check "alice verifies the new number" s alice verify bob "$n2"
s alice history bob >"$T/h1" 2>&1
check "alice: the held text is released as bob's" contains "$T/h1" "bob: it's bob, new phone"
s alice groups >"$T/g4" 2>&1
check "alice: the group change applies after the decision" contains "$T/g4" "mallory"
s alice send bob "ok, verified again" </dev/null >"$T/s7" 2>&1
check "after verify, sending works without a question" contains "$T/s7" "Sent to bob."
finish
