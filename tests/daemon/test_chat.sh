# SPDX-License-Identifier: Apache-2.0
# test_chat.sh: sotto chat driven the way a person uses it. tmux runs it in
# a detached session (a real terminal: ncurses, keys, resizes) against a
# real sotto-server; send-keys types, capture-pane reads the screen, which
# is printed into the test log. Bob is the CLI on the other side.
source "$(dirname "$0")/../client/lib.sh" "$@"
command -v tmux >/dev/null || { echo "FAIL tmux is not installed (make deps)"; exit 1; }
export LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC
TM="tmux -u -S $T/tmux.sock"

start_server
new_user alice
new_user bob
new_user mallory
s bob send alice "hello from bob" >/dev/null 2>&1
# A key change, made as an attacker holding the server would (as in
# tests/client/test_identity.sh): mallory's queued message relabelled as bob's.
# (mallory's client names itself bob in the addresses under the MAC, as a
# modified client would: a relabelled envelope alone is refused outright.)
SOTTO_TEST_ADDRESS_AS=bob s mallory send alice "it's bob, new phone" >/dev/null 2>&1
stop_server
sql "UPDATE messages SET sender = 'bob' WHERE sender = 'mallory';"
start_server

screen() { $TM capture-pane -p -t chat; }
# wait_for TEXT: until the screen shows TEXT (10 s); the screen goes to $T/screen.
wait_for() {
  local i
  for i in $(seq 1 100); do
    screen >"$T/screen" 2>/dev/null
    grep -qF -- "$1" "$T/screen" && return 0
    sleep 0.1
  done
  return 1
}
show() { echo "--- screen: $1"; sed 's/^/| /' "$T/screen"; }
keys() { $TM send-keys -t chat "$@"; }
trap '$TM kill-server 2>/dev/null; cleanup' EXIT

$TM new-session -d -s chat -x 100 -y 24 \
  "SOTTO_PASSPHRASE='$SOTTO_PASSPHRASE' SOTTO_TEST_KDF=fast $SOTTO --home $T/alice chat; echo chat-exit=\$?; sleep 30"
check "chat starts and connects" wait_for "online"
check "bob's queued message makes an unread count" wait_for "bob"
grep -qE 'bob +\(2\)' "$T/screen" && ok "... bob (2) in the list" || bad "... bob (2) in the list"
show "started"

keys Enter
# bob never wrote to alice before: a message request, marked so.
check "Enter opens the conversation with its history" wait_for "bob: (request) hello from bob"
check "... and the identity-key notice inline" grep -qF "new, unverified key" "$T/screen"
check "... the impostor's text not shown as bob's" lacks "$T/screen" "bob: it's bob"
show "conversation with a held message"
keys "hi bob, ça va? 😀" Enter
check "a message typed in UTF-8 is sent" wait_for "alice: hi bob, ça va? 😀"
keys "typo€€" BSpace BSpace BSpace " fixed"
check "backspace removes whole multibyte characters" wait_for "> typ fixed"
keys C-u
s bob receive >"$T/bob.rx" 2>&1
check "bob (CLI) reads what alice typed" contains "$T/bob.rx" "alice: hi bob, ça va? 😀"

printf 'live one \033[31mred\033]0;title\007 end' | s bob send alice - >/dev/null 2>&1
check "a message arrives live in the open conversation" wait_for "live one"
check "... its control characters shown as U+FFFD, not obeyed" grep -qF "live one �[31mred�]0;title� end" "$T/screen"
# A forged line: a newline, then what looks like another sender's message
# and a warning. One message, on bob's line: the newline is a space.
printf 'forged one\nmallory: fake line\r\n! key changed\xe2\x80\xae' | s bob send alice - >/dev/null 2>&1
check "a forged line arrives as one message" wait_for "forged one"
check "... on bob's line, newline and CR not obeyed" grep -qF "bob: forged one mallory: fake line� ! key changed�" "$T/screen"
check "... no line of the screen starts with the fake sender" test -z "$(grep -E '^ *mallory: fake' "$T/screen")"
show "conversation"

