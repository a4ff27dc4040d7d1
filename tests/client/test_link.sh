# SPDX-License-Identifier: Apache-2.0
# test_link.sh: linking a device with the real server and CLI
# (docs/multi-device.md, "Linking"):
#  - 'sotto link' on a new home prints the code alone on a line (and with
#    --json as {"code": ...}) before it waits; 'sotto devices add --yes CODE'
#    on device 1 shows the new device's fingerprint, adds it and publishes
#    the next signed list; both devices list the new one; the new device got
#    the contacts with their verified state;
#  - bob's client fetches alice's new list, verifies it and shows the change;
#  - refused with a clear error: a code used twice, an expired one (the
#    server's --link-ttl-seconds), a mistyped one (slot part and secret
#    part), not a code at all, the code of one slot with another slot's
#    secret; 'devices add' on a device other than 1; removing device 1;
#  - remove: the next list version, the removed device's login refused with
#    its sentence; re-link after removal; a device removes itself and device
#    1 drops it from the next list.
source "$(dirname "$0")/lib.sh" "$@"
# The UTC day at the start: the checks of days (added, last seen) compare the
# client's output with the day now; past midnight since the start they would
# compare two days, so dcheck skips them then (and says so).
DAY0=$(( $(date -u +%s) / 86400 ))
dcheck() {
  if [ $(( $(date -u +%s) / 86400 )) -ne "$DAY0" ]; then
    echo "skip $1 (the UTC day changed during the test)"
    return 0
  fi
  check "$@"
}

# Linking spends the account's device-change budget (ADD_DEVICE, the list
# upload, each removal): this test makes many changes in a minute.
start_server --device-change-burst 100
new_user alice
new_user bob
alice_id() { sql "SELECT id FROM accounts WHERE username = 'alice';"; }
list_of_alice() { sql "SELECT max(version) || ':' || (SELECT hex(ids) FROM devlists WHERE account_id = $(alice_id)
                       ORDER BY version DESC LIMIT 1) FROM devlists WHERE account_id = $(alice_id);"; }

# alice knows bob and verified him; bob has seen alice's list version 1
s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice --json safety-number bob >"$T/sn" 2>&1
check "alice verifies bob" s alice verify bob "$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn")"

# link HOME [ARGS...]: starts 'sotto link' in the background, waits (bounded)
# for its code line; sets LPID and CODE.
link_start() {
  local who=$1 i; shift
  rm -f "$T/$who.link"
  ( timeout 120 "$SOTTO" --home "$T/$who" link --server "127.0.0.1:$PORT" "$@" >"$T/$who.link" 2>&1
    echo "exit=$?" >>"$T/$who.link" ) &
  LPID=$!
  CODE=
  for i in $(seq 1 200); do
    if grep -q '^code: ' "$T/$who.link" 2>/dev/null; then break; fi
    if grep -q '"code":' "$T/$who.link" 2>/dev/null; then break; fi
    if grep -q '^exit=' "$T/$who.link" 2>/dev/null; then break; fi
    sleep 0.1
  done
  CODE=$(sed -n 's/^code: //p' "$T/$who.link")
  [ -n "$CODE" ] || CODE=$(sed -n 's/.*"code":"\([a-z0-9-]*\)".*/\1/p' "$T/$who.link")
}

s bob --json safety-number alice >"$T/sn_b0" 2>&1

