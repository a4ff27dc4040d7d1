/* SPDX-License-Identifier: Apache-2.0 */
/* sotto_client.h: the client core, the one header every front end (the
 * sotto CLI, the JSON-RPC daemon, the chat UI) builds on.
 *
 * The core holds the encrypted local store, the account, the pairwise
 * sessions and groups, the message log, and the link to the server
 * (connect, certificate pin, authentication, reconnect with back-off,
 * pre-key top-up). It never prints, never reads a terminal and never exits:
 * results are return values, and what happens (a message arrives, a key
 * changes, a delivery fails) is an event given to the front end's sink.
 *
 * Conventions (libsodium / libuv style):
 *  - outputs come first, then inputs;
 *  - every function returning int returns 0 (SC_OK) or a negative SC_ERR_*
 *    (a few return a count >= 0); sc_error_name/_message/_hint describe a
 *    code, and sc_errdetail(c) gives the last failure of c as one sentence
 *    with its particulars (host, user...), ready to show;
 *  - strings are NUL-terminated UTF-8; texts also come with their length;
 *  - questions are never asked inside: a changed identity key is refused
 *    with SC_ERR_KEY_CHANGED_UNCONFIRMED unless the call carries
 *    SC_SEND_ACCEPT_KEY_CHANGE; the passphrase is passed in.
 *
 * Linking: the library is static (sotto_client_core); besides the sc_*
 * names below, its internal symbols are sc__*, account_*, conn_*,
 * contact_*, session_load/_save, content_*, deliver_*, grp_*, inbox_*,
 * msglog_*, msg_clear, store_*, client_identity_check and the rec_* inline
 * helpers: a front end names its own functions otherwise.
 *
 * Signals: the link writes to a TLS socket; a server that goes away would
 * raise SIGPIPE, so a front end ignores it (signal(SIGPIPE, SIG_IGN)) and
 * gets SC_ERR_CONNECTION_LOST instead. The core changes no signal handler.
 *
 * One struct sc_client is used by one thread at a time. Events are given to
 * the sink synchronously, from inside the call that caused them; pointers in
 * an event are valid only during the sink call.
 *
 * Polling (daemon, chat UI): after sc_connect, wait until sc_link_fd(c) is
 * readable or sc_link_next_deadline(c) passes (or sc_link_pending(c) says
 * that bytes are already buffered), then call sc_link_step(c, 0). Sends may
 * be issued at any time on the same connection: pushes that arrive while a
 * send waits for its answer are kept and handed out by the next step. */
#ifndef SOTTO_CLIENT_H
#define SOTTO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits ---------------------------------------------------------------- */

#define SC_USER_MIN 3
#define SC_USER_MAX 32            /* usernames: 3-32 of a-z 0-9 _ . */
#define SC_GROUP_NAME_MAX 64      /* group names: 1-64 of A-Z a-z 0-9 _ . - */
#define SC_GROUP_MAX_MEMBERS 64
#define SC_MAX_TEXT (60 * 1024)   /* one message's text, bytes */
#define SC_MAX_PASSPHRASE 1024
#define SC_SAFETY_NUMBER_LEN 60
#define SC_SCANNABLE_LEN 74       /* bytes of the scannable (QR) safety number payload */
#define SC_PIN_HEX_LEN 64         /* SHA-256 of the server certificate, hex */
#define SC_MAX_DEVICES 64

/* ---- errors ------------------------------------------------------------------ */

/* One table (sc_error_name / _message / _hint). Names are stable (they are
 * the "error" field of the CLI's and the daemon's JSON); numbers may grow
 * but never change meaning. */
