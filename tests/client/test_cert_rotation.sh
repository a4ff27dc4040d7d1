# SPDX-License-Identifier: Apache-2.0
# test_cert_rotation.sh: the server rotates its TLS certificate twice
# (`sotto-server rotate-certificate`, then `... switch` and a restart) and
# no client is locked out, with no user action: bob is online (receive
# --follow reconnects across the restarts), carol is offline during both
# rotations and follows the chain of two statements on her next command.
# A forged statement (not signed by the pinned key), a chain that leads
# elsewhere and a rollback to an older certificate are refused with
# "certificate differs from the pinned one", and the refused client stays
# pinned (its store unchanged).
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
new_user carol
s alice send bob "before" >/dev/null 2>&1 && s carol send alice "carol before" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s alice receive >/dev/null 2>&1
FP0=$("$SERVER" fingerprint --data "$T/srv")
cp -r "$T/carol" "$T/carol_copy" # pinned to the first certificate, for the refusal checks below

# bob stays online through everything.
"$SOTTO" --home "$T/bob" --json receive --follow >"$T/follow" 2>"$T/follow.err" &
FPID=$!
stop_follow() {
  if [ -n "${FPID:-}" ]; then kill -TERM "$FPID" 2>/dev/null; timeout 20 tail --pid="$FPID" -f /dev/null; FPID=; fi
}
for i in $(seq 1 100); do grep -q '"event":"drained"\|link_up' "$T/follow" 2>/dev/null && break; sleep 0.1; done

rotate() { # prepare while running, then stop, switch, start on the same port
  "$SERVER" rotate-certificate --data "$T/srv" >"$T/rot.out" 2>"$T/rot.err" || { cat "$T/rot.err"; return 1; }
  "$SERVER" rotate-certificate --data "$T/srv" switch >"$T/sw.err" 2>&1 && { echo "switch while running"; return 1; }
  grep -q "stop it first" "$T/sw.err" || return 1
  stop_server
  "$SERVER" rotate-certificate --data "$T/srv" switch >"$T/sw.out" 2>&1 || { cat "$T/sw.out"; return 1; }
  start_server
}
check "rotation 1: prepared while running, switched while stopped" rotate
FP1=$("$SERVER" fingerprint --data "$T/srv")
check "rotation 1: a new fingerprint" test "$FP1" != "$FP0"
check "rotation 1: the prepared fingerprint is the one served" contains "$T/rot.out" "next fingerprint $FP1"
check "the old private key is gone" test ! -e "$T/srv/next.key"

# The online client: bob's follow reconnects by itself and re-pins.
s alice send bob "after rotation 1" >"$T/a1" 2>&1
check "alice (online before) sends after rotation 1 without any action" contains "$T/a1" "Sent"
check "alice was told the certificate was rotated and re-pinned" contains "$T/a1" "rotated its TLS certificate"
for i in $(seq 1 300); do grep -q "after rotation 1" "$T/follow" && break; sleep 0.1; done
check "bob's receive --follow reconnected, re-pinned and got the message" contains "$T/follow" '"text":"after rotation 1"'
check "bob's follow reported the re-pin as an event" contains "$T/follow" "server_repinned"

mkdir "$T/k1" && cp "$T/srv/tls.key" "$T/srv/tls.crt" "$T/k1/" # the certificate before rotation 2, "stolen"
check "rotation 2" rotate
FP2=$("$SERVER" fingerprint --data "$T/srv")
check "rotation 2: chain of two statements" test "$(stat -c %s "$T/srv/rotation.chain")" -eq $((1 + 2 * 185))

s alice send bob "after rotation 2" >/dev/null 2>&1
for i in $(seq 1 300); do grep -q "after rotation 2" "$T/follow" && break; sleep 0.1; done
check "bob (online) follows the second rotation too" contains "$T/follow" '"text":"after rotation 2"'
stop_follow

# carol was offline through both rotations: one command follows both links.
s carol receive >"$T/c1" 2>&1; rc=$?
check "carol (offline during both rotations) connects: exit 0" test $rc -eq 0
check "carol re-pinned through the chain" contains "$T/c1" "SHA-256 $FP2"
s carol send bob "carol after" >/dev/null 2>&1 && s bob receive >"$T/b2" 2>&1
check "carol's message reaches bob" contains "$T/b2" "carol: carol after"
s carol receive >"$T/c2" 2>&1
check "carol's next command needs no re-pin" lacks "$T/c2" "rotated"

# A forged chain: the rotation.chain a server serves is replaced by one
# whose statement is not signed by the pinned key. carol_copy (pinned to
# the first certificate) must refuse and keep her pin.
stop_server
cp "$T/srv/rotation.chain" "$T/chain.good"
python3 - "$T/srv/rotation.chain" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[1 + 185 - 1] ^= 0x01   # the last byte of the first statement's signature
open(p, 'wb').write(bytes(b))
PY
start_server
cp "$T/carol_copy/sotto.db" "$T/carol_copy.db.before"
s carol_copy receive >"$T/f1" 2>&1; rc=$?
check "forged statement: refused (exit 1)" test $rc -eq 1
check "forged statement: 'differs from the pinned one'" contains "$T/f1" "differs from the pinned one"
check "forged statement: the client's store is unchanged" cmp -s "$T/carol_copy/sotto.db" "$T/carol_copy.db.before"
s carol_copy --json receive >"$T/f1j" 2>&1
check "forged statement: --json error pin_mismatch" contains "$T/f1j" '"error":"pin_mismatch"'

# No chain at all (unsigned: the file removed).
stop_server
rm "$T/srv/rotation.chain"
start_server
s carol_copy receive >"$T/f2" 2>&1; rc=$?
check "no rotation statement: refused as before" test $rc -eq 1 -a -n "$(grep "differs from the pinned one" "$T/f2")"

# Rollback and a stolen old key: the server goes back to the certificate
# of before rotation 2 (its key "stolen"), and that old key signs a
# rotation to a certificate of the thief's choosing. carol, pinned to the
# newest certificate, refuses both: the old key no longer speaks for her.
stop_server
cp "$T/chain.good" "$T/srv/rotation.chain"
cp "$T/k1/tls.key" "$T/k1/tls.crt" "$T/srv/"
cp "$T/carol/sotto.db" "$T/carol.db.before"
start_server
s carol receive >"$T/r1" 2>&1; rc=$?
check "rollback to an older certificate: refused" test $rc -eq 1 -a -n "$(grep "differs from the pinned one" "$T/r1")"
stop_server
"$SERVER" rotate-certificate --data "$T/srv" >/dev/null 2>&1 && "$SERVER" rotate-certificate --data "$T/srv" switch >/dev/null 2>&1 ||
  bad "the thief's rotation with the old key"
start_server
s carol receive >"$T/r2" 2>&1; rc=$?
check "a rotation signed by the stolen old key: refused" test $rc -eq 1 -a -n "$(grep "differs from the pinned one" "$T/r2")"
check "refused: carol's store is unchanged" cmp -s "$T/carol/sotto.db" "$T/carol.db.before"
finish
