/* SPDX-License-Identifier: Apache-2.0 */
/* srv_link.c: link slots, the one-time mailboxes through which a new device
 * and device 1 of an account exchange the provisioning message and the new
 * device's membership signature (docs/multi-device.md, "Linking";
 * docs/protocol-server.md, "Linking a device").
 *
 * A slot lives in memory only (in cluster mode: in Redis, below): nothing
 * about it reaches the store, a log line or the requisition report, and a
 * restart forgets every slot (the new device then opens another). Its life:
 *   LINK_OPEN   (new device, before AUTH) opens it with the device's public
 *               keys and gets a random code;
 *   LINK_PUT    (device 1 of an account) reads the keys, then puts the
 *               provisioning blob, once (WAITING -> PROVISIONED);
 *   LINK_GET    (new device) polls for the blob;
 *   LINK_REPLY  (new device) answers once (PROVISIONED -> REPLIED);
 *   LINK_GET    (device 1 of the account that put) takes the reply, which
 *               closes the slot.
 * A slot expires link-ttl-seconds after LINK_OPEN whatever its state. Every
 * request that names a slot by a code it does not match (unknown, used,
 * expired, or a step out of order) gets the one answer ERR(34).
 *
 * Limits: SLOTS_MAX slots in all, SLOTS_PER_ADDR open per source address
 * (counted by the keyed hash of the address the connection already has for
 * its pre-auth share, so no address is kept). The blobs are bounded by the
 * protocol (SOTTO_SRV_LINK_MAX_BLOB), so the memory held is at most
 * SLOTS_MAX x 64 KiB. Codes come from the CSPRNG (128 bits) and are compared
 * in constant time against every slot, so the time of a lookup says nothing
 * about which slot, if any, matched.
 *
 * Everything runs on the I/O thread, answered in place (no store). In
 * cluster mode with Redis up the slots live in Redis instead (srv_cluster.c,
 * the same states, limits and expiry, one Lua script per step), so the two
 * devices may reach different nodes; while Redis is down each node serves
 * slots from its own memory as here (log event cluster_degraded says
 * link_slots=per-node; metric sotto_cluster_link_ops_total{result="local"}). */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "srv_internal.h"

#define SLOTS_MAX 256
#define SLOTS_PER_ADDR 4

struct link_slot {
  uint8_t used, state;
  uint8_t code[SOTTO_SRV_LINK_CODE_LEN];
  uint64_t addr_key;  /* the opener's keyed address hash (srv_loop.c) */
  int64_t expires_ms; /* mono */
  int64_t account_id; /* the account that put the blob (PROVISIONED, REPLIED) */
  uint8_t keys[SOTTO_SRV_LINK_MAX_KEYS];
  size_t keys_len;
  uint8_t *blob; /* PROVISIONED: the provisioning ciphertext */
  size_t blob_len;
  uint8_t reply[SOTTO_SRV_LINK_MAX_REPLY];
  size_t reply_len;
};

struct srv_link {
  struct link_slot slot[SLOTS_MAX];
  size_t open; /* slots in use */
};

static void slot_free(struct srv_link *l, struct link_slot *sl) {
  if (!sl->used) return;
  free(sl->blob);
  sodium_memzero(sl, sizeof *sl);
  l->open--;
}

/* Slots past their time go (at most SLOTS_MAX to look at). */
static void sweep(struct srv *s, int64_t now) {
  size_t i;
  for (i = 0; i < SLOTS_MAX; i++) {
    struct link_slot *sl = &s->link->slot[i];
    if (sl->used && now >= sl->expires_ms) {
      slot_free(s->link, sl);
      s->m.link_expired++;
    }
  }
}

/* The slot whose code is code, or NULL. Every slot is compared, in
 * constant time, whether or not one matched already. */
static struct link_slot *find(struct srv *s, const uint8_t *code) {
  struct link_slot *hit = NULL;
  size_t i;
  for (i = 0; i < SLOTS_MAX; i++) {
    struct link_slot *sl = &s->link->slot[i];
    int eq = sodium_memcmp(sl->code, code, SOTTO_SRV_LINK_CODE_LEN) == 0;
    if (eq && sl->used) hit = sl;
  }
  return hit;
}

size_t sotto__srv_link_open_count(const struct srv *s) {
  return s->link ? s->link->open : 0;
}

void sotto__srv_link_close(struct srv *s) {
  size_t i;
  if (!s->link) return;
  for (i = 0; i < SLOTS_MAX; i++) slot_free(s->link, &s->link->slot[i]);
  free(s->link);
  s->link = NULL;
}

static void refuse(struct srv *s, struct conn *c, uint32_t req_id) {
  s->m.link_refused++;
  sotto__srv_send_err(s, c, req_id, SOTTO_SRV_E_LINK_CODE);
}

static void link_open(struct srv *s, struct conn *c, const struct sotto_srv_frame *f, const struct sotto_srv_link *m,
                      int64_t now) {
  struct link_slot *sl = NULL;
  struct sotto__wr w;
  size_t i, mine = 0;
  for (i = 0; i < SLOTS_MAX; i++) {
    struct link_slot *x = &s->link->slot[i];
    if (x->used && x->addr_key == c->ukey_addr) mine++;
    if (!x->used && !sl) sl = x;
  }
  if (mine >= SLOTS_PER_ADDR || !sl) {
    s->m.rate_limited++;
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_RATE);
    return;
  }
  memset(sl, 0, sizeof *sl);
  /* A fresh code that no open slot has (a collision of 128 random bits
   * does not happen, but the check costs nothing). */
  do {
    randombytes_buf(sl->code, sizeof sl->code);
  } while (find(s, sl->code) != NULL);
  sl->used = 1;
  sl->state = SOTTO_SRV_LINK_WAITING;
  sl->addr_key = c->ukey_addr;
  sl->expires_ms = now + s->cfg->link_ttl_s * 1000;
  memcpy(sl->keys, m->data, m->data_len);
  sl->keys_len = m->data_len;
  s->link->open++;
  s->m.link_opened++;
  if (sotto__srv_frame_begin(c, &w, SOTTO_SRV_LINK_CODE_LEN + 4) != 0) return;
  sotto__srv_put_link_opened(&w, sl->code, (uint32_t)s->cfg->link_ttl_s);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
}

