# SPDX-License-Identifier: Apache-2.0
# test_kt_pending.sh: a new account is reachable once the key-transparency
# log took it (issue 12: "logging never becomes what limits registrations").
# The real sotto-server (--kt 1) answers a REGISTER before it logs the name
# (kt-pending-max); until the log has it, the server serves nothing of the
# account (ERR 44). Here --kt-log-delay-ms holds new names so that the
# window is wide enough to be hit on purpose:
#   - bob registers, alice writes to him at once: her client meets ERR 44,
#     waits and asks again (bounded, about 5 s), the message goes out once
#     bob is logged, and bob reads it;
#   - with names held longer than the client waits (a minute), alice's send
#     to carol fails with a plain sentence and nothing is sent or queued;
#     after a restart of the server (SIGKILL: carol is still waiting), carol
#     is logged at start and alice's next message reaches her.
source "$(dirname "$0")/lib.sh" "$@"

start_server --kt 1 --kt-log-delay-ms 1500
new_user alice
new_user bob
s alice send bob "hello right away" >"$T/a1" 2>&1
check "alice writes to bob right after he registered: sent (her client waited for the log)" \
  contains "$T/a1" "Sent to bob."
s bob receive >"$T/b1" 2>&1
check "... and bob reads it" contains "$T/b1" "alice: hello right away"

stop_server
start_server --kt 1 --kt-log-delay-ms 60000
new_user carol
s alice send carol "too early" >"$T/a2" 2>&1; rc=$?
check "alice's send to carol, not in the log after the client's wait, fails" test $rc -ne 0
check "... with a plain sentence" contains "$T/a2" "has not put carol's account into its public key-transparency log yet"
check "... and nothing of it was sent" lacks "$T/a2" "Sent to carol."
kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=
start_server --kt 1
s alice send carol "second try" >"$T/a3" 2>&1
check "after the restart carol is in the log: alice's next message goes out" contains "$T/a3" "Sent to carol."
s carol receive >"$T/c1" 2>&1
check "... and carol reads it" contains "$T/c1" "alice: second try"
check "... and only it (the refused one was not queued behind her back)" lacks "$T/c1" "too early"
finish
