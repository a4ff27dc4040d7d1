# SPDX-License-Identifier: Apache-2.0
# test_errors.sh: every error a person meets is one line that says what is
# wrong and what to do: wrong passphrase (the store untouched, byte for
# byte), not initialised, server unreachable, unknown user, queue full,
# usage mistakes.
# The real client binary with the real Argon2id limits (see lib.sh).
export SOTTO_TEST_REAL_KDF=1
source "$(dirname "$0")/lib.sh" "$@"

start_server --max-queue 3
new_user alice
new_user bob

# Wrong passphrase: refused, and not a byte of the store changes.
s alice send bob "before" >/dev/null 2>&1
cp "$T/alice/sotto.db" "$T/before.db"
(cd "$T/alice" && stat -c "%n %s %y" . *) >"$T/ls_before"
SOTTO_PASSPHRASE="wrong horse" s alice send bob "never sent" >"$T/e1" 2>&1; rc=$?
check "wrong passphrase: exit 1" test $rc -eq 1
check "wrong passphrase: says so and what to do" contains "$T/e1" "wrong passphrase for the store in $T/alice (nothing was changed)"
check "wrong passphrase: one line" test "$(wc -l <"$T/e1")" -eq 1
SOTTO_PASSPHRASE="wrong horse" s alice receive >/dev/null 2>&1
SOTTO_PASSPHRASE="wrong horse" s alice verify bob 1 >/dev/null 2>&1
check "wrong passphrase: store file identical byte for byte" cmp -s "$T/alice/sotto.db" "$T/before.db"
(cd "$T/alice" && stat -c "%n %s %y" . *) >"$T/ls_after"
check "wrong passphrase: no file created, changed or removed in the home" cmp -s "$T/ls_before" "$T/ls_after"
SOTTO_PASSPHRASE= s alice receive >"$T/e1b" 2>&1
check "empty SOTTO_PASSPHRASE: actionable" contains "$T/e1b" "SOTTO_PASSPHRASE is set but empty"
s bob receive >"$T/r0" 2>&1
check "the message sent with the right passphrase arrived" contains "$T/r0" "alice: before"
check "the one with the wrong passphrase did not" lacks "$T/r0" "never sent"

# Not initialised.
s nobody send bob hi >"$T/e2" 2>&1; rc=$?
check "no identity: exit 1 and 'run sotto init first'" test $rc -eq 1 -a -n "$(grep "run 'sotto init' first" "$T/e2")"
s alice init >"$T/e2b" 2>&1
check "init twice is refused" contains "$T/e2b" "already holds a sotto identity"
s carol init >/dev/null 2>&1; s carol send bob hi >"$T/e2c" 2>&1
check "not registered: says to register" contains "$T/e2c" "sotto register --server HOST:PORT USERNAME"

# Unknown user.
s alice send nosuchuser "hello?" >"$T/e3" 2>&1; rc=$?
check "unknown user: exit 1" test $rc -eq 1
check "unknown user: says so" contains "$T/e3" "there is no user 'nosuchuser' on 127.0.0.1:$PORT; check the spelling"

# Queue full: bob's queue holds 3 envelopes on this server.
for i in 1 2 3; do s alice send bob "fill $i" >/dev/null 2>&1; done
s alice send bob "one too many" >"$T/e4" 2>&1; rc=$?
check "queue full: exit 1" test $rc -eq 1
check "queue full: says so and what to do" contains "$T/e4" "bob's message queue on the server is full"
s bob receive >"$T/r1" 2>&1
check "the queued ones arrive" contains "$T/r1" "alice: fill 3"
s alice send bob "room again" >/dev/null 2>&1
s bob receive >"$T/r2" 2>&1
check "after receiving, there is room again" contains "$T/r2" "alice: room again"

# Usage mistakes.
s alice send >"$T/e5" 2>&1; rc=$?
check "usage error: exit 2 with a pointer to --help" test $rc -eq 2 -a -n "$(grep "sotto send --help" "$T/e5")"
s alice frobnicate >"$T/e6" 2>&1; rc=$?
check "unknown command: exit 2" test $rc -eq 2
s alice send "Bad Name" hi >"$T/e7" 2>&1
check "invalid username: explained" contains "$T/e7" "is not a valid username"
s alice --json send nosuchuser hi >"$T/e8" 2>/dev/null
check "--json errors are JSON objects" contains "$T/e8" '{"event":"error","error":"unknown_user",'

# Server unreachable.
stop_server
s alice receive >"$T/e9" 2>&1; rc=$?
check "server down: exit 1" test $rc -eq 1
check "server down: says so and what to do" contains "$T/e9" "cannot reach the server at 127.0.0.1:$PORT: is it running?"
check "server down: one line" test "$(wc -l <"$T/e9")" -eq 1
# A send is not lost: it is queued (exit 0) and said so in one line.
s alice send bob "into the void" >"$T/e10" 2>&1; rc=$?
check "server down: a send is queued, exit 0" test $rc -eq 0
check "... said in one line" test "$(cat "$T/e10")" = "Queued for bob (server unreachable); will be sent when the server is back."
finish
