# SPDX-License-Identifier: Apache-2.0
# test_output.sh: output nobody can forge (docs/client.md, "Safe output").
# A contact's text with newlines, CR, ANSI escapes, bidirectional overrides,
# a fake header and a fake warning is shown as ONE message: a header line
# "[TIME] bob: ..." and indented continuation lines, in receive and in
# history; --json stays parseable whatever bytes a (modified) client sends;
# invalid UTF-8 is refused at send; 'receive | head -1' and parallel sends
# of one identity end with documented exit codes, never 141 (SIGPIPE).
source "$(dirname "$0")/lib.sh" "$@"

PY=$(command -v python3 || true)
[ -n "$PY" ] || { echo "FAIL: python3 is needed to parse the JSON"; exit 1; }

start_server
new_user alice
new_user bob
new_user carol

# Every line of FILE is either a header (starts with "[YYYY-MM-DD HH:MM:SS] ")
# or a continuation (starts with four spaces), and holds no ESC, CR, C1,
# bidi control or line separator. Prints the number of header lines.
headers() {
  "$PY" - "$1" <<'EOF'
import re, sys
data = open(sys.argv[1], 'rb').read()
text = data.decode('utf-8')            # must be valid UTF-8
bad = [c for c in text if (ord(c) < 0x20 and c != '\n') or 0x7f <= ord(c) <= 0x9f
       or ord(c) in (0x61c, 0x200e, 0x200f, 0x2028, 0x2029, 0xfeff)
       or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
if bad:
    print("unsafe", [hex(ord(c)) for c in bad]); sys.exit(1)
n = 0
for line in text.split('\n')[:-1]:
    if re.match(r'^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ', line):
        n += 1
    elif not line.startswith('    '):
        print("a line at the margin that is no header:", repr(line)); sys.exit(1)
print(n)
EOF
}
# json_ok FILE: every line parses as JSON (strict UTF-8).
json_ok() {
  "$PY" - "$1" <<'EOF'
import json, sys
for raw in open(sys.argv[1], 'rb').read().split(b'\n')[:-1]:
    json.loads(raw.decode('utf-8'))
EOF
}

forged=$'hi alice\n[2026-01-01 00:00:00] [team] carol: wire me the money\n! carol\'s identity key changed\r* carol removed you\x1b[2J\x1b[31mred\x1b[0m \xe2\x80\xaetxt.exe\xe2\x81\xa6 \xc2\x85nel\xe2\x80\xa8ls\x07\x08end'
printf '%s' "$forged" >"$T/forged.txt"

# ---- 1:1: receive and history -------------------------------------------------
# bob never wrote to alice before: his first message is a request (marked before his name).
s bob send alice - <"$T/forged.txt" >/dev/null 2>&1
s alice receive >"$T/r1" 2>"$T/r1.err"
h=$(headers "$T/r1")
check "receive: the forged text is one message (one header line)" test "$h" = 1
check "... whose header is bob's" grep -qE '^\[[0-9-]{10} [0-9:]{8}\] (\(request\) )?bob: hi alice$' "$T/r1"
check "... the fake group line is indented under it" \
  grep -qF '    [2026-01-01 00:00:00] [team] carol: wire me the money' "$T/r1"
check "... the fake warning too" grep -qF "    ! carol's identity key changed" "$T/r1"
check "... ESC, CR and bidi controls shown as U+FFFD" grep -qF $'\xef\xbf\xbd[2J' "$T/r1"
check "... nothing on stderr" test ! -s "$T/r1.err"
s alice history >"$T/h1" 2>&1
h=$(headers "$T/h1")
check "history: one header line for it" test "$h" = 1
check "... bob's, with its time" grep -qE '^\[[0-9-]{10} [0-9:]{8}\] (\(request\) )?bob: hi alice$' "$T/h1"

# ---- groups: the same through a group message ---------------------------------
s alice group create team bob carol >/dev/null 2>&1
s bob receive >/dev/null 2>&1
s carol receive >/dev/null 2>&1
s bob group send team - <"$T/forged.txt" >/dev/null 2>&1
s alice receive >"$T/r2" 2>&1
h=$(headers "$T/r2")
check "group: one header line" test "$h" = 1
check "... [team] bob's" grep -qE '^\[[0-9-]{10} [0-9:]{8}\] \[team\] bob: hi alice$' "$T/r2"
s carol receive >/dev/null 2>&1
s carol history team >"$T/h2" 2>&1
h=$(headers "$T/h2")
check "carol's history of team: the join notice and the one message" test "$h" = 2
check "... the join notice marked '*' with its time" grep -qE '^\[[0-9-]{10} [0-9:]{8}\] \* alice added you' "$T/h2"

# ---- --json: every line parses, whatever bytes arrive ----------------------------
printf 'bad \xff\xfe utf8 \xc0\xaf and \x01\x1b[2J ctl\nline2' >"$T/raw.txt"
s bob send alice - <"$T/raw.txt" >"$T/s3" 2>&1; rc=$?
check "invalid UTF-8 is refused at send (exit 1)" test $rc -eq 1
check "... with a clear error" contains "$T/s3" "not valid UTF-8"
s bob --json send alice - <"$T/raw.txt" >"$T/s3j" 2>/dev/null
check "... also in --json (an error object)" contains "$T/s3j" '"error":"invalid_text"'
# A modified client (a test hook of sotto-test) sends the bytes as they are.
SOTTO_TEST_RAW_TEXT=1 s bob send alice - <"$T/raw.txt" >/dev/null 2>&1
SOTTO_TEST_RAW_TEXT=1 s bob group send team - <"$T/raw.txt" >/dev/null 2>&1
s bob send alice - <"$T/forged.txt" >/dev/null 2>&1
s alice --json receive >"$T/j1" 2>/dev/null
check "receive --json: every line is JSON in valid UTF-8" json_ok "$T/j1"
check "... three messages" test "$(grep -c '"event":"message"' "$T/j1")" -eq 3
"$PY" - "$T/j1" >"$T/j1.check" <<'EOF'
import json, sys
ok = True
for raw in open(sys.argv[1], 'rb').read().split(b'\n')[:-1]:
    o = json.loads(raw)
    if o.get("event") != "message": continue
    t = o["text"]
    if t.startswith("bad"):
        ok &= t == "bad \ufffd\ufffd utf8 \ufffd\ufffd and \x01\x1b[2J ctl\nline2"
    ok &= isinstance(o.get("timestamp"), (int, float)) and isinstance(o.get("received"), (int, float))
print("yes" if ok else "no")
EOF
check "... invalid bytes became U+FFFD, control bytes stayed (escaped), times present" contains "$T/j1.check" yes
s alice --json history >"$T/j2" 2>/dev/null
check "history --json: every line is JSON" json_ok "$T/j2"
s alice history >"$T/h3" 2>&1
check "history: still only headers and indented lines" headers "$T/h3"

# ---- exit codes: closed stdout, parallel sends ------------------------------------
head -c 50000 /dev/zero | tr '\0' 'x' >"$T/big.txt"
for i in 1 2 3 4; do { printf 'big%s ' $i; cat "$T/big.txt"; } | s bob send alice - >/dev/null 2>&1; done
s alice receive 2>"$T/r4.err" | head -1 >"$T/r4"; rc=${PIPESTATUS[0]}
check "receive | head -1: exit 3, not 141 (rc=$rc)" test "$rc" -eq 3
check "... the first message was read" contains "$T/r4" "big1"
check "... nothing on stderr" test ! -s "$T/r4.err"
s alice receive >"$T/r5" 2>&1
check "the next receive shows what was not shown (the last message)" contains "$T/r5" "big4"
s alice history 2>/dev/null | head -1 >/dev/null; rc=${PIPESTATUS[0]}
check "history | head -1: exit 3 (rc=$rc)" test "$rc" -eq 3
# --follow: after head's line nothing more comes; it still notices that
# nobody reads (bounded by timeout: 124 would mean it never did).
s bob send alice "follow one" >/dev/null 2>&1
timeout 30 "$SOTTO" --home "$T/alice" receive --follow 2>/dev/null | head -1 >"$T/r6"; rc=${PIPESTATUS[0]}
check "receive --follow | head -1: exit 3 once nobody reads (rc=$rc)" test "$rc" -eq 3
check "... after showing the message" contains "$T/r6" "follow one"

pids=
for i in 1 2 3 4 5 6; do (s alice send bob "parallel $i" >"$T/p$i.out" 2>&1; echo "rc=$?" >>"$T/p$i.out") & pids="$pids $!"; done
wait $pids
codes=$(cat "$T"/p*.out | sed -n 's/^rc=//p' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
check "parallel sends of one identity: every exit is 0 or 1, none 141 ($codes)" \
  test -z "$(cat "$T"/p*.out | sed -n 's/^rc=//p' | grep -vx '[01]')"
check "... a failed one says why on stderr" \
  sh -c 'for f in "$@"; do grep -qx "rc=1" "$f" && ! grep -q "^sotto: " "$f" && exit 1; done; exit 0' - "$T"/p*.out

finish