enum sc_error {
  SC_OK = 0,
  SC_ERR_NOMEM = -1,                 /* nomem */
  SC_ERR_INTERNAL = -2,              /* internal */
  SC_ERR_ARG = -3,                   /* usage: a bad argument to a core call */
  SC_ERR_NOT_INITIALISED = -4,       /* no store in the home directory */
  SC_ERR_EXISTS = -5,                /* a store / group of that name already exists */
  SC_ERR_PASSPHRASE = -6,            /* the passphrase given is empty or too long */
  SC_ERR_WRONG_PASSPHRASE = -7,
  SC_ERR_BUSY = -8,                  /* another sotto process holds the store */
  SC_ERR_STORE = -9,                 /* the store failed (I/O, SQLite) */
  SC_ERR_STORE_CORRUPT = -10,        /* a record fails to open */
  SC_ERR_ROLLBACK = -11,             /* the store was rolled back / tampered with */
  SC_ERR_HOME = -12,                 /* cannot create the home directory */
  SC_ERR_NOT_OPEN = -13,             /* sc_open first */
  SC_ERR_NOT_REGISTERED = -14,
  SC_ERR_ALREADY_REGISTERED = -15,
  SC_ERR_NOT_CONNECTED = -16,        /* sc_connect first */
  SC_ERR_UNREACHABLE = -17,
  SC_ERR_TIMEOUT = -18,
  SC_ERR_TLS = -19,                  /* a TLS peer refused or broke off the handshake (a wrong pin: SC_ERR_PIN_MISMATCH) */
  SC_ERR_CA = -20,                   /* the CA file cannot be read */
  SC_ERR_CONNECTION_LOST = -21,
  SC_ERR_PROTOCOL = -22,             /* an answer the client cannot use */
  SC_ERR_SERVER = -23,               /* another server error */
  SC_ERR_AUTH_FAILED = -24,
  SC_ERR_AUTH_RATE_LIMITED = -25,
  SC_ERR_RATE_LIMITED = -26,
  SC_ERR_DISPLACED = -27,            /* another process of this identity connected */
  SC_ERR_SHUTDOWN = -28,
  SC_ERR_SERVER_BUSY = -29,
  SC_ERR_UNKNOWN_USER = -30,
  SC_ERR_USERNAME_TAKEN = -31,
  SC_ERR_BAD_USERNAME = -32,
  SC_ERR_QUEUE_FULL = -33,
  SC_ERR_NO_KEYS = -34,
  SC_ERR_BAD_BUNDLE = -35,           /* the server handed out unusable keys */
  SC_ERR_FORBIDDEN = -36,
  SC_ERR_NO_SUCH_DEVICE = -37,
  SC_ERR_TOO_LARGE = -38,
  SC_ERR_EMPTY = -39,
  SC_ERR_SELF = -40,                 /* sending to yourself */
  SC_ERR_IDENTITY_CHANGED = -41,     /* a verified contact's key changed: nothing sent */
  SC_ERR_KEY_CHANGED_UNCONFIRMED = -42, /* the key changed since the last message: pass SC_SEND_ACCEPT_KEY_CHANGE */
  SC_ERR_CONFLICT = -43,             /* another sotto changed the same record meanwhile; try again */
  SC_ERR_UNKNOWN_CONTACT = -44,      /* no identity key of that user known yet */
  SC_ERR_UNKNOWN_GROUP = -45,
  SC_ERR_GROUP_MEMBER = -46,         /* already / not a member, or yourself in a member list */
  SC_ERR_PARTIAL = -47,              /* done, but some members were not reached */
  SC_ERR_MISMATCH = -48,             /* the safety number does not match */
  SC_ERR_NOTHING_HELD = -49,
  SC_ERR_UNDELIVERED = -50,          /* nobody could be sent the message */
  SC_ERR_IN_USE = -51,               /* another process (a daemon) holds this home (sc_hold_home) */
  SC_ERR_OUTBOX_FULL = -52,          /* the outbox holds its maximum: nothing queued */
  SC_ERR_NO_SUCH_MESSAGE = -53,      /* no message of ours with that server id is waiting for a receipt */
  /* -54, -55: not used */
  SC_ERR_NOT_TLS = -56,              /* the endpoint does not speak TLS (not a sotto server) */
  SC_ERR_NOT_SOTTO = -57,            /* a TLS endpoint that does not answer as a sotto server */
  SC_ERR_PIN_MISMATCH = -58,         /* the certificate differs from the pinned one (no valid rotation to it) */
  SC_ERR_CERT_UNTRUSTED = -59,       /* the certificate does not verify against the CA file */
  SC_ERR_WEAK_PASSPHRASE = -60,      /* the passphrase is too weak (sc_passphrase_strength says why) */
  SC_ERR_BACKUP_AUTH = -61,          /* wrong backup passphrase / recovery key, or the file was altered */
  SC_ERR_BACKUP_FORMAT = -62,        /* not a sotto backup file, or malformed */
  SC_ERR_QUARANTINED = -63,          /* the username was unregistered and is held for a while */
  /* multi-device (docs/multi-device.md) */
  SC_ERR_DEVLIST_INVALID = -64,      /* a contact's device list does not verify against their account key */
  SC_ERR_DEVLIST_ROLLBACK = -65,     /* a device list older than one seen before (or gone): refused */
  /* -66..-68: multi-device, to come */
  SC_ERR_LINK_FAILED = -69,          /* linking failed: a provisioning message or reply that does not authenticate */
  SC_ERR_LINK_CODE = -70,            /* the link code is unknown, used, expired or mistyped */
  /* attachments (attach.c) */
  SC_ERR_ATTACH_QUOTA = -71,         /* the server's attachment quota of this account is used up */
  SC_ERR_ATTACH_GONE = -72,          /* the attachment is no longer on the server (expired, or fetched by all) */
  SC_ERR_ATTACH_TAMPERED = -73,      /* the attachment's bytes do not match its digest or fail to decrypt */
  SC_ERR_DISK_FULL = -74,            /* no room on the local disk (or the server's) */
  SC_ERR_ATTACH_TOO_LARGE = -75,     /* larger than the server (or sotto) accepts */
  SC_ERR_FILE = -76,                 /* the file cannot be read or written */
  /* conversations (issue 14) */
  SC_ERR_NOT_YOURS = -77,            /* edit / delete of a message that is not ours */
  SC_ERR_TOO_LATE = -78,             /* edit / delete past its time window */
  SC_ERR_BLOCKED = -79,              /* the user is blocked */
  SC_ERR_UNKNOWN_MESSAGE = -80,      /* no message with that id in the conversation */
  SC_ERR_NO_REQUEST = -81,           /* no message request from that user */
  SC_ERR_GROUP_PENDING = -82,        /* a group invitation not accepted yet */
  /* key transparency (kt.c; docs/key-transparency.md) */
  SC_ERR_KT_NOT_LOGGED = -83,        /* the server showed a key that is not in its public log: nothing sent */
  SC_ERR_KT_QUORUM = -84,            /* the log's head lacks the cosignatures of enough witnesses */
  SC_ERR_KT_FORK = -85,              /* the log's head is not an extension of the last one seen (a split view) */
  SC_ERR_KT_BAD_PROOF = -86,         /* a head signature or proof of the log does not verify */
  SC_ERR_KT_OFF = -87,               /* key transparency is required but the server does not run it */
  /* per-device sessions and fan-out (docs/multi-device.md) */
  SC_ERR_DEVICE_KEY = -88,           /* a device's bundle key differs from its entry in the signed list: nothing sent */
  SC_ERR_DEVICE_MISMATCH = -89,      /* the server refused the device set twice (ERR 30): nothing sent */
  SC_ERR_DEVICE_HIDDEN = -90,        /* this linked device is missing from its account's current signed list */
  SC_ERR_KT_PENDING = -91,           /* the server has not put that account into its key-transparency log yet */
  /* -92..-95: other features' codes */
  SC_ERR_KT_LIST_HIDDEN = -96        /* the log holds a newer device list than the server shows: nothing sent */
};
#define SC_ERR_FIRST SC_ERR_NOMEM
#define SC_ERR_LAST SC_ERR_KT_LIST_HIDDEN

/* "nomem", "wrong_passphrase"...; "ok" for 0; "unknown" outside the table. */
const char *sc_error_name(int err);
/* One sentence saying what went wrong, without particulars. */
const char *sc_error_message(int err);
/* What the user can do about it (may be ""). */
const char *sc_error_hint(int err);
/* The code of a name, or SC_ERR_INTERNAL if there is none (0 for "ok"). */
int sc_error_from_name(const char *name);

/* ---- the client ---------------------------------------------------------------- */

struct sc_client;
struct sc_event;

/* The event sink: called for every event, synchronously. */
typedef void (*sc_sink_fn)(void *ud, const struct sc_event *ev);

/* Initialises libsodium and libsotto once per process (idempotent). */
int sc_global_init(void);

/* A client for the identity in directory home (nothing opened yet). */
int sc_client_new(struct sc_client **out, const char *home);
/* Closes the link and the store, wipes keys. NULL is a no-op. */
void sc_client_free(struct sc_client *c);
void sc_set_sink(struct sc_client *c, sc_sink_fn fn, void *ud);
const char *sc_home(const struct sc_client *c);
/* The last failure of c as one sentence (with the user, host... concerned);
 * "" when none. Valid until the next call on c. */
const char *sc_errdetail(const struct sc_client *c);
/* The code that sc_errdetail describes (0 when none). */
int sc_last_error(const struct sc_client *c);

/* Options (sc_set_option). */
enum sc_option {
  /* 1: after a lost connection the link reconnects by itself (back-off
   * from 1 s doubling to 30 s) inside sc_link_step; 0 (default): a lost
   * connection is an error of sc_link_step. */
  SC_OPT_AUTO_RECONNECT = 1,
  /* Milliseconds between keep-alive PINGs on an idle link (default 30000). */
  SC_OPT_KEEPALIVE_MS = 2,
  /* Milliseconds allowed for each server request (default 15000). */
  SC_OPT_REQUEST_TIMEOUT_MS = 3,
  /* 1: logged events (messages, held messages, group and key notices) are
   * committed and acknowledged as always but not given to the sink: they
   * wait in the store's unshown list (at most 4,096; older ones then stay in
   * the history only) until it is set back to 0 and sc_flush_unshown is
   * called. A daemon sets it while no client listens, or while a listener
   * does not keep up; it may be set from inside the sink, which stops the
   * flush in progress after that event. 0 (default): given at once. */
  SC_OPT_DEFER_SHOWN = 4
};
int sc_set_option(struct sc_client *c, int option, int64_t value);

/* ---- the local store --------------------------------------------------------- */

/* 1 if home holds a store, 0 if not. */
int sc_store_exists(const struct sc_client *c);
/* Creates the home directory (mode 0700) and a new store with a fresh
 * identity, sealed under pass; leaves it open. *registration_id may be NULL. */
int sc_init(struct sc_client *c, uint32_t *registration_id, const char *pass, size_t pass_len);
/* Opens the store and loads the account. SC_ERR_WRONG_PASSPHRASE changes
 * nothing on disk. */
