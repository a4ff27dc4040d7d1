# SPDX-License-Identifier: Apache-2.0
# test_heal.sh: conversations that heal (docs/client.md, "Outbox, receipts
# and session healing").
# - a home restored from a copy: the messages its peer sends to the stale
#   copy are asked for again and arrive, and what the copy sends arrives:
#   every message in both directions, with one line on the receiving side;
# - a message that cannot be decrypted (a broken MAC) makes one retry
#   request, and the sender's resend arrives;
# - a flood of garbage from one contact makes ONE retry request, and the
#   peer's resends are bounded; a stranger's garbage makes none;
# - sotto session reset: the peer sees a notice, the conversation goes on.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
new_user carol
count() { grep -cF -- "$2" "$1"; }

# --- restore from a copy --------------------------------------------------
s alice send bob "a1" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "b1" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
cp -a "$T/bob" "$T/bob_copy"
# After the copy the newer bob takes a ratchet step the copy never sees:
# what alice sends next cannot be decrypted by the copy.
s alice send bob "a2 read by the newer bob" >/dev/null 2>&1
s bob receive >"$T/r2" 2>&1
check "the newer bob reads a2" contains "$T/r2" "alice: a2 read by the newer bob"
s bob send alice "b2 before the restore" >/dev/null 2>&1
s alice receive >"$T/r1" 2>&1
check "alice reads b2" contains "$T/r1" "bob: b2 before the restore"
s alice send bob "a3 queued when bob was restored" >/dev/null 2>&1
rm -rf "$T/bob"
mv "$T/bob_copy" "$T/bob"
s bob receive >"$T/r3" 2>&1
check "the restored copy is detected" contains "$T/r3" "it was restored or copied"
check "bob cannot decrypt a3 and says it was asked for again, once" \
  test "$(count "$T/r3" "a message from alice could not be decrypted; a fresh session was started and it was asked for again")" = 1
check "... and no other 'could not be decrypted' line" test "$(count "$T/r3" "could not be decrypted")" = 1
s bob send alice "b3 from the restored bob" >/dev/null 2>&1
s alice receive >"$T/r4" 2>&1
check "alice is told bob could not decrypt, and resends" contains "$T/r4" "bob could not decrypt our messages: a fresh session is used and 1 message(s) were sent again"
check "alice reads b3 from the restored bob" contains "$T/r4" "bob: b3 from the restored bob"
check "alice has nothing undecryptable" lacks "$T/r4" "could not be decrypted"
s alice send bob "a4 after the healing" >/dev/null 2>&1
s bob receive >"$T/r5" 2>&1
check "the restored bob reads the resent a3" contains "$T/r5" "alice: a3 queued when bob was restored"
check "... and a4" contains "$T/r5" "alice: a4 after the healing"
check "... and nothing undecryptable" lacks "$T/r5" "could not be decrypted"
s bob send alice "b4" >/dev/null 2>&1
s alice receive >"$T/r6" 2>&1
check "alice reads b4" contains "$T/r6" "bob: b4"
s alice --json history bob >"$T/h1" 2>&1
check "alice's a3 is delivered now (receipt from the restored bob)" \
  grep -q '"text":"a3 queued when bob was restored".*"state":"delivered"' "$T/h1"
check "alice's a4 is delivered" grep -q '"text":"a4 after the healing".*"state":"delivered"' "$T/h1"

# --- one undecryptable message -------------------------------------------------
# One retry request per peer per 5 minutes, and one acted on: the clocks of
# both move past the window of the restore above (sotto-test's SOTTO_TEST_NOW).
export SOTTO_TEST_NOW=$(($(date +%s) + 400))
SOTTO_TEST_CORRUPT_SEND=1 s alice send bob "broken on the way" >"$T/s1" 2>&1
check "the sender thinks it was sent" contains "$T/s1" "Sent to bob."
s bob receive >"$T/r7" 2>&1
check "bob shows one line: could not be decrypted, asked again" \
  test "$(count "$T/r7" "a message from alice could not be decrypted; a fresh session was started and it was asked for again")" = 1
check "... and not the text" lacks "$T/r7" "broken on the way"
s alice receive >"$T/r8" 2>&1
check "alice resends the one message" contains "$T/r8" "1 message(s) were sent again"
s bob receive >"$T/r9" 2>&1
check "the resend arrives" contains "$T/r9" "alice: broken on the way"
check "... once" test "$(count "$T/r9" "alice: broken on the way")" = 1
s alice receive >/dev/null 2>&1
s alice --json history bob >"$T/h2" 2>&1
check "... and alice's history says delivered" grep -q '"text":"broken on the way".*"state":"delivered"' "$T/h2"

# --- a garbage flood: bounded ---------------------------------------------------
# A stranger (no pinned key, no session) is never asked: its garbage is
# reported unreadable, with no bundle fetch and no retry request.
new_user dave
SOTTO_TEST_CORRUPT_SEND=1 s dave send bob "junk from a stranger" >/dev/null 2>&1
s bob receive >"$T/g0" 2>&1
check "a stranger's undecryptable message: reported" contains "$T/g0" "from dave could not be decrypted"
check "... and not asked for again" lacks "$T/g0" "a fresh session was started"
s dave receive >"$T/g0d" 2>&1
check "... the stranger gets no retry request" lacks "$T/g0d" "sent again"
# carol becomes a contact (a session, her key pinned), then floods.
s carol send bob "hello from carol" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send carol "hello carol" >/dev/null 2>&1
s carol receive >/dev/null 2>&1
for i in $(seq 1 30); do SOTTO_TEST_CORRUPT_SEND=1 s carol send bob "junk $i" >/dev/null 2>&1; done
s bob receive >"$T/g1" 2>&1
check "30 undecryptable messages from carol make one retry request" \
  test "$(count "$T/g1" "a message from carol could not be decrypted; a fresh session was started")" = 1
check "... the rest past the request's cover are summed up" contains "$T/g1" "more messages from carol could not be decrypted"
s carol receive >"$T/g2" 2>&1
check "carol resends at most 16 (the bound per request)" contains "$T/g2" "16 message(s) were sent again"
s bob receive >"$T/g3" 2>&1
check "bob gets the 16 resends" test "$(grep -c 'carol: junk' "$T/g3")" = 16
for i in $(seq 1 5); do SOTTO_TEST_CORRUPT_SEND=1 s carol send bob "more junk $i" >/dev/null 2>&1; done
s bob receive >"$T/g4" 2>&1
check "a second flood inside the window makes no second request" lacks "$T/g4" "a fresh session was started"
s carol receive >"$T/g5" 2>&1
check "... so carol resends nothing" lacks "$T/g5" "sent again"

unset SOTTO_TEST_NOW

# --- session reset ----------------------------------------------------------------
s alice session reset bob >"$T/x1" 2>&1
check "alice resets the session" contains "$T/x1" "you reset the session with bob"
s bob receive >"$T/x2" 2>&1
check "bob sees the reset" contains "$T/x2" "alice reset the session with you"
s alice send bob "after the reset" >/dev/null 2>&1
s bob receive >"$T/x3" 2>&1
check "the conversation goes on" contains "$T/x3" "alice: after the reset"
check "bad usage is refused" test "$(s alice session reset 2>/dev/null; echo $?)" = 2
finish
