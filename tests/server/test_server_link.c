/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_link.c: link slots and device identity keys on the real
 * sotto-server (docs/protocol-server.md, "Linking a device"): a slot's whole
 * life (LINK_OPEN, LINK_PUT read and put, LINK_GET, LINK_REPLY, the reply
 * taken by the account that put); a code used twice, a wrong code, a step out
 * of order, a slot after its expiry (--link-ttl-seconds 1), too many open
 * slots from one address, LINK_PUT from a device other than 1, LINK_OPEN
 * after AUTH and LINK_PUT before it, oversize and malformed requests, the
 * device limit; DEVICE_IDENTITY (once, device 1 only its account key) and
 * BUNDLE of a device handing out that device's own key; the slot metrics.
 * Runs on SQLite and (with_pg.sh) on PostgreSQL. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sotto/keys.h>

#include "srvtest.h"
#include "testutil.h"

#define REQUIRE_VOID(e)      \
  do {                       \
    int require_ok_ = !!(e); \
    CHECK(require_ok_);      \
    if (!require_ok_) {      \
      srv_kill(&p);          \
      return;                \
    }                        \
  } while (0)

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
  uint8_t ik[37]; /* the REGISTER identity blob */
};

static int do_register(struct srv_proc *p, struct sotto_net_ctx **ctx, struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  uint8_t pub[32], priv[32];
  int rc;
  if (!c) return -1;
  if (sotto_keypair_generate(pub, priv) != 0) return -1;
  sotto_pubkey_serialize(a->ik, pub);
  a->ik[36] = 7;
  rc = sotto_net_register(c, a->name, a->ik, sizeof a->ik, &a->dev, a->secret);
  sotto_net_close(c);
  return rc;
}

