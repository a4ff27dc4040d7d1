/* SPDX-License-Identifier: Apache-2.0 */
/* proto.h: the sotto-server wire protocol (docs/protocol-server.md), shared by
 * the server and client/net.
 *
 * A frame is a u32 big-endian body length followed by the body:
 *   u8 type | u32 request id | payload
 * Requests carry a non-zero id chosen by the client; the answer (OK or ERR)
 * echoes it. Pushes from the server carry id 0. Every parser here is sans-I/O,
 * reads through the bounded reader of lib/wire, rejects trailing bytes and
 * returns pointers into the caller's buffer (zero copy): the parsed struct is
 * only valid while that buffer lives. Every encoder writes into a caller
 * buffer through the latching writer and returns the frame length or a
 * negative error. */
#ifndef SOTTO_SRV_PROTO_H
#define SOTTO_SRV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>

/* The protocol version this code speaks, and the oldest one the server
 * still accepts (docs/protocol-server.md, "Version"). */
#define SOTTO_SRV_VERSION 2
#define SOTTO_SRV_VERSION_MIN 1

/* Hard limits of the protocol (the server may be configured lower). */
#define SOTTO_SRV_FRAME_HDR 4
#define SOTTO_SRV_BODY_HDR 5                    /* type + request id */
#define SOTTO_SRV_MAX_FRAME (256 * 1024)        /* authenticated body cap */
#define SOTTO_SRV_MAX_FRAME_UNAUTH 1024         /* before AUTH succeeded */
#define SOTTO_SRV_MAX_MESSAGE (128 * 1024)      /* ciphertext cap, default 64 KiB */
#define SOTTO_SRV_MAX_KEY_BLOB 2048             /* one signed pre-key blob */
#define SOTTO_SRV_MAX_IDENTITY 256              /* identity key blob */
#define SOTTO_SRV_MAX_KEYS_PER_UPLOAD 100       /* per kind (EC, KEM) */
#define SOTTO_SRV_MAX_DEVICES 16
#define SOTTO_SRV_SECRET_LEN 32
#define SOTTO_SRV_USER_MIN 3
#define SOTTO_SRV_USER_MAX 32
#define SOTTO_SRV_KEYS_LOW 10                   /* "running low" threshold */
#define SOTTO_SRV_MAX_STORED_KEYS 1000          /* one-time keys kept per device and kind */
#define SOTTO_SRV_MAX_ERRMSG 200
#define SOTTO_SRV_MAX_DEVLIST 3072 /* a signed device list (>= SOTTO_DEVLIST_MAX_LEN) */

/* Frame types. */
enum {
  SOTTO_SRV_HELLO = 0x01,
  SOTTO_SRV_REGISTER = 0x02,
  SOTTO_SRV_AUTH = 0x03,
  SOTTO_SRV_ADD_DEVICE = 0x04,
  SOTTO_SRV_DEVICE_REMOVE = 0x05,
  SOTTO_SRV_ROTATE_SECRET = 0x06,
  SOTTO_SRV_ROTATION = 0x07, /* the certificate rotation chain (allowed before AUTH; rotation.h) */
  SOTTO_SRV_KT_HEAD = 0x08,   /* key transparency: the current signed head and its cosignatures */
  SOTTO_SRV_KT_SEARCH = 0x09, /* key transparency: a search proof for a username */
  SOTTO_SRV_UNREGISTER = 0x0A,   /* delete this account (device 1); its name is held for a quarantine */
  SOTTO_SRV_SET_RECOVERY = 0x0B, /* set the account's recovery code (device 1): 32 bytes */
  SOTTO_SRV_RECOVER = 0x0C,      /* before AUTH: re-register a name with a new identity by its recovery code */
  /* multi-device (docs/multi-device.md; protocol version 2) */
  SOTTO_SRV_DEVLIST_PUT = 0x0D, /* device 1: store the account's next signed device list */
  SOTTO_SRV_DEVLIST_GET = 0x0E, /* the current signed device list of a username */
  /* linking a new device (docs/multi-device.md, "Linking"; link slots in memory, or
   * in Redis in cluster mode, srv_link.c) */
  SOTTO_SRV_LINK_OPEN = 0x0F,       /* before AUTH: the new device opens a one-time slot with its public keys */
  SOTTO_SRV_DEVICE_IDENTITY = 0x13, /* set this device's own identity public key, once */
  SOTTO_SRV_LINK_PUT = 0x14,        /* device 1: read a slot's public keys, put the provisioning blob */
  SOTTO_SRV_LINK_GET = 0x18,        /* poll a slot: the provisioning blob (new device), the reply (device 1) */
  SOTTO_SRV_LINK_REPLY = 0x19,      /* the new device answers through its slot (its membership signature) */
  SOTTO_SRV_KEYS_UPLOAD = 0x10,
  SOTTO_SRV_BUNDLE = 0x11,
  SOTTO_SRV_DEVICES = 0x12,
  SOTTO_SRV_EPOCH = 0x15, /* raise this device's epoch (client store rollback detection) */
  SOTTO_SRV_KT_CONSISTENCY = 0x16, /* key transparency: consistency proof from an older size */
  SOTTO_SRV_KT_UPDATES = 0x17,     /* key transparency: entries i..j (update and head) for witnesses */
  SOTTO_SRV_KT_CONFIG = 0x1A,      /* key transparency: the log's public keys and the server's witnesses */
  SOTTO_SRV_KT_SEARCH_LIST = 0x1B, /* key transparency: a search proof for a username's device-list label */
  SOTTO_SRV_KT_VERSIONS = 0x1D,    /* key transparency: proofs of a label's versions from..., for monitoring */
  SOTTO_SRV_SEND = 0x20,
  SOTTO_SRV_SEND_MULTI = 0x22, /* one envelope to each listed device of an account, atomically (version 2) */
  SOTTO_SRV_ACK = 0x21,
  SOTTO_SRV_PING = 0x30,
  /* attachments: the blob store (blob.c; docs/protocol-server.md, "Blobs") */
  SOTTO_SRV_BLOB_CREATE = 0x40,
  SOTTO_SRV_BLOB_PUT = 0x41,
  SOTTO_SRV_BLOB_STAT = 0x42,
  SOTTO_SRV_BLOB_COMMIT = 0x43,
  SOTTO_SRV_BLOB_GET = 0x44,
  SOTTO_SRV_BLOB_DONE = 0x45,
  SOTTO_SRV_BLOB_FETCHES = 0x47, /* the uploader sets the fetches to wait for, once the fan-out is final */
  /* server to client */
  SOTTO_SRV_OK = 0x80,
  SOTTO_SRV_ERR = 0x81,
  SOTTO_SRV_MSG = 0x90,
  SOTTO_SRV_DRAINED = 0x91,
  SOTTO_SRV_KEYS_LOW_PUSH = 0x92,
  SOTTO_SRV_CLOSE = 0x93,
  SOTTO_SRV_NOTICE = 0x94, /* a notice of the server itself (expired envelopes), acknowledged like MSG */
  /* witness to server (number given by the lead for KT; a request despite the range) */
  SOTTO_SRV_KT_COSIGN = 0x95
};

