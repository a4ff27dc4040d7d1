# SPDX-License-Identifier: Apache-2.0
# test_outbox.sh: nothing is lost silently (docs/client.md, "Outbox,
# receipts and session healing").
# - a send while the server is down is queued (exit 0, said plainly) and
#   sent by the next command that connects, or by a running receive --follow;
# - delivery and read receipts: sent / delivered / read are distinct states
#   in history and --json; read receipts only when the reader allows them;
# - a message missing from the middle of a conversation gives one notice,
#   and one more when it arrives late;
# - a text without any receipt is given up after the outbox's age limit.
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob
s alice send bob "hello" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s bob requests accept alice >/dev/null 2>&1   # a stranger's first message is a request: no receipts before

# --- queued while the server is down -----------------------------------------
stop_server
s alice send bob "written offline" >"$T/q1" 2>&1; rc=$?
check "a send with the server down exits 0" test $rc -eq 0
check "... and says it is queued" contains "$T/q1" "Queued for bob (server unreachable); will be sent when the server is back."
s alice --json send bob "written offline too" >"$T/q2" 2>&1
check "... --json says state queued" grep -q '"state":"queued"' "$T/q2"
s alice --json history bob >"$T/h1" 2>&1
check "history shows it queued" grep -q '"text":"written offline".*"state":"queued"' "$T/h1"
s alice history bob >"$T/h1h" 2>&1
check "... also in the human output" contains "$T/h1h" "to bob (queued): written offline"
start_server
s alice contacts >/dev/null 2>&1   # no connection: nothing sent yet
s bob receive >"$T/r0" 2>&1
check "nothing was sent by a command that does not connect" lacks "$T/r0" "written offline"
s alice device list >/dev/null 2>&1   # the next command that connects
s bob receive >"$T/r1" 2>&1
check "the next command that connects sends the queued ones" contains "$T/r1" "alice: written offline"
check "... both, in order" test "$(grep -c 'alice: written offline' "$T/r1")" = 2
s alice receive >/dev/null 2>&1
s alice --json history bob >"$T/h2" 2>&1
check "... and they are delivered now" grep -q '"text":"written offline too".*"state":"delivered"' "$T/h2"

# --- receive --follow sends what was queued when the server comes back ---------
stop_server
s alice send bob "queued for follow" >/dev/null 2>&1
timeout 60 "$SOTTO" --home "$T/alice" receive --follow >"$T/f1" 2>&1 &
FPID=$!
sleep 1
start_server
got=
for i in $(seq 1 60); do
  s bob receive >>"$T/r2" 2>&1
  if contains "$T/r2" "alice: queued for follow"; then got=1; break; fi
  sleep 0.5
done
check "receive --follow sent the queued message once the server was back" test -n "$got"
kill -TERM $FPID 2>/dev/null; wait $FPID 2>/dev/null

# --- delivered and read ---------------------------------------------------------
s alice send bob "was it read" >/dev/null 2>&1
s alice --json history bob >"$T/h3" 2>&1
check "before any receipt: sent" grep -q '"text":"was it read".*"state":"sent"' "$T/h3"
s bob receive >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice --json history bob >"$T/h4" 2>&1
check "bob's client confirms: delivered (read receipts are off by default)" \
  grep -q '"text":"was it read".*"state":"delivered"' "$T/h4"
s bob config read-receipts on >"$T/c1" 2>&1
check "bob allows read receipts" contains "$T/c1" "read-receipts on"
s alice send bob "now read it" >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s alice --json receive >"$T/j1" 2>&1
check "alice gets a delivery event with state read" grep -q '"event":"delivery".*"state":"read"' "$T/j1"
s alice --json history bob >"$T/h5" 2>&1
check "history --json: read" grep -q '"text":"now read it".*"state":"read"' "$T/h5"
check "... the earlier one stays delivered" grep -q '"text":"was it read".*"state":"delivered"' "$T/h5"
s alice history bob >"$T/h5h" 2>&1
check "human history: read" contains "$T/h5h" "to bob (read): now read it"
check "receipts are never receipted (bob has no message from alice about them)" \
  test "$(s bob --json history alice | grep -c '"event":"message"')" -ge 1
s bob config read-receipts maybe >/dev/null 2>&1; rc=$?
check "a bad setting is a usage error" test $rc -eq 2

# --- a gap, then the late message ---------------------------------------------------
s alice send bob "g1" >/dev/null 2>&1
s alice send bob "g2 goes missing" >/dev/null 2>&1
s alice send bob "g3" >/dev/null 2>&1
stop_server
sql "CREATE TABLE missing AS SELECT * FROM messages WHERE id = (SELECT min(id) + 1 FROM messages WHERE devkey = (SELECT d.devkey FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = 'bob'));"
sql "DELETE FROM messages WHERE id IN (SELECT id FROM missing); UPDATE devices SET queue_count = queue_count - 1 WHERE devkey = (SELECT devkey FROM missing);"
start_server
s bob receive >"$T/g1" 2>&1
check "bob reads g1 and g3" test "$(grep -c 'alice: g[13]' "$T/g1")" = 2
check "... and is told a message from alice is missing" contains "$T/g1" "a message from alice is missing (it may arrive later)"
stop_server
sql "INSERT INTO messages SELECT * FROM missing; UPDATE devices SET queue_count = queue_count + 1 WHERE devkey = (SELECT devkey FROM missing);"
start_server
s bob receive >"$T/g2" 2>&1
check "the late message arrives" contains "$T/g2" "alice: g2 goes missing"
check "... and the notice says so" contains "$T/g2" "the missing message from alice arrived"

# --- given up after the age limit ------------------------------------------------------
stop_server
s alice send bob "never confirmed" >/dev/null 2>&1
start_server
SOTTO_TEST_NOW=$(($(date +%s) + 8 * 86400)) s alice device list >"$T/a1" 2>&1
check "a text with no receipt after a week is given up, said plainly" contains "$T/a1" "your message to bob was given up: no delivery receipt came in time"
s alice --json history bob >"$T/h6" 2>&1
check "... and history says failed" grep -q '"text":"never confirmed".*"state":"failed"' "$T/h6"
finish
