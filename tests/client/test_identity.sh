# SPDX-License-Identifier: Apache-2.0
# test_identity.sh: a changed identity key is said plainly on receive, and a
# verified contact whose key changed is refused on send until verified again.
# The change is made the way an attacker holding the server would: mallory's
# messages are relabelled as coming from bob in the server's database.
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
s alice --json safety-number bob >"$T/sn1" 2>&1
n1=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn1")
check "alice verifies bob" s alice verify bob "$n1"

s mallory send alice "it's bob, new phone" >/dev/null 2>&1
s mallory send carol "it's bob, new phone" >/dev/null 2>&1
stop_server
sql "UPDATE messages SET sender = 'bob' WHERE sender = 'mallory';"
start_server

s alice receive >"$T/r1" 2>&1
check "receive says bob's identity key changed" contains "$T/r1" "! bob's identity key changed (a new safety number)"
check "... and that sending is blocked until verified again" contains "$T/r1" "you had verified them, so sending to them is blocked"
s alice send bob "are you really bob?" >"$T/s1" 2>&1; rc=$?
check "send to the verified contact with a changed key is refused" test $rc -eq 1
check "... with an actionable message" contains "$T/s1" "bob's identity key changed since you verified it, so nothing was sent"
s alice --json send bob "really?" >"$T/s1j" 2>/dev/null
check "... also in --json" contains "$T/s1j" '"error":"identity_changed"'
s alice contacts >"$T/c1" 2>&1
check "contacts shows the change" contains "$T/c1" "KEY CHANGED since verified"
s alice --json safety-number bob >"$T/sn2" 2>&1
n2=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn2")
check "the safety number changed" test -n "$n2" -a "$n1" != "$n2"
s alice verify bob "$n1" >/dev/null 2>&1; rc=$?
check "the old number no longer verifies" test $rc -eq 1
check "verifying the new number" s alice verify bob "$n2"
s alice send bob "ok, verified again" >"$T/s2" 2>&1
check "after verify, sending works again" contains "$T/s2" "Sent to bob."

# Carol never verified bob: told plainly, not blocked.
s carol --json receive >"$T/r2" 2>&1
check "carol is told too (JSON event)" contains "$T/r2" '"event":"identity_changed","user":"bob"'
s carol send bob "hmm" >"$T/s3" 2>&1
check "an unverified contact is not blocked" contains "$T/s3" "Sent to bob."
finish
