# SPDX-License-Identifier: Apache-2.0
# test_backup.sh: a home survives its loss through 'sotto backup' / 'sotto
# restore', and its passphrase can be changed.
# - backup (passphrase and recovery key), more messages both ways (the
#   backup's sessions are then stale), wipe the home, restore: the same
#   identity (bob sees no key change, his verification of alice holds),
#   alice's verification of bob and the group survive, the history is there,
#   and messages flow both ways again (sessions start afresh);
# - a wrong passphrase, a typo in the recovery key, a tampered or truncated
#   file are refused with a clear error and change nothing; a home that
#   holds an identity is refused without --force;
# - 'sotto passphrase': the old passphrase is refused, the new one works; a
#   kill in the middle of the re-seal leaves the old one working, a kill just
#   after the commit the new one;
# - weak passphrases are refused (init, passphrase, backup) with the reason.
source "$(dirname "$0")/lib.sh" "$@"

json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2"; }

start_server
new_user alice
new_user bob
new_user carol
s alice send bob "before the backup" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "reply before the backup" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice --json safety-number bob >"$T/sn" 2>&1
check "alice verifies bob" s alice verify bob "$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn")"
s bob --json safety-number alice >"$T/snb" 2>&1
check "bob verifies alice" s bob verify alice "$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/snb")"
s alice group create team bob carol >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s carol receive >/dev/null 2>&1
s alice group send team "group before the backup" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s carol receive >/dev/null 2>&1

# --- weak passphrases ------------------------------------------------------
SOTTO_PASSPHRASE="abc" s weak init >"$T/w1" 2>&1; rc=$?
check "a 3-character passphrase is refused at init" test $rc -eq 1
check "... saying why" contains "$T/w1" "too weak: it has 3 characters; use at least 12"
check "... and no home is made" test ! -e "$T/weak/sotto.db"
SOTTO_PASSPHRASE="password123456" s weak init >"$T/w2" 2>&1; rc=$?
check "a common password with digits is refused" test $rc -eq 1
check "... saying why" contains "$T/w2" "built from common passwords"
SOTTO_PASSPHRASE="aaaaaaaaaaaaaaaaaaaa" s weak init >"$T/w3" 2>&1
check "a repeated character is refused" contains "$T/w3" "only 1 different characters"
SOTTO_BACKUP_PASSPHRASE="short" s alice backup "$T/weak.bak" >"$T/w4" 2>&1; rc=$?
check "a weak backup passphrase is refused" test $rc -eq 1 -a ! -e "$T/weak.bak"
check "... saying why" contains "$T/w4" "this backup passphrase is too weak"

# --- backup ----------------------------------------------------------------
SOTTO_BACKUP_PASSPHRASE="a separate backup passphrase" s alice backup "$T/alice.bak" >"$T/b1" 2>&1
check "backup written" contains "$T/b1" "Wrote the encrypted backup"
check "... mode 0600" test "$(stat -c %a "$T/alice.bak")" = 600
check "... no temporary file left" test ! -e "$T/alice.bak.tmp"
check "... it does not show the history in the clear" sh -c "! grep -q 'before the backup' '$T/alice.bak'"
s alice --json backup --recovery-key "$T/alice-rk.bak" >"$T/b2" 2>&1
rk=$(json_field recovery_key "$T/b2")
check "a backup with a recovery key prints the key (16 groups of 4)" \
  sh -c "echo '$rk' | grep -Eq '^([0-9a-f]{4}-){15}[0-9a-f]{4}$'"

# The conversation goes on after the backup (so the backup's sessions are
# stale), then alice's home is lost.
s alice send bob "after the backup, before the loss" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "bob after the backup" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice send bob "second after the backup" >/dev/null 2>&1
s bob receive >"$T/rb0" 2>&1
check "(the conversation went on after the backup)" contains "$T/rb0" "alice: second after the backup"
cp -a "$T/alice" "$T/alice_lost"
rm -rf "$T/alice"

