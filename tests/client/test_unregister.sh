# SPDX-License-Identifier: Apache-2.0
# test_unregister.sh: an account can be deleted, and a name taken back.
# - 'sotto unregister' asks (refused without a terminal or --yes), then the
#   account is gone on the server (devices, keys, queue): contacts are told
#   there is no such user; the name is held for the quarantine (7 days by
#   default, username-quarantine-seconds in tests) and refused to anyone, then
#   free; the home stays readable, marked unregistered;
# - the recovery code printed at registration lets a new home take the name
#   back with a new identity after every device was lost: a wrong code and a
#   typo are refused, the code works once, the old device is locked out, and
#   the contact sees the identity change, must verify the new key, and the
#   conversation continues.
source "$(dirname "$0")/lib.sh" "$@"

json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2"; }
number() { s "$1" --json safety-number "$2" 2>/dev/null | sed -n 's/.*"number":"\([0-9]*\)".*/\1/p'; }

start_server
new_user alice
new_user bob
check "register prints a recovery code" contains "$T/bob.reg" "Recovery code"
s alice send bob "hello bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "hello alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s bob send alice "waiting in alice's queue" >/dev/null 2>&1

# --- unregister ---------------------------------------------------------------
s alice unregister </dev/null >"$T/u0" 2>&1; rc=$?
check "unregister without a terminal or --yes is refused" test $rc -eq 1
check "... and says so" contains "$T/u0" "nothing was deleted"
s bob send alice "still there?" >"$T/u0s" 2>&1
check "... the account is still there" contains "$T/u0s" "Sent to alice."
s alice unregister --yes >"$T/u1" 2>&1
check "unregister --yes deletes the account" contains "$T/u1" "Deleted the account 'alice'"
stop_server
check "... no account row is left" test "$(sql "SELECT count(*) FROM accounts WHERE username = 'alice';")" = 0
check "... no device, key or queued envelope of it" \
  test "$(sql "SELECT (SELECT count(*) FROM devices WHERE account_id NOT IN (SELECT id FROM accounts))
                    + (SELECT count(*) FROM onetime WHERE devkey NOT IN (SELECT devkey FROM devices))
                    + (SELECT count(*) FROM signed_prekeys WHERE devkey NOT IN (SELECT devkey FROM devices))
                    + (SELECT count(*) FROM messages WHERE devkey NOT IN (SELECT devkey FROM devices));")" = 0
held=$(sql "SELECT until_ms - CAST(strftime('%s','now') AS INTEGER) * 1000 FROM held_names WHERE canon = 'alice';")
check "... the name is held for about 7 days (the default)" test "${held:-0}" -gt 600000000 -a "${held:-0}" -le 604801000
start_server
s bob send alice "are you gone?" >"$T/u2" 2>&1; rc=$?
check "a contact learns the account is gone" test $rc -eq 1
check "... clearly" contains "$T/u2" "there is no user 'alice'" || cat "$T/u2"
s alice contacts >"$T/u3" 2>&1
check "the unregistered home stays readable" contains "$T/u3" "bob"
s alice history bob >"$T/u4" 2>&1
check "... with its history" contains "$T/u4" "hello alice"
s alice send bob "from the unregistered home" >"$T/u5" 2>&1; rc=$?
check "... but it cannot send (not registered)" test $rc -eq 1 -a -n "$(grep 'not registered' "$T/u5")"

s mallory init >/dev/null 2>&1
s mallory register --server "127.0.0.1:$PORT" alice >"$T/q1" 2>&1; rc=$?
check "during the quarantine nobody can register the name" test $rc -eq 1
check "... with a clear reason" contains "$T/q1" "is held on 127.0.0.1:$PORT for the server's quarantine"
s mallory register --server "127.0.0.1:$PORT" a1ice >"$T/q2" 2>&1; rc=$?
check "... nor a look-alike of it (a1ice)" test $rc -eq 1 -a -n "$(grep quarantine "$T/q2")"
# The quarantine ends (moved to the past in the stopped server's database).
stop_server
sql "UPDATE held_names SET until_ms = 0 WHERE canon = 'alice';"
# (10 s: the "held right after" check below runs a client process within it,
# which a loaded sanitizer build can take seconds for)
start_server --username-quarantine-seconds 10 --register-prefix-burst 200
s dave init >/dev/null 2>&1
# What the old alice sent and bob has not fetched yet names its sender
# 'alice': while it waits, the name stays held.
check "alice's last messages still wait in bob's queue" \
  test "$(sql "SELECT count(*) FROM messages WHERE sender = 'alice';")" -gt 0
