#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_kt_ghost.sh: the key-transparency "ghost tests" (issue 12). The test
# plays a compelled operator against the real sotto-server (--kt 1, two
# configured witnesses), the real sotto CLI and the real sotto-witness:
#   1. bob's identity key replaced in the server's database (not in the log):
#      alice's first message to bob is refused with the KT error, nothing sent;
#   1b. a first message to alice under a key not in the log (sender rewritten
#      in the database): held, not shown, with the KT sentence;
#   2. a substituted key for carol logged properly (the operator takes over
#      carol's account through RECOVER with a recovery hash it planted):
#      carol's device reports it at its next connect; alice sees a key change;
#   3. split view: a head no witness cosigned is refused by clients; a log
#      forked from an older copy of the database (a head that does not extend
#      the last one a client saw) is refused by the client and by the witness;
#   5. witnesses offline, with a key the server does not know, or cosigning a
#      head the server no longer serves: clear messages, nothing accepted.
# (Ghost test 4, an added device: test_kt_ghost_devices.sh.)
source "$(dirname "$0")/lib.sh" "$@"
WITNESS=$(dirname "$SERVER")/sotto-witness
[ -x "$WITNESS" ] || { echo "FAIL: $WITNESS is not built"; exit 1; }
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 missing"; exit 1; }

