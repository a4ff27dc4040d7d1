# SPDX-License-Identifier: Apache-2.0
# test_attach.sh: attachments end to end (docs/client.md "Attachments").
#  - a 200 MiB file whose upload is cut twice (the connection dropped under
#    TLS by the sotto-test hook SOTTO_TEST_ATTACH_CUT) resumes from what the
#    server has, arrives on another home with the same SHA-256, and the
#    client's and the server's RSS stay far below the file's size (printed;
#    the bound is generous: 64 MiB);
#  - the server holds ciphertext only, and lets it go once fetched;
#  - a blob altered on the server's disk is refused, nothing saved;
#  - hostile file names are cleaned, collisions numbered;
#  - a text above the message limit arrives as text;
#  - a sender killed (kill -9) mid-upload and run again resumes the same
#    blob from what the server has (the upload record in its store); a file
#    changed in between starts a new upload;
#  - quota (count and bytes) and expiry give their errors.
source "$(dirname "$0")/lib.sh" "$@"

MIB=$((1024 * 1024))
RSS_MAX_KB=$((64 * 1024))

# rss_watch PID OUT: the highest VmRSS (kB) of PID while it lives, into OUT.
rss_watch() {
  local pid=$1 out=$2 max=0 v i c
  # timeout(1) runs sotto as its child: watch that one.
  for i in $(seq 1 100); do
    c=$(pgrep -P "$pid" | head -1)
    [ -n "$c" ] && { pid=$c; break; }
    sleep 0.02
  done
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
    sleep 0.05
  done
  echo "$max" >"$out"
}
# srv_rss_peak: the server's peak RSS so far (VmHWM, kB).
srv_hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$SPID/status"; }

start_server --log-level 1
new_user alice
new_user bob
new_user carol
s alice send bob "hello" >/dev/null 2>&1 && s bob receive >/dev/null 2>&1 && s alice receive >/dev/null 2>&1

# ---- 200 MiB, cut twice ------------------------------------------------------
# Compressible plaintext with a marker: the plaintext scan below looks for it.
yes "SOTTO-PLAINTEXT-MARKER attachment line" | head -c $((200 * MIB)) >"$T/big.bin"
SUM=$(sha256sum <"$T/big.bin" | cut -d' ' -f1)
srv_before=$(srv_hwm)
SOTTO_TEST_ATTACH_CUT=60000000,140000000 timeout 300 "$SOTTO" --home "$T/alice" send bob --file "$T/big.bin" \
  "two hundred" >"$T/up.out" 2>&1 &
UP=$!
rss_watch "$UP" "$T/up.rss" &
W=$!
wait "$UP"
rc=$?
wait "$W"
check "alice sends 200 MiB with the upload cut twice (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/up.out"
check "the server saw the upload resume twice" test "$(grep -c 'event=blob_resume' "$T/server.out" "$T/server.err" |
  awk -F: '{s += $2} END {print s}')" -eq 2
check "the server holds one blob file" test "$(ls "$T/srv/blobs" | wc -l)" -eq 1
BLOB=$(ls "$T/srv/blobs" | head -1)
check "... of the ciphertext's size (200 MiB + 16 bytes a 64 KiB chunk)" \
  test "$(stat -c %s "$T/srv/blobs/$BLOB")" -eq $((200 * MIB + 3200 * 16))
check "... holding no plaintext (scan)" lacks "$T/srv/blobs/$BLOB" "SOTTO-PLAINTEXT-MARKER"
check "... nor does the database" sh -c "! grep -qa 'SOTTO-PLAINTEXT-MARKER' '$T/srv/sotto.db' '$T'/srv/sotto.db-wal 2>/dev/null"
timeout 300 "$SOTTO" --home "$T/bob" receive >"$T/down.out" 2>&1 &
DOWN=$!
rss_watch "$DOWN" "$T/down.rss" &
W=$!
wait "$DOWN"
rc=$?
wait "$W"
srv_after=$(srv_hwm)
check "bob receives it (exit $rc)" test "$rc" -eq 0
check "... and is told where it is" contains "$T/down.out" "file from alice saved as downloads/big.bin (209715200 bytes): two hundred"
check "... the same bytes (SHA-256)" test "$(sha256sum <"$T/bob/downloads/big.bin" | cut -d' ' -f1)" = "$SUM"
check "... no temporary file left" test "$(ls -A "$T/bob/downloads" | wc -l)" -eq 1
check "the server deleted the blob once its one recipient had it" blob_files_soon 0
echo "RSS during the 200 MiB transfer: sender client $(cat "$T/up.rss") kB, receiver client $(cat "$T/down.rss") kB," \
  "server peak $srv_after kB (before it $srv_before kB)"
