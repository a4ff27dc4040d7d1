# SPDX-License-Identifier: Apache-2.0
# test_convo_group.sh: the group versions of the conversation features
# (issue 14; docs/client.md, "Conversations"), with the real server and the
# real client, three members:
# - replies, reactions, edits and deletes inside the group's sender-key
#   messages, shown to every member; edits and deletes of someone else's
#   message refused by the sender's client and (a modified client) by every
#   receiver; a removed member's changes reach nobody;
# - the group's disappearing timer: shown to every member as an event, and
#   enforced on every member's device (history and every store record
#   scanned afterwards: the text is gone);
# - receipts held while a stranger's message sits in requests, sent when
#   the user accepts.
source "$(dirname "$0")/lib.sh" "$@"
[ -x "$SCAN" ] || { echo "FAIL: client_store_scan is not built"; exit 1; }

start_server
new_user alice
new_user bob
new_user carol
new_user dave
new_user zed
new_user yuri

# id FILE TEXT: the timestamp (message id) of the JSON line holding TEXT.
id() { grep -F -- "\"text\":\"$2\"" "$1" | head -1 | sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p'; }
scan_lacks() { ! SOTTO_PASSPHRASE="$SOTTO_PASSPHRASE" "$SCAN" --find "$T/$1" "$2" >/dev/null; }

# Contacts first (a group invitation from a stranger waits; test_convo.sh).
for p in "alice bob" "alice carol" "alice dave" "bob carol" "bob dave" "carol dave"; do
  set -- $p
  s "$1" send "$2" "hello $2" >/dev/null 2>&1
  s "$2" receive >/dev/null 2>&1
  s "$2" send "$1" "hello $1" >/dev/null 2>&1
  s "$1" receive >/dev/null 2>&1
done
s alice group create crew bob carol dave >/dev/null 2>&1
for u in bob carol dave; do s "$u" receive >/dev/null 2>&1; done

# --- replies, reactions, edits, deletes ----------------------------------------------
s alice --json send '#crew' "alice says hi" >"$T/s1" 2>&1
check "send '#GROUP' sends to the group" grep -q '"text":"alice says hi"' "$T/s1"
for u in bob carol dave; do s "$u" receive >"$T/r1.$u" 2>&1; done
check "carol got it" contains "$T/r1.carol" "[crew] alice: alice says hi"
s bob --json history crew >"$T/b1" 2>&1
A1=$(id "$T/b1" "alice says hi")
check "the group message has an id" test -n "$A1"

s bob send --reply-to "$A1" '#crew' "bob replies" >"$T/s2" 2>&1
check "a group reply is sent" contains "$T/s2" "Sent"
for u in alice carol dave; do s "$u" receive >"$T/r2.$u" 2>&1; done
for u in alice carol; do
  check "$u sees the reply with what it answers" contains "$T/r2.$u" "[crew] bob (reply to alice #$A1): bob replies"
done
s carol react '#crew' "$A1" "🎉" >"$T/s3" 2>&1
check "a group reaction is sent" contains "$T/s3" "Reacted."
for u in alice bob dave; do s "$u" receive >"$T/r3.$u" 2>&1; done
check "alice sees carol's reaction" contains "$T/r3.alice" "[crew] carol reacted 🎉 to message $A1"
check "dave sees it too" contains "$T/r3.dave" "[crew] carol reacted 🎉 to message $A1"
s bob history crew >"$T/h1" 2>&1
check "bob's history shows the reaction on the message" contains "$T/h1" "alice says hi [🎉 carol]"

s alice edit '#crew' "$A1" "alice says hello" >"$T/s4" 2>&1
check "alice edits her group message" contains "$T/s4" "Edited."
for u in bob carol dave; do s "$u" receive >"$T/r4.$u" 2>&1; done
check "the edit is announced in the group" contains "$T/r4.bob" "[crew] alice edited message $A1"
for u in bob carol dave; do
  s "$u" history crew >"$T/h2.$u" 2>&1
  check "$u's history shows the new text (edited)" contains "$T/h2.$u" "alice says hello (edited)"
  check "... the old text is in no record of $u's store" scan_lacks "$u" "alice says hi"
done

# Someone else's message: refused by the sender, and by every receiver.
s bob edit '#crew' "$A1" "bob forges" >"$T/f1" 2>&1
check "editing another member's message is refused by the sender" contains "$T/f1" "not yours"
s bob delete '#crew' "$A1" >"$T/f2" 2>&1
check "... deleting it too" contains "$T/f2" "not yours"
SOTTO_TEST_CONVO_FORCE=1 s bob edit '#crew' "$A1" "forged by bob" >/dev/null 2>&1
SOTTO_TEST_CONVO_FORCE=1 s bob delete '#crew' "$A1" >/dev/null 2>&1
for u in alice carol dave; do s "$u" receive >"$T/r5.$u" 2>&1; done
for u in alice carol dave; do
  check "$u refuses the forged edit" contains "$T/r5.$u" "[crew] bob's edit of message $A1 was refused: they did not write it"
  check "$u refuses the forged delete" contains "$T/r5.$u" "[crew] bob's delete of message $A1 was refused: they did not write it"
  s "$u" history crew >"$T/h3.$u" 2>&1
  check "... $u's copy is untouched" contains "$T/h3.$u" "alice says hello (edited)"
  check "... without the forged text" lacks "$T/h3.$u" "forged by bob"
done

# Out of the window (the clock moved 3 days, test hook).
LATER=$(( $(date +%s) + 3 * 86400 ))
SOTTO_TEST_NOW=$LATER s alice delete '#crew' "$A1" >"$T/w1" 2>&1
check "a group delete after 48 hours is refused by the sender" contains "$T/w1" "can no longer be deleted"
SOTTO_TEST_NOW=$LATER SOTTO_TEST_CONVO_FORCE=1 s alice delete '#crew' "$A1" >/dev/null 2>&1
s carol receive >"$T/w2" 2>&1
check "... and by a receiver" contains "$T/w2" "[crew] alice's delete of message $A1 was refused: too late"
for u in alice bob dave; do s "$u" receive >/dev/null 2>&1; done

s bob --json send '#crew' "bob will delete this" >"$T/d0" 2>&1
D=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/d0")
for u in alice carol dave; do s "$u" receive >/dev/null 2>&1; done
s bob delete '#crew' "$D" >"$T/d1" 2>&1
check "a group delete for everyone" contains "$T/d1" "Deleted for everyone."
for u in alice carol dave; do s "$u" receive >"$T/d2.$u" 2>&1; done
for u in alice carol dave; do
  check "$u sees the delete" contains "$T/d2.$u" "[crew] bob deleted message $D"
  s "$u" history crew >"$T/d3.$u" 2>&1
  check "$u keeps a tombstone" contains "$T/d3.$u" "bob: (message deleted)"
  check "... the text is in no record of $u's store" scan_lacks "$u" "bob will delete this"
done

# A removed member's changes reach nobody.
s dave --json history crew >"$T/dv" 2>&1
s dave --json send '#crew' "dave was here" >"$T/dv1" 2>&1
DV=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/dv1")
for u in alice bob carol; do s "$u" receive >/dev/null 2>&1; done
s alice group remove crew dave >/dev/null 2>&1
for u in bob carol dave; do s "$u" receive >/dev/null 2>&1; done
s dave edit '#crew' "$DV" "dave after removal" >"$T/dv2" 2>&1
check "a removed member cannot change group messages" grep -q "no group called 'crew'" "$T/dv2"
for u in alice bob carol; do
  s "$u" history crew >"$T/dv3.$u" 2>&1
  check "... $u keeps dave's message as it was" contains "$T/dv3.$u" "dave: dave was here"
done
s zed edit '#crew' "$A1" "zed" >"$T/z1" 2>&1
check "a non-member cannot name the group" grep -q "no group called 'crew'" "$T/z1"

# --- the group timer --------------------------------------------------------------------
s carol timer '#crew' 4s >"$T/t1" 2>&1
check "carol sets the group timer" contains "$T/t1" "Disappearing messages in crew: 4 seconds."
for u in alice bob; do s "$u" receive >"$T/t2.$u" 2>&1; done
check "alice sees who set it" contains "$T/t2.alice" "[crew] carol set disappearing messages to 4 seconds"
check "bob sees who set it" contains "$T/t2.bob" "[crew] carol set disappearing messages to 4 seconds"
s bob timer '#crew' >"$T/t3" 2>&1
check "the group timer is bob's too" contains "$T/t3" "Disappearing messages in crew: 4 seconds."
s alice send '#crew' "vanishing group words" >/dev/null 2>&1
s bob group send crew "vanishing group reply" >/dev/null 2>&1
for u in alice bob carol; do s "$u" receive >"$T/t4.$u" 2>&1; done
check "carol gets alice's disappearing message" contains "$T/t4.carol" "[crew] alice (disappearing): vanishing group words"
check "alice gets bob's" contains "$T/t4.alice" "[crew] bob (disappearing): vanishing group reply"
for i in $(seq 1 40); do
  all=1
  for u in alice bob carol; do
    s "$u" history crew >"$T/t5.$u" 2>&1
    grep -q vanishing "$T/t5.$u" && all=0
  done
  [ $all = 1 ] && break
  sleep 0.5
done
for u in alice bob carol; do
  check "the group timer fired on $u's device" lacks "$T/t5.$u" "vanishing"
  check "... earlier messages stay with $u" contains "$T/t5.$u" "bob replies"
  check "... no record of $u's store holds the texts" scan_lacks "$u" "vanishing group"
  check "... no file of $u's home holds them in the clear" "$SCAN" "$T/$u" "vanishing group words" "vanishing group reply"
done
s alice timer '#crew' off >/dev/null 2>&1
s carol receive >"$T/t6" 2>&1
check "turning the group timer off is shown" contains "$T/t6" "[crew] alice turned disappearing messages off"

# --- held receipts ---------------------------------------------------------------------
s zed send alice "zed asks" >/dev/null 2>&1
s alice receive >"$T/q1" 2>&1
check "zed's message is a request" contains "$T/q1" "(request) zed: zed asks"
s zed receive >/dev/null 2>&1
s zed --json history alice >"$T/q2" 2>&1
check "no receipt while it sits in requests" grep -q '"text":"zed asks".*"state":"sent"' "$T/q2"
s alice requests accept zed >/dev/null 2>&1   # sends the held receipt at once
s zed receive >/dev/null 2>&1
s zed --json history alice >"$T/q3" 2>&1
check "accepting sends the held receipt" grep -q '"text":"zed asks".*"state":"delivered"' "$T/q3"
s alice history zed >"$T/q4" 2>&1
check "the accepted message is no longer marked a request" lacks "$T/q4" "(request)"

# --- changes made while the server is down ---------------------------------------------
s alice --json send '#crew' "group target" >"$T/o0" 2>&1
G=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/o0")
s alice --json send '#crew' "group doomed" >"$T/o1" 2>&1
GD=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/o1")
s alice --json send bob "direct target" >"$T/o2" 2>&1
P=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/o2")
s alice --json send bob "direct doomed" >"$T/o3" 2>&1
PD=$(sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p' "$T/o3")
for u in bob carol; do s "$u" receive >/dev/null 2>&1; done
s alice receive >/dev/null 2>&1
stop_server
s alice edit '#crew' "$G" "group target, edited offline" >"$T/o4" 2>&1; rc=$?
check "a group edit with the server down is queued" contains "$T/o4" "Edited. Queued (server unreachable)"
check "... exit status 0" test $rc -eq 0
s alice delete '#crew' "$GD" >"$T/o5" 2>&1
check "a group delete is queued" contains "$T/o5" "Queued (server unreachable)"
s alice react '#crew' "$G" "🔥" >"$T/o6" 2>&1
check "a group reaction is queued" contains "$T/o6" "Reacted. Queued"
s alice timer '#crew' 1h >"$T/o7" 2>&1
check "a group timer change is queued" contains "$T/o7" "Disappearing messages in crew: 1 hour. Queued"
s alice group send crew "group text offline" >"$T/o8" 2>&1
check "a group text is queued" contains "$T/o8" "Queued for group crew (server unreachable)"
s alice edit bob "$P" "direct target, edited offline" >"$T/o9" 2>&1
check "a 1:1 edit is queued" contains "$T/o9" "Edited. Queued"
s alice delete bob "$PD" >/dev/null 2>&1
s alice react bob "$P" "👀" >/dev/null 2>&1
s alice timer bob 2h >"$T/o10" 2>&1
check "a 1:1 timer change is queued" contains "$T/o10" "Disappearing messages with bob: 2 hours. Queued"
s alice history crew >"$T/o11" 2>&1
check "the sender's history has the changes already" contains "$T/o11" "group target, edited offline (edited) [🔥 alice]"
check "nine changes wait in alice's queue" bash -c "SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --has '$T/alice' cq/00000000000000000009"
start_server
s alice receive >/dev/null 2>&1   # the next connection sends what waits
for u in bob carol; do s "$u" receive >"$T/o12.$u" 2>&1; done
for u in bob carol; do
  check "$u gets the queued group edit" contains "$T/o12.$u" "[crew] alice edited message $G"
  check "$u gets the queued group delete" contains "$T/o12.$u" "[crew] alice deleted message $GD"
  check "$u gets the queued group reaction" contains "$T/o12.$u" "[crew] alice reacted 🔥 to message $G"
  check "$u gets the queued group timer" contains "$T/o12.$u" "[crew] alice set disappearing messages to 1 hour"
  check "$u gets the queued group text" contains "$T/o12.$u" "[crew] alice (disappearing): group text offline"
  s "$u" history crew >"$T/o13.$u" 2>&1
  check "... $u's history has the edited text" contains "$T/o13.$u" "alice: group target, edited offline (edited) [🔥 alice]"
  check "... and the tombstone" lacks "$T/o13.$u" "group doomed"
done
check "bob gets the queued 1:1 edit" contains "$T/o12.bob" "alice edited message $P"
check "bob gets the queued 1:1 delete" contains "$T/o12.bob" "alice deleted message $PD"
check "bob gets the queued 1:1 reaction" contains "$T/o12.bob" "alice reacted 👀 to message $P"
check "bob gets the queued 1:1 timer" contains "$T/o12.bob" "alice set disappearing messages to 2 hours"
s alice receive >"$T/o14" 2>&1
s alice timer '#crew' >"$T/o15" 2>&1
left=0
for i in 1 2 3 4 5 6 7 8 9; do
  SOTTO_PASSPHRASE="$SOTTO_PASSPHRASE" "$SCAN" --has "$T/alice" "cq/0000000000000000000$i" >/dev/null && left=$((left + 1))
done
check "... none waits after they went out" test $left -eq 0
check "... and the queue's index is gone" bash -c "SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --has '$T/alice' cq >/dev/null; [ \$? -eq 1 ]"
s bob receive >"$T/o16" 2>&1
check "... bob gets no copy twice" lacks "$T/o16" "edited message"

# --- group invitations from a stranger: accepted or declined ----------------------------
s yuri group create spam alice carol >/dev/null 2>&1
s yuri group send spam "spam text" >/dev/null 2>&1
for u in alice carol; do s "$u" receive >"$T/y1.$u" 2>&1; done
check "carol's copy is marked a request" contains "$T/y1.carol" "(request) [spam] yuri: spam text"
s alice requests >"$T/y2" 2>&1
check "alice has the invitation in requests" contains "$T/y2" "group spam (invited by yuri)"
s alice block yuri >/dev/null 2>&1
s alice requests >"$T/y3" 2>&1
check "blocking the inviter declines the invitation" lacks "$T/y3" "spam"
s alice history spam >"$T/y4" 2>&1
check "... the group's messages are gone" lacks "$T/y4" "spam text"
check "... from every record of alice's store" scan_lacks alice "spam text"
s alice groups >"$T/y5" 2>&1
check "... and the group" lacks "$T/y5" "spam"
s carol requests accept yuri >/dev/null 2>&1
s carol groups >"$T/y6" 2>&1
check "accepting the inviter accepts the group" contains "$T/y6" "spam"
s carol history spam >"$T/y7" 2>&1
check "... its messages are no longer marked requests" lacks "$T/y7" "(request)"
check "... and stay" contains "$T/y7" "yuri: spam text"

# The queue is bounded: 128 changes wait at most, the next is refused, nothing lost.
stop_server
for i in $(seq 1 128); do s alice react bob "$P" "$((i % 10))" >/dev/null 2>&1; done
s alice react bob "$P" "x" >"$T/full" 2>&1; rc=$?
check "the 129th queued change is refused" contains "$T/full" "128 changes wait already: nothing was queued"
check "... with an error status" test $rc -ne 0
check "... the 128 stay queued" bash -c "SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' '$SCAN' --has '$T/alice' cq/00000000000000000128"

finish