int sc_open(struct sc_client *c, const char *pass, size_t pass_len);

/* Holds the home for this process until sc_client_free (a daemon that
 * keeps the store open): an exclusive lock on HOME/holder.lock, which
 * names holder ("sotto daemon") and this process id. While it is held,
 * sc_open and sc_init of any other client of that home fail with
 * SC_ERR_IN_USE and a sentence naming the holder. Call it before sc_open.
 * SC_ERR_IN_USE if another process holds it already. */
int sc_hold_home(struct sc_client *c, const char *holder);
/* SC_ERR_IN_USE (with the sentence) if another process holds the home,
 * else 0: a front end asks before it reads a passphrase. */
int sc_home_in_use(struct sc_client *c);

/* The account: "" / 0 before registration. */
const char *sc_username(const struct sc_client *c);
const char *sc_server(const struct sc_client *c);
/* The pinned certificate fingerprint (hex), "" when a CA file is used. */
const char *sc_pin(const struct sc_client *c);
uint32_t sc_device_id(const struct sc_client *c);
uint32_t sc_registration_id(const struct sc_client *c);

/* 1 if s is a valid username / group name. */
int sc_username_ok(const char *s);
int sc_group_name_ok(const char *s);

/* ---- passphrases, backup and restore (docs/client.md) ------------------------ */

/* The strength rule for the store passphrase and a backup passphrase: at
 * least SC_PASSPHRASE_MIN_CHARS characters, SC_PASSPHRASE_MIN_DISTINCT
 * different ones, and not made of common passwords (with digits and
 * symbols) only. 0, or SC_ERR_WEAK_PASSPHRASE with why (cap bytes) saying
 * which rule failed. Applied by sc_init, sc_change_passphrase, sc_backup
 * and sc_restore. */
#define SC_PASSPHRASE_MIN_CHARS 12
#define SC_PASSPHRASE_MIN_DISTINCT 6
int sc_passphrase_strength(char *why, size_t cap, const char *pass, size_t pass_len);
/* Re-seals the open store under a new passphrase (fresh salt), in one
 * transaction: a crash at any point leaves the old or the new one working. */
int sc_change_passphrase(struct sc_client *c, const char *pass, size_t pass_len);

/* A recovery key: 64 hex digits (30 random bytes and a 2-byte check) in 16
 * groups of 4 joined by '-'; a typo is caught by the check. */
#define SC_RECOVERY_KEY_LEN 79
int sc_recovery_key_new(char key[SC_RECOVERY_KEY_LEN + 1]);
/* Writes an encrypted backup of the whole open store to path (atomically,
 * mode 0600), sealed under secret: a backup passphrase (recovery_key 0,
 * strength-checked) or a recovery key from sc_recovery_key_new (1). */
int sc_backup(struct sc_client *c, const char *path, const char *secret, size_t len, int recovery_key);
/* What a backup file is sealed with: SC_BACKUP_PASSPHRASE or
 * SC_BACKUP_RECOVERY_KEY, or SC_ERR_BACKUP_FORMAT / an I/O error. */
#define SC_BACKUP_PASSPHRASE 1
#define SC_BACKUP_RECOVERY_KEY 2
int sc_backup_kind(struct sc_client *c, const char *path);
/* Restores a backup into c's home (not open), as a new store sealed under
 * pass: identity, account, contacts and their verified states, groups,
 * history. Sessions start afresh at their next message. A home that holds
 * a store is refused unless flags has SC_RESTORE_FORCE; any failure (wrong
 * secret, altered file: SC_ERR_BACKUP_AUTH) changes nothing. The restored
 * account's username goes to username (cap bytes). */
#define SC_RESTORE_FORCE 1u
int sc_restore(struct sc_client *c, const char *path, const char *secret, size_t len, const char *pass,
               size_t pass_len, unsigned flags, char *username, size_t cap);

/* ---- registration and devices (each opens its own short connection) ------------ */

/* Trust on first use: the SHA-256 fingerprint of server's certificate
 * (server is "HOST:PORT" or "[v6]:PORT"), without any check. */
int sc_probe_pin(char pin_hex[SC_PIN_HEX_LEN + 1], struct sc_client *c, const char *server);
/* Creates the account on server and uploads the first pre-keys. Exactly one
 * of pin_hex (from sc_probe_pin or the operator) and ca_file is non-NULL.
 * The counts of uploaded keys go to *n_ec and *n_kem (may be NULL). */
int sc_register(unsigned *n_ec, unsigned *n_kem, struct sc_client *c, const char *server, const char *username,
                const char *pin_hex, const char *ca_file);
/* Account recovery (docs/client.md, "Unregister and recovery"). A
 * recovery code has the recovery key's form (SC_RECOVERY_CODE_LEN chars);
 * the server keeps only a hash. sc_set_recovery_code (device 1) makes a
 * new one and sets it (the previous one stops working); show it once.
 * sc_recover is sc_register for a name whose owner lost every device: with
 * the current code, the server removes the old devices and re-registers the
 * name with this home's identity (contacts see a key change); the code is
 * then used up: set a new one. */
#define SC_RECOVERY_CODE_LEN 79
int sc_set_recovery_code(char code[SC_RECOVERY_CODE_LEN + 1], struct sc_client *c);
int sc_recover(unsigned *n_ec, unsigned *n_kem, struct sc_client *c, const char *server, const char *user,
               const char *pin, const char *ca, const char *code, size_t code_len);
/* Deletes the account on the server (device 1): devices, keys and queues;
 * the name is held for the server's quarantine (SC_ERR_QUARANTINED to
 * anyone registering it meanwhile). The home is kept, marked unregistered
 * (no username, no credentials): history and contacts stay readable, and
 * sc_register may register it again. */
int sc_unregister(struct sc_client *c);
/* The server moved (a new host or port): connects to server with pin_hex,
 * or ca_file, or (both NULL) the pin or CA file the account has now (a
 * server that kept its certificate), checks that it is a sotto server that
 * holds this account (AUTH with this device's credentials), and only then
 * stores the new address and pin. On any failure nothing changes (an
 * SC_ERR_* with its sentence: SC_ERR_PIN_MISMATCH for a wrong pin,
 * SC_ERR_AUTH_FAILED when the account is not there...). */
int sc_server_set(struct sc_client *c, const char *server, const char *pin_hex, const char *ca_file);
/* The device ids of this account. */
int sc_devices(uint32_t *ids, size_t *n, size_t max, struct sc_client *c);
/* Removes a device on the server (device 1: any other one, then signs and
 * publishes the next device list without it; any device: itself). Device 1
 * cannot be removed (SC_ERR_FORBIDDEN: 'sotto unregister' ends the account). */
int sc_device_remove(struct sc_client *c, uint32_t device_id);

/* ---- linking a device (docs/multi-device.md, "Linking") ------------------------ */

#define SC_LINK_CODE_MAX 64
#define SC_FINGERPRINT_LEN 47 /* 8 groups of 5 digits */
#define SC_DEVICE_NAME_MAX 64
/* The account's devices as this device knows them: the server's device
 * rows and the signed list this account published. */