# A sanitizer build keeps freed memory in quarantine and adds shadow memory
# (ASan; TSan's shadow is several times the memory it watches): its RSS says
# nothing about the code's (the figures are printed all the same).
if ldd "$SOTTO" 2>/dev/null | grep -qE 'libasan|libtsan'; then
  echo "(sanitizer build: the RSS bounds are not checked)"
else
  check "sender RSS below 64 MiB" test "$(cat "$T/up.rss")" -lt "$RSS_MAX_KB"
  check "receiver RSS below 64 MiB" test "$(cat "$T/down.rss")" -lt "$RSS_MAX_KB"
  check "server peak RSS below 64 MiB" test "$srv_after" -lt "$RSS_MAX_KB"
fi
s bob attachments >"$T/list" 2>&1
check "sotto attachments lists it" contains "$T/list" "downloads/big.bin (209715200 bytes)"
s alice attachments --json >"$T/alist" 2>&1
check "... and on the sender's side as sent" contains "$T/alist" '"direction":"sent","size":209715200'
rm -f "$T/big.bin" "$T/bob/downloads/big.bin"

# ---- an altered blob ----------------------------------------------------------
head -c 300000 /dev/urandom >"$T/small.bin"
s alice send bob --file "$T/small.bin" >/dev/null 2>&1 || bad "send small.bin"
BLOB=$(ls "$T/srv/blobs" | head -1)
flip_byte "$T/srv/blobs/$BLOB" 150000 || bad "alter the blob"
s bob receive >"$T/tam.out" 2>&1
check "an altered blob is refused" contains "$T/tam.out" "file small.bin from alice could not be saved"
s bob attachments --json >"$T/tam.json" 2>&1
check "... as attachment_tampered" contains "$T/tam.json" '"error":"attachment_tampered"'
check "... and nothing was saved" test "$(ls -A "$T/bob/downloads" | wc -l)" -eq 0

# ---- format v2 chunks swapped; a format v1 file still received ------------------
# (docs/client.md "Attachments": v2 seals chunk i with AES-256-GCM, i in the
# nonce; SOTTO_TEST_ATTACH_V1=1 makes sotto-test send format v1 as before.)
CC=$((65536 + 16))
ls "$T/srv/blobs" >"$T/sw.before"
s alice send bob --file "$T/small.bin" --name swapped.bin >/dev/null 2>&1 || bad "send swapped.bin"
BLOB=$(ls "$T/srv/blobs" | grep -vxFf "$T/sw.before" | head -1)
dd if="$T/srv/blobs/$BLOB" of="$T/c0" bs=$CC count=1 2>/dev/null
dd if="$T/srv/blobs/$BLOB" of="$T/c1" bs=$CC skip=1 count=1 2>/dev/null
dd if="$T/c1" of="$T/srv/blobs/$BLOB" bs=$CC seek=0 conv=notrunc 2>/dev/null
dd if="$T/c0" of="$T/srv/blobs/$BLOB" bs=$CC seek=1 conv=notrunc 2>/dev/null
s bob receive >"$T/swap.out" 2>&1
check "two chunks of a format v2 blob swapped: refused" contains "$T/swap.out" "file swapped.bin from alice could not be saved"
check "... and nothing was saved" test "$(ls -A "$T/bob/downloads" | wc -l)" -eq 0
SOTTO_TEST_ATTACH_V1=1 "$SOTTO" --home "$T/alice" send bob --file "$T/small.bin" --name v1.bin "old format" \
  >"$T/v1.send" 2>&1 || bad "send v1.bin in format v1"
