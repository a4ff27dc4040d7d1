/* SPDX-License-Identifier: Apache-2.0 */
/* conn.h: the client's connection to its server, over client/net (sotto_net):
 * connect with the pinned certificate (or CA file), authenticate, keep the
 * pre-key stock topped up, fetch bundles, and turn every failure into one
 * line a person can act on.
 *
 * The key blobs the server stores for us are opaque to it; their layout is
 * the client's (docs/client.md, "What the server stores"):
 *   identity       0x05 || IK (32) || u32 registration id
 *   signed pre-key SPK (32) || XEdDSA signature (64)
 *   one-time EC    OPK (32)
 *   KEM pre-key    0x0A || ML-KEM-1024 public key (1568) || signature (64) */
#ifndef SOTTO_CLIENT_CONN_H
#define SOTTO_CLIENT_CONN_H

#include <net.h>
#include <sotto/session.h>

#include "core.h"

#define CONN_CONNECT_TIMEOUT_MS 5000
#define CONN_REQUEST_TIMEOUT_MS 15000
#define CONN_PEER_DEVICE 1 /* sotto talks to each account's first device */
#define CONN_IDENTITY_BLOB_LEN (SOTTO_SERIALIZED_PUBKEY_LEN + 4)
#define CONN_SPK_BLOB_LEN (SOTTO_PUBKEY_LEN + SOTTO_SIGNATURE_LEN)
#define CONN_KEM_BLOB_LEN (SOTTO_KEM_PUBKEY_LEN + SOTTO_SIGNATURE_LEN)
/* Stock kept on the server (it says "low" below SOTTO_SRV_KEYS_LOW). */
#define CONN_EC_STOCK 100
#define CONN_KEM_STOCK 20

/* struct conn (host, port, TLS context, connection) is in core.h. */

/* Splits "HOST:PORT" ("[v6]:PORT" too). 0 or -1. */
int conn_split(const char *hostport, char *host, size_t hcap, char *port, size_t pcap);
/* A server address is a list: "HOST:PORT[,HOST:PORT...]", at most
 * CONN_MAX_SERVERS nodes of one cluster (one TLS identity, one pin).
 * conn_list_count: how many, or 0 if any element is malformed. */
#define CONN_MAX_SERVERS 8
size_t conn_list_count(const char *list);
/* The i-th address of the list split as conn_split does. 0 or -1. */
int conn_list_nth(const char *list, size_t i, char *host, size_t hcap, char *port, size_t pcap);
/* Connects k (its ctx set up) to one address of list: from the one that
 * worked last (c->srv_next), the others in turn when one cannot be reached
 * (refused, timed out, closed); k->host/port name the one tried last.
 * 0 or the sotto_net error of the last attempt. */
int conn_connect_list(struct sc_client *c, struct conn *k, const char *list, int64_t deadline_ms);
/* Connects to the server of c->acct (registered), authenticates and tops up
 * pre-keys if the server says they run low. Records why on failure (sc_errdetail). */
int conn_open(struct sc_client *c, struct conn *k);
/* After a device was removed on purpose: forgets it in the device list seen
 * at the last connection, so that the next one does not report it. */
int conn_forget_device(struct sc_client *c, uint32_t device_id);
/* After a device was linked on purpose: adds it to that list, so that the
 * next connection does not report it as a change either. */
int conn_know_device(struct sc_client *c, uint32_t device_id);
/* The same, with every wait ending by deadline_ms (CLOCK_MONOTONIC, in ms;
 * 0 = the default timeouts only). */
int conn_open_until(struct sc_client *c, struct conn *k, int64_t deadline_ms);
void conn_close(struct conn *k);
/* Records the one-line error for a net result rc of what ("sending to bob");
 * user is the peer concerned (or NULL). Returns the SC_ERR_* it recorded. */
int conn_error(struct sc_client *c, const struct conn *k, int rc, const char *what, const char *user);
/* After a request's result rc: 1 if it was ERR 44 (the server has not
 * logged that account yet: it registered moments ago) and the request
 * should be sent again, after a pause (20 ms doubling to 500 ms; at most
 * CONN_KT_PENDING_TRIES times, about 5 s in all); else 0. *tries starts
 * at 0. */
#define CONN_KT_PENDING_TRIES 13
int conn_kt_pending_wait(int rc, int *tries);
/* Learns the certificate fingerprint of host:port (trust on first use). */
int conn_probe_pin(struct sc_client *c, const char *host, const char *port, char pin[65]);
/* Generates, stores (own transaction) and uploads pre-keys: a new signed
 * pre-key and last-resort KEM key when initial (at registration and at each
 * rotation; the replaced ones are kept for the grace period), plus up to
 * n_ec one-time EC and n_kem one-time KEM pre-keys (fewer if the bounded
 * stock is full). */
int conn_upload_keys(struct sc_client *c, struct conn *k, int initial, size_t n_ec, size_t n_kem);
/* After AUTH and on a KEYS_LOW notice: key lifecycle (handed-out keys
 * noted, expired ones deleted, signed and last-resort pre-keys rotated when
 * due) and, at most once per ACCOUNT_TOPUP_MIN_S, a top-up of the stock. */
int conn_top_up(struct sc_client *c, struct conn *k, uint32_t ec_left, uint32_t kem_left);
/* Fetches user's bundle into b (an SC_ERR_*, e.g. SC_ERR_UNKNOWN_USER). */
int conn_fetch_bundle(struct sc_client *c, struct conn *k, const char *user, struct sotto_bundle *b);
/* The bundle of one device of user (device 1: the same as conn_fetch_bundle,
 * key transparency included; another device: no log check, the caller
 * compares its identity key with the device's entry in the signed list). */
int conn_fetch_bundle_dev(struct sc_client *c, struct conn *k, const char *user, uint32_t device,
                          struct sotto_bundle *b);
/* ---- server certificate rotation (repin.c) ---- */
/* Record "server.pinkey": the pinned certificate's Ed25519 key and the
 * serial of the last rotation followed. load: 1 found, 0 none, or < 0. */
int conn_pinkey_load(struct sc_client *c, uint8_t key[32], uint64_t *serial);
/* Inside the caller's transaction. */
int conn_pinkey_save(struct sc_client *c, const uint8_t key[32], uint64_t serial);
/* After a pinned connection: saves the certificate's key (serial 0) if the
 * store has none, or another key than this certificate's. */
int conn_pinkey_learn(struct sc_client *c, struct conn *k);
/* Forgets the kept key (inside a transaction): unregister, register, recover. */
int conn_pinkey_del(struct sc_client *c);
/* The server presented another certificate than the pinned one
 * (SOTTO_NET_E_PIN): connects without trusting it, fetches the rotation
 * chain before sending anything else, and re-pins if a chain from the pinned
 * key leads to it (k->net is then that connection, ready for AUTH; event
 * SC_EV_SERVER_REPINNED). Otherwise SC_ERR_PIN_MISMATCH, nothing changed. */
int conn_repin(struct sc_client *c, struct conn *k, int timeout_ms);

/* The identity blob of our account. */
void conn_identity_blob(const struct sc_client *c, uint8_t out[CONN_IDENTITY_BLOB_LEN]);

#endif
