# SPDX-License-Identifier: Apache-2.0
# test_expiry_notice.sh: envelopes that expire unread on the server are not
# silent. The server tells each sender (a NOTICE of its own, never a
# contact's message: "your message to bob sent at ... expired unread") and
# the recipient on its next connection ("N messages from alice expired on
# the server before you fetched them"), aggregated: 20 expired envelopes
# from alice to bob make one notice each side. The notices are shown once
# (acknowledged), in the human output and as structured --json events.
# The texts a notice names become "expired" in the sender's history (and
# leave its outbox: a retry request does not resend them).
# The expiry is made deterministic by restarting the server with a queue
# age of one second: its first expiry run (at start) takes everything.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
new_user carol
new_user dave
for i in $(seq 1 20); do s alice send bob "lost $i" >/dev/null 2>&1 || bad "send $i"; done
s alice send dave "to dave" >/dev/null 2>&1
s carol send bob "from carol" >/dev/null 2>&1
stop_server
sleep 1.2
start_server --max-queue-age-seconds 1 # the expiry run at start deletes them and queues the notices

s alice receive >"$T/a1" 2>&1; rc=$?
check "alice's receive: exit 0" test $rc -eq 0
check "alice is told 20 messages to bob expired unread" contains "$T/a1" \
  "20 of your messages to bob (the first sent at"
check "... in one notice (aggregated)" test "$(grep -c "messages to bob" "$T/a1")" -eq 1
check "alice is told her message to dave expired" contains "$T/a1" "your message to dave sent at"
check "... 'expired unread on the server'" contains "$T/a1" "expired unread on the server"
check "the notice is not shown as a message from anyone" lacks "$T/a1" ": lost"
s carol --json receive >"$T/c1" 2>&1
check "carol (--json): an expired_sent event" test -n "$(grep '"event":"expired_sent"' "$T/c1" | grep '"user":"bob"')"
check "... with its count and the server id of the send" test -n "$(grep '"event":"expired_sent"' "$T/c1" | grep '"count":1' | grep '"id":')"
check "... and the time it was sent" test -n "$(grep '"event":"expired_sent"' "$T/c1" | grep '"sent_at":')"
s carol --json history bob >"$T/ch" 2>&1
check "carol's history: the expired text is in state expired" \
  test -n "$(grep '"text":"from carol"' "$T/ch" | grep '"state":"expired"')"
s alice --json history dave >"$T/ah" 2>&1
check "alice's history: her text to dave is in state expired" \
  test -n "$(grep '"text":"to dave"' "$T/ah" | grep '"state":"expired"')"
s alice --json history bob >"$T/ahb" 2>&1
check "alice's history: texts to bob the notice named are in state expired" \
  test -n "$(grep '"text":"lost 1"' "$T/ahb" | grep '"state":"expired"')"
s bob receive >"$T/b1" 2>&1
check "bob is told 20 messages from alice expired before he fetched them" contains "$T/b1" \
  "20 messages from alice expired on the server before you fetched them"
check "bob is told about carol's too" contains "$T/b1" "1 message from carol expired on the server before you fetched it"
check "bob gets none of the expired texts" lacks "$T/b1" "lost 1"
s dave --json receive >"$T/d1" 2>&1
check "dave (--json): an expired_received event from alice" test -n "$(grep '"event":"expired_received"' "$T/d1" | grep '"user":"alice"')"
# Shown once: acknowledged like an envelope.
s alice receive >"$T/a2" 2>&1
check "the notices are not shown again" lacks "$T/a2" "expired"
s bob receive >"$T/b2" 2>&1
check "... nor to bob" lacks "$T/b2" "expired"
# They are in the history.
s alice history bob >"$T/h" 2>&1
check "alice's history of bob keeps the notice" contains "$T/h" "20 of your messages to bob"
# Messaging goes on after.
s alice send bob "after the expiry" >/dev/null 2>&1 && s bob receive >"$T/b3" 2>&1
check "a new message arrives normally" contains "$T/b3" "alice: after the expiry"
finish
