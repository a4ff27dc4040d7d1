# SPDX-License-Identifier: Apache-2.0
# test_daemon.sh: sotto daemon and sotto jsonrpc end to end. A real
# sotto-server on 127.0.0.1 (TLS), two daemons (alice, bob) on Unix
# sockets and the CLI (carol): the scenarios of daemon_test.js (messages
# both ways and through the CLI, groups, safety numbers, history, every
# JSON-RPC error, a client gone mid-request, 1,000 pipelined requests, a
# client that never reads), devicesAdd answered at once while other requests
# go on (a job, then deviceAdded / deviceAddFailed), then what surrounds the daemon: socket mode
# 0600, the CLI on a held home told so plainly, a second daemon refused, a
# stale socket removed, clean shutdown, and the stdio mode.
source "$(dirname "$0")/../client/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "FAIL node is not installed"; exit 1; }

start_server
new_user alice
new_user bob
new_user carol
# carol knows alice and bob's sessions start from the CLI's side too
# alice and bob are contacts (a first message from a stranger is a request,
# which gets no receipts: docs/client.md "Conversations").
s bob send alice "hi alice" >/dev/null 2>&1
s alice receive >/dev/null 2>&1
s alice requests accept bob >/dev/null 2>&1
s carol send alice "carol says hi" >/dev/null 2>&1
s carol send bob "carol says hi" >/dev/null 2>&1

DPIDS=()
start_daemon() { # start_daemon NAME SOCKET
  # Under ASan, freed memory waits in a 256 MB quarantine by default: 16 MB
  # here, so that the memory check below measures the daemon, not ASan.
  ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=16" "$SOTTO" --home "$T/$1" daemon --socket "$2" >"$T/$1.daemon.out" 2>"$T/$1.daemon.err" &
  DPIDS+=($!)
  local i
  for i in $(seq 1 100); do
    [ -S "$2" ] && grep -q "connected to" "$T/$1.daemon.err" 2>/dev/null && return 0
    kill -0 "${DPIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL daemon of $1 did not start:"; cat "$T/$1.daemon.err"; return 1
}
stop_daemons() {
  local p
  for p in "${DPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${DPIDS[@]}"; do timeout 20 tail --pid="$p" -f /dev/null || kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  DPIDS=()
}
trap 'stop_daemons; cleanup' EXIT

start_daemon alice "$T/a.sock" || exit 1
start_daemon bob "$T/b.sock" || exit 1
APID=${DPIDS[0]}

check "the socket is mode 0600" test "$(stat -c %a "$T/a.sock")" = 600

# The CLI on a home the daemon holds says so plainly.
s alice contacts >"$T/held.out" 2>&1; rc=$?
check "the CLI on alice's home fails while her daemon runs" test $rc -ne 0
check "... saying the daemon holds it, with the socket" contains "$T/held.out" "the daemon (pid $APID) holds this home (socket $T/a.sock)"
s alice send bob x >"$T/held2.out" 2>&1; rc=$?
check "... for send too" test $rc -ne 0 -a -n "$(grep 'holds this home' "$T/held2.out")"
"$SOTTO" --home "$T/alice" daemon --socket "$T/a2.sock" >"$T/dup.out" 2>&1; rc=$?
check "a second daemon on the same home is refused" test $rc -ne 0 -a -n "$(grep 'holds this home' "$T/dup.out")"
"$SOTTO" --home "$T/carol" daemon --socket "$T/a.sock" >"$T/dup2.out" 2>&1; rc=$?
check "a daemon on a socket another one listens on is refused" test $rc -ne 0 -a -n "$(grep 'already listens on' "$T/dup2.out")"
check "... and carol's home is not left locked" s carol contacts
# A CLI command that runs (receive --follow) holds the home too: no daemon
# starts under it (the two would knock each other off the server).
# (timeout(1) itself in the background, not the 's' function's subshell: a
# TERM to the subshell would leave sotto running, receiving carol's messages
# behind the scenarios' back.)
timeout 60 "$SOTTO" --home "$T/carol" receive --follow >"$T/follow.out" 2>&1 &
FPID=$!
# Wait until it holds its shared lock on front.lock (seen in /proc/locks; the
# file itself stays from earlier commands, so its existence says nothing).
# The daemon is bounded by timeout(1): had it started anyway, it would run on.
ino=$(stat -c %i "$T/carol/front.lock")
for i in $(seq 1 300); do
  grep -qE "FLOCK +ADVISORY +READ +[0-9]+ [0-9a-f]+:[0-9a-f]+:$ino " /proc/locks && break
  sleep 0.1
done
timeout 30 "$SOTTO" --home "$T/carol" daemon --socket "$T/c.sock" >"$T/dup3.out" 2>&1; rc=$?
check "a daemon does not start under a running 'receive --follow'" test $rc -ne 0
check "... saying a sotto command is running" grep -q "a sotto command is running on this home" "$T/dup3.out"
kill -TERM $FPID 2>/dev/null; wait $FPID 2>/dev/null

# The scenarios (node).
if SOTTO="$SOTTO" T="$T" A_SOCK="$T/a.sock" B_SOCK="$T/b.sock" A_PID="$APID" \
  timeout 600 node "$HERE/daemon_test.js" >"$T/node.out" 2>&1; then
  ok "daemon_test.js scenarios"
