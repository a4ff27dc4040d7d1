# SPDX-License-Identifier: Apache-2.0
# test_multidevice_mirror.sh: what I do on one device shows on my others
# (docs/multi-device.md, "Sent transcripts" and "Groups across your
# devices"), with the real server and CLI: alice on two devices (primary
# and laptop, linked with 'sotto link' / 'sotto devices add'), bob on one.
#  - 1:1: a reply, a reaction, an edit, a delete for everyone, a
#    disappearing-message timer and a file sent on one of alice's devices
#    show on the other exactly as on the sending one (sent transcripts,
#    content kind 8); the timer is enforced there too (its texts go with it,
#    its copies disappear); an edit out of its window is refused there as
#    it is at bob's;
#  - groups: the same kinds inside the group's SenderKeyMessages show on
#    alice's other device as hers;
#  - accept once: a stranger's request (and group invitation) accepted,
#    blocked or deleted on one of alice's devices is so on the other
#    (CONSENT, content kind 9), which then shows the group's messages
#    without asking; a block made with the server stopped reaches the other
#    device after the primary reconnects (the queue of changes);
#  - the daemon's history marks a reaction made on the other device as
#    ours ("fromMe").
source "$(dirname "$0")/lib.sh" "$@"

start_server --device-change-burst 100
new_user alice
new_user bob

