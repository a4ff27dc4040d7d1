/* SPDX-License-Identifier: Apache-2.0 */
/* net.h: the client side of the sotto-server protocol (docs/protocol-server.md).
 *
 * One struct sotto_net_ctx holds the TLS configuration (pinned certificate
 * fingerprint or CA file) and is shared by any number of connections, so a
 * load generator can open thousands cheaply. A struct sotto_net is one TLS
 * connection; its socket is non-blocking and every wait is bounded by the
 * connection's timeout.
 *
 * Results: 0 on success; a positive SOTTO_SRV_E_* code when the server
 * answered with ERR or closed with CLOSE (or SOTTO_NET_E_* for local
 * transport failures); a negative SOTTO_ERR_* code for a malformed answer or
 * no memory. Push frames (MSG, DRAINED, KEYS_LOW, CLOSE) that arrive while a
 * request waits are queued and returned by sotto_net_next_event.
 *
 * A malicious server cannot make the client wait past its timeout nor grow
 * it without bound: every wait has a deadline, each call reads a bounded
 * amount, a frame is at most SOTTO_SRV_MAX_FRAME bytes and the queue of
 * received events is bounded (frames.h). A frame that does not parse is
 * returned as an SOTTO_NET_EV_BAD event, never fails the connection. */
#ifndef SOTTO_NET_H
#define SOTTO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "frames.h" /* proto/: the codec, the events and their bounded queue */


struct sotto_net_ctx;
struct sotto_net;

/* Exactly one of pin_sha256_hex (64 hex chars, the fingerprint the server
 * printed) or ca_file must be given. Returns NULL on a bad argument. */
struct sotto_net_ctx *sotto_net_ctx_new(const char *pin_sha256_hex, const char *ca_file);
/* No certificate check at all: for a first contact and for a certificate
 * rotation, where the caller checks sotto_net_peer itself before it sends
 * anything but HELLO and ROTATION. */
struct sotto_net_ctx *sotto_net_ctx_new_unverified(void);
void sotto_net_ctx_free(struct sotto_net_ctx *ctx);

/* TCP connect + TLS 1.3 handshake + certificate check, then HELLO (unless
 * hello is 0). *out is owned by the caller (sotto_net_close). Failures tell
 * the cases apart: SOTTO_NET_E_CONNECT (refused, unresolvable),
 * SOTTO_NET_E_TIMEOUT (no handshake in time), SOTTO_NET_E_NOT_TLS (not a
 * TLS peer), SOTTO_NET_E_TLS (a TLS peer refused the handshake),
 * SOTTO_NET_E_PIN (not the pinned certificate), SOTTO_NET_E_CERT (the CA
 * file does not vouch for it), SOTTO_NET_E_NOT_SOTTO (TLS, but no sotto
 * answer to HELLO), or the server's code. */
int sotto_net_connect(struct sotto_net_ctx *ctx, const char *host, const char *port, int timeout_ms, int hello,
                      struct sotto_net **out);
void sotto_net_close(struct sotto_net *c);
/* Trust on first use: TCP connect + TLS 1.3 handshake WITHOUT any
 * certificate check, then out_hex = SHA-256 of the server certificate (DER)
 * in lowercase hex, the form sotto_net_ctx_new pins. Closes the connection.
 * Returns 0, SOTTO_NET_E_CONNECT, SOTTO_NET_E_TLS, SOTTO_NET_E_TIMEOUT,
 * SOTTO_NET_E_IO or SOTTO_ERR_NOMEM (out_hex is then ""). */
int sotto_net_fetch_fingerprint(const char *host, const char *port, int timeout_ms, char out_hex[65]);
/* sotto_net_fetch_fingerprint, and HELLO after the handshake (so a TLS
 * endpoint that is not a sotto server is SOTTO_NET_E_NOT_SOTTO), and key
 * (may be NULL) gets the certificate's Ed25519 public key (zeros if it has
 * another kind of key). Results as sotto_net_connect. */