struct sc_device_info {
  uint32_t device_id;
  char name[SC_DEVICE_NAME_MAX + 1]; /* from the signed list ("" if not listed) */
  uint64_t added_ms;                 /* from the signed list (0 if not listed) */
  int listed;                        /* in the newest signed list */
  int has_row;                       /* the server has the device */
  int this_device;
  char fingerprint[SC_FINGERPRINT_LEN + 1]; /* its identity key (listed ones) */
  uint32_t last_seen_day; /* the server's last-seen day of the device (days since 1970-01-01 UTC), 0: unknown */
};
/* Up to max devices, ordered by id; *version the signed list's version (0: none). */
int sc_devices_info(struct sc_device_info *out, size_t *n, size_t max, uint32_t *version, struct sc_client *c);

/* New device, step 1: on a home made by sc_init and not registered, opens
 * a link slot on server (pin from sc_probe_pin, or ca_file: exactly one)
 * with this home's identity key, a fresh ephemeral key and device name
 * (0..64 printable ASCII; "" for none). *code is what device 1 needs
 * ('sotto devices add CODE'), *fingerprint this device's identity key, *ttl_s
 * the slot's lifetime. The ephemeral key stays in memory for sc_link_wait. */
int sc_link_open(char code[SC_LINK_CODE_MAX], char fingerprint[SC_FINGERPRINT_LEN + 1], uint32_t *ttl_s,
                 struct sc_client *c, const char *server, const char *pin_hex, const char *ca_file, const char *name);
/* Step 2: waits (at most timeout_ms, and never past the slot's lifetime)
 * for device 1's provisioning message, checks it (end-to-end: it must be
 * sealed for this slot, this link secret and this device's keys), stores the
 * account (name, device id and credentials, the account key, contacts with
 * their verified state, groups), answers with this device's membership
 * signature, then publishes this device's identity key and pre-keys. */
struct sc_linked {
  char username[SC_USER_MAX + 1];
  uint32_t device_id;
  char account_fingerprint[SC_FINGERPRINT_LEN + 1];
  unsigned contacts, groups;
};
int sc_link_wait(struct sc_linked *out, struct sc_client *c, int timeout_ms);

/* Device 1, step 1: reads the new device's keys from the slot named by
 * code and checks them against the code's link secret; *out says who asks
 * (name and fingerprint) for the user to compare before sc_devices_add. */
struct sc_link_peer {
  char name[SC_DEVICE_NAME_MAX + 1];
  char fingerprint[SC_FINGERPRINT_LEN + 1];
  uint8_t identity[32];
};
int sc_devices_peek(struct sc_link_peer *out, struct sc_client *c, const char *code);
/* Step 2: the same keys again (peer from sc_devices_peek, so the device the
 * user confirmed is the one added), a new device row (ADD_DEVICE), the
 * provisioning message into the slot, then waits (at most timeout_ms) for
 * the new device's membership signature and publishes the next signed
 * device list. On any failure after ADD_DEVICE the row is removed again. */
struct sc_device_added {
  uint32_t device_id;
  uint32_t version; /* of the published list */
  char name[SC_DEVICE_NAME_MAX + 1];
};
int sc_devices_add(struct sc_device_added *out, struct sc_client *c, const char *code,
                   const struct sc_link_peer *peer, int timeout_ms);
/* sc_devices_add in steps, for a front end that must not wait (the
 * daemon). begin: everything up to the provisioning message in the slot
 * (*job, or an SC_ERR_* with nothing left behind). step: one look at the
 * slot; 1 not yet (call again later, e.g. in 100-500 ms), 0 done (*out),
 * or an SC_ERR_* (the device row is removed again; the job is over;
 * SC_ERR_TIMEOUT once timeout_ms passed). Between steps the client may
 * serve any other call. free: ends a job (one not finished has its device
 * row removed: an abandoned addition adds nothing) and wipes it. */
struct sc_add_job;
int sc_devices_add_begin(struct sc_add_job **job, struct sc_client *c, const char *code,
                         const struct sc_link_peer *peer, int timeout_ms);
int sc_devices_add_step(struct sc_add_job *job, struct sc_device_added *out, struct sc_client *c);
/* The device id the job allocated on the server. */
uint32_t sc_devices_add_device_id(const struct sc_add_job *job);
void sc_devices_add_free(struct sc_add_job *job, struct sc_client *c);
/* The server makes a new device secret; the old one stops working. */
int sc_rotate_secret(struct sc_client *c);

/* ---- the link to the server ---------------------------------------------------- */

/* Connects, checks the pin, authenticates, raises the device epoch, checks
 * this account's device list against the last one seen (SC_EV_DEVICE_CHANGE) and tops
 * up pre-keys; timeout_ms bounds the whole (0: default timeouts). A
 * receiving front end calls sc_flush_unshown first (what an earlier run
 * committed but never showed). Sends and the other network calls connect
 * by themselves for the one call when the link is not up. */
int sc_connect(struct sc_client *c, int timeout_ms);
void sc_disconnect(struct sc_client *c);
/* 1 while a connection is up. */
int sc_connected(const struct sc_client *c);
/* The socket to poll for reading, or -1 while not connected. */
int sc_link_fd(const struct sc_client *c);
/* 1 if sc_link_step has work without waiting (bytes already decrypted and
 * buffered, or pushes kept while a send waited): call it before polling. */
int sc_link_pending(const struct sc_client *c);
/* The CLOCK_MONOTONIC time (ms) by which sc_link_step must be called even
 * if the fd stays quiet (keep-alive, reconnect back-off), or -1 for none. */
int64_t sc_link_next_deadline(const struct sc_client *c);
/* Current CLOCK_MONOTONIC time in ms (the clock of the deadlines). */
int64_t sc_monotonic_ms(void);
/* Waits at most timeout_ms (0: does not wait) for what the server sends,
 * then processes every frame already there: messages are decrypted,
 * committed, given to the sink and acknowledged; KEYS_LOW tops up; an
 * idle link is pinged; with SC_OPT_AUTO_RECONNECT a lost link is
 * reconnected when its back-off expires. Returns the number of frames
 * processed (>= 0) or a negative error (then the link is closed unless it
 * was a local failure such as SC_ERR_BUSY: the envelope was not
 * acknowledged, stays on the server and comes again on the next
 * connection; later ones still arrive on this one). */
int sc_link_step(struct sc_client *c, int timeout_ms);
/* 1 once the server said the queue is drained and every acknowledgement was
 * answered (reset by sc_connect and by new messages). */
int sc_link_drained(const struct sc_client *c);
/* Sums up what was counted but not shown one by one (messages that could
 * not be decrypted beyond the first few per sender, malformed frames) as
 * events. Call at the end of a receive; sc_link_step also calls it when the
 * queue is drained. */
int sc_summarise(struct sc_client *c);
/* Shows (as events) messages committed but never shown (after a crash). */
int sc_flush_unshown(struct sc_client *c);

/* ---- sending (needs sc_connect) --------------------------------------------- */

/* Flags of the send calls. */
#define SC_SEND_ACCEPT_KEY_CHANGE 1u /* send even if the recipient's key changed since the last message */

/* What a send did. */
struct sc_sent {
  uint64_t seq;          /* number of the message in the local log */
  uint64_t timestamp_ms; /* our timestamp, in the message */
  unsigned delivered;    /* recipients the server accepted it for */
  unsigned undelivered;  /* recipients that did not get it (events say why) */
  int queued;            /* sc_send_text: 1 if the server was unreachable and the message waits in
                            the outbox (state SC_STATE_QUEUED; sent by the next connection) */
};

