#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh: `make demo` -- a local sotto-server and three people talking end
# to end, then what the server holds about them: no plaintext.
#
# usage: scripts/demo.sh [BUILD_DIR]   (default: build; the Makefile builds first)
# Builds nothing. Every step is checked; any failure stops the demo with a
# non-zero exit status. Everything lives in one temporary directory, removed
# at the end.
set -euo pipefail

BUILD=${1:-build}
SOTTO="$BUILD/bin/sotto"
SERVER="$BUILD/bin/sotto-server"
for b in "$SOTTO" "$SERVER"; do
  [ -x "$b" ] || { echo "demo: $b is missing; run 'make build' first" >&2; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/sotto-demo.XXXXXX")
SPID=
cleanup() {
  if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo; echo "demo: FAILED: $*" >&2; exit 1; }

# Each person has their own home (identity + encrypted store); scripts give
# the store passphrase through SOTTO_PASSPHRASE instead of the terminal.
export SOTTO_PASSPHRASE="demo passphrase, use a better one"
if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
say() { printf '\n%s%s%s\n' "$B" "$*" "$N"; }
# show ARGS...: the command line as one would type it.
show() {
  local a out=
  for a in "$@"; do
    case "$a" in *[[:space:]\'\?\!]*) out+=" \"$a\"" ;; *) out+=" $a" ;; esac
  done
  printf '%s' "$out"
}
# as NAME ARGS...: run sotto as NAME, showing the command line.
as() {
  local who=$1; shift
  printf '  %s$ sotto%s\n' "$who" "$(show "$@")"
  timeout 30 "$SOTTO" --home "$W/$who" "$@" >"$W/out" 2>&1 || { sed 's/^/      /' "$W/out"; fail "'sotto $*' as $who"; }
  sed 's/^/      /' "$W/out"
}
expect() { grep -qF -- "$1" "$W/out" || fail "expected \"$1\" in the output above"; }

say "1. A server on this machine: a fresh data directory, a free loopback port, TLS 1.3."
mkdir -p "$W/server"
for try in $(seq 1 20); do
  PORT=$((20000 + RANDOM % 40000))
  "$SERVER" --data "$W/server" --listen "127.0.0.1:$PORT" --log-level 0 >"$W/server.out" 2>"$W/server.err" &
  SPID=$!
  for i in $(seq 1 50); do
    grep -q '^listening' "$W/server.out" && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^listening' "$W/server.out" && break
  kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=
done
[ -n "$SPID" ] || fail "sotto-server did not start: $(cat "$W/server.err")"
FP=$(sed -n 's/^fingerprint //p' "$W/server.out")
echo "  sotto-server listens on 127.0.0.1:$PORT; its certificate fingerprint is"
echo "  $FP"

say "2. Alice, Bob and Carol each create an identity and register a username."
for who in alice bob carol; do
  as "$who" init
  as "$who" register --server "127.0.0.1:$PORT" "$who"
  expect "Registered '$who'"
  expect "$FP"   # the certificate each client pinned is the server's
done

say "3. Alice writes to Bob; Bob answers. The first message sets up a post-quantum session (PQXDH)."
as alice send bob "Hi Bob, it's Alice. Is this thing on?"
as bob receive
expect "alice: Hi Bob, it's Alice. Is this thing on?"
as bob send alice "Loud and clear. Nobody else can read this."
as alice receive
expect "bob: Loud and clear. Nobody else can read this."

say "4. Bob goes offline. Alice writes anyway; the server queues ciphertext until he is back."
as alice send bob "Lunch tomorrow at noon?"
as alice send bob "I'll book the table by the window."
echo "  (later, Bob comes back online)"
as bob receive
expect "alice: Lunch tomorrow at noon?"
expect "alice: I'll book the table by the window."

say "5. Alice and Bob compare safety numbers (in person or on a call): the same 60 digits means"
echo "   nobody, not even the server, sits in between. Alice then marks Bob verified."
as alice safety-number bob
as bob safety-number --no-qr alice
number() { timeout 30 "$SOTTO" --home "$W/$1" --json safety-number "$2" | sed -n 's/.*"number":"\([0-9]*\)".*/\1/p'; }
NA=$(number alice bob) || fail "safety number"
NB=$(number bob alice) || fail "safety number"
[ ${#NA} -eq 60 ] && [ "$NA" = "$NB" ] || fail "the safety numbers differ"
echo "  both see: $(echo "$NA" | sed 's/.\{5\}/& /g')"
as alice verify bob "$NA"
expect "bob is verified"

say "6. A group of three (Sender Keys). Who is in it travels only inside end-to-end messages."
as alice group create picnic bob carol
as bob receive
expect "alice added you to the group picnic"
as carol receive
expect "alice added you to the group picnic"
echo "  (Carol has never talked to Alice: the invitation waits in her requests until she accepts)"
as carol requests
expect "group picnic (invited by alice)"
as carol requests accept alice
expect "alice: accepted"
as alice group send picnic "Picnic on Saturday? I'll bring bread."
as carol group send picnic "I'll bring cheese!"
as bob receive
expect "[picnic] alice: Picnic on Saturday? I'll bring bread."
expect "[picnic] carol: I'll bring cheese!"
as carol receive
expect "[picnic] alice: Picnic on Saturday? I'll bring bread."
as alice receive
expect "[picnic] carol: I'll bring cheese!"

say "7. What the server holds about Alice, as it would answer a legal requisition:"
"$SERVER" requisition --data "$W/server" alice >"$W/req" 2>&1 || fail "requisition report: $(cat "$W/req")"
sed 's/^/  /' "$W/req"

say "8. Does any text the three wrote, or the group's name, occur anywhere in the server's data?"
kill -TERM "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=
echo "  (server stopped; searching every file in its data directory)"
ls -l "$W/server" | sed 's/^/  /'
found=0
for text in "Is this thing on" "Nobody else can read this" "Lunch tomorrow" "table by the window" \
            "Picnic on Saturday" "bring cheese" "picnic"; do
  if grep -rqaF -- "$text" "$W/server"; then echo "  FOUND: \"$text\""; found=1; else echo "  not found: \"$text\""; fi
done
[ $found -eq 0 ] || fail "plaintext in the server's data directory"

say "Done: the server relayed every message and can tell nothing of what was said, or who is in the group."