int sotto_net_probe(const char *host, const char *port, int timeout_ms, char out_hex[65], uint8_t key[32]);
/* The server certificate of this connection: fp = SHA-256 (DER), key = its
 * Ed25519 public key. Returns 0, 1 when the key is not Ed25519 (key is
 * zeros), -1 when unknown. */
int sotto_net_peer(const struct sotto_net *c, uint8_t fp[32], uint8_t key[32]);
int sotto_net_fd(const struct sotto_net *c);
void sotto_net_set_timeout(struct sotto_net *c, int timeout_ms);
/* Limits the server announced in its HELLO answer. */
uint32_t sotto_net_max_message(const struct sotto_net *c);
uint32_t sotto_net_max_frame(const struct sotto_net *c);

/* ---- typed requests (block until the answer, bounded by the timeout) ---- */

int sotto_net_hello(struct sotto_net *c, uint16_t version);
int sotto_net_register(struct sotto_net *c, const char *username, const uint8_t *identity, size_t identity_len,
                       uint32_t *device_id, uint8_t secret[SOTTO_SRV_SECRET_LEN]);
int sotto_net_auth(struct sotto_net *c, const char *username, uint32_t device_id,
                   const uint8_t secret[SOTTO_SRV_SECRET_LEN], uint32_t *ec_left, uint32_t *kem_left);
int sotto_net_add_device(struct sotto_net *c, uint32_t *device_id, uint8_t secret[SOTTO_SRV_SECRET_LEN]);
int sotto_net_upload_keys(struct sotto_net *c, const struct sotto_srv_keys *k, uint32_t *ec_left,
                          uint32_t *kem_left);
int sotto_net_devices(struct sotto_net *c, const char *username, uint32_t *ids, size_t max, size_t *n);
/* DEVICES with the last-seen days: the server gives them only for this
 * connection's own account (days since 1970-01-01 UTC into days[], which may
 * be NULL; *has_days 1 when the answer carried them, 0 from a server that
 * does not or for another account). */
int sotto_net_devices_seen(struct sotto_net *c, const char *username, uint32_t *ids, uint32_t *days, size_t max,
                           size_t *n, int *has_days);
int sotto_net_send(struct sotto_net *c, const char *username, uint32_t device_id, uint8_t type,
                   const uint8_t *body, size_t body_len, uint64_t *server_id, uint64_t *timestamp_ms);
int sotto_net_ack(struct sotto_net *c, uint64_t server_id);
int sotto_net_ping(struct sotto_net *c);
/* Raises this device's epoch on the server to at least epoch; *old gets the
 * server's value before (docs/client.md, "Rollback"). */
int sotto_net_epoch(struct sotto_net *c, uint64_t epoch, uint64_t *old);

/* ROTATION: the server's certificate rotation chain (rotation.h) into
 * out[0..max), *n statements. Allowed before AUTH. */
struct sotto_rot_statement;
int sotto_net_rotation(struct sotto_net *c, struct sotto_rot_statement *out, size_t max, size_t *n);

/* Any request (the key-transparency ones, whose answers proto/ parses):
 * 0 with the OK payload in *ans (the caller clears it), the server's error
 * code, or a SOTTO_NET_E_*. */
int sotto_net_call(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, struct sotto_net_event *ans);

int sotto_net_fetch_bundle(struct sotto_net *c, const char *username, uint32_t device_id,
                           struct sotto_srv_bundle_buf *out);

/* ROTATE_SECRET: the server makes a new secret for this device (written to
 * secret); the old one stops working once this returns 0. The caller must
 * store the new secret before anything else: it is not shown again. */
int sotto_net_rotate_secret(struct sotto_net *c, uint8_t secret[SOTTO_SRV_SECRET_LEN]);
/* DEVICE_REMOVE: removes device_id of this account with its keys and queue
 * (device 1 may remove any other; a device may remove itself; device 1
 * stays). Returns SOTTO_SRV_E_FORBIDDEN or SOTTO_SRV_E_NOT_FOUND otherwise. */