/* One text to user over the pairwise session (PQXDH the first time).
 * SC_ERR_KEY_CHANGED_UNCONFIRMED / SC_ERR_IDENTITY_CHANGED: nothing sent.
 * A text that is not valid UTF-8 or holds a NUL is refused (SC_ERR_ARG),
 * here and in sc_group_send.
 * The text is kept in the outbox (sealed, like the history) until the
 * recipient's delivery receipt comes (docs/client.md, "Outbox"). When the
 * server cannot be reached (SC_ERR_UNREACHABLE, SC_ERR_TIMEOUT,
 * SC_ERR_CONNECTION_LOST) it is kept there as "queued" and 0 is returned
 * with out->queued set; the next connection sends it (SC_ERR_OUTBOX_FULL
 * when the outbox is full: nothing kept).
 * A text longer than SC_MAX_TEXT (up to SC_MAX_LONG_TEXT) goes as an
 * attachment that the recipient shows as text (in parts of SC_MAX_TEXT);
 * it is not kept in the outbox (sent now or not at all). */
int sc_send_text(struct sc_sent *out, struct sc_client *c, const char *user, const char *text, size_t len,
                 unsigned flags);

/* ---- attachments (attach.c; docs/client.md "Attachments") ------------------------ */

#define SC_ATTACH_MAX_SIZE ((uint64_t)4 << 30) /* bytes of one file */
#define SC_ATTACH_NAME_MAX 255                 /* bytes of the file name carried */
#define SC_ATTACH_TYPE_MAX 64                  /* bytes of the content type */
#define SC_MAX_LONG_TEXT (1024 * 1024)         /* sc_send_text: a text above SC_MAX_TEXT goes as an attachment */
/* Sends the file at path to user: encrypted under a fresh key, uploaded to
 * the server's blob store in chunks (resumed after a dropped connection),
 * then the pointer (id, key, digest, size, type, name) and text (may be
 * NULL: no caption) in one end-to-end encrypted message. name (NULL: the
 * path's last component) and type (NULL: guessed from the name) are what
 * the recipient sees. Memory stays bounded whatever the file's size. */
int sc_send_file(struct sc_sent *out, struct sc_client *c, const char *user, const char *path, const char *name,
                 const char *type, const char *text, size_t len, unsigned flags);
/* The attachment events of the history (SC_EV_ATTACHMENT: received, sent
 * and failed), oldest first. */
int sc_attachments(struct sc_client *c, int (*cb)(void *ud, const struct sc_event *ev), void *ud);
/* HOME/downloads, where received files are saved. */
const char *sc_downloads_dir(const struct sc_client *c, char *buf, size_t cap);

/* ---- delivery states, outbox, session healing --------------------------------- */

/* The state of a text we sent (SC_EV_SENT and SC_EV_DELIVERY: ev->state). */
enum sc_state {
  SC_STATE_UNKNOWN = 0,   /* sent by a version before receipts */
  SC_STATE_QUEUED = 1,    /* in the outbox, not handed to the server yet */
  SC_STATE_SENT = 2,      /* the server took it */
  SC_STATE_DELIVERED = 3, /* the recipient's client confirmed it (receipt) */
  SC_STATE_READ = 4,      /* ... and showed it to them (they allow read receipts) */
  SC_STATE_FAILED = 5,    /* given up (too old, or refused: the event says why) */
  SC_STATE_EXPIRED = 6    /* the server dropped it unread (sc_outbox_expired) */
};
/* "queued", "sent", "delivered", "read", "failed", "expired" ("unknown"). */
const char *sc_state_name(int state);

/* Sends what waits: queued texts, texts the recipient asked again for,
 * delivery / read receipts and decryption-retry requests (connects for the
 * call when the link is not up). sc_connect and every command that connects
 * do it too. 0 or an SC_ERR_* (what could not go stays for the next time). */
int sc_outbox_flush(struct sc_client *c);
/* The server said the envelope server_id it took from us expired unread:
 * that text becomes SC_STATE_EXPIRED (an SC_EV_DELIVERY event) and leaves
 * the outbox. SC_ERR_NO_SUCH_MESSAGE if no waiting text has that id. */
int sc_outbox_expired(struct sc_client *c, uint64_t server_id);
/* Read receipts (default off): 1 to send them, 0 not to; *on gets the
 * setting (sc_read_receipts). Delivery receipts are always sent. */
int sc_set_read_receipts(struct sc_client *c, int on);

/* ---- key transparency (kt.c; docs/key-transparency.md, "Clients") ---- */

#define SC_KT_MAX_WITNESSES 16
struct sc_kt_witness {
  char name[33];
  char pk_hex[65];
  int added;          /* 1: added with sc_kt_witness_add, 0: announced by the server at first contact */
  uint64_t last_size; /* the largest head size we saw it cosign (0: none yet) */
};
struct sc_kt_status {
  int pinned;    /* the log's keys and witnesses are pinned (the server ran KT at first contact) */
  int off;       /* the server runs no KT (as last seen) */
  int required;  /* KT is mandatory for this server (sc_kt_require) */
  unsigned k;    /* witness cosignatures required */
  size_t n_wit;
  struct sc_kt_witness wit[SC_KT_MAX_WITNESSES];
  int has_head;  /* the last head seen: */
  uint64_t size, timestamp_ms;
  char root_hex[65];
  int monitor;   /* 0 never ran, 1 ok, 2 ALERT, 3 could not check */
  uint64_t monitor_time; /* seconds */
  char monitor_detail[256];
  int monitor_acked; /* the key alert was acknowledged (sc_kt_ack) */
  int list_monitor;  /* this account's device-list label: 0 never ran, 1 ok, 2 ALERT, 3 could not check */
  char list_detail[256];
  int list_acked;    /* the device-list alert was acknowledged (sc_kt_ack) */
  char log_hex[129]; /* the log's sig_pk || vrf_pk */
  int refreshed; /* 1: checked with the server now; 0: stored state (error/errdetail say why not) */
};
/* The KT state; with refresh, connects first (which checks the head and
 * monitors this account's entry). Never fails for an unreachable server
 * (refreshed = 0). */
int sc_kt_status(struct sc_kt_status *out, struct sc_client *c, int refresh);
/* Acknowledges the current key-transparency alerts (own key, own device
 * list): they stop repeating for exactly that entry; another entry alerts
 * again. The number acknowledged (1-2), or SC_ERR_ARG if there is none. */
int sc_kt_ack(struct sc_client *c);
/* Adds a witness by name and Ed25519 public key (64 hex digits). */
int sc_kt_witness_add(struct sc_client *c, const char *name, const char *pk_hex);
/* Removes a witness by name (SC_ERR_ARG if there is none). */
int sc_kt_witness_remove(struct sc_client *c, const char *name);
/* k >= 0: KT becomes mandatory for this server, with k witness
 * cosignatures (at most the number of witnesses); k < 0: back to the
 * default (used when the server runs it, k = 1 if any witness is known). */
int sc_kt_require(struct sc_client *c, int k);
int sc_read_receipts(int *on, struct sc_client *c);
/* Starts a fresh session with user from a newly fetched bundle (the old
 * one is archived) and tells them in it (they see SC_EV_SESSION_RESET).
 * flags: SC_SEND_ACCEPT_KEY_CHANGE as for a send. */
int sc_session_reset(struct sc_client *c, const char *user, unsigned flags);