static struct sotto_net *login(struct srv_proc *p, struct sotto_net_ctx **ctx, const char *name, uint32_t dev,
                               const uint8_t secret[32]) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  if (c && sotto_net_auth(c, name, dev, secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

/* Sends one raw frame and returns the CLOSE code the server answers with,
 * or 1000 + the ERR code of an answer (1000: OK), or 0 when nothing came. */
static int raw_answer(struct sotto_net *c, uint8_t type, const uint8_t *pl, size_t n) {
  struct sotto_net_event ev;
  int code = 0, i;
  if (sotto_net_write_frame(c, type, 77, pl, n) != 0) return -1;
  for (i = 0; i < 20 && sotto_net_next_event(c, 5000, &ev) == 1; i++) {
    int kind = ev.kind, evc = ev.code;
    sotto_net_event_clear(&ev);
    if (kind == SOTTO_NET_EV_CLOSE) {
      code = evc;
      break;
    }
    if (kind == SOTTO_NET_EV_ANSWER) {
      code = 1000 + evc;
      break;
    }
  }
  return code;
}

static void make_keys(struct sotto_srv_keys *k, uint8_t blob[64]) {
  memset(k, 0, sizeof *k);
  memset(blob, 0xAB, 64);
  k->flags = SOTTO_SRV_KEYS_SIGNED | SOTTO_SRV_KEYS_LAST_RESORT;
  k->signed_prekey = (struct sotto_srv_blob_id){7, blob, 64};
  k->last_resort = (struct sotto_srv_blob_id){9000, blob, 48};
}

static void test_slots(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}, {0}}, bob = {"bob", 0, {0}, {0}};
  struct sotto_net *a = NULL, *a2 = NULL, *b = NULL, *n = NULL, *x;
  uint8_t keys[SOTTO_SRV_LINK_MAX_KEYS], got[SOTTO_SRV_LINK_MAX_BLOB], code[SOTTO_SRV_LINK_CODE_LEN],
      wrong[SOTTO_SRV_LINK_CODE_LEN], sec2[32], blob[3000], reply[64], state = 9;
  uint32_t ttl = 0, id2 = 0;
  size_t glen = 0;
  int i;
  const char *const extra[] = {"--register-burst", "100", "--device-change-burst", "100", "--log-level", "2", NULL};

  if (srv_mkdir(&p, "link") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  randombytes_buf(keys, sizeof keys);
  randombytes_buf(blob, sizeof blob);
  randombytes_buf(reply, sizeof reply);
  randombytes_buf(wrong, sizeof wrong);
  REQUIRE_VOID(do_register(&p, &ctx, &alice) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &bob) == 0);
  REQUIRE_VOID((a = login(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  REQUIRE_VOID((b = login(&p, &ctx, "bob", 1, bob.secret)) != NULL);
  CHECK_RC(sotto_net_add_device(a, &id2, sec2), 0);
  REQUIRE_VOID(id2 == 2 && (a2 = login(&p, &ctx, "alice", 2, sec2)) != NULL);

  /* the new device opens a slot, before AUTH */
  REQUIRE_VOID((n = srv_connect(&p, &ctx, 1)) != NULL);
  CHECK_RC(sotto_net_link_open(n, keys, 80, code, &ttl), 0);
  CHECK(ttl == 600);
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_WAITING && glen == 0);
  /* nobody can reply before the blob is there */
  CHECK_RC(sotto_net_link_reply(n, code, reply, sizeof reply), SOTTO_SRV_E_LINK_CODE);
  /* device 1 reads the keys (as often as it likes) */
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), 0);
  CHECK(glen == 80 && memcmp(got, keys, 80) == 0);
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), 0);
  /* a device other than 1 may not put, nor read the keys */
  CHECK_RC(sotto_net_link_put(a2, code, blob, sizeof blob, got, sizeof got, &glen), SOTTO_SRV_E_FORBIDDEN);
  CHECK_RC(sotto_net_link_put(a2, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_FORBIDDEN);
  /* a wrong code, for every request */
  CHECK_RC(sotto_net_link_put(a, wrong, blob, sizeof blob, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_get(n, wrong, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_reply(n, wrong, reply, sizeof reply), SOTTO_SRV_E_LINK_CODE);
  /* one bit off is a wrong code too */
  code[5] ^= 0x01;
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  code[5] ^= 0x01;
  /* device 1 puts the blob, once */
  CHECK_RC(sotto_net_link_put(a, code, blob, sizeof blob, got, sizeof got, &glen), 0);
  CHECK(glen == 80 && memcmp(got, keys, 80) == 0);
  CHECK_RC(sotto_net_link_put(a, code, blob, sizeof blob, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_put(b, code, blob, 10, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  /* the new device polls and gets it */
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_PROVISIONED && glen == sizeof blob && memcmp(got, blob, sizeof blob) == 0);
  /* nothing for device 1 yet */
  CHECK_RC(sotto_net_link_get(a, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_PROVISIONED);
  /* it replies, once */
  CHECK_RC(sotto_net_link_reply(n, code, reply, sizeof reply), 0);
  CHECK_RC(sotto_net_link_reply(n, code, reply, sizeof reply), SOTTO_SRV_E_LINK_CODE);
  /* the reply goes to the account that put the blob only */
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == 0);
  CHECK_RC(sotto_net_link_get(b, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == 0);
  CHECK_RC(sotto_net_link_get(a, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == sizeof reply && memcmp(got, reply, sizeof reply) == 0);
  /* which closes the slot: the code is used */
  CHECK_RC(sotto_net_link_get(a, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);

  /* states: LINK_OPEN after AUTH, LINK_PUT before it */
  CHECK_RC(sotto_net_link_open(a, keys, 80, code, &ttl), SOTTO_SRV_E_STATE);
  CHECK_RC(sotto_net_link_put(n, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_NOT_AUTHED);

  /* at most 4 open slots per address (every test connection is 127.0.0.1) */
  {
    uint8_t codes[5][SOTTO_SRV_LINK_CODE_LEN];
    char *m;
    for (i = 0; i < 4; i++) CHECK_RC(sotto_net_link_open(n, keys, 33, codes[i], &ttl), 0);
    CHECK_RC(sotto_net_link_open(n, keys, 33, codes[4], &ttl), SOTTO_SRV_E_RATE);
    /* distinct codes */
    CHECK(memcmp(codes[0], codes[1], SOTTO_SRV_LINK_CODE_LEN) != 0 &&
          memcmp(codes[2], codes[3], SOTTO_SRV_LINK_CODE_LEN) != 0);
    m = srv_metrics(&p);
    CHECK(m && strstr(m, "sotto_link_slots 4\n") != NULL);
    CHECK(m && strstr(m, "sotto_link_total{event=\"done\"} 1\n") != NULL);
    CHECK(m && strstr(m, "sotto_link_total{event=\"provisioned\"} 1\n") != NULL);
    /* error 34 counted under its own code (the table once had room for 0-31 only) */
    CHECK(m && strstr(m, "sotto_errors_total{code=\"34\",reason=\"link code unknown, used or expired\"}") != NULL);
    free(m);
    /* a slot closes once used: then there is room again */
    CHECK_RC(sotto_net_link_put(a, codes[0], blob, 100, got, sizeof got, &glen), 0);
    CHECK_RC(sotto_net_link_reply(n, codes[0], reply, 1), 0);
    CHECK_RC(sotto_net_link_get(a, codes[0], &state, got, sizeof got, &glen), 0);
    CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == 1);
    CHECK_RC(sotto_net_link_open(n, keys, 33, codes[4], &ttl), 0);
  }

  /* bounds: keys and replies too long, a blob too long, malformed frames */
  {
    uint8_t pl[SOTTO_SRV_LINK_CODE_LEN + 2 + SOTTO_SRV_LINK_MAX_REPLY + 1];
    memset(pl, 0, sizeof pl);
    REQUIRE_VOID((x = srv_connect(&p, &ctx, 1)) != NULL);
    pl[0] = (uint8_t)((SOTTO_SRV_LINK_MAX_KEYS + 1) >> 8);
    pl[1] = (uint8_t)(SOTTO_SRV_LINK_MAX_KEYS + 1);
    CHECK(raw_answer(x, SOTTO_SRV_LINK_OPEN, pl, 2 + SOTTO_SRV_LINK_MAX_KEYS + 1) == 1000 + SOTTO_SRV_E_TOO_LARGE);
    pl[SOTTO_SRV_LINK_CODE_LEN] = (uint8_t)((SOTTO_SRV_LINK_MAX_REPLY + 1) >> 8);
    pl[SOTTO_SRV_LINK_CODE_LEN + 1] = (uint8_t)(SOTTO_SRV_LINK_MAX_REPLY + 1);
    pl[0] = 0;
    pl[1] = 0;
    CHECK(raw_answer(x, SOTTO_SRV_LINK_REPLY, pl, sizeof pl) == 1000 + SOTTO_SRV_E_TOO_LARGE);
    sotto_net_close(x);
    REQUIRE_VOID((x = srv_connect(&p, &ctx, 1)) != NULL);
    /* no keys at all: malformed, the connection goes */
    memset(pl, 0, sizeof pl);
    CHECK(raw_answer(x, SOTTO_SRV_LINK_OPEN, pl, 2) == SOTTO_SRV_E_MALFORMED);
    sotto_net_close(x);
    REQUIRE_VOID((x = srv_connect(&p, &ctx, 1)) != NULL);
    /* a code of the wrong length */
    CHECK(raw_answer(x, SOTTO_SRV_LINK_GET, pl, SOTTO_SRV_LINK_CODE_LEN - 1) == SOTTO_SRV_E_MALFORMED);
    sotto_net_close(x);
    {
      uint8_t big[SOTTO_SRV_LINK_CODE_LEN + 4];
      memset(big, 0, sizeof big);
      big[SOTTO_SRV_LINK_CODE_LEN + 1] = 0x01; /* 65536 + ... */
      big[SOTTO_SRV_LINK_CODE_LEN + 3] = 0x01;
      CHECK(raw_answer(a, SOTTO_SRV_LINK_PUT, big, sizeof big) == 1000 + SOTTO_SRV_E_TOO_LARGE);
    }
  }

  /* DEVICE_IDENTITY: device 2 sets its own key once; BUNDLE hands it out */
  {
    uint8_t ik2[37], other[37], kb[64], pub[32], priv[32];
    struct sotto_srv_keys k;
    struct sotto_srv_bundle_buf bb;
    REQUIRE_VOID(sotto_keypair_generate(pub, priv) == 0);
    sotto_pubkey_serialize(ik2, pub);
    ik2[36] = 9;
    memcpy(other, ik2, sizeof other);
    other[5] ^= 0x40;
    make_keys(&k, kb);
    CHECK_RC(sotto_net_upload_keys(a, &k, NULL, NULL), 0);
    CHECK_RC(sotto_net_device_identity(a2, ik2, sizeof ik2), 0);
    CHECK_RC(sotto_net_upload_keys(a2, &k, NULL, NULL), 0);
    CHECK_RC(sotto_net_device_identity(a2, ik2, sizeof ik2), 0); /* the same again: fine */
    CHECK_RC(sotto_net_device_identity(a2, other, sizeof other), SOTTO_SRV_E_STATE);
    CHECK_RC(sotto_net_fetch_bundle(b, "alice", 2, &bb), 0);
    CHECK(bb.identity_len == sizeof ik2 && memcmp(bb.identity, ik2, sizeof ik2) == 0);
    CHECK_RC(sotto_net_fetch_bundle(b, "alice", 1, &bb), 0);
    CHECK(bb.identity_len == sizeof alice.ik && memcmp(bb.identity, alice.ik, sizeof alice.ik) == 0);
    /* device 1's identity key is the account key */
    CHECK_RC(sotto_net_device_identity(a, alice.ik, sizeof alice.ik), 0);
    CHECK_RC(sotto_net_device_identity(a, ik2, sizeof ik2), SOTTO_SRV_E_FORBIDDEN);
    /* not a key at all */
    REQUIRE_VOID((x = login(&p, &ctx, "alice", 2, sec2)) != NULL);
    {
      uint8_t bad[2 + 20] = {0, 20, 0x05};
      CHECK(raw_answer(x, SOTTO_SRV_DEVICE_IDENTITY, bad, sizeof bad) == SOTTO_SRV_E_MALFORMED);
    }
    sotto_net_close(x);
    /* it survives a restart (it is in the store) */
    sotto_net_close(a2);
    a2 = NULL;
    sotto_net_close(a);
    a = NULL;
    sotto_net_close(b);
    b = NULL;
    sotto_net_close(n);
    n = NULL;
    CHECK(srv_stop(&p) == 0);
    REQUIRE_VOID(srv_start(&p, extra) == 0);
    sotto_net_ctx_free(ctx);
    ctx = NULL;
    REQUIRE_VOID((b = login(&p, &ctx, "bob", 1, bob.secret)) != NULL);
    CHECK_RC(sotto_net_fetch_bundle(b, "alice", 2, &bb), 0);
    CHECK(bb.identity_len == sizeof ik2 && memcmp(bb.identity, ik2, sizeof ik2) == 0);
    /* and the slots did not: a restart forgets them */
    REQUIRE_VOID((n = srv_connect(&p, &ctx, 1)) != NULL);
    CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  }

  if (a) sotto_net_close(a);
  if (a2) sotto_net_close(a2);
  if (b) sotto_net_close(b);
  if (n) sotto_net_close(n);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
  sotto_net_ctx_free(ctx);
}

/* Expiry and the device limit, on a server with a 1-second slot lifetime
 * and at most 2 devices per account. */
static void test_expiry_and_limit(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}, {0}};
  struct sotto_net *a = NULL, *n = NULL;
  uint8_t keys[40], got[SOTTO_SRV_LINK_MAX_BLOB], code[SOTTO_SRV_LINK_CODE_LEN], sec[32], state = 9;
  uint32_t ttl = 0, id = 0;
  size_t glen = 0;
  char *m;
  const char *const extra[] = {"--link-ttl-seconds", "1", "--max-devices", "2", "--device-change-burst", "100",
                               "--log-level", "2", NULL};

  if (srv_mkdir(&p, "linkttl") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  randombytes_buf(keys, sizeof keys);
  REQUIRE_VOID(do_register(&p, &ctx, &alice) == 0);
  REQUIRE_VOID((a = login(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  REQUIRE_VOID((n = srv_connect(&p, &ctx, 1)) != NULL);
  CHECK_RC(sotto_net_link_open(n, keys, sizeof keys, code, &ttl), 0);
  CHECK(ttl == 1);
  /* a slot past its lifetime is gone, whatever is asked of it */
  usleep(1500 * 1000);
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  m = srv_metrics(&p);
  CHECK(m && strstr(m, "sotto_link_total{event=\"expired\"} 1\n") != NULL);
  CHECK(m && strstr(m, "sotto_link_slots 0\n") != NULL);
  free(m);
  /* the device limit: the second device fits, a third does not */
  CHECK_RC(sotto_net_add_device(a, &id, sec), 0);
  CHECK(id == 2);
  CHECK_RC(sotto_net_add_device(a, &id, sec), SOTTO_SRV_E_TOO_MANY_DEVICES);
  sotto_net_close(a);
  sotto_net_close(n);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
  sotto_net_ctx_free(ctx);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0 || sotto_init() != 0) return 1;
  test_slots();
  test_expiry_and_limit();
  return test_done("test_server_link");
}