# --- refusals that change nothing -------------------------------------------
SOTTO_BACKUP_PASSPHRASE="the wrong backup passphrase" s alice restore "$T/alice.bak" >"$T/r1" 2>&1; rc=$?
check "a wrong backup passphrase is refused" test $rc -eq 1
check "... clearly" contains "$T/r1" "wrong backup passphrase, or the file was altered or damaged; nothing was changed"
check "... and nothing is made" test ! -e "$T/alice/sotto.db"
cp "$T/alice.bak" "$T/tampered.bak"
size=$(stat -c %s "$T/tampered.bak")
printf '\x01' | dd of="$T/tampered.bak" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
cmp -s "$T/alice.bak" "$T/tampered.bak" || printf '\x02' | dd of="$T/tampered.bak" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
SOTTO_BACKUP_PASSPHRASE="a separate backup passphrase" s alice restore "$T/tampered.bak" >"$T/r2" 2>&1; rc=$?
check "a tampered backup is refused" test $rc -eq 1
check "... clearly" contains "$T/r2" "the file was altered or damaged; nothing was changed"
check "... and nothing is made" test ! -e "$T/alice/sotto.db"
head -c 100 "$T/alice.bak" >"$T/short.bak"
SOTTO_BACKUP_PASSPHRASE="a separate backup passphrase" s alice restore "$T/short.bak" >"$T/r3" 2>&1
check "a truncated backup is refused" contains "$T/r3" "nothing was changed"
echo "not a backup at all, just some text that is long enough to have a header" >"$T/junk.bak"
s alice restore "$T/junk.bak" >"$T/r4" 2>&1
check "a file that is not a backup is refused" contains "$T/r4" "is not a sotto backup file"
typo=$(echo "$rk" | sed 's/^0/1/; t; s/^./0/')
SOTTO_RECOVERY_KEY="$typo" s alice restore "$T/alice-rk.bak" >"$T/r5" 2>&1
check "a typo in the recovery key is caught by its check" contains "$T/r5" "the recovery key has a typo"
check "... and nothing is made" test ! -e "$T/alice/sotto.db"

# --- restore (recovery key) -------------------------------------------------
SOTTO_RECOVERY_KEY="$rk" s alice restore "$T/alice-rk.bak" >"$T/r6" 2>&1
check "the backup opens with its recovery key" contains "$T/r6" "Restored alice into"
check "... mode 0600" test "$(stat -c %a "$T/alice/sotto.db")" = 600
SOTTO_BACKUP_PASSPHRASE="a separate backup passphrase" s alice restore "$T/alice.bak" >"$T/r7" 2>&1; rc=$?
check "restore into a home with an identity is refused" test $rc -eq 1
check "... unless --force" contains "$T/r7" "pass --force to replace it"
# --- restore (passphrase, --force) -------------------------------------------
# A restore that crashed left its temporary directory: the next restore removes it.
mkdir "$T/alice/.restore.CRASH1" && echo "half a store" >"$T/alice/.restore.CRASH1/sotto.db"
SOTTO_BACKUP_PASSPHRASE="a separate backup passphrase" s alice restore --force "$T/alice.bak" >"$T/r8" 2>&1
check "--force replaces it with the passphrase backup" contains "$T/r8" "Restored alice into"
check "... and removes a crashed restore's temporary directory" test ! -e "$T/alice/.restore.CRASH1"

cp "$T/alice/sotto.db" "$T/before-force.db"
SOTTO_BACKUP_PASSPHRASE="the wrong backup passphrase" s alice restore --force "$T/alice.bak" >"$T/r9" 2>&1; rc=$?
check "--force with a wrong passphrase is refused" test $rc -eq 1
check "... and the home's store is byte for byte unchanged" cmp -s "$T/alice/sotto.db" "$T/before-force.db"
check "... with no temporary directory left" sh -c "! ls -a '$T/alice' | grep -q restore"

s alice contacts >"$T/c1" 2>&1
check "the restored alice still has bob verified" grep -q "bob.*verified" "$T/c1"
check "... not as 'not verified'" sh -c "! grep -q 'bob.*not verified' '$T/c1'"
s alice groups >"$T/g1" 2>&1
check "the group survives" contains "$T/g1" "team: alice bob carol"
s alice history bob >"$T/h1" 2>&1
check "the history survives" contains "$T/h1" "reply before the backup"

s alice send bob "after the restore" >"$T/s1" 2>&1
check "the restored alice sends" contains "$T/s1" "Sent to bob."
check "... after the server's device epoch flagged the restored store" contains "$T/s1" "Every session is re-keyed"
s bob receive >"$T/rb1" 2>&1
check "bob reads it" contains "$T/rb1" "alice: after the restore"
check "... with no key change (the same identity)" lacks "$T/rb1" "changed"
check "... and nothing undecryptable" lacks "$T/rb1" "could not be decrypted"
s bob contacts >"$T/cb" 2>&1
check "bob's verification of alice holds" grep -q "alice.*verified" "$T/cb"
check "... not broken" sh -c "! grep -q 'alice.*not verified' '$T/cb'"
s bob send alice "bob answers the restored alice" >/dev/null 2>&1
s alice receive >"$T/ra1" 2>&1
check "the restored alice reads bob's answer" contains "$T/ra1" "bob: bob answers the restored alice"
s alice group send team "group after the restore" >"$T/gs" 2>&1
s bob receive >"$T/rb2" 2>&1
s carol receive >"$T/rc2" 2>&1
check "bob reads the group message" contains "$T/rb2" "group after the restore"
check "carol reads the group message" contains "$T/rc2" "group after the restore"
s carol send alice "carol to the restored alice" >/dev/null 2>&1
s alice receive >"$T/ra2" 2>&1
check "carol's message arrives too" contains "$T/ra2" "carol: carol to the restored alice"