/* Error codes carried in ERR and CLOSE frames (u16 on the wire). */
#define SOTTO_SRV_CODES(X)                                              \
  X(SOTTO_SRV_E_VERSION, 1, "unsupported protocol version")             \
  X(SOTTO_SRV_E_MALFORMED, 2, "malformed frame")                        \
  X(SOTTO_SRV_E_TOO_LARGE, 3, "frame or message too large")             \
  X(SOTTO_SRV_E_AUTH, 4, "authentication failed")                       \
  X(SOTTO_SRV_E_NOT_AUTHED, 5, "not authenticated")                     \
  X(SOTTO_SRV_E_TAKEN, 6, "username taken")                             \
  X(SOTTO_SRV_E_BAD_USERNAME, 7, "invalid username")                    \
  X(SOTTO_SRV_E_NOT_FOUND, 8, "no such account or device")              \
  X(SOTTO_SRV_E_RATE, 9, "rate limited, retry later")                   \
  X(SOTTO_SRV_E_QUEUE_FULL, 10, "recipient queue full")                 \
  X(SOTTO_SRV_E_INTERNAL, 11, "internal server error")                  \
  X(SOTTO_SRV_E_DISPLACED, 12, "connected elsewhere")                   \
  X(SOTTO_SRV_E_TIMEOUT, 13, "timed out")                               \
  X(SOTTO_SRV_E_SHUTDOWN, 14, "server shutting down")                   \
  X(SOTTO_SRV_E_BUSY, 15, "too many connections")                       \
  X(SOTTO_SRV_E_TOO_MANY_DEVICES, 16, "too many devices")               \
  X(SOTTO_SRV_E_NO_KEYS, 17, "device has no signed pre-key")            \
  X(SOTTO_SRV_E_STATE, 18, "request not allowed in this state")         \
  X(SOTTO_SRV_E_AUTH_RATE, 19, "too many failed logins from this address, retry later")          \
  X(SOTTO_SRV_E_QUEUE_SHARE, 20, "too many of your envelopes wait for this device")             \
  X(SOTTO_SRV_E_FORBIDDEN, 21, "not allowed for this device")                                  \
  X(SOTTO_SRV_E_DEVICE_REMOVED, 22, "this device was removed from its account")                \
  X(SOTTO_SRV_E_STORAGE_FULL, 23, "server storage full, retry later")                          \
  X(SOTTO_SRV_E_SENDER_QUOTA, 24, "too much of your undelivered data waits on this server")              \
  X(SOTTO_SRV_E_BLOB_QUOTA, 35, "attachment quota of this account used up, retry later")                 \
  X(SOTTO_SRV_E_BLOB_GONE, 36, "no such attachment: expired, fetched by every recipient, or never stored")   \
  X(SOTTO_SRV_E_BLOB_TOO_LARGE, 37, "attachment larger than this server accepts")                          \
  X(SOTTO_SRV_E_BLOB_INCOMPLETE, 38, "attachment upload not complete")                                     \
  X(SOTTO_SRV_E_QUARANTINED, 28, "username held after its account was deleted, retry after the quarantine") \
  X(SOTTO_SRV_E_RECOVERY, 29, "recovery refused: no such account or wrong recovery code") \
  X(SOTTO_SRV_E_MISMATCHED_DEVICES, 30, "that device is not in the recipient's signed device list")    \
  X(SOTTO_SRV_E_DEVLIST_STALE, 31, "device list version is not above the stored one")                 \
  X(SOTTO_SRV_E_DEVLIST_INVALID, 32, "device list refused: signature, account key or devices do not match") \
  X(SOTTO_SRV_E_OLD_PROTOCOL, 33, "this request needs protocol version 2: upgrade the client") \
  X(SOTTO_SRV_E_LINK_CODE, 34, "link code unknown, used or expired")                          \
  X(SOTTO_SRV_E_KT_WITNESS, 40, "not a witness of this server's key-transparency log")      \
  X(SOTTO_SRV_E_KT_STALE, 41, "not the key-transparency log's current head")                \
  X(SOTTO_SRV_E_KT_COSIG, 42, "the witness cosignature does not verify")                              \
  X(SOTTO_SRV_E_BLOB_NOT_OWNER, 43, "only the uploader of an attachment may set its fetches") \
  X(SOTTO_SRV_E_KT_PENDING, 44, "this account is not in the key-transparency log yet, retry shortly")

