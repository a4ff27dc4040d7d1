# SPDX-License-Identifier: Apache-2.0
# test_basic.sh: two people talk end to end, in both directions; --json;
# TEXT from stdin; safety numbers agree and verify; --help documents every
# option; the homes hold no plaintext message and no private key.
# The real client binary with the real Argon2id limits (see lib.sh).
export SOTTO_TEST_REAL_KDF=1
source "$(dirname "$0")/lib.sh" "$@"

start_server
new_user alice
new_user bob

s alice send bob "Hi Bob, it's Alice." >"$T/o1" 2>&1
check "alice sends to bob" contains "$T/o1" "Sent to bob."
s bob receive >"$T/o2" 2>&1
check "bob reads alice's message" contains "$T/o2" "alice: Hi Bob, it's Alice."
echo "Hi Alice! Nobody else can read this." | s bob send alice - >"$T/o3" 2>&1
check "bob answers from stdin" contains "$T/o3" "Sent to alice."
s alice --json receive >"$T/o4" 2>&1
check "alice reads it as JSON" contains "$T/o4" '{"event":"message","from":"bob","text":"Hi Alice! Nobody else can read this.",'
check "one JSON object per line" test "$(grep -c '^{.*}$' "$T/o4")" -eq "$(wc -l <"$T/o4")"
s alice receive >"$T/o5" 2>&1
check "nothing is shown twice" contains "$T/o5" "No new messages."
s alice send bob several words joined >/dev/null 2>&1 && s bob receive >"$T/o6" 2>&1
check "several TEXT words are one message" contains "$T/o6" "alice: several words joined"
s alice --json send bob "json send" >"$T/o7" 2>&1
check "send --json" contains "$T/o7" '"event":"sent","to":"bob","text":"json send"'
s bob receive >/dev/null 2>&1

# Safety numbers: the same 60 digits on both sides, QR code, verify.
s alice --json safety-number bob >"$T/sn_a" 2>&1
s bob --json safety-number alice >"$T/sn_b" 2>&1
na=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_a")
nb=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn_b")
check "safety number has 60 digits" test "${#na}" -eq 60
check "alice and bob see the same safety number" test "$na" = "$nb"
s alice safety-number bob >"$T/sn_h" 2>&1
check "safety number printed in groups of five" contains "$T/sn_h" "${na:0:5} ${na:5:5} ${na:10:5} ${na:15:5}"
check "a QR code is drawn" grep -q '█' "$T/sn_h"
wrong="${na:0:59}$(( (${na:59:1} + 1) % 10 ))"
s alice verify bob "$wrong" >"$T/v1" 2>&1; rc=$?
check "a wrong number is refused" test $rc -eq 1
check "... saying so" contains "$T/v1" "does not match"
s alice verify bob "${na:0:30}" "${na:30:30}" >"$T/v2" 2>&1
check "the right number verifies (spaces allowed)" contains "$T/v2" "bob is verified"
s alice --json contacts >"$T/c1" 2>&1
check "contacts shows bob verified" contains "$T/c1" '"user":"bob","verified":true'
s bob safety-number carol >"$T/sn_c" 2>&1; rc=$?
check "safety number of a stranger: actionable error" test $rc -eq 1 -a -n "$(grep 'send or receive a message first' "$T/sn_c")"

# history keeps both directions.
s alice history bob >"$T/h1" 2>&1
check "history has sent and received messages, with the delivery state" grep -qE "^\[[0-9: -]+\] to bob \((sent|delivered)\): Hi Bob, it's Alice.$" "$T/h1"
check "... in order" contains "$T/h1" "bob: Hi Alice! Nobody else can read this."

# --help on the program and on every command documents every option.
s alice --help >"$T/help" 2>&1
for o in --home --json --help --version SOTTO_PASSPHRASE; do
  check "sotto --help documents $o" contains "$T/help" "$o"
done
for cmd in init register send receive safety-number verify group contacts groups history; do
  s alice "$cmd" --help >"$T/h_$cmd" 2>&1
  check "sotto $cmd --help" contains "$T/h_$cmd" "usage: sotto"
done
for o in --server --ca --pin; do check "register --help documents $o" contains "$T/h_register" "$o"; done
for o in --follow --timeout; do check "receive --help documents $o" contains "$T/h_receive" "$o"; done
check "safety-number --help documents --no-qr" contains "$T/h_safety-number" "--no-qr"
for sub in create send add remove; do check "group --help documents $sub" contains "$T/h_group" "group $sub"; done

# No plaintext message and no private key in either home.
if [ -n "$SCAN" ]; then
  "$SCAN" "$T/alice" "Hi Bob, it's Alice." "Hi Alice! Nobody else can read this." "several words joined" \
    "json send" >"$T/scan_a" 2>&1
  check "alice's store holds no plaintext or private key" test $? -eq 0
  cat "$T/scan_a"
  "$SCAN" "$T/bob" "Hi Bob, it's Alice." "Hi Alice! Nobody else can read this." "several words joined" >"$T/scan_b" 2>&1
  check "bob's store holds no plaintext or private key" test $? -eq 0
  cat "$T/scan_b"
  # Negative control: the scanner does see a text that is there in the clear.
  cp -r "$T/alice" "$T/control" && printf 'xx Hi Bob, it'"'"'s Alice. xx' >"$T/control/leak.txt"
  "$SCAN" "$T/control" "Hi Bob, it's Alice." >"$T/scan_c" 2>&1
  check "the scanner finds a planted plaintext (control)" test $? -eq 1
else
  bad "store scan helper not given"
fi
finish