# --- the same through JSON-RPC (a daemon holds the home) ----------------------
printf '%s\n' '{"jsonrpc":"2.0","method":"backup","id":1,"params":{"file":"'"$T"'/rpc.bak","passphrase":"weak"}}' \
  '{"jsonrpc":"2.0","method":"backup","id":2,"params":{"file":"'"$T"'/rpc.bak","recoveryKey":true}}' |
  timeout 60 "$SOTTO" --home "$T/alice" jsonrpc >"$T/j1" 2>"$T/j1.err"
check "jsonrpc backup: a weak passphrase is an invalid param" grep -q '"id":1,"error":{"code":-32602,"message":"this backup passphrase is too weak' "$T/j1"
rk2=$(sed -n 's/.*"recoveryKey":"\([0-9a-f-]*\)".*/\1/p' "$T/j1")
check "jsonrpc backup with a recovery key answers the key" test -n "$rk2"
SOTTO_RECOVERY_KEY="$rk2" s alice_rpc restore "$T/rpc.bak" >"$T/j2" 2>&1
s alice_rpc history bob >"$T/j3" 2>&1
check "... and the file restores" contains "$T/j3" "after the restore"

# --- passphrase change --------------------------------------------------------
SOTTO_NEW_PASSPHRASE="short" s alice passphrase >"$T/p0" 2>&1; rc=$?
check "a weak new passphrase is refused" test $rc -eq 1
check "... saying why" contains "$T/p0" "this new passphrase is too weak"
SOTTO_NEW_PASSPHRASE="another long passphrase" s alice passphrase >"$T/p1" 2>&1
check "the passphrase is changed" contains "$T/p1" "now sealed under the new passphrase"
s alice contacts >"$T/p2" 2>&1; rc=$?
check "the old passphrase is refused" test $rc -eq 1
check "... as wrong" contains "$T/p2" "wrong passphrase"
SOTTO_PASSPHRASE="another long passphrase" s alice contacts >"$T/p3" 2>&1
check "the new one opens the store" grep -q "bob.*verified" "$T/p3"

# A kill in the middle of the re-seal (after every row is re-sealed, before
# the commit): the old passphrase still works, the new one does not.
if [ -z "${SOTTO_TEST_REAL_KDF:-}" ]; then
  SOTTO_PASSPHRASE="another long passphrase" SOTTO_NEW_PASSPHRASE="a third long passphrase" \
    SOTTO_TEST_CRASH=rekey-before-commit s alice passphrase >"$T/k1" 2>&1; rc=$?
  check "the re-seal was killed" test $rc -eq 137
  SOTTO_PASSPHRASE="another long passphrase" s alice contacts >"$T/k2" 2>&1
  check "... the old passphrase still opens the store" grep -q "bob.*verified" "$T/k2"
  SOTTO_PASSPHRASE="a third long passphrase" s alice contacts >"$T/k3" 2>&1; rc=$?
  check "... the new one does not" test $rc -eq 1
  SOTTO_PASSPHRASE="another long passphrase" SOTTO_NEW_PASSPHRASE="a third long passphrase" \
    SOTTO_TEST_CRASH=rekey-after-commit s alice passphrase >"$T/k4" 2>&1; rc=$?
  check "a kill right after the commit" test $rc -eq 137
  SOTTO_PASSPHRASE="a third long passphrase" s alice contacts >"$T/k5" 2>&1
  check "... leaves the new passphrase working" grep -q "bob.*verified" "$T/k5"
  SOTTO_PASSPHRASE="another long passphrase" s alice contacts >"$T/k6" 2>&1; rc=$?
  check "... and the old one refused" test $rc -eq 1
  export SOTTO_PASSPHRASE="a third long passphrase"
else
  export SOTTO_PASSPHRASE="another long passphrase"
fi
s alice send bob "after the passphrase change" >/dev/null 2>&1
SOTTO_PASSPHRASE="correct horse battery staple" s bob receive >"$T/rb3" 2>&1
check "alice still sends after the passphrase change" contains "$T/rb3" "alice: after the passphrase change"
finish