enum {
#define SOTTO_SRV_X_ENUM(name, value, msg) name = value,
  SOTTO_SRV_CODES(SOTTO_SRV_X_ENUM)
#undef SOTTO_SRV_X_ENUM
};

/* Static text for a code, never NULL. */
const char *sotto__srv_code_str(unsigned code);

/* ---- frames --------------------------------------------------------------- */

struct sotto_srv_frame {
  uint8_t type;
  uint32_t req_id;
  const uint8_t *p; /* payload, points into the decoded body */
  size_t len;
};

/* Reads the 4-byte length prefix; SOTTO_ERR_TOO_LARGE above max_body,
 * SOTTO_ERR_MALFORMED below the 5-byte body header. */
int sotto__srv_frame_len(const uint8_t hdr[4], size_t max_body, uint32_t *body_len) SOTTO_WUR;
/* Splits a body (without its length prefix) into type, id and payload. */
int sotto__srv_frame_parse(const uint8_t *body, size_t len, struct sotto_srv_frame *f) SOTTO_WUR;
/* Writes the 9-byte frame header for a payload of payload_len bytes. */
void sotto__srv_frame_hdr(uint8_t out[9], uint8_t type, uint32_t req_id, size_t payload_len);

/* Username rules: lowercase [a-z0-9_.], 3..32 bytes. Returns 1 if valid.
 * Every name on the wire follows these (names registered before the
 * stricter rule below stay reachable). */
int sotto__srv_username_ok(const uint8_t *s, size_t len);
/* The rule for a NEW name (REGISTER): sotto__srv_username_ok, and it starts
 * with a letter, ends with a letter or digit, and has no two separators
 * ('.', '_') in a row, so "alice." or "alice..b" cannot be registered.
 * Returns 1 if valid. */
int sotto__srv_username_new_ok(const uint8_t *s, size_t len);
/* The canonical form of a name, used to refuse look-alikes: separators
 * ('.', '_') dropped, then '0' read as 'o', '1' as 'l', "rn" as 'm' and
 * "vv" as 'w'. Two names with the same canonical form cannot both be
 * registered ("alice", "alice.", "al_ice", "a1ice" are one name). out gets
 * at most len bytes plus NUL; len must be <= SOTTO_SRV_USER_MAX. */
void sotto__srv_username_canon(const uint8_t *s, size_t len, char out[SOTTO_SRV_USER_MAX + 1]);

/* ---- requests ------------------------------------------------------------- */

struct sotto_srv_str {
  const uint8_t *p;
  size_t len;
};

struct sotto_srv_blob_id {
  uint32_t id;
  const uint8_t *p;
  size_t len;
};

/* HELLO: u16 version, then (optional) u8 features: what this client
 * understands beyond version 1 as first released. A client without the
 * byte gets nothing it does not know. */
#define SOTTO_SRV_FEAT_NOTICE 0x01    /* NOTICE pushes (0x94) */
#define SOTTO_SRV_FEAT_LAST_SEEN 0x02 /* DEVICES of its own account: last-seen days after the ids */
#define SOTTO_SRV_FEAT_MISMATCH_LIST 0x04 /* ERR(30) to SEND_MULTI carries the recipient's newest signed list */
struct sotto_srv_hello {
  uint16_t version;
  uint8_t features;
};
struct sotto_srv_register {
  struct sotto_srv_str username;
  struct sotto_srv_str identity;
};
#define SOTTO_SRV_RECOVERY_LEN 32
struct sotto_srv_recover {
  struct sotto_srv_str username;
  const uint8_t *code; /* SOTTO_SRV_RECOVERY_LEN bytes */
  struct sotto_srv_str identity;
};
struct sotto_srv_auth {
  struct sotto_srv_str username;
  uint32_t device_id;
  const uint8_t *secret; /* SOTTO_SRV_SECRET_LEN bytes */
};
#define SOTTO_SRV_KEYS_SIGNED 0x01
#define SOTTO_SRV_KEYS_LAST_RESORT 0x02
struct sotto_srv_keys {
  uint8_t flags;
  struct sotto_srv_blob_id signed_prekey;
  struct sotto_srv_blob_id last_resort;
  uint16_t n_ec, n_kem;
  struct sotto_srv_blob_id ec[SOTTO_SRV_MAX_KEYS_PER_UPLOAD];
  struct sotto_srv_blob_id kem[SOTTO_SRV_MAX_KEYS_PER_UPLOAD];
};
struct sotto_srv_target { /* BUNDLE and DEVICES */
  struct sotto_srv_str username;
  uint32_t device_id; /* BUNDLE only */
};
struct sotto_srv_send {
  struct sotto_srv_str username;
  uint32_t device_id;
  uint8_t type;
  const uint8_t *body;
  size_t body_len;
};