int sotto_net_device_remove(struct sotto_net *c, uint32_t device_id);
/* DEVLIST_PUT (device 1; protocol version 2): stores the account's next
 * signed device list (sotto/devlist.h, docs/multi-device.md). Server
 * errors: SOTTO_SRV_E_FORBIDDEN (not device 1), SOTTO_SRV_E_DEVLIST_STALE,
 * SOTTO_SRV_E_DEVLIST_INVALID. */
int sotto_net_devlist_put(struct sotto_net *c, const uint8_t *list, size_t len);
/* SEND_MULTI (protocol version 2): one envelope to each device of m, which
 * must be exactly the recipient's listed devices (else
 * SOTTO_SRV_E_MISMATCHED_DEVICES: fetch the list and send again); all are
 * stored or none. ids[] gets their server ids (m's order), *timestamp_ms
 * the server time. */
int sotto_net_send_multi(struct sotto_net *c, const struct sotto_srv_send_multi *m, uint64_t *ids,
                         uint64_t *timestamp_ms);
/* The same, and when the server refuses the device set (ERR 30) with the
 * recipient's newest signed device list (HELLO features bit 2,
 * SOTTO_SRV_FEAT_MISMATCH_LIST), those bytes, unverified, into list (cap
 * bytes; SOTTO_ERR_BUFFER_TOO_SMALL if larger) with *list_len set; a bare
 * ERR(30) leaves *list_len 0. The return is SOTTO_SRV_E_MISMATCHED_DEVICES
 * either way. */
int sotto_net_send_multi_list(struct sotto_net *c, const struct sotto_srv_send_multi *m, uint64_t *ids,
                              uint64_t *timestamp_ms, uint8_t *list, size_t cap, size_t *list_len);
/* DEVLIST_GET: the newest signed device list of username as the server
 * stores it, into buf (cap >= SOTTO_SRV_MAX_DEVLIST); SOTTO_SRV_E_NOT_FOUND
 * when the account has none. The bytes are unverified: the caller checks
 * them with sotto_devlist_parse against the account key it trusts. */
int sotto_net_devlist_get(struct sotto_net *c, const char *username, uint8_t *buf, size_t cap, size_t *len);
/* UNREGISTER (device 1): the account, its devices, keys and queues are
 * deleted on the server; the name is held for the server's quarantine. */
int sotto_net_unregister(struct sotto_net *c);
/* SET_RECOVERY (device 1): the account's recovery code (the server keeps
 * its SHA-256). */
int sotto_net_set_recovery(struct sotto_net *c, const uint8_t code[SOTTO_SRV_RECOVERY_LEN]);
/* RECOVER (before AUTH): re-registers username with a new identity by its
 * recovery code; the old devices are removed; creds as for register. */
int sotto_net_recover(struct sotto_net *c, const char *username, const uint8_t code[SOTTO_SRV_RECOVERY_LEN],
                      const uint8_t *identity, size_t identity_len, uint32_t *device_id,
                      uint8_t secret[SOTTO_SRV_SECRET_LEN]);

/* Linking a device (proto.h "linking", docs/protocol-server.md). A slot
 * code is SOTTO_SRV_LINK_CODE_LEN bytes. Server errors: SOTTO_SRV_E_LINK_CODE
 * (unknown, used, expired or out of order), SOTTO_SRV_E_RATE (too many open
 * slots), SOTTO_SRV_E_FORBIDDEN (LINK_PUT by a device other than 1).
 *   link_open   before AUTH: opens a slot with keys; code and its lifetime.
 *   link_put    device 1: the slot's keys into keys (cap >=
 *               SOTTO_SRV_LINK_MAX_KEYS); blob_len 0 only reads them, else
 *               the blob is put.
 *   link_get    the slot's state and data into buf (cap >= SOTTO_SRV_LINK_MAX_BLOB).
 *   link_reply  the new device's reply (1..SOTTO_SRV_LINK_MAX_REPLY bytes).
 *   device_identity  this device's own identity blob (as REGISTER's), once. */