# id FILE TEXT: the timestamp (message id) of the JSON line holding TEXT.
id() { grep -F -- "\"text\":\"$2\"" "$1" | head -1 | sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p'; }
sent_id() { grep -F '"event":"sent"' "$1" | head -1 | sed -n 's/.*"timestamp":\([0-9]*\).*/\1/p'; }

s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice send bob "hi bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
check "alice links her laptop" link_device alice-laptop alice laptop
for h in alice alice-laptop bob; do s $h receive >/dev/null 2>&1; done

# --- 1:1 -------------------------------------------------------------------------
s bob --json send alice "bob asks" >"$T/b0" 2>&1
B=$(sent_id "$T/b0")
s alice receive >/dev/null 2>&1
s alice-laptop receive >"$T/l0" 2>&1
check "both of alice's devices get bob's text" contains "$T/l0" "bob: bob asks"
check "bob's message has an id" test -n "$B"

# a reply from the primary
s alice send --reply-to "$B" bob "primary replies" >/dev/null 2>&1
s alice-laptop receive >"$T/l1" 2>&1
check "the laptop shows the primary's reply as hers, with what it answers" \
  grep -qE "to bob( \([a-z]+\))? \(reply to bob #$B\): primary replies" "$T/l1"

# a reaction from the primary
s alice react bob "$B" "👍" >"$T/r2" 2>&1
check "alice reacts on her primary" test $? -eq 0
s alice-laptop receive >"$T/l2" 2>&1
check "the laptop says she reacted on another device" contains "$T/l2" "you reacted 👍 to message $B with bob (on another device)"
s alice-laptop history bob >"$T/lh2" 2>&1
check "... and the laptop's history carries the reaction as hers" contains "$T/lh2" "bob asks [👍 alice]"
printf '%s\n' '{"jsonrpc":"2.0","method":"history","params":{"recipient":"bob"},"id":1}' |
  timeout 60 "$SOTTO" --home "$T/alice-laptop" jsonrpc >"$T/lj2" 2>&1
check "... the daemon's history marks that reaction as hers (fromMe)" \
  grep -q '"event":"reaction","peer":"bob".*"emoji":"👍","fromMe":true' "$T/lj2"
s bob receive >"$T/b2" 2>&1
check "bob sees the reaction" contains "$T/b2" "alice reacted 👍 to message $B"

# an edit from the primary
s alice --json send bob "primary typo" >"$T/a3" 2>&1
A3=$(sent_id "$T/a3")
s alice-laptop receive >/dev/null 2>&1
s alice edit bob "$A3" "primary fixed" >"$T/e3" 2>&1
check "alice edits on her primary" contains "$T/e3" "Edited."
s alice-laptop receive >"$T/l3" 2>&1
check "the laptop says she edited it" contains "$T/l3" "you edited message $A3 to bob (on another device)"
s alice-laptop history bob >"$T/lh3" 2>&1
check "... the laptop shows the new text, marked (edited)" contains "$T/lh3" "primary fixed (edited)"
check "... the old text is gone there" lacks "$T/lh3" "primary typo"

# a delete for everyone from the laptop: the primary applies it
s alice-laptop --json send bob "laptop regrets" >"$T/a4" 2>&1
A4=$(sent_id "$T/a4")
s alice receive >"$T/p4" 2>&1
check "the primary shows the laptop's text as hers" grep -qE "to bob( \([a-z]+\))?: laptop regrets" "$T/p4"
s alice-laptop delete bob "$A4" >"$T/d4" 2>&1
check "alice deletes for everyone on her laptop" contains "$T/d4" "Deleted for everyone."
s alice receive >"$T/p4b" 2>&1
check "the primary says she deleted it" contains "$T/p4b" "you deleted message $A4 to bob (on another device)"
s alice history bob >"$T/ph4" 2>&1
check "... the primary keeps a tombstone" contains "$T/ph4" "(message deleted)"
check "... without the text" lacks "$T/ph4" "laptop regrets"
s bob receive >"$T/b4" 2>&1
check "bob got the delete too" contains "$T/b4" "alice deleted message $A4"

# an edit out of its window, forced out of the primary: refused on the laptop as at bob's
LATER=$(( $(date +%s) + 3 * 86400 ))
SOTTO_TEST_NOW=$LATER SOTTO_TEST_CONVO_FORCE=1 s alice edit bob "$A3" "too late" >/dev/null 2>&1
s alice-laptop receive >"$T/l5" 2>&1
check "the laptop refuses the primary's edit out of its window" contains "$T/l5" "alice's edit of message $A3 was refused: too late"
s alice-laptop history bob >"$T/lh5" 2>&1
check "... and keeps the text" contains "$T/lh5" "primary fixed (edited)"
s bob receive >/dev/null 2>&1

# a timer set on the primary is the laptop's too, and enforced there
s alice timer bob 1h >/dev/null 2>&1
s alice-laptop receive >"$T/l6" 2>&1
check "the laptop says she set the timer" contains "$T/l6" "you set disappearing messages to 1 hour"
s alice-laptop timer bob >"$T/lt6" 2>&1
check "... the laptop's timer with bob is 1 hour" contains "$T/lt6" "Disappearing messages with bob: 1 hour."
s bob receive >/dev/null 2>&1
s alice-laptop send bob "laptop under the timer" >/dev/null 2>&1
s bob receive >"$T/b6" 2>&1
check "the laptop's next text goes with the timer" contains "$T/b6" "alice (disappearing): laptop under the timer"
s alice receive >/dev/null 2>&1
s alice-laptop timer bob 3s >/dev/null 2>&1
s alice receive >"$T/p7" 2>&1
check "the primary takes the laptop's new timer" contains "$T/p7" "you set disappearing messages to 3 seconds"
s alice send bob "short lived" >/dev/null 2>&1
s alice-laptop receive >"$T/l7" 2>&1
check "the laptop shows the primary's disappearing text" grep -qE "to bob( \([a-z]+\))? \(disappearing\): short lived" "$T/l7"
for i in $(seq 1 40); do
  s alice-laptop history bob >"$T/lh7" 2>&1
  lacks "$T/lh7" "short lived" && break
  sleep 0.5
done
check "... and deletes its copy when the timer runs out" lacks "$T/lh7" "short lived"
s alice timer bob off >/dev/null 2>&1
s alice-laptop receive >"$T/l8" 2>&1
check "turning it off on the primary turns it off on the laptop" contains "$T/l8" "you turned disappearing messages off"
s bob receive >/dev/null 2>&1

# a file from the primary: the laptop fetches it and shows it as sent by her
head -c 150000 /dev/urandom >"$T/photo.bin"
s alice send bob --file "$T/photo.bin" "a photo" >"$T/f9" 2>&1
check "alice sends a file to bob on her primary" test $? -eq 0
s alice-laptop receive >"$T/l9" 2>&1
check "the laptop shows the file as sent by her" \
  contains "$T/l9" "file photo.bin (150000 bytes) sent to bob from another device, saved as downloads/photo.bin: a photo"
check "... with the same bytes" cmp -s "$T/photo.bin" "$T/alice-laptop/downloads/photo.bin"
s bob receive >"$T/b9" 2>&1
check "bob gets the file too (one fetch per device)" contains "$T/b9" "file from alice saved as downloads/photo.bin (150000 bytes): a photo"
check "... the same bytes" cmp -s "$T/photo.bin" "$T/bob/downloads/photo.bin"

# --- groups ------------------------------------------------------------------------
s alice group create team bob >/dev/null 2>&1
for h in alice-laptop bob; do s $h receive >/dev/null 2>&1; done
s bob --json group send team "bob in team" >"$T/g0" 2>&1
G=$(sent_id "$T/g0")
s alice receive >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice react '#team' "$G" "🎉" >"$T/g1" 2>&1
check "alice reacts in the group on her primary" test $? -eq 0
s alice-laptop receive >"$T/lg1" 2>&1
check "the laptop says she reacted in the group" contains "$T/lg1" "[team] you reacted 🎉 to message $G (on another device)"
s alice-laptop history team >"$T/lgh1" 2>&1
check "... and shows the reaction as hers" contains "$T/lgh1" "bob in team [🎉 alice]"

s alice --json group send team "group typo" >"$T/g2" 2>&1
GA=$(sent_id "$T/g2")
s alice-laptop receive >/dev/null 2>&1
s alice edit '#team' "$GA" "group fixed" >/dev/null 2>&1
s alice-laptop receive >"$T/lg2" 2>&1
check "the laptop says she edited her group message" contains "$T/lg2" "[team] you edited message $GA (on another device)"
s alice-laptop history team >"$T/lgh2" 2>&1
check "... the laptop shows the new text" contains "$T/lgh2" "group fixed (edited)"
check "... not the old one" lacks "$T/lgh2" "group typo"

s alice-laptop --json group send team "group regrets" >"$T/g3" 2>&1
GD=$(sent_id "$T/g3")
s alice receive >/dev/null 2>&1
s alice-laptop delete '#team' "$GD" >/dev/null 2>&1
s alice receive >"$T/pg3" 2>&1
check "the primary says she deleted her laptop's group message" contains "$T/pg3" "[team] you deleted message $GD (on another device)"
s alice history team >"$T/pgh3" 2>&1
check "... a tombstone, no text" lacks "$T/pgh3" "group regrets"

s alice-laptop send --reply-to "$G" "#team" "laptop answers bob" >/dev/null 2>&1
s alice receive >"$T/pg4" 2>&1
check "the primary shows the laptop's group reply as hers" contains "$T/pg4" "[team] to group (reply to bob #$G): laptop answers bob"

s alice timer '#team' 2h >/dev/null 2>&1
s alice-laptop receive >"$T/lg5" 2>&1
check "the laptop takes the group's timer" contains "$T/lg5" "[team] you set disappearing messages to 2 hours"
s alice-laptop timer '#team' >"$T/lgt5" 2>&1
check "... it is the laptop's setting too" contains "$T/lgt5" "2 hours"
s alice timer '#team' off >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1

head -c 70000 /dev/urandom >"$T/team.bin"
s alice send '#team' --file "$T/team.bin" >/dev/null 2>&1
s alice-laptop receive >"$T/lg6" 2>&1
check "the laptop shows the group file as sent by her" \
  contains "$T/lg6" "file team.bin (70000 bytes) sent to group team from another device, saved as downloads/team.bin"
check "... with the same bytes" cmp -s "$T/team.bin" "$T/alice-laptop/downloads/team.bin"
for h in alice bob; do s $h receive >/dev/null 2>&1; done

# --- accept once ---------------------------------------------------------------------
new_user eve
s eve group create party alice >/dev/null 2>&1
s eve group send party "party time" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice-laptop receive >"$T/lq0" 2>&1
check "the laptop holds eve's invitation as a request" contains "$T/lq0" "(request) [party] eve: party time"
s alice requests accept eve >"$T/q1" 2>&1
check "alice accepts eve on her primary" contains "$T/q1" "eve: accepted"
s alice-laptop receive >/dev/null 2>&1
s alice-laptop requests >"$T/lq1" 2>&1
check "the laptop no longer lists eve's request" lacks "$T/lq1" "eve"
s alice-laptop groups >"$T/lq2" 2>&1
check "the laptop has the group party" contains "$T/lq2" "party"
s alice-laptop history party >"$T/lq3" 2>&1
check "... its earlier message is no longer a request" lacks "$T/lq3" "(request)"
s eve group send party "more party" >/dev/null 2>&1
s alice-laptop receive >"$T/lq4" 2>&1
check "the laptop shows the group's next message without asking" contains "$T/lq4" "[party] eve: more party"
check "... not as a request" lacks "$T/lq4" "(request)"
s alice-laptop group send party "laptop joins in" >"$T/lq5" 2>&1
check "the laptop can write to the group" test $? -eq 0

new_user mallory
s mallory send alice "buy cheap watches" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice-laptop block mallory >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice block >"$T/k1" 2>&1
check "blocking on the laptop blocks on the primary" contains "$T/k1" "mallory (blocked)"
s mallory send alice "more watches" >/dev/null 2>&1
s alice receive >"$T/k2" 2>&1
check "... whose messages are then dropped there" lacks "$T/k2" "more watches"
s alice unblock mallory >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice-laptop block >"$T/k3" 2>&1
check "unblocking on the primary unblocks on the laptop" lacks "$T/k3" "mallory"

new_user frank
s frank send alice "spam from frank" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice requests delete frank >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice-laptop history frank >"$T/x1" 2>&1
check "a request deleted on the primary is deleted on the laptop" lacks "$T/x1" "spam from frank"

# a decision made without a server waits and reaches the other device later
new_user gina
s gina send alice "gina's offer" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
stop_server
s alice block gina >"$T/o1" 2>&1
check "alice blocks gina on her primary with the server stopped" test $? -eq 0
start_server --device-change-burst 100
s alice receive >/dev/null 2>&1
s alice-laptop receive >/dev/null 2>&1
s alice-laptop block >"$T/o2" 2>&1
check "the laptop blocks gina once the primary reconnected" contains "$T/o2" "gina (blocked)"

finish