int sotto__srv_parse_hello(const uint8_t *p, size_t len, struct sotto_srv_hello *m) SOTTO_WUR;
int sotto__srv_parse_register(const uint8_t *p, size_t len, struct sotto_srv_register *m) SOTTO_WUR;
int sotto__srv_parse_auth(const uint8_t *p, size_t len, struct sotto_srv_auth *m) SOTTO_WUR;
int sotto__srv_parse_keys(const uint8_t *p, size_t len, struct sotto_srv_keys *m) SOTTO_WUR;
int sotto__srv_parse_bundle_req(const uint8_t *p, size_t len, struct sotto_srv_target *m) SOTTO_WUR;
int sotto__srv_parse_devices_req(const uint8_t *p, size_t len, struct sotto_srv_target *m) SOTTO_WUR;
int sotto__srv_parse_send(const uint8_t *p, size_t len, size_t max_body, struct sotto_srv_send *m) SOTTO_WUR;
/* SEND_MULTI: username | u8 n (1..SOTTO_SRV_MAX_DEVICES) | n x (u32 device_id, u8 type, u32 length,
 * ciphertext (1..max_body)), device ids strictly increasing. Its answer:
 * u64 server_timestamp_ms | u8 n | n x u64 server_id (in the request's order). */
struct sotto_srv_send_multi {
  struct sotto_srv_str username;
  uint8_t n;
  struct {
    uint32_t device_id;
    uint8_t type;
    const uint8_t *body;
    size_t body_len;
  } e[SOTTO_SRV_MAX_DEVICES];
};
int sotto__srv_parse_send_multi(const uint8_t *p, size_t len, size_t max_body, struct sotto_srv_send_multi *m)
    SOTTO_WUR;
int sotto__srv_parse_sent_multi(const uint8_t *p, size_t len, uint64_t *timestamp_ms, uint64_t *ids, size_t max,
                                size_t *n) SOTTO_WUR;
int sotto__srv_parse_ack(const uint8_t *p, size_t len, uint64_t *id) SOTTO_WUR;
/* DEVICE_REMOVE: u32 device id (1..), nothing else. */
int sotto__srv_parse_device_remove(const uint8_t *p, size_t len, uint32_t *device_id) SOTTO_WUR;
/* SET_RECOVERY: the 32-byte code, nothing else. */
int sotto__srv_parse_set_recovery(const uint8_t *p, size_t len, const uint8_t **code) SOTTO_WUR;
/* RECOVER: str8 username | 32-byte code | blob16 identity. */
int sotto__srv_parse_recover(const uint8_t *p, size_t len, struct sotto_srv_recover *m) SOTTO_WUR;
/* EPOCH: u64 epoch (the value to raise the device's epoch to). */
int sotto__srv_parse_epoch(const uint8_t *p, size_t len, uint64_t *epoch) SOTTO_WUR;
/* DEVLIST_PUT request and DEVLIST_GET answer: blob16 list (1..SOTTO_SRV_MAX_DEVLIST
 * bytes), nothing else. The list itself is checked with sotto_devlist_parse. */
int sotto__srv_parse_devlist(const uint8_t *p, size_t len, const uint8_t **list, size_t *list_len) SOTTO_WUR;

/* ---- linking (docs/protocol-server.md, "Linking a device"; srv_link.c) ---- */

/* A link slot is a one-time mailbox in the server's memory (in Redis in
 * cluster mode), named by a random code, through which a new device and device 1 of an account
 * exchange the provisioning message and the membership signature. The
 * server sees only the new device's public keys, ciphertext and a
 * signature.
 *   LINK_OPEN   keys: blob16 (1..LINK_MAX_KEYS)          -> OK code[16] | u32 ttl_seconds
 *   LINK_PUT    code[16] | u32 n | blob (0..LINK_MAX_BLOB) -> OK keys: blob16
 *               (n 0: only read the keys; n > 0: put the blob, once)
 *   LINK_GET    code[16]                                 -> OK u8 state | u32 n | data
 *               state 0 waiting (n 0), 1 provisioned (the blob), 2 replied
 *               (the reply; to the account that put the blob, which closes
 *               the slot; to anyone else n 0)
 *   LINK_REPLY  code[16] | reply: blob16 (1..LINK_MAX_REPLY) -> OK (nothing)
 *   DEVICE_IDENTITY  identity: blob16 (33..256 bytes, 0x05 || key || ...) -> OK (nothing) */
struct sotto__wr;
#define SOTTO_SRV_LINK_CODE_LEN 16
#define SOTTO_SRV_LINK_MAX_KEYS 256
#define SOTTO_SRV_LINK_MAX_BLOB (64 * 1024)
#define SOTTO_SRV_LINK_MAX_REPLY 512
#define SOTTO_SRV_LINK_WAITING 0
#define SOTTO_SRV_LINK_PROVISIONED 1
#define SOTTO_SRV_LINK_REPLIED 2
struct sotto_srv_link {
  const uint8_t *code; /* SOTTO_SRV_LINK_CODE_LEN bytes (all but LINK_OPEN) */
  const uint8_t *data; /* OPEN: keys; PUT: blob (may be empty); REPLY: reply */
  size_t data_len;
};
/* Parses the payload of request type (one of SOTTO_SRV_LINK_*). */
int sotto__srv_parse_link_req(uint8_t type, const uint8_t *p, size_t len, struct sotto_srv_link *m) SOTTO_WUR;
void sotto__srv_put_link_req(struct sotto__wr *w, uint8_t type, const struct sotto_srv_link *m);
/* Answers. */
int sotto__srv_parse_link_opened(const uint8_t *p, size_t len, const uint8_t **code, uint32_t *ttl_s) SOTTO_WUR;
void sotto__srv_put_link_opened(struct sotto__wr *w, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint32_t ttl_s);
/* LINK_PUT answer: the keys. */
int sotto__srv_parse_link_keys(const uint8_t *p, size_t len, const uint8_t **keys, size_t *keys_len) SOTTO_WUR;
int sotto__srv_parse_link_state(const uint8_t *p, size_t len, uint8_t *state, const uint8_t **data,
                                size_t *data_len) SOTTO_WUR;