# ---- link a laptop ----
link_start laptop --name laptop
check "link prints 'code: CODE' before it waits" test -n "$CODE"
check "... and this device's fingerprint" contains "$T/laptop.link" "This device's fingerprint: "
fp=$(sed -n "s/^This device's fingerprint: //p" "$T/laptop.link")
# longer than the server's auth-timeout (10 s): the waiting device's
# unauthenticated connection is closed and it polls on a new one
sleep 11
s alice devices add --yes "$CODE" >"$T/add1" 2>&1; rc=$?
check "device 1 adds it" test $rc -eq 0
check "... showing the new device's fingerprint" contains "$T/add1" "$fp"
check "... and the published list version" contains "$T/add1" "Added device 2 'laptop'; published signed device list version 2."
wait "$LPID"
check "the new device says it is linked" contains "$T/laptop.link" "Linked: this home is device 2 of 'alice'"
check "... with the contact it got" contains "$T/laptop.link" "It got 1 contacts"
check "... and its command ended well" contains "$T/laptop.link" "exit=0"
check "the server holds list version 2 with devices 1 and 2" test "$(list_of_alice)" = "2:0000000100000002"
check "the server hands out the laptop's own identity key" \
  test "$(sql "SELECT count(*) FROM devices WHERE account_id = $(alice_id) AND device_id = 2 AND identity IS NOT NULL;")" = 1
s alice devices >"$T/d1" 2>&1
check "device 1 lists the laptop" contains "$T/d1" "device 2 'laptop', added"
check "... without calling it a change of devices" lacks "$T/d1" "devices of your account changed"
s laptop devices >"$T/d2" 2>&1
check "the laptop lists itself" contains "$T/d2" "device 2 (this device) 'laptop', added"
check "... and device 1" contains "$T/d2" "device 1 'primary'"
check "... from list version 2" contains "$T/d2" "signed device list version 2"
s laptop contacts >"$T/c1" 2>&1
check "the laptop got bob as a verified contact" grep -q "bob.*verified" "$T/c1"
s alice device list >"$T/d3" 2>&1
check "'sotto device list' still works" contains "$T/d3" "device 1 (this device)"

# ---- last seen: the server's day of each device's last login, shown to the account's own devices ----
today=$(date -u +%Y-%m-%d); today_n=$(( $(date -u +%s) / 86400 ))
dcheck "device 1 sees when the laptop was last seen" grep -q "device 2 'laptop', added $today, last seen today" "$T/d1"
sql "UPDATE devices SET last_seen_day = $((today_n - 1)) WHERE account_id = $(alice_id) AND device_id = 2;"
s alice devices >"$T/ls1" 2>&1
dcheck "... yesterday" contains "$T/ls1" "device 2 'laptop', added $today, last seen yesterday"
sql "UPDATE devices SET last_seen_day = $((today_n - 40)) WHERE account_id = $(alice_id) AND device_id = 2;"
old_day=$(date -u -d "@$(( (today_n - 40) * 86400 ))" +%Y-%m-%d)
s alice devices >"$T/ls2" 2>&1
dcheck "... or the date" contains "$T/ls2" "device 2 'laptop', added $today, last seen $old_day"
s alice --json devices >"$T/ls3" 2>&1
check "... --json gives the day as YYYY-MM-DD" grep -q '"device_id":2,.*"last_seen":"'"$old_day"'"' "$T/ls3"
dcheck "... and device 1's (this connection's) day is today" grep -q '"device_id":1,.*"last_seen":"'"$today"'"' "$T/ls3"
s laptop devices >"$T/ls4" 2>&1
dcheck "the laptop's own login makes it today again" contains "$T/ls4" "device 2 (this device) 'laptop', added $today, last seen today"

# ---- a contact fetches alice's new list and verifies it ----
s bob send alice "after the link" >"$T/b1" 2>&1
check "bob's send goes (alice's list verifies)" contains "$T/b1" "Sent to alice."
check "... and bob is shown the added device" contains "$T/b1" "added device 2 'laptop'"
s bob --json safety-number alice >"$T/sn_b1" 2>&1
nb0=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_b0")
nb1=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_b1")
check "bob's safety number for alice is the same after she added a laptop (it covers her account key)" \
  test "${#nb0}" -eq 60 -a "$nb0" = "$nb1"
s alice contacts >"$T/c0" 2>&1
check "... and alice's verified bob stays verified" grep -q "bob.*verified" "$T/c0"

