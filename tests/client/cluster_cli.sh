# SPDX-License-Identifier: Apache-2.0
# cluster_cli.sh: the real sotto CLI against three sotto-server nodes on one
# PostgreSQL (with_pg.sh) and one Redis (started here on a free loopback
# port, stopped at the end). Accounts registered with the list of all nodes
# (--server H:P,H:P,H:P; one pin: the nodes share one TLS identity) on
# different nodes exchange 1:1 and group messages; a message pushed across
# nodes reaches a 'receive --follow' on another node at once; when the node
# a client used is SIGKILLed, its next command goes to another node.
# Run: with_pg.sh bash cluster_cli.sh SOTTO SOTTO-SERVER
source "$(dirname "$0")/lib.sh" "$@"

if [ -z "${SOTTO_TEST_PG:-}" ]; then echo "SKIP: needs PostgreSQL (run through with_pg.sh)"; exit 77; fi
if ! command -v redis-server >/dev/null; then echo "SKIP: no redis-server (scripts/deps.sh)"; exit 77; fi

STORE="pg:$SOTTO_TEST_PG dbname=postgres"
RPID=
NPID=(); NPORT=()
cleanup_cluster() {
  for p in "${NPID[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  [ -n "$RPID" ] && kill -KILL "$RPID" 2>/dev/null
  wait 2>/dev/null
  cleanup
}
trap cleanup_cluster EXIT

# Redis on a free port (a few tries if one is taken meanwhile).
for try in 1 2 3 4 5; do
  RPORT=$((20000 + RANDOM % 40000))
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$T" >"$T/redis.log" 2>&1 &
  RPID=$!
  for i in $(seq 1 50); do
    if [ "$(timeout 2 redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ]; then break 2; fi
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=
done
[ -n "$RPID" ] || { echo "FAIL could not start redis-server"; exit 1; }

timeout 60 "$SERVER" migrate --store "$STORE" >"$T/migrate.out" 2>&1 || { cat "$T/migrate.out"; exit 1; }

# start_node I: node I on a free port (printed by the server), data in $T/nI.
start_node() {
  local i=$1 j
  mkdir -p "$T/n$i"
  : >"$T/n$i.out" # emptied before the fork: no stale "listening" line after a restart
  "$SERVER" --data "$T/n$i" --store "$STORE" --cluster "redis://127.0.0.1:$RPORT" --node-name "n$i" \
    --listen 127.0.0.1:0 --register-rate 600 --register-burst 100 --log-level 1 \
    >"$T/n$i.out" 2>>"$T/n$i.err" &
  NPID[$i]=$!
  for j in $(seq 1 100); do
    if grep -q '^listening' "$T/n$i.out" 2>/dev/null; then
      NPORT[$i]=$(sed -n 's/^listening 127.0.0.1://p' "$T/n$i.out")
      return 0
    fi
    kill -0 "${NPID[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL node $i did not start:"; cat "$T/n$i.err"; exit 1
}

start_node 0
# One TLS identity for the cluster.
for i in 1 2; do mkdir -p "$T/n$i"; cp "$T/n0/tls.key" "$T/n0/tls.crt" "$T/n$i/"; start_node $i; done
check "the three nodes show one fingerprint" test "$(sort -u <(grep -h '^fingerprint' "$T"/n?.out) | wc -l)" -eq 1

addr() { local out="" i; for i in "$@"; do out="$out${out:+,}127.0.0.1:${NPORT[$i]}"; done; echo "$out"; }
reg() { s "$1" init >"$T/$1.init" 2>&1 && s "$1" register --server "$2" "$1" >"$T/$1.reg" 2>&1 ||
          { echo "FAIL setting up $1:"; cat "$T/$1.init" "$T/$1.reg"; exit 1; }; }
reg alice "$(addr 0 1 2)"
reg bob "$(addr 1 2 0)"
reg carol "$(addr 2 0 1)"
check "register pins one certificate for the list" contains "$T/alice.reg" "Registered 'alice' on 127.0.0.1:${NPORT[0]},"

# 1:1 across nodes: alice talks to node 0, bob to node 1.
s alice send bob "hello from node 0" >"$T/s1" 2>&1
s bob receive >"$T/r1" 2>&1
check "bob (node 1) reads alice (node 0)" contains "$T/r1" "alice: hello from node 0"
s bob send alice "and back from node 1" >/dev/null 2>&1
s alice receive >"$T/r2" 2>&1
check "alice reads bob's answer" contains "$T/r2" "bob: and back from node 1"

# Pushed across nodes: bob follows on node 1, alice sends through node 0.
# (timeout itself in the background, so that killing it ends sotto too)
timeout 60 "$SOTTO" --home "$T/bob" receive --follow --timeout 8 >"$T/f1" 2>&1 &
FPID=$!
sleep 1.5
s alice send bob "pushed across nodes" >/dev/null 2>&1
for i in $(seq 1 50); do contains "$T/f1" "pushed across nodes" && break; sleep 0.1; done
check "bob's receive --follow on node 1 shows it while it runs" contains "$T/f1" "alice: pushed across nodes"
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null

# Groups across the three nodes.
s alice group create team bob carol >"$T/g1" 2>&1
check "alice creates a group" contains "$T/g1" "Group team: created"
s bob receive >/dev/null 2>&1; s carol receive >/dev/null 2>&1
# alice's invitation waits until they accept her (docs/client.md, "Conversations").
s bob requests accept alice >/dev/null 2>&1; s carol requests accept alice >/dev/null 2>&1
s carol group send team "group message from node 2" >/dev/null 2>&1
s alice receive >"$T/ga" 2>&1; s bob receive >"$T/gb" 2>&1
check "alice (node 0) reads carol's group message" contains "$T/ga" "[team] carol: group message from node 2"
check "bob (node 1) reads it" contains "$T/gb" "[team] carol: group message from node 2"

# Alice's node dies: her next commands go to another node.
kill -KILL "${NPID[0]}"; wait "${NPID[0]}" 2>/dev/null; NPID[0]=
s alice send bob "after node 0 died" >"$T/s2" 2>&1
check "alice's send goes through another node" contains "$T/s2" "Sent"
s bob receive >"$T/r3" 2>&1
check "bob reads it" contains "$T/r3" "alice: after node 0 died"
s alice receive >"$T/r4" 2>&1
check "alice's receive works without node 0" test $? -eq 0

if [ "$FAILS" -ne 0 ]; then
  for f in s2 r3 r4; do echo "--- $f"; cat "$T/$f" 2>/dev/null; done
  for i in 0 1 2; do echo "--- node $i stderr"; tail -n 15 "$T/n$i.err" 2>/dev/null; done
  echo "--- store"
  timeout 10 psql "$SOTTO_TEST_PG dbname=postgres" -c "SELECT id, devkey, sender, length(body) FROM messages ORDER BY id" \
    -c "SELECT * FROM sotto_msg_hwm" -c "SELECT last_value, is_called FROM sotto_msg_ids" 2>&1 || true
fi
finish