void sotto__srv_put_link_state(struct sotto__wr *w, uint8_t state, const uint8_t *data, size_t len);
/* DEVICE_IDENTITY: blob16 identity, laid out as REGISTER's (0x05 || 32-byte
 * key || the client's own trailer, SOTTO_SRV_DEVICE_IDENTITY_MIN..
 * SOTTO_SRV_MAX_IDENTITY bytes). */
#define SOTTO_SRV_DEVICE_IDENTITY_MIN 33
int sotto__srv_parse_device_identity(const uint8_t *p, size_t len, struct sotto_srv_str *ik) SOTTO_WUR;
void sotto__srv_put_device_identity(struct sotto__wr *w, const uint8_t *ik, size_t len);

/* ---- server answers and pushes ------------------------------------------ */

struct sotto_srv_err {
  uint16_t code;
  struct sotto_srv_str msg;
};
struct sotto_srv_env { /* MSG push */
  uint64_t id;
  struct sotto_srv_str sender;
  uint32_t sender_device;
  uint32_t device_id; /* recipient device */
  uint8_t type;
  uint64_t timestamp_ms;
  const uint8_t *body;
  size_t body_len;
};
struct sotto_srv_bundle {
  struct sotto_srv_str identity;
  struct sotto_srv_blob_id signed_prekey;
  int has_ec;
  struct sotto_srv_blob_id ec;
  uint8_t kem_kind; /* 0 none, 1 one-time, 2 last resort */
  struct sotto_srv_blob_id kem;
};

/* A bundle copied out of a frame or the store into owned buffers: what the
 * server's store hands out and what the client library returns. */
struct sotto_srv_bundle_buf {
  uint8_t identity[SOTTO_SRV_MAX_IDENTITY];
  size_t identity_len;
  uint32_t spk_id;
  uint8_t spk[SOTTO_SRV_MAX_KEY_BLOB];
  size_t spk_len;
  int has_ec;
  uint32_t ec_id;
  uint8_t ec[SOTTO_SRV_MAX_KEY_BLOB];
  size_t ec_len;
  uint8_t kem_kind; /* 0 none, 1 one-time, 2 last resort */
  uint32_t kem_id;
  uint8_t kem[SOTTO_SRV_MAX_KEY_BLOB];
  size_t kem_len;
};

int sotto__srv_parse_err(const uint8_t *p, size_t len, struct sotto_srv_err *m) SOTTO_WUR;
/* An ERR answer as a client that set SOTTO_SRV_FEAT_MISMATCH_LIST reads it:
 * `u16 code, str8 reason`, and for code 30 (mismatched devices) optionally
 * `blob16 list` (1..SOTTO_SRV_MAX_DEVLIST bytes: exactly what DEVLIST_GET
 * answers for the recipient); *list NULL and *list_len 0 when absent.
 * Anything after it, or a trailer on another code, is malformed. */
int sotto__srv_parse_err_list(const uint8_t *p, size_t len, struct sotto_srv_err *m, const uint8_t **list,
                              size_t *list_len) SOTTO_WUR;
int sotto__srv_parse_env(const uint8_t *p, size_t len, struct sotto_srv_env *m) SOTTO_WUR;
int sotto__srv_parse_bundle(const uint8_t *p, size_t len, struct sotto_srv_bundle *m) SOTTO_WUR;
/* DEVICES answer: `u16 n, n x u32 device_id`, then (only for a client
 * with SOTTO_SRV_FEAT_LAST_SEEN asking about its own account) `n x u32
 * last_seen_day`. Up to max ids into ids[], *n set; the days into days[]
 * (when not NULL) with *has_days 1 if the answer carried them, else 0. */
int sotto__srv_parse_devices(const uint8_t *p, size_t len, uint32_t *ids, size_t max, size_t *n) SOTTO_WUR;
int sotto__srv_parse_devices_seen(const uint8_t *p, size_t len, uint32_t *ids, uint32_t *days, size_t max, size_t *n,
                                  int *has_days) SOTTO_WUR;

/* NOTICE push (docs/protocol-server.md, "Server notices"): what the server
 * itself has to say, queued like an envelope and acknowledged like one, but
 * a frame type of its own so no client can take it for a contact's message.
 *   payload: u64 id | u64 timestamp_ms | body
 *   body:    u8 kind | str8 peer | u32 count | u8 n | n x (u64 server id, u64 timestamp_ms)
 * kind EXPIRED_SENT goes to a sender: count envelopes of theirs to peer
 * expired unread (items: the first n, with the id and time the SEND answer
 * gave); EXPIRED_RECEIVED goes to a recipient: count envelopes from peer
 * expired before they were fetched. peer "" sums up the rest (other
 * recipients or senders) when there were more than a few. */
