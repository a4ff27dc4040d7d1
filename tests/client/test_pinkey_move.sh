# SPDX-License-Identifier: Apache-2.0
# test_pinkey_move.sh: the certificate key kept to follow rotations belongs
# to the server the home is registered on. alice registers on server A,
# unregisters, and registers again on another server B (same address, new
# data directory: another certificate and key). B then rotates its
# certificate: alice follows B's rotation (she keeps B's key, not A's), and a
# rotation signed by A's key (a stolen or old server's) is refused.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
s alice unregister --yes >"$T/u" 2>&1
check "alice unregisters from server A" contains "$T/u" "Deleted the account"
stop_server
mv "$T/srv" "$T/srvA"
start_server # server B: a new data directory, another certificate
FPB=$("$SERVER" fingerprint --data "$T/srv")
s alice register --server "127.0.0.1:$PORT" --pin "$FPB" alice >"$T/r" 2>&1
check "alice registers again, on server B" contains "$T/r" "Recovery code"

rotate() { # rotates the certificate of the data directory $1 (server stopped)
  "$SERVER" rotate-certificate --data "$1" >/dev/null 2>&1 && "$SERVER" rotate-certificate --data "$1" switch >/dev/null 2>&1
}
# A's key signs a rotation to a certificate of its choosing, served on B's address.
stop_server
cp -r "$T/srv" "$T/srvB"
rotate "$T/srvA" || bad "rotating A"
rm -rf "$T/srv" && cp -r "$T/srvA" "$T/srv"
start_server
s alice receive >"$T/x1" 2>&1; rc=$?
check "a rotation signed by server A's key: refused" test $rc -eq 1 -a -n "$(grep "differs from the pinned one" "$T/x1")"
# B's genuine rotation is followed.
stop_server
rm -rf "$T/srv" && mv "$T/srvB" "$T/srv"
rotate "$T/srv" || bad "rotating B"
start_server
s alice receive >"$T/x2" 2>&1; rc=$?
check "server B's own rotation: followed (exit 0)" test $rc -eq 0
check "... and re-pinned" contains "$T/x2" "rotated its TLS certificate"
finish
