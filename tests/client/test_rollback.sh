# SPDX-License-Identifier: Apache-2.0
# test_rollback.sh: the sealed store cannot be rolled back silently.
# - one row put back from an older copy of the file (here: "verified" undone)
#   is refused at open with a clear error;
# - a whole home restored from a copy (the copy, then the original used, then
#   the copy put back) is detected through the device epoch the server keeps:
#   every session is re-keyed before anything is sent, so no message key is
#   used twice, which the peer proves by decrypting every message afterwards.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
s alice send bob "hello bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob send alice "hello alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1

# --- single-row rollback --------------------------------------------------
cp "$T/alice/sotto.db" "$T/old.db"
s alice --json safety-number bob >"$T/sn" 2>&1
n=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn")
check "alice verifies bob" s alice verify bob "$n"
cp "$T/alice/sotto.db" "$T/new.db"
changed=$(sqlite3 "$T/alice/sotto.db" "ATTACH '$T/old.db' AS o; SELECT count(*) FROM kv JOIN o.kv AS ok ON ok.k = kv.k WHERE ok.v <> kv.v;")
check "verify changed exactly one sealed row" test "$changed" = 1
sqlite3 "$T/alice/sotto.db" "ATTACH '$T/old.db' AS o; UPDATE kv SET v = (SELECT ok.v FROM o.kv AS ok WHERE ok.k = kv.k) WHERE k IN (SELECT ok.k FROM o.kv AS ok JOIN kv AS nk ON nk.k = ok.k WHERE ok.v <> nk.v);"
s alice contacts >"$T/c1" 2>&1; rc=$?
check "the old row put back is refused at open" test $rc -eq 1
check "... with a clear error" contains "$T/c1" "was tampered with: its records do not match its last commit"
check "... and 'verified' is not silently undone" lacks "$T/c1" "not verified"
s alice send bob "are you there?" >"$T/s0" 2>&1; rc=$?
check "... nothing is sent from the tampered store" test $rc -eq 1
cp "$T/new.db" "$T/alice/sotto.db"
s alice contacts >"$T/c2" 2>&1
check "the current file opens again" contains "$T/c2" "verified"

# --- whole-store rollback -----------------------------------------------
cp -a "$T/alice" "$T/alice_copy"
s alice send bob "m1 after the copy" >/dev/null 2>&1
s alice send bob "m2 after the copy" >/dev/null 2>&1
s bob receive >"$T/b1" 2>&1
check "bob reads m1 and m2" contains "$T/b1" "alice: m2 after the copy"
rm -rf "$T/alice"
mv "$T/alice_copy" "$T/alice"
s alice send bob "m3 from the restored copy" >"$T/s3" 2>&1
check "the restored copy is detected" contains "$T/s3" "it was restored or copied. Every session is re-keyed"
check "... and still sends" contains "$T/s3" "Sent to bob."
s alice send bob "m4 from the restored copy" >/dev/null 2>&1
s bob receive >"$T/b2" 2>&1
check "bob decrypts m3 (no message key used twice)" contains "$T/b2" "alice: m3 from the restored copy"
check "bob decrypts m4" contains "$T/b2" "alice: m4 from the restored copy"
check "bob has nothing undecryptable" lacks "$T/b2" "could not be decrypted"
s bob send alice "r1 to the restored alice" >/dev/null 2>&1
s alice receive >"$T/a2" 2>&1
check "the restored alice reads bob's answer" contains "$T/a2" "bob: r1 to the restored alice"
s alice send bob "m5" >"$T/s5" 2>&1
check "the next connection is not flagged again" lacks "$T/s5" "restored or copied"
s bob receive >"$T/b3" 2>&1
check "bob decrypts m5" contains "$T/b3" "alice: m5"
finish
