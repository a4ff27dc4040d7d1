# SPDX-License-Identifier: Apache-2.0
# test_echo_bot.sh: examples/echo-bot.js against a real daemon and server:
# carol (CLI) writes to the bot's account, 1:1 and in a group, and reads
# the echoes back.
source "$(dirname "$0")/../client/lib.sh" "$@"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v node >/dev/null || { echo "FAIL node is not installed"; exit 1; }

start_server
new_user botty
new_user carol
"$SOTTO" --home "$T/botty" daemon --socket "$T/bot.sock" >/dev/null 2>"$T/daemon.err" &
DPID=$!
BPID=
trap 'kill -TERM $BPID $DPID 2>/dev/null; wait $BPID $DPID 2>/dev/null; cleanup' EXIT
for i in $(seq 1 100); do grep -q "connected to" "$T/daemon.err" 2>/dev/null && break; sleep 0.1; done
node "$ROOT/examples/echo-bot.js" "$T/bot.sock" >"$T/bot.out" 2>&1 &
BPID=$!
for i in $(seq 1 100); do grep -q "subscribed" "$T/bot.out" 2>/dev/null && break; sleep 0.1; done
check "the bot subscribes" contains "$T/bot.out" "waiting for messages"

s carol send botty "ping ✓" >/dev/null 2>&1
got=
for i in $(seq 1 20); do
  s carol receive --timeout 3 >>"$T/carol.rx" 2>&1
  if contains "$T/carol.rx" "botty: echo: ping ✓"; then got=1; break; fi
done
check "carol gets the echo of her message" test -n "$got"
s carol group create echoes botty >/dev/null 2>&1
s carol group send echoes "group ping" >/dev/null 2>&1
got=
for i in $(seq 1 20); do
  s carol receive --timeout 3 >>"$T/carol.rx" 2>&1
  if contains "$T/carol.rx" "[echoes] botty: echo: group ping"; then got=1; break; fi
done
check "... and in a group, to the group" test -n "$got"
echo "--- the bot's log"; cat "$T/bot.out"
echo "--- what carol read"; cat "$T/carol.rx"
kill -TERM $BPID $DPID 2>/dev/null; wait $BPID $DPID 2>/dev/null; BPID=; DPID=
finish