s bob receive >"$T/v1.out" 2>&1
check "a format v1 file is still received" contains "$T/v1.out" "saved as downloads/v1.bin (300000 bytes): old format"
check "... with the bytes sent" cmp -s "$T/bob/downloads/v1.bin" "$T/small.bin"
ls "$T/srv/blobs" >"$T/sw.before"
SOTTO_TEST_ATTACH_V1=1 "$SOTTO" --home "$T/alice" send bob --file "$T/small.bin" --name v1bad.bin \
  >/dev/null 2>&1 || bad "send v1bad.bin in format v1"
BLOB=$(ls "$T/srv/blobs" | grep -vxFf "$T/sw.before" | head -1)
flip_byte "$T/srv/blobs/$BLOB" 70000 || bad "alter the v1 blob"
s bob receive >"$T/v1bad.out" 2>&1
check "an altered format v1 blob is refused" contains "$T/v1bad.out" "file v1bad.bin from alice could not be saved"
rm -f "$T/bob/downloads/v1.bin"
check "... and nothing else was saved" test "$(ls -A "$T/bob/downloads" | wc -l)" -eq 0

# ---- one blob, its pointer sent four times -------------------------------------
# (SOTTO_TEST_ATTACH_REPOINT, a sotto-test hook, stands for a hostile sender
# that would have one upload saved many times over: a pointer to a blob seen
# before is ignored)
head -c 5000 /dev/urandom >"$T/rep.bin"
SOTTO_TEST_ATTACH_REPOINT=3 "$SOTTO" --home "$T/alice" send bob --file "$T/rep.bin" --name rep.bin \
  >"$T/rep.send" 2>&1 || bad "send rep.bin with its pointer four times"
s bob receive >"$T/rep.out" 2>&1
check "a blob whose pointer came four times is saved once" test "$(ls "$T/bob/downloads" | grep -c '^rep')" -eq 1
check "... with the bytes sent" cmp -s "$T/bob/downloads/rep.bin" "$T/rep.bin"
s bob attachments --json >"$T/rep.json" 2>&1
check "... and listed once (the other pointers ignored, not failed)" test "$(grep -c 'rep.bin' "$T/rep.json")" -eq 1
rm -f "$T/bob/downloads/rep.bin"

# ---- hostile names --------------------------------------------------------------
echo "a small file" >"$T/plain.txt"
LONG=$(printf 'n%.0s' $(seq 1 240)).txt
for name in "../../x" "$(printf 'evil\tname\033[31m.txt')" "$LONG" "CON.txt" ".hidden" "dup.txt" "dup.txt" \
  "a/b\\c:d.txt"; do
  s alice send bob --file "$T/plain.txt" --name "$name" >/dev/null 2>&1 || bad "send as '$name'"
done
s bob receive >"$T/names.out" 2>&1
ls -A "$T/bob/downloads" >"$T/names.ls"
check "'../../x' lands inside downloads as 'x'" test -f "$T/bob/downloads/x"
check "... nothing was written outside it" test ! -e "$T/x" -a ! -e "$T/bob/x"
check "control characters become '_'" test -f "$T/bob/downloads/evil_name_[31m.txt"
check "a long name is cut to 100 bytes, extension kept" test -f "$T/bob/downloads/$(printf 'n%.0s' $(seq 1 96)).txt"
check "a reserved name is prefixed" test -f "$T/bob/downloads/_CON.txt"
check "a hidden name is not hidden" test -f "$T/bob/downloads/hidden"
check "a second dup.txt is numbered" test -f "$T/bob/downloads/dup.txt" -a -f "$T/bob/downloads/dup (1).txt"
check "separators of any kind are cut" test -f "$T/bob/downloads/c_d.txt"
check "no other file appeared" test "$(wc -l <"$T/names.ls")" -eq 8
check "every copy has the bytes sent" sh -c "cd '$T/bob/downloads' && for f in *; do cmp -s \"\$f\" '$T/plain.txt' || exit 1; done"
check "receive output has no escape byte" sh -c "! grep -q \"\$(printf '\\033')\" '$T/names.out'"

