/* SPDX-License-Identifier: Apache-2.0 */
/* repin.c: following a server certificate rotation (docs/protocol-server.md,
 * "Certificate rotation"; docs/client.md, "Server certificate").
 *
 * Besides the pin (SHA-256 of the certificate, in the account record) the
 * store keeps record "server.pinkey": the pinned certificate's Ed25519
 * public key and the serial of the last rotation statement followed:
 *   u8 version (1) | key[32] | u64 serial
 * It is written at registration, by `sotto server set`, at the first
 * connection of an account registered before it existed, and at each
 * re-pin. When the server presents another certificate, the client completes
 * the TLS handshake WITHOUT trusting it, sends HELLO and ROTATION (nothing
 * else: no credentials), and walks the chain from the pinned key
 * (sotto__rot_follow). Only a chain that ends exactly at the presented
 * certificate re-pins it; otherwise the connection is refused as before. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "conn.h"
#include "record.h"
#include "rotation.h"

#define PINKEY_REC "server.pinkey"
#define PINKEY_VERSION 1

int conn_pinkey_load(struct sc_client *c, uint8_t key[32], uint64_t *serial) {
  uint8_t *v = NULL, ver = 0;
  size_t vn = 0;
  struct rec_rd r;
  int rc;
  memset(key, 0, 32);
  *serial = 0;
  if ((rc = store_get(c->st, PINKEY_REC, &v, &vn)) <= 0) return rc;
  rec_rd_init(&r, v, vn);
  rec_get_u8(&r, &ver);
  rec_get(&r, key, 32);
  rec_get_u64(&r, serial);
  rc = ver == PINKEY_VERSION && rec_rd_end(&r) == 0 ? 1 : STORE_E_CORRUPT;
  store_free_value(v, vn);
  return rc;
}

int conn_pinkey_save(struct sc_client *c, const uint8_t key[32], uint64_t serial) {
  struct rec_wr w;
  int rc;
  rec_wr_init(&w, 41);
  rec_put_u8(&w, PINKEY_VERSION);
  rec_put(&w, key, 32);
  rec_put_u64(&w, serial);
  rc = rec_wr_ok(&w) ? SC_ERR_NOMEM : store_put(c->st, PINKEY_REC, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

int conn_pinkey_del(struct sc_client *c) { return store_del(c->st, PINKEY_REC); }

/* After a connection verified by the pin: an account registered before the
 * key was kept learns it now (the certificate is the pinned one). A kept key
 * that is not this certificate's (left from another server, or from before a
 * pin changed) is replaced, serial 0: only the key of the certificate the pin
 * names may sign our next pin. */
int conn_pinkey_learn(struct sc_client *c, struct conn *k) {
  uint8_t key[32], fp[32], pin[32], kept[32];
  uint64_t serial;
  size_t bl = 0;
  int rc;
  if (!c->acct->pin[0] || sotto_net_peer(k->net, fp, key) != 0) return 0; /* CA mode, or not Ed25519 */
  if (sodium_hex2bin(pin, 32, c->acct->pin, 64, NULL, &bl, NULL) != 0 || bl != 32 ||
      sodium_memcmp(pin, fp, 32) != 0)
    return 0;
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = conn_pinkey_load(c, kept, &serial)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (rc == 1 && sodium_memcmp(kept, key, 32) == 0) {
    store_rollback(c->st);
    return 0;
  }
  if ((rc = conn_pinkey_save(c, key, 0)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

int conn_repin(struct sc_client *c, struct conn *k, int timeout_ms) {
  struct sotto_rot_statement *chain = NULL;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *net = NULL;
  uint8_t pinned[32], fp[32], key[32];
  uint64_t serial = 0, new_serial = 0;
  size_t n = 0;
  char hex[65];
  int rc, had;

  if ((had = conn_pinkey_load(c, pinned, &serial)) < 0) return sc__store_error(c, had);
  if (had == 0) return conn_error(c, k, SOTTO_NET_E_PIN, "connecting", NULL); /* nothing to verify with */
  if ((ctx = sotto_net_ctx_new_unverified()) == NULL || (chain = calloc(SOTTO_ROT_MAX_CHAIN, sizeof *chain)) == NULL) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* Provisional: TLS up, certificate not trusted yet. Only HELLO and
   * ROTATION go over this connection until the chain verifies. */
  if ((rc = sotto_net_connect(ctx, k->host, k->port, timeout_ms, 1, &net)) != 0) {
    rc = conn_error(c, k, rc, "connecting", NULL);
    goto out;
  }
  sotto_net_set_timeout(net, timeout_ms);
  if (sotto_net_peer(net, fp, key) != 0 || (rc = sotto_net_rotation(net, chain, SOTTO_ROT_MAX_CHAIN, &n)) != 0 ||
      sotto__rot_follow(chain, n, pinned, serial, fp, key, sc_now_ms() / 1000, &new_serial) != 0) {
    rc = conn_error(c, k, SOTTO_NET_E_PIN, "connecting", NULL);
    goto out;
  }
  /* The chain leads from our pinned key to this certificate: pin it. */
  if ((rc = sc__begin(c)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  sodium_bin2hex(hex, sizeof hex, fp, 32);
  snprintf(c->acct->pin, sizeof c->acct->pin, "%s", hex);
  if ((rc = account_save(c->st, c->acct)) != 0 || (rc = conn_pinkey_save(c, key, new_serial)) != 0 ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
    goto out;
  }
  {
    struct sc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_SERVER_REPINNED;
    ev.peer = "";
    ev.detail = hex;
    ev.count = new_serial;
    ev.timestamp_ms = sc_now_ms();
    sc__emit(c, &ev);
  }
  k->net = net; /* the same connection goes on, now trusted: AUTH next */
  net = NULL;
  rc = 0;
out:
  if (net) sotto_net_close(net);
  sotto_net_ctx_free(ctx); /* a connection does not need its context after the handshake */
  free(chain);
  return rc;
}
