# SPDX-License-Identifier: Apache-2.0
# test_server_move.sh: `sotto server set HOST:PORT [--pin | --ca]` after a
# server move (a new data directory and port): with the same certificate,
# with an explicit new pin, refused with a wrong pin or at a server that
# does not hold the account (nothing changes); `--ca` with the server's own
# certificate; and the first-contact failures each told apart with their
# own sentence and error: a closed port, a plain TCP listener that answers
# garbage, one that never answers, a TLS endpoint that is not a sotto
# server (openssl s_server), and a certificate that differs from the pin.
source "$(dirname "$0")/lib.sh" "$@"
command -v python3 >/dev/null || { echo "FAIL: python3 missing"; exit 1; }

HPIDS=
cleanup_helpers() { for p in $HPIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'cleanup_helpers; cleanup' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_port PORT: until something listens there (bounded).
wait_port() {
  local i
  for i in $(seq 1 100); do
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" && return 0
    sleep 0.1
  done
  return 1
}
# start_other DIR: a second sotto-server on DIR and a free port (P2, SPID2).
start_other() {
  P2=$(free_port)
  : >"$T/other.out" # emptied before the fork: no stale "listening" line after a restart
  "$SERVER" --data "$1" --listen "127.0.0.1:$P2" --log-level 0 >"$T/other.out" 2>"$T/other.err" &
  SPID2=$!
  HPIDS="$HPIDS $SPID2"
  local i
  for i in $(seq 1 100); do grep -q '^listening' "$T/other.out" 2>/dev/null && return 0; sleep 0.1; done
  cat "$T/other.err"; return 1
}
stop_other() { kill -TERM "$SPID2" 2>/dev/null; timeout 20 tail --pid="$SPID2" -f /dev/null; wait "$SPID2" 2>/dev/null; }
# A store must not change when a command is refused (byte for byte).
same_store() { cmp -s "$T/$1/sotto.db" "$T/$1.before"; }
snap() { cp "$T/$1/sotto.db" "$T/$1.before"; }

start_server
new_user alice
new_user bob
s alice send bob "hello" >/dev/null 2>&1
FP=$("$SERVER" fingerprint --data "$T/srv")

# --ca with the server's own (self-signed) certificate.
s carol init >/dev/null 2>&1
s carol register --server "127.0.0.1:$PORT" --ca "$T/srv/tls.crt" carol >"$T/ca1" 2>&1; rc=$?
check "--ca with the server's own certificate: register works" test $rc -eq 0
check "... and says so" contains "$T/ca1" "Registered 'carol'"
s carol send bob "via ca" >/dev/null 2>&1 && s bob receive >"$T/ca2" 2>&1
check "--ca: later connections work too" contains "$T/ca2" "carol: via ca"
openssl req -x509 -newkey ed25519 -nodes -keyout "$T/other.key" -out "$T/other.crt" -days 2 -subj /CN=other \
  >/dev/null 2>&1
s dave init >/dev/null 2>&1
s dave --json register --server "127.0.0.1:$PORT" --ca "$T/other.crt" dave >"$T/ca3" 2>&1; rc=$?
check "--ca with an unrelated certificate: refused" test $rc -eq 1
check "... as cert_untrusted, not as 'impostor' of a pin" contains "$T/ca3" '"error":"cert_untrusted"'

# The server moves with its tls.key (backup, a new directory and port):
# 'server set' without --pin keeps the pin, checks and switches.
"$SERVER" backup --data "$T/srv" "$T/moved" >/dev/null 2>&1 || bad "backup for the move"
stop_server
start_other "$T/moved"
s alice send bob "to the old address" >"$T/m00" 2>&1
check "a send to the old address is queued (nothing answers there)" contains "$T/m00" "Queued for bob"
snap alice
s alice server set "127.0.0.1:$(free_port)" >"$T/m0" 2>&1; rc=$?
check "server set to a closed port: refused" test $rc -eq 1 -a -n "$(grep "cannot reach" "$T/m0")"
check "server set refused: alice's store unchanged" same_store alice
s alice server set "127.0.0.1:$P2" >"$T/m1" 2>&1; rc=$?
check "server set (same certificate at a new address): exit 0" test $rc -eq 0
check "server set says where and which pin" contains "$T/m1" "server set to 127.0.0.1:$P2"
s bob server set "127.0.0.1:$P2" --pin "$FP" >"$T/m1b" 2>&1 || { bad "bob's server set with the same explicit pin"; cat "$T/m1b"; }
s alice send bob "after the move" >/dev/null 2>&1 && s bob receive >"$T/m2" 2>&1
check "messages flow at the new address" contains "$T/m2" "alice: after the move"
check "... and the text queued before the move arrives too" contains "$T/m2" "alice: to the old address"
s carol server set "127.0.0.1:$P2" >/dev/null 2>&1 || bad "carol (CA mode) server set keeps her CA file"
s carol send bob "ca after move" >/dev/null 2>&1 || bad "carol sends after the move"
stop_other

# The server moves and its key was lost: a new certificate in the new
# directory. Without a pin, or with a wrong one, nothing changes.
mkdir "$T/moved2" && cp "$T/moved/sotto.db" "$T/moved2/"
"$SERVER" new-certificate --data "$T/moved2" >/dev/null 2>&1 || bad "new-certificate"
FP2=$("$SERVER" fingerprint --data "$T/moved2")
start_other "$T/moved2"
snap alice
s alice server show >"$T/show.before" 2>&1
s alice --json server set "127.0.0.1:$P2" >"$T/w0" 2>&1; rc=$?
check "new certificate, no --pin: refused" test $rc -eq 1
check "... as pin_mismatch" contains "$T/w0" '"error":"pin_mismatch"'
s alice server set "127.0.0.1:$P2" --pin "$FP" >"$T/w1" 2>&1; rc=$?
check "wrong (old) pin: refused" test $rc -eq 1
check "... 'differs from the pinned one'" contains "$T/w1" "differs from the pinned one"
s alice server set "127.0.0.1:$P2" --pin "$(printf '%064d' 0)" >/dev/null 2>&1 && bad "a pin of zeros accepted"
check "refused: alice's store unchanged byte for byte" same_store alice
s alice server show >"$T/show.after" 2>&1
check "refused: 'server show' unchanged" cmp -s "$T/show.before" "$T/show.after"
s alice server set "127.0.0.1:$P2" --pin "$FP2" >"$T/w2" 2>&1; rc=$?
check "the right new pin: exit 0" test $rc -eq 0
check "... the new pin shown" contains "$T/w2" "$FP2"
s bob server set "127.0.0.1:$P2" --pin "$FP2" >/dev/null 2>&1 || bad "bob's server set"
s alice send bob "after the second move" >/dev/null 2>&1 && s bob receive >"$T/w3" 2>&1
check "messages flow after a move with a new certificate" contains "$T/w3" "alice: after the second move"
stop_other

# A sotto server that does not hold the account: refused (AUTH), nothing changes.
mkdir "$T/empty"
start_other "$T/empty"
snap alice
s alice server set "127.0.0.1:$P2" --pin "$("$SERVER" fingerprint --data "$T/empty")" >"$T/e0" 2>&1; rc=$?
check "a server without this account: refused" test $rc -eq 1 -a -n "$(grep "refused this device's credentials" "$T/e0")"
check "... store unchanged" same_store alice
stop_other

# ---- first contact: each failure its own sentence and code ----
s erin init >/dev/null 2>&1
reg() { s erin --json register --server "127.0.0.1:$1" erin; }
# A closed port.
reg "$(free_port)" >"$T/f1" 2>&1
check "closed port: unreachable" contains "$T/f1" '"error":"unreachable"'
# A plain TCP listener that answers garbage.
GP=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096); c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nthis is not TLS at all\r\n" * 4)
    except OSError:
        pass
    c.close()