# ---- the daemon's sendAttachment (over sotto jsonrpc) -----------------------------
echo "sent over JSON-RPC" >"$T/rpc.txt"
printf '%s\n' "{\"jsonrpc\":\"2.0\",\"method\":\"sendAttachment\",\"params\":{\"recipient\":\"bob\",\"path\":\"$T/rpc.txt\",\"name\":\"from-rpc.txt\",\"message\":\"via rpc\"},\"id\":1}" |
  timeout 60 "$SOTTO" --home "$T/alice" jsonrpc >"$T/rpc.out" 2>"$T/rpc.err"
check "sendAttachment answers with a result" grep -q '"id":1' "$T/rpc.out"
check "... not an error" lacks "$T/rpc.out" '"error"'
s bob receive >"$T/rpc.recv" 2>&1
check "bob gets the file sent by the daemon method" cmp -s "$T/bob/downloads/from-rpc.txt" "$T/rpc.txt"
check "... with its caption" contains "$T/rpc.recv" "saved as downloads/from-rpc.txt (19 bytes): via rpc"

# ---- a long text goes as an attachment, shows as text ---------------------------
yes "a long line of text for the long message test" | head -c 150000 >"$T/long.txt"
s alice send bob - <"$T/long.txt" >"$T/long.send" 2>&1
check "a 150 kB text is sent" test $? -eq 0
s bob receive >"$T/long.out" 2>&1
check "bob sees it as text" test "$(grep -o 'a long line of text' "$T/long.out" | wc -l)" -ge 3200
s bob history alice >"$T/long.hist" 2>&1
check "... kept in the history in full" test "$(grep -o 'a long line of text' "$T/long.hist" | wc -l)" -ge 3200
check "... and no file for it in downloads" test ! -e "$T/bob/downloads/message.txt"