#define SOTTO_SRV_NOTICE_EXPIRED_SENT 1
#define SOTTO_SRV_NOTICE_EXPIRED_RECEIVED 2
#define SOTTO_SRV_NOTICE_MAX_ITEMS 16
#define SOTTO_SRV_NOTICE_MAX_BODY (1 + 1 + SOTTO_SRV_USER_MAX + 4 + 1 + SOTTO_SRV_NOTICE_MAX_ITEMS * 16)
struct sotto_srv_notice_item {
  uint64_t id, timestamp_ms;
};
struct sotto_srv_notice {
  uint64_t id;           /* queue id (ACK it) */
  uint64_t timestamp_ms; /* when the server made the notice */
  uint8_t kind;
  struct sotto_srv_str peer; /* a valid username, or empty */
  uint32_t count;            /* >= n_items, >= 1 */
  uint8_t n_items;
  struct sotto_srv_notice_item items[SOTTO_SRV_NOTICE_MAX_ITEMS];
};
/* The body alone (as queued), into m (id and timestamp_ms untouched). */
int sotto__srv_parse_notice_body(const uint8_t *p, size_t len, struct sotto_srv_notice *m) SOTTO_WUR;
/* The whole NOTICE payload. */
int sotto__srv_parse_notice(const uint8_t *p, size_t len, struct sotto_srv_notice *m) SOTTO_WUR;

/* ---- encoders: payload only (frame header added by sotto__srv_frame_hdr) -- */

struct sotto__wr;
void sotto__srv_put_str8(struct sotto__wr *w, const void *p, size_t len);
void sotto__srv_put_blob16(struct sotto__wr *w, const void *p, size_t len);
void sotto__srv_put_blob_id(struct sotto__wr *w, const struct sotto_srv_blob_id *b);
void sotto__srv_put_keys(struct sotto__wr *w, const struct sotto_srv_keys *m);
void sotto__srv_put_env(struct sotto__wr *w, const struct sotto_srv_env *m);
void sotto__srv_put_bundle(struct sotto__wr *w, const struct sotto_srv_bundle *m);
void sotto__srv_put_err(struct sotto__wr *w, uint16_t code, const char *msg);
/* ERR(code, msg) followed by blob16 list (the mismatched-devices answer to a
 * client with SOTTO_SRV_FEAT_MISMATCH_LIST); list_len 1..SOTTO_SRV_MAX_DEVLIST. */
void sotto__srv_put_err_list(struct sotto__wr *w, uint16_t code, const char *msg, const uint8_t *list,
                             size_t list_len);

/* Requests (the client writes them; the sotto__srv_parse_* above read them). */
void sotto__srv_put_hello_req(struct sotto__wr *w, uint16_t version, uint8_t features);
void sotto__srv_put_register_req(struct sotto__wr *w, const char *user, const uint8_t *identity, size_t len);
void sotto__srv_put_auth_req(struct sotto__wr *w, const char *user, uint32_t device_id,
                             const uint8_t secret[SOTTO_SRV_SECRET_LEN]);
/* DEVICES (user) and BUNDLE (user, device id) targets. */
void sotto__srv_put_devices_req(struct sotto__wr *w, const char *user);
void sotto__srv_put_bundle_req(struct sotto__wr *w, const char *user, uint32_t device_id);
void sotto__srv_put_send(struct sotto__wr *w, const char *user, uint32_t device_id, uint8_t type,
                         const uint8_t *body, size_t body_len);
/* ACK (server id) and EPOCH (epoch): one u64. */
void sotto__srv_put_u64_req(struct sotto__wr *w, uint64_t v);
void sotto__srv_put_device_remove(struct sotto__wr *w, uint32_t device_id);
void sotto__srv_put_devlist(struct sotto__wr *w, const uint8_t *list, size_t len);
void sotto__srv_put_send_multi(struct sotto__wr *w, const struct sotto_srv_send_multi *m);
void sotto__srv_put_sent_multi(struct sotto__wr *w, uint64_t timestamp_ms, const uint64_t *ids, size_t n);
void sotto__srv_put_recover_req(struct sotto__wr *w, const char *user, const uint8_t code[SOTTO_SRV_RECOVERY_LEN],
                                const uint8_t *identity, size_t len);

/* Answers and pushes (the server writes them; client/net's frames.c reads
 * them with sotto__net_parse_*). */
void sotto__srv_put_hello_ok(struct sotto__wr *w, uint16_t version, uint32_t max_frame, uint32_t max_message);
/* REGISTER, ADD_DEVICE and ROTATE_SECRET: device id and secret. */
void sotto__srv_put_creds(struct sotto__wr *w, uint32_t device_id, const uint8_t secret[SOTTO_SRV_SECRET_LEN]);
/* AUTH and KEYS_UPLOAD answers, and the KEYS_LOW push: keys left (EC, KEM). */
void sotto__srv_put_counts(struct sotto__wr *w, uint32_t ec, uint32_t kem);
void sotto__srv_put_devices(struct sotto__wr *w, const uint32_t *ids, size_t n);
/* The last-seen trailer of a DEVICES answer, after sotto__srv_put_devices. */
void sotto__srv_put_devices_days(struct sotto__wr *w, const uint32_t *days, size_t n);
/* SEND: server id and timestamp. */
void sotto__srv_put_sent(struct sotto__wr *w, uint64_t id, uint64_t timestamp_ms);
/* A NOTICE body (kind, peer, count, items; the queued bytes). */
void sotto__srv_put_notice_body(struct sotto__wr *w, const struct sotto_srv_notice *m);
/* The NOTICE payload: id, timestamp, then the queued body as it is. */
void sotto__srv_put_notice(struct sotto__wr *w, uint64_t id, uint64_t timestamp_ms, const uint8_t *body, size_t len);
/* EPOCH: the server's epoch before the request. */
void sotto__srv_put_epoch_ok(struct sotto__wr *w, uint64_t old);

/* ---- blobs (attachments; blob.c, docs/protocol-server.md "Blobs") -------- */