PK1=$("$WITNESS" --state "$T/w1" --key)
PK2=$("$WITNESS" --state "$T/w2" --key)
PKX=$("$WITNESS" --state "$T/wx" --key) # a witness the server is not configured with
start_server --kt 1 --kt-witness "w1:$PK1" --kt-witness "w2:$PK2"
FP=$("$SERVER" fingerprint --data "$T/srv")
LOGKEY=$(sed -n 's/.*event=kt_open.*sig_pk=\([0-9a-f]*\) vrf_pk=\([0-9a-f]*\).*/\1\2/p' "$T/server.err" | tail -1)
[ ${#LOGKEY} -eq 128 ] || { echo "FAIL: no kt_open line"; cat "$T/server.err"; exit 1; }
# wit DIR ARGS...: one run of a witness (state DIR) against the server.
wit() {
  local d=$1; shift
  timeout 60 "$WITNESS" --server "127.0.0.1:$PORT" --fingerprint "$FP" --state "$d" --log-key "$LOGKEY" "$@"
}

new_user alice
new_user bob
new_user carol
new_user b.rn_0
new_user mallory
new_user oscar
wit "$T/w1" >"$T/w1.out" 2>&1
check "an honest witness follows the log and the server takes its cosignature" \
  grep -q "the server took the cosignature" "$T/w1.out"

# ---- baseline: a logged, cosigned key is used --------------------------------------
s alice send carol "hello carol" >"$T/base.out" 2>&1
check "baseline: alice's message to carol (logged key, cosigned head) goes out" test $? -eq 0
s carol receive >"$T/base.recv" 2>&1
check "baseline: carol receives it" contains "$T/base.recv" "hello carol"
s alice send b.rn_0 "look-alike folding" >"$T/base2.out" 2>&1
check "baseline: the label is the server's canonical name (b.rn_0 is logged as bmo)" test $? -eq 0
s alice kt status >"$T/status.out" 2>&1
check "kt status shows the head, the witnesses and their last cosigned size" \
  sh -c "grep -q '^head: size ' '$T/status.out' && grep -q 'w1 $PK1 (announced by the server at first contact) last cosigned size [1-9]' '$T/status.out' && grep -q 'w2 .* last cosigned size 0' '$T/status.out' && grep -q 'monitoring of your account: ok' '$T/status.out'"
check "kt status: the witnesses announced at first contact are pinned, 1 required" grep -q "witnesses: 1 of 2 required" "$T/status.out"

# ---- 1: bob's key replaced in the database, not in the log -----------------------------
stop_server
# The operator hands out mallory's device (identity and pre-keys) as bob's.
sql "UPDATE accounts SET identity=(SELECT identity FROM accounts WHERE username='mallory') WHERE username='bob';
     DELETE FROM signed_prekeys WHERE devkey=(SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='bob');
     INSERT INTO signed_prekeys SELECT (SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='bob'), key_id, blob FROM signed_prekeys WHERE devkey=(SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='mallory');
     DELETE FROM last_resort WHERE devkey=(SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='bob');
     INSERT INTO last_resort SELECT (SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='bob'), key_id, blob FROM last_resort WHERE devkey=(SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='mallory');
     DELETE FROM onetime WHERE devkey=(SELECT d.devkey FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.username='bob');"
start_server --kt 1 --kt-witness "w1:$PK1" --kt-witness "w2:$PK2"
before=$(sqlite3 "$T/srv/sotto.db" "SELECT count(*) FROM messages")
s alice send bob "for bob only" >"$T/g1.out" 2>&1
rc=$?
echo "  ghost 1 printed: $(head -1 "$T/g1.out")"
check "ghost 1: alice's first message to bob is refused (exit status)" test $rc -ne 0
check "ghost 1: with the KT sentence" contains "$T/g1.out" "the server showed you a key for bob that is not in its public log; not sending"
after=$(sqlite3 "$T/srv/sotto.db" "SELECT count(*) FROM messages")
check "ghost 1: nothing was sent (no envelope queued on the server)" test "$before" = "$after"
s alice --json send bob "again" >"$T/g1.json" 2>&1
check "ghost 1: the JSON error code is kt_not_logged" contains "$T/g1.json" '"error":"kt_not_logged"'

# ---- 1b: the same on the receiving side: a first message under a key not in the log ----
# mallory writes to alice naming itself oscar in the message's addresses (a
# test hook of sotto-test), and the operator rewrites the envelope's sender
# to oscar, whom alice never talked to: old clients took oscar's key on
# first use.
SOTTO_TEST_ADDRESS_AS=oscar s mallory send alice "hi, it is oscar" >"$T/g1b.send" 2>&1
stop_server
sql "UPDATE messages SET sender='oscar' WHERE sender='mallory'"
start_server --kt 1 --kt-witness "w1:$PK1" --kt-witness "w2:$PK2"
s alice receive >"$T/g1b.out" 2>&1
echo "  ghost 1b printed: $(grep -m1 'public log' "$T/g1b.out")"
check "ghost 1b: a first message under a key that is not in the log is not shown as oscar's" lacks "$T/g1b.out" "oscar: hi, it is oscar"
check "ghost 1b: it is held as from a new, unverified key" contains "$T/g1b.out" "from a new, unverified key claiming to be oscar (held"
check "ghost 1b: alice is told why, and it is held" \
  contains "$T/g1b.out" "the server delivered a first message from oscar under a key that is not in its public log: it is held"

# ---- 2: a substituted key for carol, logged ------------------------------------------
# The operator plants the hash of mallory's own recovery code on carol's
# account and recovers "carol" with a key of its own: REGISTER/RECOVER log it.
code=$(sed -n 's/^    \([^ ].*\)$/\1/p' "$T/mallory.reg" | head -1)
stop_server
sql "UPDATE recovery SET hash=(SELECT hash FROM recovery WHERE account_id=(SELECT id FROM accounts WHERE username='mallory')) WHERE account_id=(SELECT id FROM accounts WHERE username='carol')"
start_server --kt 1 --kt-witness "w1:$PK1" --kt-witness "w2:$PK2"
s evil init >/dev/null 2>&1
SOTTO_RECOVERY_CODE="$code" s evil register --recover --server "127.0.0.1:$PORT" carol >"$T/evil.reg" 2>&1
check "ghost 2: the operator took over carol's name through RECOVER (logged)" test $? -eq 0
wit "$T/w1" >"$T/w1.out" 2>&1
check "ghost 2: the witness accepts the logged change (it is a valid extension)" grep -q "the server took the cosignature" "$T/w1.out"
s carol receive >"$T/g2.out" 2>&1
echo "  ghost 2 printed: $(grep -m1 'KEY TRANSPARENCY' "$T/g2.out")"
check "ghost 2: carol's device reports the key it did not make at its next connect" \
  contains "$T/g2.out" "KEY TRANSPARENCY ALERT: the server's public log shows a key for your account carol"
timeout 60 "$SERVER" requisition --data "$T/srv" carol >"$T/g2.req" 2>&1
check "ghost 2: the requisition report lists carol's log entries (version 0, then the substitute)" \
  sh -c "grep -q '\"key_transparency\": {\"label\": \"carol\", \"newest_version\": 1' '$T/g2.req' && grep -q '{\"version\": 0, \"entry\": [0-9]' '$T/g2.req' && grep -q '{\"version\": 1, \"entry\": [0-9]' '$T/g2.req'"
s carol kt status >"$T/g2.status" 2>&1
check "ghost 2: kt status shows the alert" contains "$T/g2.status" "monitoring of your account: ALERT"
# Acknowledging a key alert (not a device-list one): quiet for exactly that entry.
s carol kt ack >"$T/g2.ack" 2>&1
check "ghost 2: 'kt ack' acknowledges carol's key alert" contains "$T/g2.ack" "alert acknowledged (1)"
s carol receive >"$T/g2.recv2" 2>&1
check "... it is not repeated at the next connect" lacks "$T/g2.recv2" "KEY TRANSPARENCY ALERT"
s carol kt status >"$T/g2.status2" 2>&1
check "... kt status still shows it, acknowledged" contains "$T/g2.status2" "monitoring of your account: ALERT (acknowledged)"
s carol --json kt status >"$T/g2.status2.json" 2>&1
check "... and in --json" contains "$T/g2.status2.json" '"monitor_acknowledged":true'
s carol kt ack >"$T/g2.ack2" 2>&1; rc=$?
check "... a second 'kt ack' has nothing left to acknowledge" \
  sh -c "test $rc -ne 0 && grep -q 'no key-transparency alert to acknowledge' '$T/g2.ack2'"
s alice session reset carol >"$T/g2.alice" 2>&1
echo "  ghost 2 (alice) printed: $(head -1 "$T/g2.alice")"
check "ghost 2: alice's client sees carol's key change" grep -qi "key changed\|identity key changed\|different key" "$T/g2.alice"

# ---- 3: split view --------------------------------------------------------------------
# A new entry that no witness cosigned yet: refused.
cp "$T/srv/sotto.db" "$T/old.db"   # the operator keeps a copy to fork from (entry count N)
new_user dave
s alice send dave "hi dave" >"$T/g3a.out" 2>&1
rc=$?
echo "  ghost 3a printed: $(grep -v "warning:" "$T/g3a.out" | head -1)"
check "ghost 3: a head without enough cosignatures is refused" test $rc -ne 0
check "ghost 3: with a clear sentence naming the witnesses" \
  contains "$T/g3a.out" "is cosigned by 0 of the 1 witnesses required (witnesses: w1 (last cosigned size"
wit "$T/w1" >"$T/w1.out" 2>&1
s alice send dave "hi dave" >"$T/g3b.out" 2>&1
check "ghost 3: once w1 cosigned the head, the message goes out" test $? -eq 0
# The fork: the operator restarts from the older copy of its database and
# logs another history (erin instead of dave).
stop_server
cp "$T/old.db" "$T/srv/sotto.db"
rm -f "$T/srv/sotto.db-wal" "$T/srv/sotto.db-shm"
start_server --kt 1 --kt-witness "w1:$PK1" --kt-witness "w2:$PK2"
new_user erin
wit "$T/w1" >"$T/g3w.out" 2>&1
rc=$?
echo "  ghost 3 (witness) printed: $(grep -m1 REFUSED "$T/g3w.out")"
check "ghost 3: the honest witness refuses the forked log (exit 2)" test $rc -eq 2
check "ghost 3: and says why" contains "$T/g3w.out" "REFUSED"
# A colluding witness w2 (never run before) cosigns the fork; alice requires
# only one witness, and w2 is one of hers.
wit "$T/w2" >"$T/g3c.out" 2>&1
check "ghost 3: a colluding witness w2 cosigns the fork" grep -q "the server took the cosignature" "$T/g3c.out"
s alice send erin "hi erin" >"$T/g3d.out" 2>&1
rc=$?
echo "  ghost 3 (client) printed: $(grep -v "warning:" "$T/g3d.out" | head -1)"
check "ghost 3: alice refuses the forked head (not an extension of the one she saw)" test $rc -ne 0
check "ghost 3: with the fork sentence" contains "$T/g3d.out" "is not an extension of the one it showed you before"

# ---- 5: witnesses offline, unknown, stale ------------------------------------------------
# An unknown witness key: the server refuses its cosignature.
wit "$T/wx" >"$T/g5x.out" 2>&1
rc=$?
echo "  ghost 5 (unknown witness) printed: $(grep -m1 'did not take' "$T/g5x.out")"
check "ghost 5: a witness the server does not know is refused with a clear message" \
  sh -c "test $rc -ne 0 && grep -q 'did not take the cosignature: not a witness of this server' '$T/g5x.out'"
# A client that requires both witnesses while w1 is offline (it refuses the fork
# and never cosigns it): refused, naming the witnesses and their last sizes.
s frank init >/dev/null 2>&1
s frank register --server "127.0.0.1:$PORT" frank >"$T/frank.reg" 2>&1
s frank kt require 2 >"$T/frank.req" 2>&1
s frank send erin "hi" >"$T/g5o.out" 2>&1
rc=$?
echo "  ghost 5 (offline witness) printed: $(grep -v "warning:" "$T/g5o.out" | head -1)"
check "ghost 5: with k=2 and w1 offline, nothing is accepted" \
  sh -c "test $rc -ne 0 && grep -q 'cosigned by [01] of the 2 witnesses required' '$T/g5o.out'"
# A slow witness: its cosignature (not pushed yet) does not count.
new_user gina
wit "$T/w2" --no-push >"$T/g5s.out" 2>&1 # w2 cosigns but holds the cosignature back
s frank kt require 1 >/dev/null 2>&1
s frank send gina "hi" >"$T/g5p.out" 2>&1
rc=$?
check "ghost 5: a cosignature the witness has not delivered does not count" \
  sh -c "test $rc -ne 0 && grep -q 'cosigned by 0 of the 1 witnesses required' '$T/g5p.out'"
wit "$T/w2" >"$T/g5t.out" 2>&1
check "ghost 5: the same witness, run again on the newest head, is taken" grep -q "the server took the cosignature" "$T/g5t.out"
s frank send gina "hi" >"$T/g5q.out" 2>&1
check "ghost 5: once it delivered, the message goes out" test $? -eq 0
s frank kt status >"$T/g5f.out" 2>&1
check "ghost 5: kt status shows each witness's last cosigned size" \
  sh -c "grep -q 'w1 .* last cosigned size 0' '$T/g5f.out' && grep -q 'w2 .* last cosigned size [1-9]' '$T/g5f.out'"

# ---- a server without KT -------------------------------------------------------------------
stop_server
rm -rf "$T/srv"
start_server
new_user ivan
new_user judy
new_user kim
s ivan kt status >"$T/off.out" 2>&1
check "a server without KT: kt status says it is off" contains "$T/off.out" "key transparency: off for this server"
s ivan send judy "no kt here" >"$T/off.send" 2>&1
check "a server without KT: sending still works" test $? -eq 0
s ivan kt require 0 >/dev/null 2>&1
s ivan send kim "now required" >"$T/off.req" 2>&1
rc=$?
check "KT required on a server without it: refused" \
  sh -c "test $rc -ne 0 && grep -q 'key transparency is required for this server, but it runs no log' '$T/off.req'"
# The same server restarted with --kt 1: the accounts made before are logged
# (backfill), so the message that was refused goes out, and ivan's own entry
# checks out.
stop_server
start_server --kt 1
check "backfill: the server logs the accounts made before its log" grep -q "event=kt_backfill accounts=3" "$T/server.err"
s ivan send kim "now required" >"$T/bf.send" 2>&1
check "backfill: a contact made before the log is found in it" test $? -eq 0
s ivan kt status >"$T/bf.status" 2>&1
check "backfill: ivan's own entry checks out" contains "$T/bf.status" "monitoring of your account: ok"
finish
