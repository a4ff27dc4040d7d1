# SPDX-License-Identifier: Apache-2.0
# test_multidevice_hello.sh: a newly linked device of mine is noticed at
# once (docs/multi-device.md, "A new device says hello"), with the real
# server and CLI: alice on a primary and a laptop, bob on one device.
# The laptop runs the daemon: one connection, that checked alice's list a
# moment ago (a group message). alice links her phone on the primary; the
# phone's hello (content kind 18) reaches the laptop's daemon, which fetches
# alice's list again at once (its 'devices' shows the phone) and so sends the
# phone its group key before its next group message, sent right away, well
# inside the half-minute a list counts as fresh: the phone reads it.
source "$(dirname "$0")/lib.sh" "$@"

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
check "the laptop's daemon is connected" grep -q "connected to" "$T/l.daemon.err"
rpc "$T/l.sock" '{"jsonrpc":"2.0","method":"send","params":{"group":"team","message":"laptop before the phone"},"id":1}' >"$T/l0" 2>&1
check "the laptop's daemon writes to the group (its list check is fresh now)" grep -q '"result"' "$T/l0"
T0=$(date +%s)
check "alice links her phone" link_device alice-phone alice phone
check "the phone said hello to alice's other devices (no complaint)" lacks "$T/alice-phone.link" "did not get"
check "... and raised no false alarm about the list" lacks "$T/alice-phone.link" "older than version"
# The daemon learns of the phone from its hello, not from a list check of
# its own (none is due for half a minute).
seen=0
for i in $(seq 1 40); do
  rpc "$T/l.sock" '{"jsonrpc":"2.0","method":"devices","id":2}' >"$T/ld" 2>&1
  if grep -q '"deviceId":3,"thisDevice":false,"listed":true' "$T/ld"; then seen=1; break; fi
  sleep 0.2
done
check "the laptop's daemon knows the phone at once (its hello)" test $seen = 1
[ $seen = 1 ] || { echo "--- devices:"; cat "$T/ld"; echo "--- daemon:"; tail -20 "$T/l.daemon.err"; tail -5 "$T/l.daemon.out"; echo "--- phone:"; cat "$T/alice-phone.link"; }
rpc "$T/l.sock" '{"jsonrpc":"2.0","method":"send","params":{"group":"team","message":"laptop right after the phone came"},"id":3}' >"$T/l1" 2>&1
check "the laptop's daemon writes to the group right after" grep -q '"result"' "$T/l1"
T1=$(date +%s)
[ $((T1 - T0)) -lt 30 ] || echo "note: the link took $((T1 - T0)) s; the half-minute window had passed"
kill -TERM $DPID 2>/dev/null; wait $DPID 2>/dev/null
check "the laptop's daemon stops cleanly" test $? -eq 0
s alice-phone receive >"$T/p1" 2>&1
check "the phone reads the laptop's group message as hers" \
  contains "$T/p1" "[team] to group: laptop right after the phone came"
check "... nothing unreadable on the phone" lacks "$T/p1" "unreadable"
s alice receive >"$T/a1" 2>&1
check "the primary reads it too" contains "$T/a1" "[team] to group: laptop right after the phone came"
check "... and took the phone's hello quietly" lacks "$T/a1" "unreadable"
s bob receive >"$T/b1" 2>&1
check "bob reads it" contains "$T/b1" "[team] alice: laptop right after the phone came"
finish