else
  bad "daemon_test.js scenarios"
fi
cat "$T/node.out"
check "the daemon is still alive" kill -0 "$APID"
check "bob's daemon disconnected the subscriber that never read (over 8 MiB queued)" \
  grep -q "not reading its answers (over 8388608 bytes queued); disconnected" "$T/bob.daemon.err"

# devicesAdd does not block the daemon (a job, then deviceAdded / deviceAddFailed).
if SOTTO="$SOTTO" T="$T" A_SOCK="$T/a.sock" B_SOCK="$T/b.sock" A_PID="$APID" PORT="$PORT" \
  timeout 300 node "$HERE/daemon_test.js" devices >"$T/node3.out" 2>&1; then
  ok "devicesAdd scenarios (non-blocking)"
else
  bad "devicesAdd scenarios (non-blocking)"
fi
cat "$T/node3.out"

# The server restarts: the daemons reconnect by themselves.
stop_server
start_server
if SOTTO="$SOTTO" T="$T" A_SOCK="$T/a.sock" B_SOCK="$T/b.sock" A_PID="$APID" \
  timeout 300 node "$HERE/daemon_test.js" reconnect >"$T/node2.out" 2>&1; then
  ok "daemons reconnect after a server restart"
else
  bad "daemons reconnect after a server restart"
fi
cat "$T/node2.out"

# Clean shutdown: socket and lock gone, the CLI works again.
stop_daemons
check "SIGTERM removes the socket" test ! -e "$T/a.sock"
check "... and frees the home for the CLI" s alice contacts

# A daemon killed hard leaves its socket; the next one removes it.
start_daemon alice "$T/a.sock" || exit 1
kill -KILL "${DPIDS[0]}"; wait "${DPIDS[0]}" 2>/dev/null; DPIDS=()
check "a killed daemon leaves a stale socket" test -S "$T/a.sock"
check "... the CLI is not blocked by a dead daemon's lock" s alice contacts
start_daemon alice "$T/a.sock" || exit 1
check "... which the next daemon replaces" test -S "$T/a.sock" -a -n "$(kill -0 "${DPIDS[0]}" && echo up)"
stop_daemons

# stdio mode: requests on stdin, answers on stdout, ends at end of input.
printf '%s\n' '{"jsonrpc":"2.0","method":"version","id":1}' 'not json' \
  '{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob","message":"over stdio"},"id":2}' \
  '{"jsonrpc":"2.0","method":"listGroups","id":3}' |
  timeout 60 "$SOTTO" --home "$T/alice" jsonrpc >"$T/stdio.out" 2>"$T/stdio.err"
check "jsonrpc: exits 0 at end of input" test $? -eq 0
check "... answers version" grep -q '"id":1,"result":{"version":' "$T/stdio.out"
check "... a parse error for the bad line" grep -q '"id":null,"error":{"code":-32700' "$T/stdio.out"
check "... sends" grep -q '"id":2,"result":{"timestamp":' "$T/stdio.out"
check "... in order, one line each" test "$(cut -c1-40 "$T/stdio.out" | grep -c '"jsonrpc":"2.0"')" -eq 4
check "... nothing else on stdout" test "$(wc -l <"$T/stdio.out")" -eq 4
s bob receive >"$T/bob.rx" 2>&1
check "bob (CLI) gets the stdio send" contains "$T/bob.rx" "alice: over stdio"
echo "--- a daemon session (alice's stdio)"; cat "$T/stdio.out"

# A contact's invalid UTF-8 and control bytes, sent while no daemon ran:
# given on subscribe, and every line the daemon writes stays valid UTF-8 JSON.
# (sotto refuses invalid UTF-8 at send: SOTTO_TEST_RAW_TEXT, a test hook of
# sotto-test, stands for a modified client that sends the bytes as they are.)
# A forged line (a newline, then a fake envelope) stays inside the one message.
printf 'bad \xff\xfe\xc0\x80 end \x01\x1b[31m\n{"fake":1}' | SOTTO_TEST_RAW_TEXT=1 s carol send bob - >/dev/null 2>&1
# (stdin stays open until the message arrived, at most 60 s)
{
  printf '%s\n' '{"jsonrpc":"2.0","method":"subscribeReceive","id":1}'
  for i in $(seq 1 600); do grep -q '"method":"receive"' "$T/utf8.out" 2>/dev/null && break; sleep 0.1; done
} | timeout 70 "$SOTTO" --home "$T/bob" jsonrpc >"$T/utf8.out" 2>"$T/utf8.err"
check "jsonrpc: a message sent before the subscription arrives" grep -q '"method":"receive"' "$T/utf8.out"
check "... its invalid UTF-8 replaced (U+FFFD), the control bytes escaped" \
  grep -qF 'bad \ufffd\ufffd\ufffd\ufffd end \u0001\u001b[31m\n{\"fake\":1}' <(node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    for (const l of b.toString().split("\n").filter(Boolean)) {
      const o = JSON.parse(l);
      if (o.method === "receive") console.log(JSON.stringify(o.params.envelope.dataMessage.message).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")));
    }' "$T/utf8.out" 2>&1)
cat "$T/utf8.out"
finish
