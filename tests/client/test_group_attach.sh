# SPDX-License-Identifier: Apache-2.0
# test_group_attach.sh: a file sent to a group of three (sotto send '#GROUP'
# --file; content kind GROUP_ATTACHMENT inside the group's SenderKeyMessage):
# one blob on the server, both other members download it and get the same
# bytes (SHA-256), the blob stays for later members' devices until it
# expires (nobody can say how many devices will fetch it), then goes; a
# member who did not accept the group downloads nothing; a blob altered on
# the server is refused by every member.
source "$(dirname "$0")/lib.sh" "$@"

start_server --log-level 1 --blob-expiry-seconds 20 --expire-interval 1
for u in alice bob carol dave; do new_user $u; done

s alice group create trio bob carol >"$T/g1" 2>&1
check "alice creates the group" contains "$T/g1" "Members: alice bob carol"
s bob receive >/dev/null 2>&1; s carol receive >/dev/null 2>&1
s bob requests accept alice >/dev/null 2>&1; s carol requests accept alice >/dev/null 2>&1

head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$T/photo.bin"
SUM=$(sha256sum <"$T/photo.bin" | cut -d' ' -f1)
s alice send '#trio' --file "$T/photo.bin" "for both of you" >"$T/send.out" 2>&1
rc=$?
check "alice sends a file to the group (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/send.out"
check "the server holds one blob for it" test "$(ls "$T/srv/blobs" | wc -l)" -eq 1
BLOB=$(ls "$T/srv/blobs" | head -1)
for u in bob carol; do
  s $u receive >"$T/$u.recv" 2>&1
  check "$u is told the file came in the group" contains "$T/$u.recv" \
    "file from alice in group trio saved as downloads/photo.bin (3158073 bytes): for both of you"
  check "... with the bytes alice sent (SHA-256)" \
    test "$(sha256sum <"$T/$u/downloads/photo.bin" | cut -d' ' -f1)" = "$SUM"
done
check "the blob stays after both fetched it (the server cannot count member devices)" test -e "$T/srv/blobs/$BLOB"
# The requisition report stays valid JSON with the group's attachments
# (the server counts no fetches of group blobs, so none is listed).
timeout 60 "$SERVER" requisition --data "$T/srv" bob >"$T/req.json" 2>"$T/req.err"
check "bob's requisition report is valid JSON" node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$T/req.json"
check "... and not the blob's id" lacks "$T/req.json" "$BLOB"
s alice attachments >"$T/alist" 2>&1
check "alice's attachments list it as sent to the group" contains "$T/alist" "sent to group trio"
s carol attachments --json >"$T/clist" 2>&1
check "carol's list names the group" contains "$T/clist" '"group":"trio"'