/* A blob is opaque ciphertext, uploaded in chunks at increasing offsets and
 * read back in chunks by whoever knows its random 16-byte id:
 *   BLOB_CREATE  u64 size | u16 fetches            -> OK id[16] | u64 expires_ms
 *   BLOB_PUT     id[16] | u64 offset | bytes (1..)  -> OK u64 stored
 *   BLOB_STAT    id[16]                             -> OK u64 size | u64 stored | u8 committed
 *   BLOB_COMMIT  id[16]                             -> OK (nothing)
 *   BLOB_GET     id[16] | u64 offset | u32 max      -> OK bytes (0..max)
 *   BLOB_DONE    id[16]                             -> OK (nothing)
 *   BLOB_FETCHES id[16] | u16 fetches               -> OK (nothing) */
#define SOTTO_SRV_BLOB_ID_LEN 16
#define SOTTO_SRV_BLOB_MAX_SIZE ((uint64_t)1 << 40) /* protocol cap; the server's is lower */
#define SOTTO_SRV_BLOB_MAX_FETCHES 1024
#define SOTTO_SRV_BLOB_MAX_CHUNK (240 * 1024) /* bytes in one PUT or GET */
struct sotto_srv_blob_req {
  const uint8_t *id; /* SOTTO_SRV_BLOB_ID_LEN bytes (all but CREATE) */
  uint64_t size;     /* CREATE */
  uint16_t fetches;  /* CREATE, FETCHES: 1..SOTTO_SRV_BLOB_MAX_FETCHES */
  uint64_t offset;   /* PUT, GET */
  uint32_t max;      /* GET: 1..SOTTO_SRV_BLOB_MAX_CHUNK */
  const uint8_t *data; /* PUT: 1..SOTTO_SRV_BLOB_MAX_CHUNK bytes */
  size_t data_len;
};
struct sotto_srv_blob_stat {
  uint64_t size, stored;
  uint8_t committed;
};
/* Parses the payload of request type (one of SOTTO_SRV_BLOB_*). */
int sotto__srv_parse_blob_req(uint8_t type, const uint8_t *p, size_t len, struct sotto_srv_blob_req *m) SOTTO_WUR;
/* Writes it (fields as type needs). */
void sotto__srv_put_blob_req(struct sotto__wr *w, uint8_t type, const struct sotto_srv_blob_req *m);
/* Answers. */
int sotto__srv_parse_blob_created(const uint8_t *p, size_t len, uint8_t id[SOTTO_SRV_BLOB_ID_LEN],
                                  uint64_t *expires_ms) SOTTO_WUR;
int sotto__srv_parse_blob_stored(const uint8_t *p, size_t len, uint64_t *stored) SOTTO_WUR;
int sotto__srv_parse_blob_stat(const uint8_t *p, size_t len, struct sotto_srv_blob_stat *m) SOTTO_WUR;
void sotto__srv_put_blob_created(struct sotto__wr *w, const uint8_t id[SOTTO_SRV_BLOB_ID_LEN], uint64_t expires_ms);
void sotto__srv_put_blob_stat(struct sotto__wr *w, const struct sotto_srv_blob_stat *m);

/* ---- key transparency (docs/protocol-server.md, docs/key-transparency.md) ---- */

#define SOTTO_SRV_KT_HEAD_LEN 112      /* = SOTTO_KT_HEAD_LEN */
#define SOTTO_SRV_KT_COSIG_LEN 80      /* = SOTTO_KT_COSIG_LEN */
#define SOTTO_SRV_KT_PK_LEN 32         /* = SOTTO_KT_SIGN_PK_LEN */
#define SOTTO_SRV_KT_MAX_COSIGS 64     /* = SOTTO_KT_MAX_COSIGS */
#define SOTTO_SRV_KT_MAX_PROOF 65536   /* = SOTTO_KT_MAX_SEARCH_PROOF_LEN (also bounds consistency proofs) */
#define SOTTO_SRV_KT_MAX_UPDATES 64    /* entries in one KT_UPDATES answer */

/* KT_HEAD answer: head(112) || u8 n || n x cosignature(80). */
struct sotto_srv_kt_head {
  const uint8_t *head; /* SOTTO_SRV_KT_HEAD_LEN bytes */
  size_t n_cosigs;
  const uint8_t *cosigs; /* n_cosigs x SOTTO_SRV_KT_COSIG_LEN bytes */
};
/* KT_SEARCH and KT_CONSISTENCY answers: head(112) || u32 len || proof. */
struct sotto_srv_kt_proof {
  const uint8_t *head;
  const uint8_t *proof;
  size_t proof_len;
};
/* KT_UPDATES request: u64 first entry index (0-based) || u16 count. */
struct sotto_srv_kt_range {
  uint64_t first;
  uint16_t count;
};
/* One entry of a KT_UPDATES answer: u16 n, then n x (head(112) || u32 len || update). */
struct sotto_srv_kt_entry {
  const uint8_t *head;
  const uint8_t *update;
  size_t update_len;
};
/* KT_COSIGN request: witness public key(32) || head(112) || cosignature(80). */
struct sotto_srv_kt_cosign {
  const uint8_t *witness_pk;
  const uint8_t *head;
  const uint8_t *cosig;
};

/* KT_CONFIG answer: sig_pk(32) || vrf_pk(32) || u8 n || n x (str8 name ||
 * witness pk(32)); names are 1-SOTTO_SRV_KT_NAME_MAX printable ASCII bytes. */