# ---- the sender killed mid-upload, run again ------------------------------------
# SOTTO_TEST_ATTACH_SLOW (sotto-test only) pauses before each PUT so that
# the kill lands in the middle; the rerun goes at full speed.
resumes() { cat "$T/server.out" "$T/server.err" 2>/dev/null | grep -c 'event=blob_resume'; }
newblobs() { ls "$T/srv/blobs" | grep -vxFf "$T/kblobs.before"; }
# kill_mid FILE: starts alice sending FILE to bob slowly, kills it (SIGKILL)
# once the server holds 3 MiB of it; the stored size at the kill on stdout.
kill_mid() {
  local f=$1 pid b sz=0 i
  SOTTO_TEST_ATTACH_SLOW=40 "$SOTTO" --home "$T/alice" send bob --file "$f" "after a kill" >"$T/kill.out" 2>&1 &
  pid=$!
  for i in $(seq 1 600); do
    b=$(newblobs | head -1)
    [ -n "$b" ] && sz=$(stat -c %s "$T/srv/blobs/$b" 2>/dev/null || echo 0) && [ "$sz" -ge $((3 * MIB)) ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "$sz"
}
head -c $((24 * MIB)) /dev/urandom >"$T/kill.bin"
KSUM=$(sha256sum <"$T/kill.bin" | cut -d' ' -f1)
KCSIZE=$((24 * MIB + 384 * 16))
ls "$T/srv/blobs" >"$T/kblobs.before"
at_kill=$(kill_mid "$T/kill.bin")
check "the sender was killed in the middle of its upload ($at_kill of $KCSIZE bytes on the server)" \
  test "$at_kill" -ge $((3 * MIB)) -a "$at_kill" -lt "$KCSIZE"
KBLOB=$(newblobs | head -1)
r0=$(resumes)
s alice send bob --file "$T/kill.bin" "after a kill" >"$T/rerun.out" 2>&1
rc=$?
check "the same send run again succeeds (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/rerun.out"
check "... resuming the blob (the server was asked where it stands)" test "$(resumes)" -eq $((r0 + 1))
check "... the same blob, no second one" test "$(newblobs | wc -l)" -eq 1 -a "$(newblobs | head -1)" = "$KBLOB"
check "... complete on the server" test "$(stat -c %s "$T/srv/blobs/$KBLOB")" -eq "$KCSIZE"
s bob receive >"$T/krecv.out" 2>&1
check "bob receives it once" test "$(grep -c 'kill.bin' "$T/krecv.out")" -eq 1
check "... with the bytes of the file (SHA-256)" \
  test "$(sha256sum <"$T/bob/downloads/kill.bin" | cut -d' ' -f1)" = "$KSUM"
check "... and its caption" contains "$T/krecv.out" "(25165824 bytes): after a kill"
# A file changed between the kill and the rerun: a new upload, the new bytes.
ls "$T/srv/blobs" >"$T/kblobs.before"
at_kill=$(kill_mid "$T/kill.bin")
check "killed again in the middle ($at_kill bytes)" test "$at_kill" -ge $((3 * MIB)) -a "$at_kill" -lt "$KCSIZE"
KBLOB=$(newblobs | head -1)
printf 'changed' | dd of="$T/kill.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
touch -d '+1 second' "$T/kill.bin"
KSUM2=$(sha256sum <"$T/kill.bin" | cut -d' ' -f1)
r0=$(resumes)
s alice send bob --file "$T/kill.bin" "after a kill" >"$T/rerun2.out" 2>&1
check "the changed file is sent (exit $?)" test "$(newblobs | wc -l)" -eq 2
check "... as a new upload (no resume)" test "$(resumes)" -eq "$r0"
s bob receive >"$T/krecv2.out" 2>&1
check "bob gets the changed bytes" test "$(sha256sum <"$T/bob/downloads/kill (1).bin" | cut -d' ' -f1)" = "$KSUM2"
check "... the changed file differs from the first" test "$KSUM2" != "$KSUM"
rm -f "$T/kill.bin" "$T/bob/downloads/kill.bin" "$T/bob/downloads/kill (1).bin"

# ---- quota and expiry --------------------------------------------------------------
stop_server
# The expiry must outlast the two sends (two client processes: 3 s was too
# short under a loaded sanitizer build); then the test waits for the expiry.
start_server --blob-quota-count 1 --blob-quota-bytes 1000000 --blob-expiry-seconds 15 --expire-interval 1
new_user dave   # no blob of his on the server yet (bob never fetched small.bin: alice's stays)
head -c 400000 /dev/urandom >"$T/q1.bin"
ls "$T/srv/blobs" >"$T/blobs.before"
s dave send carol --file "$T/q1.bin" >"$T/q1.out" 2>&1 || { bad "first file within the quota"; cat "$T/q1.out"; }
QBLOB=$(ls "$T/srv/blobs" | grep -vxFf "$T/blobs.before")
s dave send carol --file "$T/q1.bin" >"$T/q2.out" 2>&1
rc=$?
check "a second file past the count quota is refused" test "$rc" -ne 0
check "... with the quota error" contains "$T/q2.out" "attachment quota there is used up"
# past the expiry (15 s after its upload began), the expiry run deletes it
for i in $(seq 1 400); do [ -n "$QBLOB" ] && [ ! -e "$T/srv/blobs/$QBLOB" ] && break; sleep 0.1; done
check "the expired blob left the server's disk" test -n "$QBLOB" -a ! -e "$T/srv/blobs/$QBLOB"
s carol receive >"$T/exp.out" 2>&1
check "carol is told it expired" contains "$T/exp.out" "file q1.bin from dave could not be saved"
s carol attachments --json >"$T/exp.json" 2>&1
check "... as attachment_gone" contains "$T/exp.json" '"error":"attachment_gone"'
head -c 1100000 /dev/urandom >"$T/q3.bin"
s dave send carol --file "$T/q3.bin" >"$T/q3.out" 2>&1
check "a file above the bytes quota is refused" contains "$T/q3.out" "attachment quota there is used up"

finish