' "$GP" &
HPIDS="$HPIDS $!"
wait_port "$GP"
reg "$GP" >"$T/f2" 2>&1
check "garbage listener: not_tls" contains "$T/f2" '"error":"not_tls"'
check "garbage listener: not called an impostor" lacks "$T/f2" "impostor"
s erin register --server "127.0.0.1:$GP" erin >"$T/f2h" 2>&1
check "garbage listener: the sentence says it does not speak TLS" contains "$T/f2h" "does not speak TLS"
# A listener that never answers.
HP=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$HP" &
HPIDS="$HPIDS $!"
wait_port "$HP"
reg "$HP" >"$T/f3" 2>&1
check "hung listener: timeout" contains "$T/f3" '"error":"timeout"'
check "hung listener: not called an impostor" lacks "$T/f3" "impostor"
# A TLS endpoint that is not a sotto server.
OP=$(free_port)
openssl s_server -accept "$OP" -cert "$T/other.crt" -key "$T/other.key" -quiet -naccept 4 </dev/null \
  >/dev/null 2>&1 &
HPIDS="$HPIDS $!"
wait_port "$OP"
reg "$OP" >"$T/f4" 2>&1
check "openssl s_server: not_sotto" contains "$T/f4" '"error":"not_sotto"'
s erin register --server "127.0.0.1:$OP" erin >"$T/f4h" 2>&1
check "openssl s_server: 'speaks TLS but did not answer as a sotto server'" contains "$T/f4h" \
  "speaks TLS but did not answer as a sotto server"
# A certificate that differs from the pinned one.
start_other "$T/empty"
reg "$P2" >/dev/null 2>&1 # not this one: erin registers with a wrong pin below
s erin2 init >/dev/null 2>&1
s erin2 --json register --server "127.0.0.1:$P2" --pin "$FP" erin2 >"$T/f5" 2>&1
check "pinned certificate differs: pin_mismatch" contains "$T/f5" '"error":"pin_mismatch"'
# server set to a non-TLS endpoint: its own error, nothing changed.
snap bob
s bob --json server set "127.0.0.1:$GP" >"$T/f6" 2>&1
check "server set to a garbage listener: not_tls" contains "$T/f6" '"error":"not_tls"'
check "... bob's store unchanged" same_store bob
stop_other
cleanup_helpers
HPIDS=
finish
