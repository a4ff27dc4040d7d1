# SPDX-License-Identifier: Apache-2.0
# test_rotation.sh: key lifetimes, with the clock of the sotto-test binary
# (SOTTO_TEST_NOW; the installed sotto ignores it). The signed pre-key and
# the last-resort KEM pre-key are rotated every 2 days; a message sent to the
# old signed pre-key and received after the rotation, within the 30-day grace
# period, decrypts; after the grace period the old private key is gone (and
# a message still sent to it cannot be read); a one-time pre-key the server
# handed out is deleted 30 days after the client learned it was handed out.
source "$(dirname "$0")/lib.sh" "$@"
[ -x "$SCAN" ] || { echo "FAIL: client_store_scan is not built"; exit 1; }
DAY=86400
T0=2000000000
export SOTTO_TEST_NOW=$T0
has() { "$SCAN" --has "$T/$1" "$2" >/dev/null; }
devkey() { sql "SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = '$1';"; }

start_server
new_user alice
new_user bob
new_user carol
stop_server
check "the server holds alice's signed pre-key 1" test "$(sql "SELECT key_id FROM signed_prekeys WHERE devkey = $(devkey alice);")" = 1
lr1=$(sql "SELECT key_id FROM last_resort WHERE devkey = $(devkey alice);")
start_server

# Day 0: bob and carol start sessions from alice's bundle (signed pre-key 1,
# one-time pre-keys 1 and 2); alice is offline.
s bob send alice "in flight across the rotation" >/dev/null 2>&1
s carol send alice "in flight past the grace period" >/dev/null 2>&1
stop_server
sql "CREATE TABLE stash AS SELECT * FROM messages WHERE sender = 'carol'; DELETE FROM messages WHERE sender = 'carol';"
start_server

# Day 3: alice connects: rotation first, then bob's message, sent to the old key.
SOTTO_TEST_NOW=$((T0 + 3 * DAY)) s alice receive >"$T/r1" 2>&1
check "bob's message to the replaced signed pre-key decrypts (grace period)" contains "$T/r1" "bob: in flight across the rotation"
stop_server
check "the server now hands out signed pre-key 2" test "$(sql "SELECT key_id FROM signed_prekeys WHERE devkey = $(devkey alice);")" = 2
lr2=$(sql "SELECT key_id FROM last_resort WHERE devkey = $(devkey alice);")
check "... and a new last-resort KEM pre-key" test -n "$lr2" -a "$lr2" != "$lr1"
check "alice still holds the replaced signed pre-key 1" has alice spk/1
check "... and the replaced last-resort key" has alice "kem/$lr1"
check "one-time pre-key 1 (used by bob) is gone" test "$(has alice opk/1; echo $?)" = 1
check "one-time pre-key 2 (handed out to carol, unused) is kept for now" has alice opk/2
start_server
SOTTO_TEST_NOW=$((T0 + 4 * DAY)) s alice receive >/dev/null 2>&1
check "no rotation a day later (signed pre-key 2 still current)" \
  test "$(stop_server; sql "SELECT key_id FROM signed_prekeys WHERE devkey = $(devkey alice);")" = 2
start_server
check "... and signed pre-key 1 is still kept within the grace period" has alice spk/1

# Day 34: 31 days after the rotation, carol's message finally arrives.
stop_server
sql "INSERT INTO messages SELECT * FROM stash; UPDATE devices SET queue_count = queue_count + 1 WHERE devkey = $(devkey alice);"
start_server
SOTTO_TEST_NOW=$((T0 + 34 * DAY)) s alice receive >"$T/r2" 2>&1
check "after the grace period, signed pre-key 1 is deleted" test "$(has alice spk/1; echo $?)" = 1
check "... and the replaced last-resort key" test "$(has alice "kem/$lr1"; echo $?)" = 1
check "signed pre-key 2 (replaced just now) is kept" has alice spk/2
check "the handed-out one-time pre-key 2 expired and is deleted" test "$(has alice opk/2; echo $?)" = 1
check "a one-time pre-key never handed out is kept" has alice opk/50
check "carol's message to the deleted keys cannot be read" contains "$T/r2" "a message from carol could not be decrypted"
# New sessions use the current keys and work.
export SOTTO_TEST_NOW=$((T0 + 34 * DAY))
new_user dave
s dave send alice "after the rotation" >/dev/null 2>&1
s alice receive >"$T/r3" 2>&1
check "a new session from the current keys decrypts" contains "$T/r3" "dave: after the rotation"

# Drain: the server hands all of alice's one-time keys out, again and again
# (deleted here behind her back). Her stock of one-time private keys stays
# bounded (300 EC): the oldest handed-out ones go first, early if need be,
# and she tops up at most once per 10 minutes.
oc() { sql "SELECT count(*) FROM onetime WHERE devkey = $(devkey alice) AND kind = 0;"; }
for i in 1 2 3 4; do
  stop_server
  sql "DELETE FROM onetime WHERE devkey = $(devkey alice);"
  start_server
  SOTTO_TEST_NOW=$((T0 + 34 * DAY + i * 660)) s alice receive >/dev/null 2>&1
done
stop_server
check "after four drains alice has uploaded 100 new keys each time" test "$(oc)" = 100
sql "DELETE FROM onetime WHERE devkey = $(devkey alice);"
start_server
SOTTO_TEST_NOW=$((T0 + 34 * DAY + 4 * 660 + 60)) s alice receive >/dev/null 2>&1
check "a fifth drain a minute later makes her generate nothing" test "$(stop_server; oc)" = 0
start_server
check "the oldest handed-out keys were deleted early to stay within 300" test "$(has alice opk/200; echo $?)" = 1
check "... the newest 300 are kept" has alice opk/201
check "... up to the last one generated" has alice opk/500
check "... and nothing beyond" test "$(has alice opk/501; echo $?)" = 1
finish
