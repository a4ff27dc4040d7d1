# SPDX-License-Identifier: Apache-2.0
# test_attach_nodirect.sh: attachments on a filesystem that refuses O_DIRECT
# (docs/client.md "Attachments", docs/server.md "Attachments").
#
# The server writes a PUT's aligned middle with O_DIRECT and the client
# writes downloads in 1 MiB O_DIRECT units; where the filesystem refuses
# (EINVAL) both fall back to the page cache. No filesystem of the test
# machines refuses (tmpfs takes O_DIRECT since Linux 6.6), so the refusal is
# simulated by nodirect_preload.so, preloaded into the real server and the
# real client (no hook in either): SOTTO_NODIRECT=open refuses the flag at
# open()/fcntl() (old tmpfs), SOTTO_NODIRECT=write takes the flag and
# refuses each write (a filesystem that checks at the write). For each:
#  - the refusals happened in the server and in the client (their log),
#    so the fallback path is what ran;
#  - a file of a size that is not a multiple of anything (several PUT units,
#    an unaligned tail) arrives with the same SHA-256 and the server's blob
#    file has the ciphertext's size;
#  - an upload cut twice (SOTTO_TEST_ATTACH_CUT) resumes on the fallback
#    path and arrives whole too (the second cut may come after the last
#    PUT's answer: the COMMIT is then asked again on a new connection; the
#    client before this test gave up there);
#  - without the library, the same transfer makes no refusal (the library
#    refuses nothing it was not asked to).
source "$(dirname "$0")/lib.sh" "$@"

PRELOAD=$(dirname "$SERVER")/nodirect_preload.so
[ -f "$PRELOAD" ] || { echo "FAIL: $PRELOAD is not built"; exit 1; }
# Sanitizer builds: the runtime wants to come first in the library list.
export ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0"
MIB=$((1024 * 1024))
LOG="$T/nodirect.log"
SRV_OPTS=(--log-level 1)

# cipher_size N: the ciphertext of N plaintext bytes (16 more per 64 KiB chunk).
cipher_size() { echo $(($1 + (($1 + 65535) / 65536) * 16)); }

# one_mode MODE: server and both clients under SOTTO_NODIRECT=MODE.
one_mode() {
  local mode=$1 size sum blob rc n_srv n_cli
  : >"$LOG"
  export SOTTO_NODIRECT=$mode SOTTO_NODIRECT_LOG=$LOG LD_PRELOAD=$PRELOAD
  stop_server
  start_server "${SRV_OPTS[@]}"
  rm -rf "$T/bob/downloads"
  # 5 MiB + 12345 bytes: 27 PUT units of 192 KiB, an unaligned tail.
  size=$((5 * MIB + 12345))
  head -c "$size" /dev/urandom >"$T/f-$mode.bin"
  sum=$(sha256sum <"$T/f-$mode.bin" | cut -d' ' -f1)
  s alice send bob --file "$T/f-$mode.bin" "mode $mode" >"$T/up-$mode.out" 2>&1
  rc=$?
  check "$mode: alice sends $size bytes (exit $rc)" test "$rc" -eq 0
  blob=$(ls -t "$T/srv/blobs" | head -1)
  check "$mode: the server's blob file has the ciphertext's size" \
    test "$(stat -c %s "$T/srv/blobs/$blob" 2>/dev/null)" = "$(cipher_size "$size")"
  n_srv=$(grep -c '^sotto-server refused' "$LOG")
  check "$mode: the server's O_DIRECT was refused ($n_srv times) and it wrote through the page cache" \
    test "$n_srv" -gt 0
  s bob receive >"$T/down-$mode.out" 2>&1
  rc=$?
  check "$mode: bob receives it (exit $rc)" test "$rc" -eq 0
  check "$mode: ... the same bytes (SHA-256)" \
    test "$(sha256sum <"$T/bob/downloads/f-$mode.bin" 2>/dev/null | cut -d' ' -f1)" = "$sum"
  check "$mode: ... no temporary file left" test "$(ls -A "$T/bob/downloads" | wc -l)" -eq 1
  n_cli=$(grep -c '^sotto-test refused' "$LOG")
  check "$mode: the client's O_DIRECT download writes were refused ($n_cli times)" test "$n_cli" -gt 0

  # An upload cut twice, resumed on the fallback path.
  size=$((3 * MIB + 777))
  head -c "$size" /dev/urandom >"$T/g-$mode.bin"
  sum=$(sha256sum <"$T/g-$mode.bin" | cut -d' ' -f1)
  SOTTO_TEST_ATTACH_CUT=1000000,2500000 s alice send bob --file "$T/g-$mode.bin" >"$T/upcut-$mode.out" 2>&1
  rc=$?
  check "$mode: an upload cut twice completes (exit $rc)" test "$rc" -eq 0
  # The first cut falls mid-transfer (a resume from BLOB_STAT); the second
  # may fall after the last PUT's answer (the COMMIT asked again).
  check "$mode: ... resumed from what the server had (its log)" \
    test "$(cat "$T/server.out" "$T/server.err" | grep -c 'event=blob_resume')" -ge 1
  s bob receive >"$T/downcut-$mode.out" 2>&1
  check "$mode: ... and arrives with the same SHA-256" \
    test "$(sha256sum <"$T/bob/downloads/g-$mode.bin" 2>/dev/null | cut -d' ' -f1)" = "$sum"
  unset SOTTO_NODIRECT SOTTO_NODIRECT_LOG LD_PRELOAD
}