static void link_put(struct srv *s, struct conn *c, const struct sotto_srv_frame *f, const struct sotto_srv_link *m) {
  struct link_slot *sl = find(s, m->code);
  struct sotto__wr w;
  /* Only device 1 holds the account key that signs the device list. */
  if (c->device_id != 1) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_FORBIDDEN);
    return;
  }
  if (!sl || sl->state != SOTTO_SRV_LINK_WAITING) {
    refuse(s, c, f->req_id);
    return;
  }
  if (m->data_len) {
    if ((sl->blob = malloc(m->data_len)) == NULL) {
      sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_INTERNAL);
      return;
    }
    memcpy(sl->blob, m->data, m->data_len);
    sl->blob_len = m->data_len;
    sl->account_id = c->account_id;
    sl->state = SOTTO_SRV_LINK_PROVISIONED;
    s->m.link_provisioned++;
  }
  if (sotto__srv_frame_begin(c, &w, 2 + sl->keys_len) != 0) return;
  sotto__srv_put_blob16(&w, sl->keys, sl->keys_len);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
}

static void link_get(struct srv *s, struct conn *c, const struct sotto_srv_frame *f, const struct sotto_srv_link *m) {
  struct link_slot *sl = find(s, m->code);
  struct sotto__wr w;
  const uint8_t *d = NULL;
  size_t n = 0;
  int take = 0;
  if (!sl) {
    refuse(s, c, f->req_id);
    return;
  }
  if (sl->state == SOTTO_SRV_LINK_PROVISIONED) {
    d = sl->blob;
    n = sl->blob_len;
  } else if (sl->state == SOTTO_SRV_LINK_REPLIED && c->state == S_AUTHED && c->account_id == sl->account_id) {
    d = sl->reply;
    n = sl->reply_len;
    take = 1;
  }
  if (sotto__srv_frame_begin(c, &w, 5 + n) != 0) return;
  sotto__srv_put_link_state(&w, sl->state, d, n);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
  if (take) {
    slot_free(s->link, sl);
    s->m.link_done++;
  }
}

static void link_reply(struct srv *s, struct conn *c, const struct sotto_srv_frame *f,
                       const struct sotto_srv_link *m) {
  struct link_slot *sl = find(s, m->code);
  if (!sl || sl->state != SOTTO_SRV_LINK_PROVISIONED) {
    refuse(s, c, f->req_id);
    return;
  }
  memcpy(sl->reply, m->data, m->data_len);
  sl->reply_len = m->data_len;
  /* The blob was read; it is not needed any more. */
  sodium_memzero(sl->blob, sl->blob_len);
  free(sl->blob);
  sl->blob = NULL;
  sl->blob_len = 0;
  sl->state = SOTTO_SRV_LINK_REPLIED;
  sotto__srv_send_simple(c, SOTTO_SRV_OK, f->req_id, NULL, 0);
}

int sotto__srv_link_frame(struct srv *s, struct conn *c, const struct sotto_srv_frame *f) {
  struct sotto_srv_link m;
  int64_t now;
  int rc;
  if (f->type != SOTTO_SRV_LINK_OPEN && f->type != SOTTO_SRV_LINK_PUT && f->type != SOTTO_SRV_LINK_GET &&
      f->type != SOTTO_SRV_LINK_REPLY)
    return 0;
  /* Which state allows which: OPEN before AUTH only (it is counted by the
   * connection's address, known only then); PUT after AUTH only. */
  if (f->type == SOTTO_SRV_LINK_OPEN && c->state == S_AUTHED) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_STATE);
    return 1;
  }
  if (f->type == SOTTO_SRV_LINK_PUT && c->state != S_AUTHED) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_NOT_AUTHED);
    return 1;
  }
  if (c->version < 2) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_OLD_PROTOCOL);
    return 1;
  }
  if ((rc = sotto__srv_parse_link_req(f->type, f->p, f->len, &m)) != 0) {
    if (rc == SOTTO_ERR_TOO_LARGE)
      sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_TOO_LARGE);
    else
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return 1;
  }
  if (!s->link && (s->link = calloc(1, sizeof *s->link)) == NULL) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_INTERNAL);
    return 1;
  }
  if (f->type == SOTTO_SRV_LINK_PUT && c->device_id != 1) {
    /* Only device 1 holds the account key that signs the device list. */
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_FORBIDDEN);
    return 1;
  }
  /* Cluster mode with Redis up: the slot lives in Redis, so the two devices
   * may reach different nodes (srv_cluster.c); Redis down: this node's
   * memory, as without --cluster. */
  if (s->cl && sotto__srv_cluster_link(s, c, f, &m, SLOTS_PER_ADDR, SLOTS_MAX)) return 1;
  now = sotto__srv_mono_ms();
  sweep(s, now);
  switch (f->type) {
  case SOTTO_SRV_LINK_OPEN:
    link_open(s, c, f, &m, now);
    break;
  case SOTTO_SRV_LINK_PUT:
    link_put(s, c, f, &m);
    break;
  case SOTTO_SRV_LINK_GET:
    link_get(s, c, f, &m);
    break;
  default:
    link_reply(s, c, f, &m);
    break;
  }
  return 1;
}