s dave register --server "127.0.0.1:$PORT" alice >"$T/q3a" 2>&1; rc=$?
check "... so the name is still held after the quarantine" test $rc -eq 1 -a -n "$(grep quarantine "$T/q3a")"
s bob receive >"$T/q3b" 2>&1
s dave register --server "127.0.0.1:$PORT" alice >"$T/q3" 2>&1
check "once bob has them, the name is free again" contains "$T/q3" "Registered 'alice'"
s dave send bob "I am the new alice" >/dev/null 2>&1
s bob receive >"$T/q4" 2>&1
check "bob sees the new alice as a changed key, held" contains "$T/q4" "from a new, unverified key claiming to be alice (held"

# A short quarantine from the configuration: refused at once, free once it ends.
new_user erin
s mallory2 init >/dev/null 2>&1
s erin unregister --yes >/dev/null 2>&1
s mallory2 register --server "127.0.0.1:$PORT" erin >"$T/e1" 2>&1
check "erin is held right after unregister" contains "$T/e1" "quarantine"
for i in $(seq 1 120); do
  s mallory2 register --server "127.0.0.1:$PORT" erin >"$T/e2" 2>&1 && break
  sleep 0.5
done
check "... and free after username-quarantine-seconds" contains "$T/e2" "Registered 'erin'"

# --- recovery code ------------------------------------------------------------
s carol init >/dev/null 2>&1
s carol --json register --server "127.0.0.1:$PORT" carol >"$T/c.reg" 2>&1
code=$(json_field recovery_code "$T/c.reg")
check "the recovery code is 16 groups of 4 hex digits" \
  sh -c "echo '$code' | grep -Eq '^([0-9a-f]{4}-){15}[0-9a-f]{4}$'"
s carol send bob "hi, carol here" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
n_old=$(number bob carol)
check "bob verifies carol" s bob verify carol "$n_old"
s bob send carol "hi carol" >/dev/null 2>&1
s carol receive >/dev/null 2>&1

# carol loses her home (kept aside only to show the old device is locked out).
mv "$T/carol" "$T/carol_lost"
s carol init >/dev/null 2>&1
SOTTO_RECOVERY_CODE="0000-1111-2222-3333-4444-5555-6666-7777-8888-9999-aaaa-bbbb-cccc-dddd-eeee-ffff" \
  s carol register --recover --server "127.0.0.1:$PORT" carol >"$T/rc0" 2>&1; rc=$?
check "a code with a bad check is refused locally" test $rc -eq 1 -a -n "$(grep 'has a typo' "$T/rc0")"
s x init >/dev/null 2>&1
s x --json register --server "127.0.0.1:$PORT" xavier >"$T/x.reg" 2>&1
xcode=$(json_field recovery_code "$T/x.reg")
SOTTO_RECOVERY_CODE="$xcode" s carol register --recover --server "127.0.0.1:$PORT" carol >"$T/rc1" 2>&1; rc=$?
check "another account's code is refused" test $rc -eq 1
check "... clearly" contains "$T/rc1" "the server refused to recover 'carol'"
s bob send carol "still the old carol" >"$T/rc1s" 2>&1
check "... and the account is untouched" contains "$T/rc1s" "Sent to carol."
SOTTO_RECOVERY_CODE="$code" s carol --json register --recover --server "127.0.0.1:$PORT" carol >"$T/rc2" 2>&1
check "the right code takes the name back" contains "$T/rc2" '"recovered":true'
code2=$(json_field recovery_code "$T/rc2")
check "... and a new recovery code is given" test -n "$code2" -a "$code2" != "$code"
s y init >/dev/null 2>&1
SOTTO_RECOVERY_CODE="$code" s y register --recover --server "127.0.0.1:$PORT" carol >"$T/rc3" 2>&1; rc=$?
check "the used code does not work again" test $rc -eq 1
s carol_lost receive >"$T/rc4" 2>&1; rc=$?
check "the old device is locked out" test $rc -eq 1 -a -n "$(grep "refused this device's credentials" "$T/rc4")"

s carol send bob "carol again, new phone" >/dev/null 2>&1
s bob receive >"$T/rc5" 2>&1
check "bob sees carol's identity change (held)" \
  contains "$T/rc5" "from a new, unverified key claiming to be carol (held"
s bob send carol "is that you?" </dev/null >"$T/rc6" 2>&1; rc=$?
check "bob, who verified carol, sends nothing to the new key" test $rc -eq 1
check "... and is told why" contains "$T/rc6" "identity key changed since you verified it"
n_new=$(number bob carol)
check "the safety number changed" test -n "$n_new" -a "$n_new" != "$n_old"
check "bob verifies carol's new key" s bob verify carol "$n_new"
s bob history carol >"$T/rc7" 2>&1
check "... which releases her held message" contains "$T/rc7" "carol: carol again, new phone"
s bob send carol "welcome back" >"$T/rc8" 2>&1
check "bob writes to the new carol" contains "$T/rc8" "Sent to carol."
s carol receive >"$T/rc9" 2>&1
check "... and she reads it: the conversation continues" contains "$T/rc9" "bob: welcome back"
finish
