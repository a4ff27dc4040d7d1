# SPDX-License-Identifier: Apache-2.0
# test_convo.sh: conversation features (issue 14; docs/client.md,
# "Conversations"), with the real server and the real client:
# - message requests: a stranger's first message is marked (request), no
#   receipt goes back until accepted; requests list/accept/delete;
# - blocking: a blocked user's messages are dropped without a receipt;
# - replies, reactions, edits and deletes for everyone across two users,
#   forged edits (of someone else's message) and out-of-window ones refused
#   by the receiver;
# - a disappearing conversation: the timer is shown to both, the text goes
#   from history and from every record of both stores (opened with the
#   passphrase) and from the raw files; history --delete likewise.
source "$(dirname "$0")/lib.sh" "$@"
[ -x "$SCAN" ] || { echo "FAIL: client_store_scan is not built"; exit 1; }

start_server
new_user alice
new_user bob
new_user mallory
new_user eve

# id FILE TEXT: the timestamp (message id) of the JSON line holding TEXT.
id() { grep -F -- "\"text\":\"$2\"" "$1" | head -1 | sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p'; }

# --- requests ------------------------------------------------------------------
s mallory send bob "buy cheap watches" >/dev/null 2>&1
s bob receive >"$T/r1" 2>&1
check "a stranger's first message is shown as a request" contains "$T/r1" "(request) mallory: buy cheap watches"
s bob requests >"$T/q1" 2>&1
check "requests lists mallory" contains "$T/q1" "mallory (1 message)"
s mallory receive >/dev/null 2>&1
s mallory --json history bob >"$T/m1" 2>&1
check "no delivery receipt went to the stranger" grep -q '"text":"buy cheap watches".*"state":"sent"' "$T/m1"
s bob requests delete mallory >"$T/q2" 2>&1
s bob history mallory >"$T/q3" 2>&1
check "requests delete removes their messages" lacks "$T/q3" "cheap watches"
s bob block mallory >/dev/null 2>&1
s mallory send bob "blocked words" >/dev/null 2>&1
s bob receive >"$T/r2" 2>&1
check "a blocked user's message is dropped" lacks "$T/r2" "blocked words"
s bob history >"$T/q4" 2>&1
check "... and not stored" lacks "$T/q4" "blocked words"
s mallory receive >/dev/null 2>&1
s mallory --json history bob >"$T/m2" 2>&1
check "... and gets no receipt" grep -q '"text":"blocked words".*"state":"sent"' "$T/m2"
s bob send mallory "hi" >"$T/q5" 2>&1
check "sending to a blocked user is refused" contains "$T/q5" "you blocked mallory"
s bob block >"$T/q6" 2>&1
check "block lists mallory" contains "$T/q6" "mallory (blocked)"
s bob unblock mallory >/dev/null 2>&1
s mallory send bob "after unblock" >/dev/null 2>&1
s bob receive >"$T/r3" 2>&1
check "unblocked: their messages arrive again" contains "$T/r3" "mallory: after unblock"

# A group invitation from a stranger waits for acceptance.
s eve group create party bob >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob groups >"$T/g1" 2>&1
check "an invitation from a stranger does not show up in groups" lacks "$T/g1" "party"
s bob requests >"$T/g2" 2>&1
check "... it is listed in requests" contains "$T/g2" "group party (invited by eve)"
s bob group send party "too early" >"$T/g3" 2>&1
check "... nothing can be sent to it" contains "$T/g3" "not accepted the invitation to 'party' from eve"
s eve group send party "party time" >/dev/null 2>&1
s bob receive >"$T/g4" 2>&1
check "... its messages are kept, marked as a request" contains "$T/g4" "(request) [party] eve: party time"
s eve receive >/dev/null 2>&1
s bob requests accept eve >/dev/null 2>&1
s bob groups >"$T/g5" 2>&1
check "accepting the inviter accepts the group" contains "$T/g5" "party"
s bob group send party "thanks" >"$T/g6" 2>&1
s eve receive >"$T/g7" 2>&1
check "... and bob can write to it" contains "$T/g7" "[party] bob: thanks"
# Deleting a stranger's request declines their pending invitations too.
new_user trudy
s trudy send bob "hello from trudy" >/dev/null 2>&1
s trudy group create rave bob >/dev/null 2>&1
s trudy group send rave "rave tonight" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob requests >"$T/g8" 2>&1
check "a second stranger's invitation is listed" contains "$T/g8" "group rave (invited by trudy)"
s bob requests delete trudy >"$T/g9" 2>&1
check "requests delete succeeds (exit $?)" lacks "$T/g9" "sotto:"
s bob requests >"$T/g10" 2>&1
check "... the invitation is gone from requests" lacks "$T/g10" "rave"
s bob groups >"$T/g11" 2>&1
check "... the group is not among bob's groups" lacks "$T/g11" "rave"
s bob history >"$T/g12" 2>&1
check "... its message is deleted" lacks "$T/g12" "rave tonight"
s bob group send rave "hello?" >"$T/g13" 2>&1
check "... and nothing can be sent to it" contains "$T/g13" "no group called 'rave'"

s alice send bob "first from alice" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob requests accept alice >"$T/q7" 2>&1
check "requests accept" contains "$T/q7" "alice: accepted"
s alice send bob "second from alice" >/dev/null 2>&1
s bob receive >"$T/r4" 2>&1
check "an accepted contact's message is no request" contains "$T/r4" "alice: second from alice"
s alice receive >/dev/null 2>&1
s alice --json history bob >"$T/a1" 2>&1
check "... and is confirmed delivered" grep -q '"text":"second from alice".*"state":"delivered"' "$T/a1"

# --- replies, reactions, edits, deletes -------------------------------------------
s bob --json history alice >"$T/b1" 2>&1
A2=$(id "$T/b1" "second from alice")
check "history --json gives the message id" test -n "$A2"
s bob send --reply-to "$A2" alice "a reply" >/dev/null 2>&1
s alice receive >"$T/r5" 2>&1
check "the reply shows what it answers" contains "$T/r5" "bob (reply to alice #$A2): a reply"
s bob react alice "$A2" "👍" >/dev/null 2>&1
s alice receive >"$T/r6" 2>&1
check "the reaction is shown" contains "$T/r6" "bob reacted 👍 to message $A2"
s alice history bob >"$T/h1" 2>&1
check "history shows the reaction on the message" contains "$T/h1" "second from alice [👍 bob]"
s alice edit bob "$A2" "second, corrected" >"$T/e1" 2>&1
check "edit of our own message" contains "$T/e1" "Edited."
s bob receive >"$T/r7" 2>&1
check "the edit is announced" contains "$T/r7" "alice edited message $A2"
s bob history alice >"$T/h2" 2>&1
check "history shows the new text marked (edited)" contains "$T/h2" "second, corrected (edited)"
check "... the old text is gone" lacks "$T/h2" "second from alice"
check "... and in no record of bob's store" bash -c "! SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --find '$T/bob' 'second from alice' >/dev/null"

# Forgeries: bob's client would refuse; a modified one sends anyway.
s bob edit alice "$A2" "forged" >"$T/f1" 2>&1
check "editing someone else's message is refused by the sender" contains "$T/f1" "not yours"
SOTTO_TEST_CONVO_FORCE=1 s bob edit alice "$A2" "forged by bob" >/dev/null 2>&1
SOTTO_TEST_CONVO_FORCE=1 s bob delete alice "$A2" >/dev/null 2>&1
s alice receive >"$T/r8" 2>&1
check "the receiver refuses a forged edit" contains "$T/r8" "bob's edit of message $A2 was refused: they did not write it"
check "... and a forged delete" contains "$T/r8" "bob's delete of message $A2 was refused: they did not write it"
s alice history bob >"$T/h3" 2>&1
check "... the message is untouched" contains "$T/h3" "second, corrected (edited)"
check "... no forged text" lacks "$T/h3" "forged by bob"

# Out of the window: the clock moved 3 days (test hook).
LATER=$(( $(date +%s) + 3 * 86400 ))
SOTTO_TEST_NOW=$LATER s alice edit bob "$A2" "too late" >"$T/w1" 2>&1
check "an edit after 24 hours is refused by the sender" contains "$T/w1" "can no longer be edited"
SOTTO_TEST_NOW=$LATER s alice delete bob "$A2" >"$T/w2" 2>&1
check "a delete after 48 hours is refused by the sender" contains "$T/w2" "can no longer be deleted"
SOTTO_TEST_NOW=$LATER SOTTO_TEST_CONVO_FORCE=1 s alice edit bob "$A2" "too late" >/dev/null 2>&1
s bob receive >"$T/r9" 2>&1
check "the receiver refuses an edit out of its window" contains "$T/r9" "alice's edit of message $A2 was refused: too late"
s bob history alice >"$T/h4" 2>&1
check "... the text stays" contains "$T/h4" "alice: second, corrected (edited)"
check "... unchanged" lacks "$T/h4" "alice: too late"

s alice --json send bob "to be deleted" >"$T/d0" 2>&1
D=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/d0")
s bob receive >/dev/null 2>&1
s alice delete bob "$D" >"$T/d1" 2>&1
check "delete for everyone" contains "$T/d1" "Deleted for everyone."
s bob receive >"$T/r10" 2>&1
check "the delete is announced" contains "$T/r10" "alice deleted message $D"
s bob history alice >"$T/h5" 2>&1
check "a tombstone stays" contains "$T/h5" "alice: (message deleted)"
check "... without the text" lacks "$T/h5" "to be deleted"
s alice history bob >"$T/h6" 2>&1
check "the sender's history shows the tombstone too" contains "$T/h6" "(message deleted)"
check "the deleted text is in no record of bob's store" bash -c "! SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --find '$T/bob' 'to be deleted' >/dev/null"

# --- disappearing messages ----------------------------------------------------------
s alice timer bob 4s >"$T/t1" 2>&1
check "alice sets the timer" contains "$T/t1" "Disappearing messages with bob: 4 seconds."
s alice send bob "vanishing words" >/dev/null 2>&1
s bob receive >"$T/r11" 2>&1
check "bob sees who set the timer" contains "$T/r11" "alice set disappearing messages to 4 seconds"
check "bob gets the disappearing message" contains "$T/r11" "vanishing words"
s bob timer alice >"$T/t2" 2>&1
check "the timer is bob's too" contains "$T/t2" "Disappearing messages with alice: 4 seconds."
s bob send alice "vanishing reply" >/dev/null 2>&1
s alice receive >"$T/r12" 2>&1
check "bob's answer goes with the timer" contains "$T/r12" "bob (disappearing): vanishing reply"
s alice history bob >"$T/h7" 2>&1
check "alice's history shows you set it" contains "$T/h7" "you set disappearing messages to 4 seconds"
# Wait (bounded) until both histories lost the texts: the timer fires on open.
for i in $(seq 1 40); do
  s alice history bob >"$T/h8" 2>&1; s bob history alice >"$T/h9" 2>&1
  if lacks "$T/h8" "vanishing" && lacks "$T/h9" "vanishing"; then break; fi
  sleep 0.5
done
check "the timer fired on alice's side" lacks "$T/h8" "vanishing"
check "the timer fired on bob's side" lacks "$T/h9" "vanishing"
check "earlier messages stay" contains "$T/h9" "second, corrected"
for who in alice bob; do
  check "no record of $who's store holds the texts" bash -c "! SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --find '$T/$who' vanishing >/dev/null"
  check "no file of $who's home holds them in the clear" "$SCAN" "$T/$who" "vanishing words" "vanishing reply"
done
s alice timer bob off >/dev/null 2>&1
s bob receive >"$T/r13" 2>&1
check "turning it off is shown" contains "$T/r13" "alice turned disappearing messages off"

# A follow receiver deletes on time while it runs.
s alice timer bob 3s >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s alice send bob "follow vanishes" >/dev/null 2>&1
# (timeout(1) itself in the background, not the 's' function's subshell: a
# TERM to the subshell would leave sotto running, receiving behind the
# later commands' back)
timeout 60 "$SOTTO" --home "$T/bob" receive --follow >"$T/fo" 2>&1 &
FPID=$!
for i in $(seq 1 60); do grep -q "disappearing message deleted" "$T/fo" 2>/dev/null && break; sleep 0.5; done
kill -TERM $FPID 2>/dev/null; wait $FPID 2>/dev/null
check "receive --follow said a message disappeared" contains "$T/fo" "1 disappearing message deleted"
s bob --json history alice >"$T/h10" 2>&1
check "receive --follow showed it" contains "$T/fo" "follow vanishes"
check "... and it disappeared while following" lacks "$T/h10" "follow vanishes"
s alice timer bob off >/dev/null 2>&1
s bob receive >/dev/null 2>&1

# --- history --delete -------------------------------------------------------------------
s alice send bob "keep this" >/dev/null 2>&1
s alice --json send bob "remove this one" >"$T/x0" 2>&1
X=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/x0")
s bob receive >/dev/null 2>&1
s bob history --delete alice "$X" >"$T/x1" 2>&1
check "history --delete ID" contains "$T/x1" "Deleted 1 entry"
s bob history alice >"$T/x2" 2>&1
check "... that message is gone" lacks "$T/x2" "remove this one"
check "... the others stay" contains "$T/x2" "keep this"
check "... and it is in no record" bash -c "! SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --find '$T/bob' 'remove this one' >/dev/null"
s bob history --delete alice >/dev/null 2>&1
s bob history alice >"$T/x3" 2>&1
check "history --delete USER removes the conversation" lacks "$T/x3" "keep this"
check "... from every record" bash -c "! SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --find '$T/bob' 'keep this' >/dev/null"
s bob history --delete alice 12345 >"$T/x4" 2>&1; rc=$?
check "an unknown id is an error" test $rc -eq 1

# --- a queued change whose send fails for a lasting reason: kept, listed, retried, discarded
stop_server
s alice timer zed 1h >"$T/f1" 2>&1
s alice timer yan 2h >/dev/null 2>&1
check "timer changes for users not registered yet are queued while offline" contains "$T/f1" "Queued"
start_server
s alice receive >"$T/f2" 2>&1
check "the next connection's send fails for good, and says it is kept" contains "$T/f2" "kept among the failed changes"
s alice outbox >"$T/f3" 2>&1
check "sotto outbox lists both with why" contains "$T/f3" "timer to zed failed:"
check "... and yan's" contains "$T/f3" "timer to yan failed:"
s alice --json outbox >"$T/f3j" 2>&1
check "... --json names the change and the error" grep -q '"change":"timer".*"error":"' "$T/f3j"
SEQ=$(sed -n 's/^\([0-9]*\): timer to zed.*/\1/p' "$T/f3" | head -1)
s alice outbox retry "$SEQ" >"$T/f4" 2>&1
s alice outbox >"$T/f5" 2>&1
check "retried while zed still does not exist: kept again" contains "$T/f5" "timer to zed failed:"
SEQ=$(sed -n 's/^\([0-9]*\): timer to zed.*/\1/p' "$T/f5" | head -1)
new_user zed
s alice outbox retry "$SEQ" >"$T/f6" 2>&1
check "once zed exists, retry sends it" contains "$T/f6" "queued again"
s alice outbox >"$T/f7" 2>&1
check "... and it leaves the list" lacks "$T/f7" "timer to zed"
s zed receive >"$T/f8" 2>&1
check "zed gets the timer change" contains "$T/f8" "alice set disappearing messages to 1 hour"
YSEQ=$(sed -n 's/^\([0-9]*\): timer to yan.*/\1/p' "$T/f7" | head -1)
s alice outbox discard "$YSEQ" >"$T/f9" 2>&1
check "discard drops yan's" contains "$T/f9" "Change $YSEQ discarded."
s alice outbox >"$T/f10" 2>&1
check "... the list is empty" test ! -s "$T/f10"
s alice outbox discard 999 >"$T/f11" 2>&1
check "an unknown number is an error" contains "$T/f11" "no failed change 999"

finish
