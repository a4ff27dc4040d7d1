# SPDX-License-Identifier: Apache-2.0
# test_spqr_migration.sh: a client store from before SPQR was the default
# (issue 13). A stored session without SPQR (PQXDH only, as a client made it
# before) is no longer used for sending: the next message starts a fresh
# PQXDH + SPQR session from a bundle, which the peer opens. Without that
# rule the message would go out on the old session and the peer would refuse
# it (a version 4 start without SPQR is a downgrade).
source "$(dirname "$0")/lib.sh" "$@"
[ -x "$SCAN" ] || { echo "FAIL: client_store_scan is not built"; exit 1; }

start_server
new_user alice
new_user bob
s alice send bob "before the upgrade" >/dev/null 2>&1
s bob receive >"$T/r1" 2>&1
check "a new session carries the first message" contains "$T/r1" "alice: before the upgrade"
check "alice's new session with bob runs SPQR" "$SCAN" --spqr "$T/alice" bob

# Alice's store as an older client left it: a current session without SPQR
# (bob's real identity key, fresh pre-keys signed with it).
check "an old session without SPQR is planted in alice's store" \
  "$SCAN" --plant-old-session "$T/alice" "$T/bob" bob
check "... and it does not run SPQR" test "$("$SCAN" --spqr "$T/alice" bob >/dev/null; echo $?)" = 1

s alice send bob "after the upgrade" >"$T/s2" 2>&1
check "alice's send succeeds" test $? = 0
check "alice's session with bob runs SPQR again (a fresh one from a bundle)" "$SCAN" --spqr "$T/alice" bob
s bob receive >"$T/r2" 2>&1
check "bob opens the message of the fresh session" contains "$T/r2" "alice: after the upgrade"
check "... and reports nothing unreadable" lacks "$T/r2" "unreadable"
s bob send alice "and back" >/dev/null 2>&1
s alice receive >"$T/r3" 2>&1
check "bob's reply on the fresh session opens" contains "$T/r3" "bob: and back"
finish