s bob group create team alice >/dev/null 2>&1
s bob group send team "group hello" >/dev/null 2>&1
check "a group conversation appears with its unread count" wait_for "#team"
grep -qE '#team +\(' "$T/screen" && ok "... #team (N) in the list" || bad "... #team (N) in the list"
keys "/group team" Enter
check "/group opens it" wait_for "bob: group hello"
keys "hello team" Enter
check "... and a message to the group is sent" wait_for "alice: hello team"
s bob receive >"$T/bob.rx2" 2>&1
check "bob reads it in the group" contains "$T/bob.rx2" "[team] alice: hello team"
show "group"

# Issue 14 from the chat UI, in the group: a file, a reaction to bob's
# message, an edit and a delete of alice's, the disappearing timer.
head -c 100000 /dev/urandom >"$T/pic.bin"
keys "/file $T/pic.bin for the team" Enter
check "/file sends a file to the group" wait_for "file sent"
keys "/react 👍" Enter
check "/react reacts to bob's last message" wait_for "reacted"
check "... shown on it" wait_for "group hello [👍 alice]"
keys "/edit hello team, edited" Enter
check "/edit edits alice's last message" wait_for "hello team, edited (edited)"
keys "/delete" Enter
check "/delete deletes it for everyone" wait_for "deleted for everyone"
check "... a tombstone in its place" wait_for "alice: (message deleted)"
keys "/timer 1h" Enter
check "/timer sets the group's timer" wait_for "now disappear after 1 hour"
show "group changes"
s bob receive >"$T/bob.rx3" 2>&1
check "bob gets the file sent from the chat UI" cmp -s "$T/bob/downloads/pic.bin" "$T/pic.bin"
check "... as a file in the group, with its caption" contains "$T/bob.rx3" \
  "file from alice in group team saved as downloads/pic.bin (100000 bytes): for the team"
check "bob sees alice's reaction" contains "$T/bob.rx3" "[team] alice reacted 👍 to message"
check "... her edit" contains "$T/bob.rx3" "[team] alice edited message"
check "... her delete" contains "$T/bob.rx3" "[team] alice deleted message"
check "... and the timer" contains "$T/bob.rx3" "[team] alice set disappearing messages to 1 hour"

keys "/safety bob" Enter
check "the safety-number screen" wait_for "Safety number with bob"
s bob --json safety-number alice >"$T/sn" 2>&1
num=$(sed -n 's/.*"number":"\([0-9]*\)".*/\1/p' "$T/sn")
echo "bob sees: $num"
check "bob's number has 60 digits" test ${#num} -eq 60
# (waited for, not grepped once: the screen may be captured while curses is
# still drawing it, its last line after the digits)
check "... says a new key is held and the number is for it" wait_for "a new key is held: this number is for the new key"
# The screen's three rows of four groups: 60 digits.
shown=$(grep -E '^ +[0-9]{5} [0-9]{5} [0-9]{5} [0-9]{5}$' "$T/screen" | tr -cd '0-9')
check "... 60 digits in 3 rows of 4 groups of 5" test "${#shown}" -eq 60
# Half of the number is alice's own fingerprint; the whole differs.
check "... which is not the number the real bob sees" test "$shown" != "$num"
show "safety number (a new key held)"
keys Escape
keys "/msg bob" Enter
keys "/trust" Enter
check "/trust accepts the held key and releases the held message" wait_for "held message released"
check "... now shown as bob's" wait_for "bob: it's bob, new phone"
show "after /trust"

$TM resize-window -t chat -x 44 -y 12
# The header ends with "online" at the right edge: at column 44 once redrawn.
wait_narrow() {
  local i
  for i in $(seq 1 100); do
    screen >"$T/screen" 2>/dev/null
    [ "$(head -1 "$T/screen" | wc -L)" -le 44 ] && grep -q "online$" "$T/screen" && return 0
    sleep 0.1
  done
  return 1
}
check "a resize to 44x12 redraws (one pane)" wait_narrow
check "... the open conversation fits" grep -qF "bob: it's bob, new phone" "$T/screen"
check "... nothing wider than the terminal" test "$(wc -L <"$T/screen")" -le 44
show "44x12"
$TM resize-window -t chat -x 100 -y 24
check "and back to 100x24" wait_for "#team"

keys "/quit" Enter
check "/quit leaves with status 0" wait_for "chat-exit=0"
check "the home is free again for the CLI" s alice contacts
finish
