# SPDX-License-Identifier: Apache-2.0
# test_link_qr.sh: 'sotto link' on a terminal prints the link code's QR after
# the 'code: CODE' line (issue 11: "prints a one-time link code and a QR in the
# terminal"); with --json it prints only {"code": ...}. The terminal is a
# pseudo-terminal made by script(1); the link is left to time out (nothing is
# added).
source "$(dirname "$0")/lib.sh" "$@"
command -v script >/dev/null || { echo "FAIL: script(1) missing (util-linux)"; exit 1; }
start_server
new_user alice
script -qec "timeout 60 '$SOTTO' --home '$T/qr' link --server 127.0.0.1:$PORT --name qr --timeout 2" /dev/null >"$T/qr.out" 2>&1
check "on a terminal: the code line" grep -q "^code: " "$T/qr.out"
check "... and a QR of it (block characters)" grep -q $'\xe2\x96\x88' "$T/qr.out"
check "... after the code line" test "$(grep -n '^code: ' "$T/qr.out" | head -1 | cut -d: -f1)" -lt \
  "$(grep -n $'\xe2\x96\x88' "$T/qr.out" | head -1 | cut -d: -f1)"
script -qec "timeout 60 '$SOTTO' --home '$T/qr2' --json link --server 127.0.0.1:$PORT --name qr --timeout 2" /dev/null >"$T/qr2.out" 2>&1
check "--json on a terminal: {\"code\": ...}" grep -q '"code":"' "$T/qr2.out"
check "... and no QR" bash -c "! grep -q $'\xe2\x96\x88' '$T/qr2.out'"
finish
