# SPDX-License-Identifier: Apache-2.0
# test_multidevice_held_kt.sh: held, not dropped, with key transparency and a
# witness (docs/multi-device.md, "Held, not dropped"). The server names a
# witness (--kt-witness); clients take it at first contact and need its
# cosignature (1 of 1). bob links his laptop and writes from it to carol, who
# never talked to him, before the witness cosigned the log's new head (his
# laptop itself is told not to wait for the witness): carol
# cannot check bob's laptop yet and holds the message; once a real
# sotto-witness run cosigned, her next receive delivers it once.
source "$(dirname "$0")/lib.sh" "$@"
WITNESS=$(dirname "$SERVER")/sotto-witness
[ -x "$WITNESS" ] || { echo "FAIL: $WITNESS is not built"; exit 1; }
PKW=$("$WITNESS" --state "$T/w1" --key)
SRVARGS=(--kt 1 --kt-witness "w1:$PKW" --device-change-burst 100)
cosign() {
  timeout 60 "$WITNESS" --server "127.0.0.1:$PORT" --fingerprint "$FP" --state "$T/w1" --log-key "$LOGKEY" \
    >"$T/w1.out" 2>&1 || { echo "  witness: $(cat "$T/w1.out")"; return 1; }
}

start_server "${SRVARGS[@]}"
FP=$("$SERVER" fingerprint --data "$T/srv")
LOGKEY=$(sed -n 's/.*event=kt_open.*sig_pk=\([0-9a-f]*\) vrf_pk=\([0-9a-f]*\).*/\1\2/p' "$T/server.err" | tail -1)
new_user carol
new_user bob
check "the witness cosigns the log with carol and bob" cosign
s carol kt status >"$T/k0" 2>&1
check "carol needs the witness's cosignature" contains "$T/k0" "witnesses: 1 of 1 required"

# the laptop's list enters the log; the witness has not cosigned it yet
check "bob links his laptop" link_device bob-laptop bob laptop
s bob receive >/dev/null 2>&1
s bob-laptop receive >/dev/null 2>&1
# (the sender's own client does not wait for the witness: only carol's check is tested)
s bob-laptop kt witnesses remove w1 >"$T/rm.out" 2>&1 || cat "$T/rm.out"
s bob-laptop send carol "hello carol, before the witness" >"$T/c0" 2>&1
check "bob's laptop writes to carol, a stranger" contains "$T/c0" "Sent to carol."
s carol receive >"$T/c1" 2>&1
check "carol holds it: bob's laptop cannot be checked against the log yet" \
  contains "$T/c1" "held: cannot check bob's device 2 yet"
check "... because the log's head lacks the witness's cosignature" \
  contains "$T/c1" "cannot be checked yet: the server's key-transparency head"
check "... not refused" lacks "$T/c1" "refused"
check "... not shown" lacks "$T/c1" "before the witness"
s carol --json safety-number bob >"$T/c2" 2>&1
check "... bob's key is not trusted yet" lacks "$T/c2" '"number"'

check "the witness cosigns the new head" cosign
s carol receive >"$T/c3" 2>&1
check "carol's next receive delivers it" contains "$T/c3" "(request) bob: hello carol, before the witness"
check "... nothing refused" lacks "$T/c3" "refused"
s carol receive >"$T/c4" 2>&1
s carol history bob >"$T/c5" 2>&1
check "... once" test "$(grep -c 'before the witness' "$T/c5")" = 1
finish