#define SOTTO_SRV_KT_MAX_WITNESSES 16
#define SOTTO_SRV_KT_NAME_MAX 32
struct sotto_srv_kt_config {
  const uint8_t *sig_pk, *vrf_pk;
  size_t n;
  struct {
    struct sotto_srv_str name;
    const uint8_t *pk;
  } w[SOTTO_SRV_KT_MAX_WITNESSES];
};
int sotto__srv_parse_kt_config(const uint8_t *p, size_t len, struct sotto_srv_kt_config *m) SOTTO_WUR;
void sotto__srv_put_kt_config(struct sotto__wr *w, const struct sotto_srv_kt_config *m);
/* 1 if a witness name is 1-SOTTO_SRV_KT_NAME_MAX bytes of [A-Za-z0-9._-]. */
int sotto__srv_kt_name_ok(const uint8_t *p, size_t len);

/* The device-list label (docs/key-transparency.md, "Device lists"): the
 * bytes "devices:" followed by the canonical username (no username holds a
 * ':', so no device-list label is a username's label). Its value: u32
 * big-endian list version || SHA-256 of the signed list bytes as stored
 * and served by DEVLIST_GET (36 bytes). KT_SEARCH_LIST takes the same
 * request as KT_SEARCH (the username, str8) and answers the same way. */
#define SOTTO_SRV_KT_LIST_PREFIX "devices:"
#define SOTTO_SRV_KT_LIST_LABEL_MAX (8 + SOTTO_SRV_USER_MAX)
#define SOTTO_SRV_KT_LIST_VALUE_LEN 36
void sotto__srv_kt_list_label(char out[SOTTO_SRV_KT_LIST_LABEL_MAX + 1], const char *user);
void sotto__srv_kt_list_value(uint8_t out[SOTTO_SRV_KT_LIST_VALUE_LEN], uint32_t version, const uint8_t *list,
                              size_t len);
/* KT_SEARCH request: the username (str8). KT_CONSISTENCY request: u64 old
 * size (sotto__srv_parse_epoch-like, but any value up to 2^62). */
int sotto__srv_parse_kt_search_req(const uint8_t *p, size_t len, struct sotto_srv_str *user) SOTTO_WUR;
int sotto__srv_parse_kt_consistency_req(const uint8_t *p, size_t len, uint64_t *old_size) SOTTO_WUR;
int sotto__srv_parse_kt_updates_req(const uint8_t *p, size_t len, struct sotto_srv_kt_range *m) SOTTO_WUR;
int sotto__srv_parse_kt_cosign_req(const uint8_t *p, size_t len, struct sotto_srv_kt_cosign *m) SOTTO_WUR;
int sotto__srv_parse_kt_head(const uint8_t *p, size_t len, struct sotto_srv_kt_head *m) SOTTO_WUR;
int sotto__srv_parse_kt_proof(const uint8_t *p, size_t len, struct sotto_srv_kt_proof *m) SOTTO_WUR;
/* Up to max entries (max <= SOTTO_SRV_KT_MAX_UPDATES); update lengths up to max_update each. */
int sotto__srv_parse_kt_updates(const uint8_t *p, size_t len, struct sotto_srv_kt_entry *e, size_t max,
                                size_t max_update, size_t *n) SOTTO_WUR;

/* KT_VERSIONS (monitoring of every version): request u8 kind (0 the
 * username's label, 1 its device-list label) || u32 from (<= 0x7FFFFFFF) ||
 * u8 count (1..SOTTO_SRV_KT_MAX_VERSIONS) || str8 username. Answer:
 * head(112) || u8 n (1..count) || n x (u32 len || version proof (at most
 * SOTTO_SRV_KT_MAX_VERSION_PROOF) || u32 len || the signed device list of
 * that version as stored, or nothing (kind 0, or a list no longer stored;
 * at most SOTTO_SRV_MAX_DEVLIST)): versions from, from+1, ... in order. */
#define SOTTO_SRV_KT_MAX_VERSIONS 16
#define SOTTO_SRV_KT_MAX_VERSION_PROOF 16384 /* = SOTTO_KT_MAX_VERSION_PROOF_LEN */
struct sotto_srv_kt_versions_req {
  uint8_t kind;
  uint32_t from;
  uint8_t count;
  struct sotto_srv_str user;
};
struct sotto_srv_kt_versions {
  const uint8_t *head;
  size_t n;
  struct {
    const uint8_t *proof, *list;
    size_t proof_len, list_len;
  } v[SOTTO_SRV_KT_MAX_VERSIONS];
};
int sotto__srv_parse_kt_versions_req(const uint8_t *p, size_t len, struct sotto_srv_kt_versions_req *m) SOTTO_WUR;
int sotto__srv_parse_kt_versions(const uint8_t *p, size_t len, struct sotto_srv_kt_versions *m) SOTTO_WUR;
void sotto__srv_put_kt_versions_req(struct sotto__wr *w, uint8_t kind, uint32_t from, uint8_t count, const char *user);

void sotto__srv_put_kt_search_req(struct sotto__wr *w, const char *user);
void sotto__srv_put_kt_updates_req(struct sotto__wr *w, uint64_t first, uint16_t count);
void sotto__srv_put_kt_cosign_req(struct sotto__wr *w, const uint8_t pk[SOTTO_SRV_KT_PK_LEN],
                                  const uint8_t head[SOTTO_SRV_KT_HEAD_LEN],
                                  const uint8_t cosig[SOTTO_SRV_KT_COSIG_LEN]);
void sotto__srv_put_kt_head(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *cosigs,
                            size_t n_cosigs);
void sotto__srv_put_kt_proof(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *proof,
                             size_t len);
/* One entry of a KT_UPDATES answer (after a u16 count the caller writes with sotto__wr_u8 x2). */
void sotto__srv_put_kt_entry(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *update,
                             size_t len);

#endif