# The daemon's methods (over sotto jsonrpc): sendAttachment with 'group' or
# a '#GROUP' recipient, send with a '#GROUP' recipient; both at once refused.
rpc() { printf '%s\n' "$1" | timeout 60 "$SOTTO" --home "$T/alice" jsonrpc >"$T/$2" 2>&1; }
echo "sent to the group over JSON-RPC" >"$T/rpcg.txt"
rpc "{\"jsonrpc\":\"2.0\",\"method\":\"sendAttachment\",\"params\":{\"group\":\"trio\",\"path\":\"$T/rpcg.txt\",\"name\":\"rpc-group.txt\",\"message\":\"via rpc\"},\"id\":1}" rpcg1.out
check "sendAttachment to a group answers with a result" contains "$T/rpcg1.out" '"delivered":2'
check "... not an error" lacks "$T/rpcg1.out" '"error"'
rpc "{\"jsonrpc\":\"2.0\",\"method\":\"sendAttachment\",\"params\":{\"recipient\":\"#trio\",\"path\":\"$T/rpcg.txt\",\"name\":\"rpc-hash.txt\"},\"id\":2}" rpcg2.out
check "sendAttachment to '#trio' as the recipient too" contains "$T/rpcg2.out" '"delivered":2'
rpc '{"jsonrpc":"2.0","method":"send","params":{"recipient":"#trio","message":"a group text over rpc"},"id":3}' rpcg3.out
check "send to '#trio' as the recipient" contains "$T/rpcg3.out" '"delivered":2'
rpc "{\"jsonrpc\":\"2.0\",\"method\":\"sendAttachment\",\"params\":{\"recipient\":\"bob\",\"group\":\"trio\",\"path\":\"$T/rpcg.txt\"},\"id\":4}" rpcg4.out
check "sendAttachment with both a recipient and a group is refused" contains "$T/rpcg4.out" "give either 'recipient' or 'group'"
rpc "{\"jsonrpc\":\"2.0\",\"method\":\"sendAttachment\",\"params\":{\"group\":\"no/such\",\"path\":\"$T/rpcg.txt\"},\"id\":5}" rpcg5.out
check "... and an invalid group name" contains "$T/rpcg5.out" "not a valid group name"
for u in bob carol; do
  s $u receive >"$T/$u.rpcg" 2>&1
  check "$u gets the file sent to the group by the daemon" cmp -s "$T/$u/downloads/rpc-group.txt" "$T/rpcg.txt"
  check "... told it came in the group, with its caption" contains "$T/$u.rpcg" \
    "file from alice in group trio saved as downloads/rpc-group.txt (32 bytes): via rpc"
  check "... and the one sent to '#trio'" cmp -s "$T/$u/downloads/rpc-hash.txt" "$T/rpcg.txt"
  check "... and the group text" contains "$T/$u.rpcg" "a group text over rpc"
done

# Group names are checked; a group we are not in is refused.
s alice send '#no/such' --file "$T/photo.bin" >"$T/bad1" 2>&1
check "an invalid group name is refused" test $? -ne 0
s alice send '#nosuch' --file "$T/photo.bin" >"$T/bad2" 2>&1
check "an unknown group is refused" contains "$T/bad2" "no group called 'nosuch'"
# (A text to '#GROUP' is a group text: tests/client/test_convo_group.sh.)
s alice send --reply-to 1 '#trio' --file "$T/photo.bin" >"$T/bad3" 2>&1
check "--reply-to with a file to '#GROUP' is refused" contains "$T/bad3" "--reply-to does not go with --file"

# An altered blob: every member refuses it, nothing saved.
head -c 200000 /dev/urandom >"$T/small.bin"
ls "$T/srv/blobs" >"$T/before"
s alice send '#trio' --file "$T/small.bin" >/dev/null 2>&1 || bad "send small.bin to the group"
B2=$(ls "$T/srv/blobs" | grep -vxFf "$T/before")
flip_byte "$T/srv/blobs/$B2" 100000 || bad "alter the blob"
for u in bob carol; do
  s $u receive >"$T/$u.tam" 2>&1
  check "$u refuses the altered group file" contains "$T/$u.tam" "file small.bin from alice in group trio could not be saved"
  check "... nothing saved" test ! -e "$T/$u/downloads/small.bin"
done

# dave is in a group he did not accept: the file is not fetched.
s alice group create pair dave >/dev/null 2>&1
s dave receive >/dev/null 2>&1
ls "$T/srv/blobs" >"$T/before"
s alice send '#pair' --file "$T/small.bin" >/dev/null 2>&1 || bad "send to pair"
s dave receive >"$T/dave.recv" 2>&1
check "a member who did not accept the group downloads nothing" test ! -e "$T/dave/downloads/small.bin"

# Expiry: the group's blobs leave the server's disk.
# (blob-expiry-seconds 20 after each upload began; the expiry run every second)
for i in $(seq 1 600); do [ ! -e "$T/srv/blobs/$BLOB" ] && [ ! -e "$T/srv/blobs/$B2" ] && break; sleep 0.1; done
check "at expiry the group's blobs are deleted" test ! -e "$T/srv/blobs/$BLOB" -a ! -e "$T/srv/blobs/$B2"

finish
