/* SPDX-License-Identifier: Apache-2.0 */
/* errors.c: the client core's one error table (sotto_client.h). Names are
 * the stable "error" field of the JSON front ends; messages say what went
 * wrong without particulars; hints say what to do. */
#include <string.h>

#include "sotto_client.h"

struct sc_err_row {
  int code;
  const char *name, *message, *hint;
};

static const struct sc_err_row rows[] = {
    {SC_ERR_NOMEM, "nomem", "out of memory", "free some memory and try again"},
    {SC_ERR_INTERNAL, "internal", "internal error", "please report it with the command that caused it"},
    {SC_ERR_ARG, "usage", "invalid argument", "see 'sotto --help'"},
    {SC_ERR_NOT_INITIALISED, "not_initialised", "no sotto identity in this home directory",
     "run 'sotto init' first (or pass --home DIR)"},
    {SC_ERR_EXISTS, "exists", "it already exists", "pick another name or another --home"},
    {SC_ERR_PASSPHRASE, "passphrase", "no usable passphrase", "set SOTTO_PASSPHRASE or type it on the terminal"},
    {SC_ERR_WRONG_PASSPHRASE, "wrong_passphrase", "wrong passphrase for the local store (nothing was changed)",
     "check SOTTO_PASSPHRASE or retype it"},
    {SC_ERR_BUSY, "busy", "the local store is busy (another sotto is writing)", "try again"},
    {SC_ERR_STORE, "store", "the local store failed", "check the disk and the permissions of the home directory"},
    {SC_ERR_STORE_CORRUPT, "store_corrupt", "the local store is damaged (nothing was changed)",
     "restore the home directory from a backup"},
    {SC_ERR_ROLLBACK, "rollback", "the local store was tampered with (rows do not match the last commit)",
     "do not use this copy"},
    {SC_ERR_HOME, "home", "cannot create the home directory", "pass --home DIR with a writable directory"},
    {SC_ERR_NOT_OPEN, "not_open", "the local store is not open", "open it first (sc_open)"},
    {SC_ERR_NOT_REGISTERED, "not_registered", "this identity is not registered with a server yet",
     "run 'sotto register --server HOST:PORT USERNAME'"},
    {SC_ERR_ALREADY_REGISTERED, "already_registered", "this identity is already registered", "use another --home"},
    {SC_ERR_NOT_CONNECTED, "not_connected", "not connected to the server", "connect first (sc_connect)"},
    {SC_ERR_UNREACHABLE, "unreachable", "cannot reach the server",
     "is it running? check the address and your network, then try again"},
    {SC_ERR_TIMEOUT, "timeout", "the server did not answer in time", "try again later"},
    {SC_ERR_TLS, "tls", "the TLS handshake with the server failed (the peer refused it)",
     "check the address; a sotto server speaks TLS 1.3"},
    {SC_ERR_CA, "ca", "cannot read the CA file", "check the path"},
    {SC_ERR_CONNECTION_LOST, "connection_lost", "lost the connection to the server", "try again"},
    {SC_ERR_PROTOCOL, "protocol", "unexpected answer from the server", "try again"},
    {SC_ERR_SERVER, "server_error", "the server refused the request", "try again later"},
    {SC_ERR_AUTH_FAILED, "auth_failed", "the server refused this device's credentials",
     "register a new account with a fresh --home"},
    {SC_ERR_AUTH_RATE_LIMITED, "auth_rate_limited", "the server refuses logins from this address for now",
     "wait a few minutes and try again"},
    {SC_ERR_RATE_LIMITED, "rate_limited", "the server is rate limiting us", "wait a minute and try again"},
    {SC_ERR_DISPLACED, "displaced", "another sotto process of this identity connected to the server",
     "run one at a time and try again"},
    {SC_ERR_SHUTDOWN, "shutdown", "the server is shutting down", "try again in a moment"},
    {SC_ERR_SERVER_BUSY, "server_busy", "the server has too many connections", "try again in a moment"},
    {SC_ERR_UNKNOWN_USER, "unknown_user", "there is no such user on the server", "check the spelling"},
    {SC_ERR_USERNAME_TAKEN, "username_taken", "the username is taken on the server", "choose another one"},
    {SC_ERR_BAD_USERNAME, "bad_username", "the server refused the username", "use 3-32 of a-z 0-9 _ ."},
    {SC_ERR_QUEUE_FULL, "queue_full", "the recipient's message queue on the server is full",
     "try again after they run 'sotto receive'"},
    {SC_ERR_NO_KEYS, "no_keys", "the recipient has no pre-keys on the server yet",
     "ask them to run 'sotto receive' once"},
    {SC_ERR_BAD_BUNDLE, "bad_bundle", "the server handed out unusable keys (nothing was sent)",
     "they may need to register again; the server may be tampering"},
    {SC_ERR_FORBIDDEN, "forbidden", "the server does not allow this device to do that",
     "only device 1 may remove other devices"},
    {SC_ERR_NO_SUCH_DEVICE, "no_such_device", "this account has no such device", "'sotto device list' shows them"},
    {SC_ERR_TOO_LARGE, "too_large", "too large", "split the message, or use fewer members"},
    {SC_ERR_EMPTY, "empty", "the message is empty (nothing was sent)", "give a text"},
    {SC_ERR_SELF, "self", "you cannot send to yourself", "give another username"},
    {SC_ERR_IDENTITY_CHANGED, "identity_changed",
     "the contact's identity key changed since you verified it (nothing was sent)",
     "compare safety numbers again, then run 'sotto verify USER NUMBER'"},
    {SC_ERR_KEY_CHANGED_UNCONFIRMED, "key_changed_unconfirmed",
     "the contact's identity key changed since your last message (nothing was sent)",
     "compare safety numbers, then send again with --yes"},
    {SC_ERR_CONFLICT, "conflict", "another sotto changed the same record meanwhile", "try again"},
    {SC_ERR_UNKNOWN_CONTACT, "unknown_contact", "no identity key of that user is known yet",
     "send or receive a message first"},
    {SC_ERR_UNKNOWN_GROUP, "unknown_group", "you are in no group of that name", "see 'sotto groups'"},
    {SC_ERR_GROUP_MEMBER, "group_member", "that user is already in the group, or not in it", "see 'sotto groups'"},
    {SC_ERR_PARTIAL, "partial", "done, but some members were not reached", "run the command again later"},
    {SC_ERR_MISMATCH, "mismatch", "the safety number does not match (do not trust this key)",
     "compare again with 'sotto safety-number USER'"},
    {SC_ERR_NOTHING_HELD, "nothing_held", "no new identity key of that user is waiting to be accepted",
     "see 'sotto contacts' for contacts with a new key held"},
    {SC_ERR_UNDELIVERED, "undelivered", "the message reached nobody", "see the warnings, then try again"},
    {SC_ERR_IN_USE, "in_use", "another sotto process (a daemon) holds this home",
     "stop it, or talk to it (its socket) instead"},
    {SC_ERR_OUTBOX_FULL, "outbox_full", "the outbox is full: nothing was queued",
     "wait until the server is reachable and the queued messages went out"},
    {SC_ERR_NO_SUCH_MESSAGE, "no_such_message", "no message of ours with that server id waits for a receipt",
     "see 'sotto history' for the states of your messages"},
    {SC_ERR_NOT_TLS, "not_tls", "the address does not speak TLS: it is not a sotto server",
     "check the host and port (is it the sotto-server's --listen address?)"},
    {SC_ERR_NOT_SOTTO, "not_sotto", "the address speaks TLS but did not answer as a sotto server",
     "check the host and port (is it the sotto-server's --listen address?)"},
    {SC_ERR_PIN_MISMATCH, "pin_mismatch", "the server's certificate differs from the pinned one",
     "ask its operator for the fingerprint ('sotto-server fingerprint'); after a move, 'sotto server set "
     "HOST:PORT --pin SHA256'"},
    {SC_ERR_DEVLIST_INVALID, "devlist_invalid",
     "the contact's device list is not signed by their account key (nothing was sent)",
     "a device their own devices did not sign never receives a message; tell them, and compare safety numbers"},
    {SC_ERR_LINK_FAILED, "link_failed", "linking the device failed (nothing was linked)",
     "start again: 'sotto link' on the new device, then 'sotto devices add CODE' on device 1"},
    {SC_ERR_LINK_CODE, "link_code", "the link code is unknown, already used, expired or mistyped",
     "run 'sotto link' again on the new device and use the code it prints"},
    {SC_ERR_DEVLIST_ROLLBACK, "devlist_rollback",
     "the server serves an older device list than one seen before, or none (nothing was sent)",
     "the server may be hiding a change of devices; try again later and tell the contact"},
    {SC_ERR_CERT_UNTRUSTED, "cert_untrusted", "the server's certificate does not verify against the CA file",
     "check the CA file and the server name"},
    {SC_ERR_WEAK_PASSPHRASE, "weak_passphrase", "the passphrase is too weak",
     "use at least 12 characters: a few unrelated words, not a common password"},
    {SC_ERR_BACKUP_AUTH, "backup_auth", "the backup file does not open (wrong passphrase or recovery key, or altered)",
     "check the passphrase or recovery key; nothing was changed"},
    {SC_ERR_BACKUP_FORMAT, "bad_backup", "not a sotto backup file, or a damaged one", "check the file name"},
    {SC_ERR_QUARANTINED, "username_quarantined", "the username was unregistered and is held for a while",
     "wait for the quarantine to end, or choose another name"},
    /* conversations (issue 14) */
    {SC_ERR_NOT_YOURS, "not_yours", "only your own messages can be edited or deleted for everyone",
     "'sotto history --delete' removes a message from this device only"},
    {SC_ERR_TOO_LATE, "too_late", "the time to edit (24 hours) or delete (48 hours) this message has passed",
     "'sotto history --delete' removes it from this device only"},
    {SC_ERR_BLOCKED, "blocked", "you blocked this user", "'sotto unblock USER' first"},
    {SC_ERR_UNKNOWN_MESSAGE, "unknown_message", "no message with that id in this conversation",
     "'sotto history --ids USER' shows the ids"},
    {SC_ERR_NO_REQUEST, "no_request", "there is no message request from this user", "'sotto requests' lists them"},
    {SC_ERR_GROUP_PENDING, "group_pending", "you have not accepted this group invitation",
     "'sotto requests' lists invitations; 'sotto requests accept USER' accepts the inviter and their groups"},
    /* key transparency (kt.c) */
    {SC_ERR_KT_NOT_LOGGED, "kt_not_logged", "the server showed a key that is not in its public log (nothing was sent)",
     "the server may be tampering: compare safety numbers in person; 'sotto kt status' shows the log"},
    {SC_ERR_KT_QUORUM, "kt_quorum", "the key-transparency log's head lacks enough witness cosignatures (nothing was sent)",
     "the witnesses may be late: try again later; 'sotto kt status' shows them"},
    {SC_ERR_KT_FORK, "kt_fork",
     "the server's key-transparency log is not an extension of the one it showed before (nothing was sent)",
     "the server shows different logs to different people: report it; do not trust its keys"},
    {SC_ERR_KT_BAD_PROOF, "kt_bad_proof", "a key-transparency signature or proof from the server does not verify",
     "the server may be tampering; try again later"},
    {SC_ERR_KT_OFF, "kt_off", "key transparency is required, but the server does not run it (nothing was sent)",
     "ask the operator to run the server with --kt 1, or 'sotto kt require off'"},
    /* per-device sessions and fan-out */
    {SC_ERR_DEVICE_KEY, "device_key",
     "a device's keys on the server are not the ones its account signed into its device list (nothing was sent)",
     "the server may be substituting a device's key; tell the contact and try again later"},
    {SC_ERR_DEVICE_MISMATCH, "device_mismatch",
     "the server refused the set of devices twice, even after the device list was fetched again (nothing was sent)",
     "the contact's devices may be changing right now; try again in a moment"},
    {SC_ERR_DEVICE_HIDDEN, "device_hidden",
     "this device is not in your account's current signed device list: contacts no longer send to it",
     "if you did not remove it, the server is hiding it: link it again from your primary device"},
    {SC_ERR_KT_PENDING, "kt_pending",
     "the server has not put that account into its public key-transparency log yet (it registered moments ago); "
     "nothing of it was used",
     "try again in a few seconds"},
    {SC_ERR_KT_LIST_HIDDEN, "kt_list_hidden",
     "the server hides a device list that its public log holds (nothing was sent)",
     "the server may be hiding one of the contact's devices: compare 'sotto devices' on their side; "
     "'sotto kt status' shows the log"},
    /* attachments */
    {SC_ERR_ATTACH_QUOTA, "attachment_quota", "the server's attachment quota of this account is used up",
     "wait until your recipients fetched what you sent (or it expired), then try again"},
    {SC_ERR_ATTACH_GONE, "attachment_gone",
     "the attachment is no longer on the server (it expired, or every recipient fetched it)",
     "ask the sender to send it again"},
    {SC_ERR_ATTACH_TAMPERED, "attachment_tampered",
     "the attachment's bytes do not match what the sender sent (altered on the server or on the way); nothing was "
     "saved",
     "ask the sender to send it again; if it keeps happening, the server is not to be trusted"},
    {SC_ERR_DISK_FULL, "disk_full", "no room left on the disk", "free some space and try again"},
    {SC_ERR_ATTACH_TOO_LARGE, "attachment_too_large", "the file is larger than the server accepts",
     "send a smaller file (sotto takes up to 4 GiB; the server may take less)"},
    {SC_ERR_FILE, "file", "the file cannot be read or written", "check the path and its permissions"},
};

static const struct sc_err_row *find(int err) {
  size_t i;
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
    if (rows[i].code == err) return &rows[i];
  return NULL;
}

const char *sc_error_name(int err) {
  const struct sc_err_row *r = find(err);
  return err == 0 ? "ok" : r ? r->name : "unknown";
}

const char *sc_error_message(int err) {
  const struct sc_err_row *r = find(err);
  return err == 0 ? "success" : r ? r->message : "unknown error";
}

const char *sc_error_hint(int err) {
  const struct sc_err_row *r = find(err);
  return r ? r->hint : "";
}

int sc_error_from_name(const char *name) {
  size_t i;
  if (!name) return SC_ERR_INTERNAL;
  if (strcmp(name, "ok") == 0) return 0;
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
    if (strcmp(rows[i].name, name) == 0) return rows[i].code;
  return SC_ERR_INTERNAL;
}