/* ---- groups -------------------------------------------------------------------- */

struct sc_group {
  char name[SC_GROUP_NAME_MAX + 1];
  uint8_t id[16];
  uint32_t epoch;
  size_t n_members;
  char members[SC_GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
};

/* A new group of us and members (not including us). out may be NULL.
 * SC_ERR_PARTIAL: created, some members were not reached (out->undelivered). */
int sc_group_create(struct sc_sent *out, struct sc_client *c, const char *name, const char *const *members,
                    size_t n_members, unsigned flags);
int sc_group_send(struct sc_sent *out, struct sc_client *c, const char *name, const char *text, size_t len,
                  unsigned flags);
/* SC_ERR_UNKNOWN_USER (nothing stored, nothing sent) when a member does
 * not exist on the server (create and add ask it first). */
int sc_group_add(struct sc_sent *out, struct sc_client *c, const char *name, const char *user, unsigned flags);
/* Removing ourselves leaves the group. */
int sc_group_remove(struct sc_sent *out, struct sc_client *c, const char *name, const char *user, unsigned flags);
/* One group by local name (SC_ERR_UNKNOWN_GROUP). */
int sc_group_get(struct sc_group *out, struct sc_client *c, const char *name);
/* Calls cb for every group (cb returns non-zero to stop; returned). */
int sc_groups(struct sc_client *c, int (*cb)(void *ud, const struct sc_group *g), void *ud);

/* ---- contacts, safety numbers ---------------------------------------------------- */

struct sc_contact {
  char name[SC_USER_MAX + 1];
  int verified;                   /* verified, and the key did not change since */
  int key_changed_since_verified;
  int key_changes;                /* times their key changed */
  int new_key_held;               /* a new, not yet accepted key is held */
  unsigned held;                  /* messages held with it */
};
int sc_contacts(struct sc_client *c, int (*cb)(void *ud, const struct sc_contact *ct), void *ud);
int sc_contact_get(struct sc_contact *out, struct sc_client *c, const char *user);

struct sc_safety {
  char number[SC_SAFETY_NUMBER_LEN + 1]; /* 60 digits */
  uint8_t scannable[SC_SCANNABLE_LEN];
  char me[SC_USER_MAX + 1];
  struct sc_contact contact;             /* the number is for the held new key when new_key_held */
};
int sc_safety_number(struct sc_safety *out, struct sc_client *c, const char *user);
/* Compares number (60 digits; spaces, tabs and '-' ignored) with the safety
 * number; on a match marks the contact verified, or accepts a held new key
 * and processes its held messages (*released, may be NULL). */
int sc_verify(unsigned *released, struct sc_client *c, const char *user, const char *number);
/* Accepts a held new key without comparing numbers (not verified). */
int sc_trust(unsigned *released, struct sc_client *c, const char *user);

/* ---- events (the sink) and the message log ---------------------------------------- */

enum sc_event_kind {
  SC_EV_MESSAGE = 1,       /* a text from peer (group set for a group message) */
  SC_EV_SENT,              /* a text we sent (history; to peer, or to group) */
  SC_EV_GROUP_JOINED,      /* peer added us to group (members) */
  SC_EV_GROUP_ADDED,       /* peer added subject to group */
  SC_EV_GROUP_REMOVED,     /* peer removed subject from group (peer == subject: they left) */
  SC_EV_GROUP_LEFT_US,     /* peer removed us from group (the group is gone) */
  SC_EV_GROUP_NOT_MEMBER,  /* a change to group from peer, who is not a member: ignored */
  SC_EV_HELD,              /* a message from a new, unverified key of peer is held (text if it was a text) */
  SC_EV_HELD_DROPPED,      /* ... one more than the quarantine holds was dropped (count = the cap) */
  SC_EV_UNREADABLE,        /* a message from peer could not be used (reason) and was dropped */
  SC_EV_UNREADABLE_SUMMARY,/* count more from peer (total in all; peer "" = other senders) */
  SC_EV_KEY_CHANGED,       /* peer's identity key changed (warning; reason says where it was seen) */
  SC_EV_KEY_HELD_WARNING,  /* sending to peer while a new key of theirs is held */
  SC_EV_NOT_DELIVERED,     /* a group message was not sent to peer (reason) */
  SC_EV_BAD_ENVELOPE,      /* the server sent a malformed frame (server_id if it had one; count more when summed) */
  SC_EV_RESTORED_STORE,    /* the store is older than this device's last use: every session re-keyed (count = ours, total = server's) */
  SC_EV_DISPLACED,         /* another process of this identity connected; reconnecting later */
  SC_EV_LINK_UP,           /* connected and authenticated */
  SC_EV_LINK_DOWN,         /* the connection was lost or a reconnect failed (error, detail: its sentence);
                              next_retry_ms says when it is tried again */
  SC_EV_KEYS_ROTATED,      /* the signed and last-resort pre-keys were replaced */
  SC_EV_KEYS_TOPPED_UP,    /* count one-time EC and total KEM pre-keys uploaded */
  SC_EV_DRAINED,           /* the server's queue is empty and every ack answered */
  SC_EV_NOTICE,            /* an older store's history row: text is its sentence as stored, reason its old code */
  SC_EV_BAD_FRAME,         /* the server sent a frame that does not parse (count = frame type, detail = why) */
  SC_EV_DEVICE_CHANGE,     /* this account's device list on the server changed since the last connection:
                              count devices added, total removed, detail lists them ("added 2; removed 3");
                              concerns this account, so peer is "" */
  SC_EV_GROUP_MEMBER_KEY,  /* a message under the name of peer, a member of group, came from a new identity
                              key (held: see SC_EV_HELD); one per group peer is in, logged in that group */
  SC_EV_SERVER_REPINNED,   /* the server rotated its certificate and a valid rotation chain led to the new one:
                              it is pinned now (detail = the new fingerprint, count = the statement serial) */
  SC_EV_EXPIRED_SENT,      /* the server says count messages of ours to peer ("" = to other recipients) expired
                              unread on it; server_id / server_timestamp_ms: the first of them (its SEND answer),
                              total: how many the notice listed */
  SC_EV_EXPIRED_RECEIVED,  /* the server says count messages from peer ("" = other senders) expired on it before
                              we fetched them */
  SC_EV_RETRY_REQUESTED,   /* a message from peer could not be decrypted; a fresh session was started and the
                              message asked for again (logged; server_id: the envelope) */
  SC_EV_RESENT,            /* peer asked again for messages it could not decrypt: count resent (logged) */
  SC_EV_SESSION_RESET,     /* peer reset the session with us (logged); reason SC_R_BY_US: we did */
  SC_EV_DELIVERY,          /* a text we sent changed state (state; seq and timestamp_ms name it) */
  SC_EV_GAP,               /* count messages from peer are missing: they may arrive later (logged) */
  SC_EV_GAP_FILLED,        /* a message from peer that was missing arrived after all (logged) */
  /* conversations (issue 14): ref_author / ref_ts name the message concerned */
  SC_EV_TIMER_SET,         /* peer (reason SC_R_BY_US: we) set the disappearing-message timer of the
                              conversation to count seconds (0: off) (logged) */
  SC_EV_REACTION,          /* peer reacted with detail (an emoji; "" removed it) to a message (logged) */
  SC_EV_EDITED,            /* peer edited their message (logged; the message row shows the new text) */
  SC_EV_DELETED,           /* peer deleted their message for everyone (logged; a tombstone stays) */
  SC_EV_CONVO_REFUSED,     /* a reaction / edit / delete from peer was refused (reason; detail names which) (logged) */
  SC_EV_DISAPPEARED,       /* count messages reached their disappearing time and were deleted (not logged) */
  SC_EV_KT_ALERT,          /* key-transparency monitoring: the server's public log shows a key for this account
                              that this device did not make, or the log could not be checked (detail says
                              which; reason 0); peer is this account */
  SC_EV_DEVICE_LIST,       /* peer's signed device list changed (count = its version, detail: what changed), or
                              (error set) a list was refused; peer "" = our own list on the server */
  SC_EV_ATTACHMENT,        /* a file from peer was downloaded, checked and saved (detail: the name under the
                              downloads directory, count: its size, text: the caption); reason SC_R_BY_US: one
                              we sent to peer (detail: the name it went under); total non-zero: it could not be
                              fetched, total = -SC_ERR_* (detail: the sender's file name, cleaned) (logged) */
  SC_EV_DEVICE_REFUSED,    /* a message from device `device` of peer was refused: that device is not in peer's
                              current verified signed list (fetched again first), or its key is not the listed
                              one (detail says which) (logged) */
  SC_EV_DEVICE_HELD        /* a message from device `device` of peer, whose account key is not known yet, cannot be
                              checked against their signed device list now (the list or the key-transparency proof
                              is not available: detail says which); it is kept, not decrypted, and checked again at
                              the next connection (reason 0). reason SC_R_HELD_GIVEN_UP: a held one was given up
                              after SC_DEVICE_HOLD_DAYS; SC_R_HELD_FULL: not kept, the bounds are reached (logged) */
};
/* How long a message from a linked device that cannot be checked yet is
 * kept (SC_EV_DEVICE_HELD), and how many: per sender and in all. */
#define SC_DEVICE_HOLD_DAYS 7
#define SC_DEVICE_HOLD_PER_SENDER 16
#define SC_DEVICE_HOLD_PER_SENDER_BYTES (256u * 1024u)
#define SC_DEVICE_HOLD_MAX 64
#define SC_DEVICE_HOLD_MAX_BYTES (1024u * 1024u)

/* Why (SC_EV_UNREADABLE, SC_EV_NOT_DELIVERED, SC_EV_HELD, SC_EV_KEY_CHANGED). */
enum sc_reason {
  SC_R_NONE = 0,
  SC_R_DECRYPT = 1,           /* decryption failed: detail is the library's reason */
  SC_R_NO_SESSION = 2,        /* belongs to no session with the key you accepted */
  SC_R_BAD_SENDER = 3,        /* invalid sender name */
  SC_R_UNKNOWN_TYPE = 4,      /* unknown envelope type */
  SC_R_UNKNOWN_FORMAT = 5,    /* a message in an unknown format */
  SC_R_UNEXPECTED_KIND = 6,   /* a message of an unexpected kind */
  SC_R_GROUP_FORMAT = 7,      /* a group message in an unknown format */
  SC_R_NO_GROUP_KEY = 8,      /* no group key from them (not in the group, or removed) */
  SC_R_BAD_GROUP_KEY = 9,     /* a group key from this member was malformed */
  SC_R_FOREIGN_GROUP_KEY = 10,/* a group key for a group we do not share */
  SC_R_HELD_TEXT = 11,        /* SC_EV_HELD: a text (in text) */
  SC_R_HELD_GROUP_CHANGE = 12,/* SC_EV_HELD: a group change, not applied */
  SC_R_HELD_OTHER = 13,       /* SC_EV_HELD: another message */
  SC_R_KEY_VERIFIED = 14,     /* NOT_DELIVERED: verified member's key changed */
  SC_R_NO_SENDER_KEY = 15,    /* NOT_DELIVERED: they do not hold our group key yet */
  SC_R_SEND_FAILED = 16,      /* NOT_DELIVERED: the server refused (error) */
  SC_R_KEY_FROM_BUNDLE = 17,  /* KEY_CHANGED: the server handed out a different key */
  SC_R_KEY_TRUSTED = 18,      /* KEY_CHANGED: accepted with sc_trust without verifying */
  SC_R_LINK = 19,             /* LINK_DOWN: error holds the cause */
  SC_R_BY_US = 20,            /* SESSION_RESET: we reset it (sc_session_reset) */
  SC_R_TOO_OLD = 21,          /* DELIVERY failed: no receipt within the outbox's age limit */
  SC_R_OUTBOX_FULL = 22,      /* DELIVERY failed: pushed out of a full outbox before a receipt */
  /* conversations (issue 14): CONVO_REFUSED */
  SC_R_NOT_AUTHOR = 23,       /* an edit / delete of a message the sender did not write */
  SC_R_OUT_OF_WINDOW = 24,    /* an edit / delete past its time window */
  SC_R_UNKNOWN_MESSAGE = 25,  /* the message it names is not here (or was deleted) */
  SC_R_BAD_EMOJI = 26,        /* a reaction that is not valid UTF-8 */
  SC_R_HELD_GIVEN_UP = 27,    /* DEVICE_HELD: still not checkable after SC_DEVICE_HOLD_DAYS: dropped */
  SC_R_HELD_FULL = 28         /* DEVICE_HELD: not kept, the bounds of held messages are reached */
};

/* A reaction on a message (one per person). */
struct sc_reaction {
  char user[SC_USER_MAX + 1];
  char emoji[32 + 1];
};

struct sc_event {
  int kind;          /* SC_EV_* */
  int reason;        /* SC_R_* */
  int error;         /* an SC_ERR_* when the event reports one, else 0 */
  uint64_t seq;      /* number in the local message log (0: not logged) */
  const char *peer;  /* the other user ("" when none) */
  const char *group; /* group's local name ("" for 1:1) */
  const char *subject; /* the member added/removed ("" when none) */
  const char *detail;  /* extra words (a library reason...), "" when none */
  uint64_t timestamp_ms; /* sender's timestamp (messages), or when the event was logged */
  uint64_t server_id;    /* the server's envelope id (0 when none) */
  uint32_t device;       /* MESSAGE: sender's device (0 when unknown) */
  const char *text;      /* message text (not NUL-safe: use text_len), "" when none */
  size_t text_len;
  uint64_t count, total; /* counts (UNREADABLE_SUMMARY, HELD_DROPPED, KEYS_TOPPED_UP...) */
  int64_t next_retry_ms; /* LINK_DOWN: monotonic time of the next attempt (0: none) */
  size_t n_members;      /* GROUP_JOINED */
  const char *const *members;
  uint64_t server_timestamp_ms; /* MESSAGE: when the server took the envelope (0 when unknown) */
  int state;             /* SENT, DELIVERY: SC_STATE_* of the text */
  /* conversations (issue 14) */
  const char *ref_author;  /* MESSAGE/SENT: the author of the message this one replies to ("" none);
                              REACTION, EDITED, DELETED, CONVO_REFUSED: of the message concerned */
  uint64_t ref_ts;         /* ... and its timestamp (the message id) */
  uint32_t timer_s;        /* MESSAGE/SENT: the disappearing timer it went with (0: none) */
  uint64_t expire_at_ms;   /* MESSAGE/SENT: when it disappears (wall clock ms; 0: never) */
  int edited;              /* MESSAGE/SENT: the text was edited */
  int deleted;             /* MESSAGE/SENT: deleted for everyone (a tombstone; text "") */
  int request;             /* MESSAGE: from a message request (not a contact yet) */
  size_t n_reactions;      /* MESSAGE/SENT: reactions on it */
  const struct sc_reaction *reactions;
};

/* A name for the kind: "message", "sent", "group", "held", "unreadable",
 * "identity_changed", ... (the "event" of the CLI's JSON). */
const char *sc_event_name(int kind);
/* The JSON "event" name of this event: sc_event_name(ev->kind), except
 * for an SC_EV_NOTICE (a version 1 history row), named after its old code. */
const char *sc_event_type(const struct sc_event *ev);
/* The event as one English sentence (what the CLI prints after "! " or
 * "* "), NUL-terminated and truncated to cap. Returns the length it needed
 * (like snprintf). Messages give their text. */
size_t sc_event_describe(char *buf, size_t cap, const struct sc_event *ev);
/* 1 for the events that concern a group's membership ("* " lines). */
int sc_event_is_group_notice(int kind);

/* The stored history, oldest first: every logged event whose peer or group
 * is filter (NULL: all) goes to cb (non-zero stops; returned). */
int sc_history(struct sc_client *c, const char *filter, int (*cb)(void *ud, const struct sc_event *ev), void *ud);

/* ---- conversations: timers, replies, reactions, edits, deletes, consent -------------
 * (issue 14; docs/client.md "Conversations"). A message is named by its
 * author and its timestamp (ms; "timestamp" in history --json, shown by
 * 'history --ids'); calls take the conversation (a username or group name)
 * and that timestamp, the author being found in the conversation. */

#define SC_EDIT_WINDOW_S (24u * 3600)   /* own messages may be edited for 24 hours */
#define SC_DELETE_WINDOW_S (48u * 3600) /* ... and deleted for everyone for 48 hours */
#define SC_TIMER_MAX_S (365u * 24 * 3600)

/* Sets the disappearing-message timer of the 1:1 conversation with user,
 * or of the group GROUP when user is "#GROUP" (seconds, 0 off), and tells
 * them (SC_EV_TIMER_SET on every side). The calls below take "#GROUP" as
 * well: the change travels inside the group's SenderKeyMessage. */
int sc_set_timer(struct sc_client *c, const char *user, uint32_t seconds, unsigned flags);
/* The timer in force (0: off). */
int sc_get_timer(uint32_t *seconds, struct sc_client *c, const char *user);
/* sc_send_text replying to the message ref_ts of the conversation (0: no reply). */
int sc_send_reply(struct sc_sent *out, struct sc_client *c, const char *user, uint64_t ref_ts, const char *text,
                  size_t len, unsigned flags);
/* Reacts with emoji ("" or NULL removes ours) to message ref_ts of the conversation with user. */
int sc_react(struct sc_client *c, const char *user, uint64_t ref_ts, const char *emoji, unsigned flags);
/* Edits our message ref_ts (within SC_EDIT_WINDOW_S) / deletes it for
 * everyone (within SC_DELETE_WINDOW_S; a tombstone stays). */
int sc_edit(struct sc_client *c, const char *user, uint64_t ref_ts, const char *text, size_t len, unsigned flags);
int sc_delete_for_all(struct sc_client *c, const char *user, uint64_t ref_ts, unsigned flags);
/* 1 when the last sc_set_timer, sc_react, sc_edit, sc_delete_for_all (or
 * group text) found the server unreachable: it was applied here and waits
 * in the queue of changes, sent by the next command that connects. */
int sc_change_queued(const struct sc_client *c);
/* Queued changes whose later send failed for a lasting reason (not the
 * connection): kept, listed here (sotto outbox), queued again by
 * sc_failed_change_retry (and sent at once if the server is reachable; a
 * lasting failure again keeps it, possibly under another seq) or dropped by
 * sc_failed_change_discard. */
struct sc_failed_change {
  uint64_t seq;
  char conv[SC_GROUP_NAME_MAX + 2]; /* a username or "#GROUP" */
  const char *what;                 /* "timer", "reaction", "edit", "delete", "text" */
  uint64_t ref_ts;                  /* the message a reaction, edit or delete is about (0 otherwise) */
  int error;                        /* the SC_ERR_* of the failure */
  char detail[256];
};
int sc_failed_changes(struct sc_client *c, int (*cb)(void *ud, const struct sc_failed_change *f), void *ud);
int sc_failed_change_retry(struct sc_client *c, uint64_t seq);
int sc_failed_change_discard(struct sc_client *c, uint64_t seq);
/* Deletes from the local store (bytes overwritten) the messages of the
 * conversation conv (a username or group), or only message ts (0: all);
 * *n (may be NULL) gets how many rows went. */
int sc_history_delete(unsigned *n, struct sc_client *c, const char *conv, uint64_t ts);
/* Deletes what reached its disappearing time (sc_open and sc_link_step do
 * it; an SC_EV_DISAPPEARED event says how many). */
int sc_expire(struct sc_client *c);

/* "30 seconds", "1 hour", "2 days" (the largest whole unit), NUL-terminated;
 * returns the length. sc_duration_parse reads "30s", "5m", "1h", "7d", "4w",
 * a plain number of seconds, or "off" (0): 0 or SC_ERR_ARG (above SC_TIMER_MAX_S too). */
size_t sc_duration_text(char *buf, size_t cap, uint32_t seconds);
int sc_duration_parse(uint32_t *seconds, const char *s);

/* Consent: SC_CONSENT_CONTACT (anyone we wrote to, or accepted, and every
 * contact of a store made before consent existed), SC_CONSENT_REQUEST (a
 * stranger wrote first: no receipts go to them until accepted), or
 * SC_CONSENT_BLOCKED (everything from them is dropped unacknowledged to
 * them; the server is not told). */
enum { SC_CONSENT_CONTACT = 0, SC_CONSENT_REQUEST = 1, SC_CONSENT_BLOCKED = 2 };
int sc_consent(int *state, struct sc_client *c, const char *user);
/* The pending requests (cb returns non-zero to stop). */
int sc_requests(struct sc_client *c, int (*cb)(void *ud, const char *user, unsigned messages), void *ud);
/* accept: a contact; delete: their messages go, the request stays until
 * they are accepted or blocked. SC_ERR_NO_REQUEST when none is pending. */
int sc_request_accept(struct sc_client *c, const char *user);
int sc_request_delete(struct sc_client *c, const char *user);
/* Group invitations from non-contacts wait: the group is hidden from
 * sc_groups and nothing can be sent to it (SC_ERR_GROUP_PENDING) until the
 * inviter is accepted (sc_request_accept); its messages are kept, marked
 * as requests. cb gets each waiting group and who invited us. */
int sc_group_invites(struct sc_client *c, int (*cb)(void *ud, const char *group, const char *inviter), void *ud);
/* Blocks (on 1) or unblocks (0) user. */
int sc_block(struct sc_client *c, const char *user, int on);
/* Calls cb for every blocked user. */
int sc_blocked(struct sc_client *c, int (*cb)(void *ud, const char *user), void *ud);

/* ---- clocks and test hooks ------------------------------------------------------ */

/* Wall clock (ms). */
uint64_t sc_now_ms(void);

#ifdef __cplusplus
}
#endif

#endif
