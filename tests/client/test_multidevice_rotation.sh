# SPDX-License-Identifier: Apache-2.0
# test_multidevice_rotation.sh: my group keys follow my own device list
# (docs/multi-device.md, "New and removed devices"), with the real server
# and CLI: alice on a primary and a laptop, then a phone; bob on one device.
#  - a phone linked on the primary reads the group at once: the laptop's
#    next group message (the laptop finds the phone when it fetches the
#    list, and sends it its key first), bob's and the primary's;
#  - after alice removes her laptop, the primary's next group message runs
#    on a new chain (its chain id, read from the ciphertext the server
#    queued for bob, changed), reaches bob and the phone, and the removed
#    laptop cannot decrypt that ciphertext even when handed it (while it
#    could decrypt the primary's message before the removal: the check can
#    fail).
source "$(dirname "$0")/lib.sh" "$@"
[ -x "$SCAN" ] || { echo "FAIL: client_store_scan is not built"; exit 1; }

start_server --device-change-burst 100
new_user alice
new_user bob

s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice send bob "hi bob" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
check "alice links her laptop" link_device alice-laptop alice laptop
for h in alice alice-laptop bob; do s $h receive >/dev/null 2>&1; done
s alice group create team bob >/dev/null 2>&1
check "alice creates the group team with bob" test $? -eq 0
for h in alice-laptop bob; do s $h receive >/dev/null 2>&1; done
s alice-laptop group send team "laptop warms up" >/dev/null 2>&1
for h in alice bob; do s $h receive >/dev/null 2>&1; done

# --- a new device of mine gets the group's keys at once ------------------------------
# The laptop runs the daemon: one connection, whose list check at connect
# predates the phone. Its next group message (past the half-minute a list
# counts as fresh) fetches alice's list again, finds the phone and sends it
# the laptop's key first.
DPID=
rpc() { # rpc SOCKET JSON: one request, its answer on stdout
  python3 - "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while True:
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    if b'"id"' in line:
        print(line.decode())
        break
PY
}
"$SOTTO" --home "$T/alice-laptop" daemon --socket "$T/l.sock" >"$T/l.daemon.out" 2>"$T/l.daemon.err" &
DPID=$!
trap 'kill -TERM $DPID 2>/dev/null; wait $DPID 2>/dev/null; cleanup' EXIT
for i in $(seq 1 100); do
  [ -S "$T/l.sock" ] && grep -q "connected to" "$T/l.daemon.err" 2>/dev/null && break
  sleep 0.1
done
T0=$(date +%s)
check "the laptop's daemon is connected" grep -q "connected to" "$T/l.daemon.err"
check "alice links her phone" link_device alice-phone alice phone
s alice-phone groups >"$T/pg0" 2>&1
check "the phone has the group (provisioning)" contains "$T/pg0" "team: alice bob"
while [ $(( $(date +%s) - T0 )) -le 31 ]; do sleep 1; done
rpc "$T/l.sock" '{"jsonrpc":"2.0","method":"send","params":{"group":"team","message":"laptop after the phone came"},"id":1}' >"$T/l1" 2>&1
check "the laptop's daemon writes to the group" grep -q '"result"' "$T/l1"
kill -TERM $DPID 2>/dev/null; wait $DPID 2>/dev/null
check "the laptop's daemon stops cleanly" test $? -eq 0
s bob group send team "bob after the phone came" >/dev/null 2>&1
s alice group send team "primary after the phone came" >/dev/null 2>&1
s alice-phone receive >"$T/p1" 2>&1
check "the phone reads the laptop's group message as hers" contains "$T/p1" "[team] to group: laptop after the phone came"
check "the phone reads bob's group message" contains "$T/p1" "[team] bob: bob after the phone came"
check "the phone reads the primary's group message as hers" contains "$T/p1" "[team] to group: primary after the phone came"
check "... nothing unreadable on the phone" lacks "$T/p1" "unreadable"
for h in alice alice-laptop bob; do s $h receive >/dev/null 2>&1; done

# --- rotation after a removal --------------------------------------------------------
bob_id=$(sql "SELECT id FROM accounts WHERE username = 'bob';")
bob1=$(sql "SELECT devkey FROM devices WHERE account_id = $bob_id AND device_id = 1;")
# body HEXVAR: the newest group envelope queued for bob's device 1
newest() { sql "SELECT hex(body) FROM messages WHERE devkey = $bob1 AND type = 4 ORDER BY id DESC LIMIT 1;"; }

s alice group send team "before the removal" >/dev/null 2>&1
C1=$(newest)
check "a group envelope waits for bob" test -n "$C1"
SOTTO_PASSPHRASE="$SOTTO_PASSPHRASE" "$SCAN" --group-decrypt "$T/alice-laptop" alice 1 "$C1" >"$T/d1" 2>&1
check "the laptop's store decrypts the primary's message before the removal" test $? -eq 0
K1=$(sed -n 's/^chain //p' "$T/d1")
for h in alice-laptop alice-phone bob; do s $h receive >/dev/null 2>&1; done

s alice devices remove 2 >"$T/r2" 2>&1
check "alice removes her laptop" test $? -eq 0
s alice group send team "after the removal" >"$T/s2" 2>&1
check "the primary's next group message goes out" test $? -eq 0
C2=$(newest)
check "a new group envelope waits for bob" test -n "$C2" -a "$C2" != "$C1"
SOTTO_PASSPHRASE="$SOTTO_PASSPHRASE" "$SCAN" --group-decrypt "$T/alice-laptop" alice 1 "$C2" >"$T/d2" 2>&1; rc=$?
K2=$(sed -n 's/^chain //p' "$T/d2")
check "the message after the removal runs on a new chain ($K1 -> $K2)" test -n "$K1" -a -n "$K2" -a "$K1" != "$K2"
check "the removed laptop cannot decrypt it, even handed the ciphertext" test $rc -eq 1
check "... it says so" contains "$T/d2" "cannot decrypt"
s bob receive >"$T/b2" 2>&1
check "bob reads it (the new chain reached him)" contains "$T/b2" "[team] alice: after the removal"
s alice-phone receive >"$T/p2" 2>&1
check "the phone reads it as hers" contains "$T/p2" "[team] to group: after the removal"
s alice-laptop receive >"$T/l2" 2>&1; rc=$?
check "the removed laptop cannot log in" test $rc -ne 0
check "... and got nothing" lacks "$T/l2" "after the removal"

finish