int sotto_net_link_open(struct sotto_net *c, const uint8_t *keys, size_t keys_len,
                        uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint32_t *ttl_s);
int sotto_net_link_put(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], const uint8_t *blob,
                       size_t blob_len, uint8_t *keys, size_t cap, size_t *keys_len);
int sotto_net_link_get(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint8_t *state, uint8_t *buf,
                       size_t cap, size_t *len);
int sotto_net_link_reply(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], const uint8_t *reply,
                         size_t len);
int sotto_net_device_identity(struct sotto_net *c, const uint8_t *ik, size_t len);

/* BLOB_* requests (proto.h "blobs"): the answer's payload in ans (clear it
 * with sotto_net_event_clear); PUT only through the async form. The async
 * form writes the request and returns: the answer comes as an
 * SOTTO_NET_EV_ANSWER event with *req_id. */
struct sotto_srv_blob_req;
int sotto_net_blob(struct sotto_net *c, uint8_t type, const struct sotto_srv_blob_req *m, struct sotto_net_event *ans);
int sotto_net_blob_async(struct sotto_net *c, uint8_t type, const struct sotto_srv_blob_req *m, uint32_t *req_id);
/* A BLOB_PUT of data_len bytes found at buf + SOTTO_NET_PUT_HEADROOM: the
 * SOTTO_NET_PUT_HEADROOM bytes before them are overwritten with the frame's
 * and the request's headers and the whole goes in one TLS write, without a
 * copy. The answer comes as an ANSWER event with *req_id. */
#define SOTTO_NET_PUT_HEADROOM (SOTTO_SRV_FRAME_HDR + SOTTO_SRV_BODY_HDR + SOTTO_SRV_BLOB_ID_LEN + 8)
int sotto_net_blob_put_inplace(struct sotto_net *c, const uint8_t *id, uint64_t offset, uint8_t *buf, size_t data_len,
                               uint32_t *req_id);

/* ---- pushes and pipelining ------------------------------------------------ */

/* Returns 1 with *ev filled, 0 if nothing arrived within timeout_ms (0 =
 * poll once), or an error code. */
int sotto_net_next_event(struct sotto_net *c, int timeout_ms, struct sotto_net_event *ev);
void sotto_net_event_clear(struct sotto_net_event *ev);

/* Pipelined SEND / ACK: write the request and return at once; the answer
 * comes back as an SOTTO_NET_EV_ANSWER event with this request id. */
int sotto_net_send_async(struct sotto_net *c, const char *username, uint32_t device_id, uint8_t type,
                         const uint8_t *body, size_t body_len, uint32_t *req_id);
int sotto_net_ack_async(struct sotto_net *c, uint64_t server_id, uint32_t *req_id);
/* Pushes dropped because the event queue was full while a request waited
 * for its answer. The server keeps what it pushed until it is acknowledged,
 * so a dropped MSG comes again on the next connection. */
uint64_t sotto_net_dropped(const struct sotto_net *c);
/* 1 if sotto_net_next_event has something without reading the socket
 * (queued events, or bytes TLS already decrypted): poll only when 0. */
int sotto_net_pending(const struct sotto_net *c);
/* Flushes pending output without waiting for anything else. */
int sotto_net_flush(struct sotto_net *c);

/* ---- raw access (tests, fuzzing the server) ------------------------------- */

int sotto_net_write_raw(struct sotto_net *c, const void *bytes, size_t len);
int sotto_net_write_frame(struct sotto_net *c, uint8_t type, uint32_t req_id, const void *payload, size_t len);

#endif