start_server "${SRV_OPTS[@]}"
new_user alice
new_user bob
s alice send bob "hello" >/dev/null 2>&1 && s bob receive >/dev/null 2>&1 && s alice receive >/dev/null 2>&1

one_mode open
one_mode write

# A full disk under the download (SOTTO_NODIRECT=full: each O_DIRECT write
# fails with ENOSPC, in the client only): the writer thread's failure reaches
# the command as "disk full", no partial file is left, and the attachment
# stays pending: the next receive, with room, saves it whole.
stop_server
start_server "${SRV_OPTS[@]}"
head -c $((4 * MIB + 99)) /dev/urandom >"$T/full.bin"
s alice send bob --file "$T/full.bin" >/dev/null 2>&1
rc=$?
check "full: alice sends the file (exit $rc)" test "$rc" -eq 0
: >"$LOG"
rm -rf "$T/bob/downloads"
SOTTO_NODIRECT=full SOTTO_NODIRECT_LOG=$LOG LD_PRELOAD=$PRELOAD s bob receive >"$T/down-full.out" 2>&1
check "full: the client's writes failed (its log)" grep -q '^sotto-test refused-full' "$LOG"
check "full: the receive says the disk is full" grep -qi 'disk\|no room\|space' "$T/down-full.out"
check "full: ... and leaves no file in downloads" test "$(ls -A "$T/bob/downloads" 2>/dev/null | wc -l)" -eq 0
s bob receive >"$T/down-full2.out" 2>&1
check "full: the next receive saves the file whole" cmp -s "$T/full.bin" "$T/bob/downloads/full.bin"

# Control: the library loaded but not asked to refuse: nothing refused.
: >"$LOG"
export SOTTO_NODIRECT_LOG=$LOG LD_PRELOAD=$PRELOAD
stop_server
start_server "${SRV_OPTS[@]}"
head -c $((2 * MIB + 5)) /dev/urandom >"$T/h.bin"
s alice send bob --file "$T/h.bin" >/dev/null 2>&1 && s bob receive >/dev/null 2>&1
check "without SOTTO_NODIRECT the file arrives" cmp -s "$T/h.bin" "$T/bob/downloads/h.bin"
check "... and nothing was refused" test ! -s "$LOG"
unset SOTTO_NODIRECT_LOG LD_PRELOAD

finish