# ---- refusals ----
s alice devices add --yes "$CODE" >"$T/x1" 2>&1; rc=$?
check "a code used twice is refused" test $rc -eq 1
check "... saying so" contains "$T/x1" "link code is unknown, already used, expired or mistyped"
s alice devices add --yes "not-a-code" >"$T/x2" 2>&1; rc=$?
check "not a code: refused" test $rc -eq 1
check "... saying what a code is" contains "$T/x2" "is not a link code"
s alice --json devices add --yes "not-a-code" >"$T/x2j" 2>&1
check "--json: error link_code" contains "$T/x2j" '"error":"link_code"'
link_start phone --name phone
code1=$CODE; pid1=$LPID
link_start tablet --name tablet
code2=$CODE; pid2=$LPID
# a changed character in the secret part (the one before the last: the last
# one also carries the code's two zero bits) and in the slot part (the start)
flip() { case "$1" in a) echo b;; *) echo a;; esac; }
n=${#code1}
bad_secret="${code1:0:n-2}$(flip "${code1:n-2:1}")${code1:n-1}"
first=${code1:0:1}; bad_slot="$(flip "$first")${code1:1}"
s alice devices add --yes "$bad_secret" >"$T/x3" 2>&1; rc=$?
check "a mistyped secret part is refused" test $rc -eq 1
check "... as not matching the slot's keys" contains "$T/x3" "does not match the keys in its slot"
s alice devices add --yes "$bad_slot" >"$T/x4" 2>&1; rc=$?
check "a mistyped slot part is refused" test $rc -eq 1
check "... as an unknown code" contains "$T/x4" "link code is unknown"
# slot of phone, secret of tablet: "for another slot"
mixed="$(echo "$code1" | tr -d '-' | cut -c1-26)$(echo "$code2" | tr -d '-' | cut -c27-42)"
s alice devices add --yes "$mixed" >"$T/x5" 2>&1; rc=$?
check "the code of one slot with another slot's secret is refused" test $rc -eq 1
check "... nothing was added" test "$(list_of_alice)" = "2:0000000100000002"
# 'devices add' on a linked device
s laptop devices add --yes "$code1" >"$T/x6" 2>&1; rc=$?
check "a device other than 1 cannot add one" test $rc -eq 1
check "... saying only device 1 can" contains "$T/x6" "only device 1"
# without a terminal and without --yes nothing is added
s alice devices add "$code1" </dev/null >"$T/x7" 2>&1; rc=$?
check "no --yes and no terminal: not added" test $rc -eq 1
check "... saying it was not confirmed" contains "$T/x7" "not confirmed"
# the phone still links with its (unused) code
s alice devices add --yes "$code1" >"$T/add2" 2>&1
wait "$pid1"
check "the phone links after all the refusals" contains "$T/phone.link" "Linked: this home is device 3 of 'alice'"
check "list version 3 with devices 1, 2, 3" test "$(list_of_alice)" = "3:000000010000000200000003"
# (the subshell's children first: a TERM to the subshell alone would leave
# the tablet's 'sotto link' waiting for up to 120 s)
pkill -TERM -P "$pid2" 2>/dev/null; kill "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null

# ---- removal ----
s alice devices remove 1 >"$T/r0" 2>&1; rc=$?
check "device 1 cannot be removed" test $rc -eq 1
check "... pointing to unregister" contains "$T/r0" "sotto unregister"
s alice devices remove 2 >"$T/r1" 2>&1
check "device 1 removes the laptop" contains "$T/r1" "device 2 removed"
check "... and publishes list version 4 without it" test "$(list_of_alice)" = "4:0000000100000003"
s laptop devices >"$T/r2" 2>&1; rc=$?
check "the removed laptop's login is refused" test $rc -eq 1
check "... with its sentence" contains "$T/r2" "device 2 was probably removed from the account"
s bob send alice "after the removal" >"$T/r3" 2>&1
check "bob's client verifies the new list" contains "$T/r3" "Sent to alice."
check "... and shows the removal" contains "$T/r3" "removed device 2 'laptop'"

# ---- re-link after removal ----
link_start laptop2 --name laptop
s alice devices add --yes "$CODE" >"$T/l2" 2>&1
wait "$LPID"
check "a new laptop links after the removal" contains "$T/laptop2.link" "Linked: this home is device 4 of 'alice'"
check "list version 5 with devices 1, 3, 4" test "$(list_of_alice)" = "5:000000010000000300000004"

# ---- a device removes itself ----
s phone devices remove 3 >"$T/s1" 2>&1
check "the phone removes itself" contains "$T/s1" "device 3 removed"
s alice devices >"$T/s2" 2>&1
check "device 1 drops it from the next list" test "$(list_of_alice)" = "6:0000000100000004"
check "... and lists devices 1 and 4 only" lacks "$T/s2" "device 3"

# ---- the daemon's methods (sotto jsonrpc over stdio) ----
link_start tab --name tab
rpc() { printf '%s\n' "$@" | timeout 120 "$SOTTO" --home "$T/alice" jsonrpc; }
rpc '{"jsonrpc":"2.0","method":"devicesAdd","params":{"code":"'"$CODE"'","fingerprint":"00000 00000 00000 00000 00000 00000 00000 00000"},"id":1}' \
  >"$T/j1" 2>&1
check "devicesAdd with another fingerprint adds nothing" grep -q '"id":1.*"error"' "$T/j1"
# devicesAdd answers at once (a job); at the end of input the stdio daemon
# stays until the job ended and it said so (deviceAdded)
rpc '{"jsonrpc":"2.0","method":"devicesAdd","params":{"code":"'"$CODE"'"},"id":2}' >"$T/j2" 2>&1
wait "$LPID"
check "devicesAdd answers with a job" grep -q '"id":2,"result":{"jobId":1,"deviceId":5,"name":"tab",.*"pending":true' "$T/j2"
check "... then deviceAdded when the device answered" \
  grep -q '"method":"deviceAdded","params":{"jobId":1,"deviceId":5,.*"name":"tab","listVersion":7' "$T/j2"
rpc '{"jsonrpc":"2.0","method":"devices","id":3}' >>"$T/j2" 2>&1
check "devices lists it by name" grep -q '"id":3.*"deviceId":5,"thisDevice":false,"listed":true,"onServer":true,"name":"tab"' "$T/j2"
dcheck "... and when each device was last seen" grep -q '"id":3.*"deviceId":1,[^}]*"lastSeen":"'"$(date -u +%Y-%m-%d)"'"' "$T/j2"
check "... and the new device says it is linked" contains "$T/tab.link" "Linked: this home is device 5 of 'alice'"
rpc '{"jsonrpc":"2.0","method":"devicesRemove","params":{"deviceId":5},"id":4}' >"$T/j3" 2>&1
check "devicesRemove removes it" grep -q '"id":4.*"result":{"deviceId":5}' "$T/j3"
check "... with the next list version" test "$(list_of_alice)" = "8:0000000100000004"

# ---- --json link, and an expired code ----
stop_server
start_server --link-ttl-seconds 2 --device-change-burst 100
link_start watch --json --name watch
check "--json link prints {\"code\": ...} before it waits" grep -q '"code":"' "$T/watch.link"
sleep 3
s alice devices add --yes "$CODE" >"$T/e1" 2>&1; rc=$?
check "an expired code is refused" test $rc -eq 1
check "... saying so" contains "$T/e1" "link code is unknown, already used, expired or mistyped"
wait "$LPID"
check "the waiting device gives up with a clear error" grep -q '"error":"link_code"\|"error":"timeout"' "$T/watch.link"
check "... and exits non-zero" lacks "$T/watch.link" "exit=0"
check "nothing was added" test "$(list_of_alice)" = "8:0000000100000004"

finish
