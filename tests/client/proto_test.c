/* SPDX-License-Identifier: Apache-2.0 */
/* proto_test.c: the encoders proto/ gained when the protocol moved into one
 * module (ctest proto_roundtrip): each request the client writes is read
 * back by the server's parser, and each answer or push the server writes
 * by the client's, field for field; a byte less is refused. */
#include <stdio.h>
#include <string.h>

#include "frames.h"
#include "proto.h"
#include "wire.h"

static int fails, checks;

#define CHECK(cond, what)                                    \
  do {                                                       \
    checks++;                                                \
    if (cond) {                                              \
      printf("ok   %s\n", what);                             \
    } else {                                                 \
      fails++;                                               \
      printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__); \
    }                                                        \
  } while (0)

#define STR_IS(s, lit) ((s).len == strlen(lit) && memcmp((s).p, lit, (s).len) == 0)

int main(void) {
  uint8_t b[1024], secret[SOTTO_SRV_SECRET_LEN], got[SOTTO_SRV_SECRET_LEN];
  struct sotto__wr w;
  uint32_t ids[4] = {1, 2, 7, 0x7fffffff}, out[8], dev = 0, ec = 0, kem = 0, maxf = 0, maxm = 0;
  uint64_t u = 0, ts = 0;
  uint16_t ver = 0;
  size_t n = 0;
  memset(secret, 0xa5, sizeof secret);

  {
    struct sotto_srv_hello m;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_hello_req(&w, 1, 0);
    CHECK(!w.err && w.len == 2 && sotto__srv_parse_hello(b, w.len, &m) == 0 && m.version == 1 && m.features == 0,
          "HELLO request");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_hello_req(&w, 1, SOTTO_SRV_FEAT_NOTICE);
    CHECK(!w.err && w.len == 3 && sotto__srv_parse_hello(b, w.len, &m) == 0 && m.features == SOTTO_SRV_FEAT_NOTICE,
          "HELLO request with features (NOTICE understood)");
    b[3] = 0;
    CHECK(sotto__srv_parse_hello(b, 4, &m) != 0, "... two bytes of features: refused");
  }
  {
    struct sotto_srv_register m;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_register_req(&w, "alice", (const uint8_t *)"IDENTITY", 8);
    CHECK(!w.err && sotto__srv_parse_register(b, w.len, &m) == 0 && STR_IS(m.username, "alice") &&
              STR_IS(m.identity, "IDENTITY"),
          "REGISTER request");
    CHECK(sotto__srv_parse_register(b, w.len - 1, &m) != 0, "... one byte short is refused");
  }
  {
    struct sotto_srv_recover m;
    const uint8_t *code;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_recover_req(&w, "alice", secret, (const uint8_t *)"IDENTITY", 8);
    CHECK(!w.err && sotto__srv_parse_recover(b, w.len, &m) == 0 && STR_IS(m.username, "alice") &&
              memcmp(m.code, secret, SOTTO_SRV_RECOVERY_LEN) == 0 && STR_IS(m.identity, "IDENTITY"),
          "RECOVER request");
    CHECK(sotto__srv_parse_recover(b, w.len - 1, &m) != 0, "... one byte short is refused");
    CHECK(sotto__srv_parse_set_recovery(secret, SOTTO_SRV_RECOVERY_LEN, &code) == 0 && code == secret &&
              sotto__srv_parse_set_recovery(secret, SOTTO_SRV_RECOVERY_LEN - 1, &code) != 0,
          "SET_RECOVERY request (32 bytes exactly)");
  }
  {
    struct sotto_srv_auth m;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_auth_req(&w, "alice", 3, secret);
    CHECK(!w.err && sotto__srv_parse_auth(b, w.len, &m) == 0 && STR_IS(m.username, "alice") && m.device_id == 3 &&
              memcmp(m.secret, secret, sizeof secret) == 0,
          "AUTH request");
  }
  {
    struct sotto_srv_target m;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_devices_req(&w, "bob");
    CHECK(!w.err && sotto__srv_parse_devices_req(b, w.len, &m) == 0 && STR_IS(m.username, "bob"), "DEVICES request");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_bundle_req(&w, "bob", 2);
    CHECK(!w.err && sotto__srv_parse_bundle_req(b, w.len, &m) == 0 && STR_IS(m.username, "bob") && m.device_id == 2,
          "BUNDLE request");
  }
  {
    struct sotto_srv_send m;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_send(&w, "carol", 1, 3, (const uint8_t *)"ciphertext", 10);
    CHECK(!w.err && sotto__srv_parse_send(b, w.len, 1 << 16, &m) == 0 && STR_IS(m.username, "carol") &&
              m.device_id == 1 && m.type == 3 && m.body_len == 10 && memcmp(m.body, "ciphertext", 10) == 0,
          "SEND request");
    CHECK(sotto__srv_parse_send(b, w.len - 1, 1 << 16, &m) != 0, "... one byte short is refused");
  }
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, 0x0102030405060708ull);
  CHECK(!w.err && sotto__srv_parse_ack(b, w.len, &u) == 0 && u == 0x0102030405060708ull, "ACK request");
  CHECK(sotto__srv_parse_epoch(b, w.len, &u) == 0 && u == 0x0102030405060708ull, "EPOCH request");
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_device_remove(&w, 9);
  CHECK(!w.err && sotto__srv_parse_device_remove(b, w.len, &dev) == 0 && dev == 9, "DEVICE_REMOVE request");

  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_hello_ok(&w, 1, 70000, 65536);
  CHECK(!w.err && sotto__net_parse_hello(b, w.len, &ver, &maxf, &maxm) == 0 && ver == 1 && maxf == 70000 &&
            maxm == 65536,
        "HELLO answer");
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_creds(&w, 5, secret);
  CHECK(!w.err && sotto__net_parse_creds(b, w.len, &dev, got) == 0 && dev == 5 && !memcmp(got, secret, sizeof got),
        "REGISTER / ADD_DEVICE / ROTATE_SECRET answer");
  CHECK(sotto__net_parse_creds(b, w.len - 1, &dev, got) != 0, "... one byte short is refused");
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_counts(&w, 100, 20);
  CHECK(!w.err && sotto__net_parse_counts(b, w.len, &ec, &kem) == 0 && ec == 100 && kem == 20,
        "AUTH / KEYS_UPLOAD answer, KEYS_LOW push");
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_devices(&w, ids, 4);
  CHECK(!w.err && sotto__srv_parse_devices(b, w.len, out, 8, &n) == 0 && n == 4 && out[2] == 7 && out[3] == 0x7fffffff,
        "DEVICES answer");
  {
    const uint32_t dz[4] = {20000, 20424, 0, 0xffffffff};
    uint32_t dg[8] = {0};
    int has = -1;
    CHECK(sotto__srv_parse_devices_seen(b, w.len, out, dg, 8, &n, &has) == 0 && n == 4 && has == 0,
          "DEVICES answer without last-seen days (another account, an older server)");
    sotto__srv_put_devices_days(&w, dz, 4);
    CHECK(!w.err && sotto__srv_parse_devices_seen(b, w.len, out, dg, 8, &n, &has) == 0 && n == 4 && has == 1 &&
              dg[0] == 20000 && dg[1] == 20424 && dg[3] == 0xffffffff && out[3] == 0x7fffffff,
          "DEVICES answer with last-seen days");
    CHECK(sotto__srv_parse_devices(b, w.len, out, 8, &n) == 0 && n == 4, "... the plain parser takes it too");
    CHECK(sotto__srv_parse_devices_seen(b, w.len - 1, out, dg, 8, &n, &has) != 0, "... a day cut short is refused");
    CHECK(sotto__srv_parse_devices_seen(b, w.len - 4, out, dg, 8, &n, &has) != 0, "... a day missing is refused");
    b[w.len] = 0;
    CHECK(sotto__srv_parse_devices_seen(b, w.len + 1, out, dg, 8, &n, &has) != 0, "... a trailing byte is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_devices(&w, ids, 4);
  }
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_sent(&w, 42, 1700000000000ull);
  CHECK(!w.err && sotto__net_parse_sent(b, w.len, &u, &ts) == 0 && u == 42 && ts == 1700000000000ull, "SEND answer");
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_epoch_ok(&w, 77);
  CHECK(!w.err && sotto__net_parse_epoch(b, w.len, &u) == 0 && u == 77, "EPOCH answer");
  CHECK(sotto__net_parse_epoch(b, w.len - 1, &u) != 0 && sotto__net_parse_epoch(b, w.len + 1, &u) != 0,
        "... short or long is refused");
  {
    /* NOTICE: the server's own push about expired envelopes. */
    struct sotto_srv_notice m, nt;
    struct sotto_net_event ev;
    uint8_t body[SOTTO_SRV_NOTICE_MAX_BODY], fr[9 + 16 + SOTTO_SRV_NOTICE_MAX_BODY];
    size_t bl, i;
    memset(&m, 0, sizeof m);
    m.kind = SOTTO_SRV_NOTICE_EXPIRED_SENT;
    m.peer.p = (const uint8_t *)"bob";
    m.peer.len = 3;
    m.count = 20;
    m.n_items = SOTTO_SRV_NOTICE_MAX_ITEMS;
    for (i = 0; i < SOTTO_SRV_NOTICE_MAX_ITEMS; i++) {
      m.items[i].id = 1000 + i;
      m.items[i].timestamp_ms = 1700000000000ull + i;
    }
    sotto__wr_init(&w, body, sizeof body);
    sotto__srv_put_notice_body(&w, &m);
    bl = w.len;
    CHECK(!w.err && bl == SOTTO_SRV_NOTICE_MAX_BODY - (SOTTO_SRV_USER_MAX - 3), "NOTICE body encodes");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_notice(&w, 99, 1800000000000ull, body, bl);
    CHECK(!w.err && sotto__srv_parse_notice(b, w.len, &nt) == 0 && nt.id == 99 &&
              nt.timestamp_ms == 1800000000000ull && nt.kind == SOTTO_SRV_NOTICE_EXPIRED_SENT && nt.count == 20 &&
              nt.n_items == 16 && nt.peer.len == 3 && memcmp(nt.peer.p, "bob", 3) == 0 && nt.items[15].id == 1015 &&
              nt.items[15].timestamp_ms == 1700000000015ull,
          "NOTICE push, field for field");
    CHECK(sotto__srv_parse_notice(b, w.len - 1, &nt) == SOTTO_ERR_TRUNCATED &&
              sotto__srv_parse_notice(b, 15, &nt) == SOTTO_ERR_TRUNCATED,
          "... a byte less is refused");
    b[w.len] = 0;
    CHECK(sotto__srv_parse_notice(b, w.len + 1, &nt) == SOTTO_ERR_TRAILING, "... a byte more is refused");
    body[0] = 3;
    CHECK(sotto__srv_parse_notice_body(body, bl, &nt) == SOTTO_ERR_MALFORMED, "... an unknown kind is refused");
    body[0] = SOTTO_SRV_NOTICE_EXPIRED_RECEIVED;
    body[2] = 'B';
    CHECK(sotto__srv_parse_notice_body(body, bl, &nt) == SOTTO_ERR_MALFORMED, "... an invalid peer name is refused");
    body[2] = 'b';
    body[2 + 3 + 3] = 15; /* count 15 < 16 items listed */
    CHECK(sotto__srv_parse_notice_body(body, bl, &nt) == SOTTO_ERR_MALFORMED, "... fewer counted than listed: refused");
    body[2 + 3 + 3] = 20;
    body[2 + 3 + 4] = 17;
    CHECK(sotto__srv_parse_notice_body(body, bl, &nt) == SOTTO_ERR_TOO_LARGE, "... more than 16 items: refused");
    body[2 + 3 + 4] = 16;
    /* The client's decoder: a NOTICE frame becomes a NOTICE event, never a MSG. */
    sotto__srv_frame_hdr(fr, SOTTO_SRV_NOTICE, 0, 16 + bl);
    sotto__wr_init(&w, fr + 9, sizeof fr - 9);
    sotto__srv_put_notice(&w, 7, 8, body, bl);
    CHECK(sotto__net_decode(fr + 4, 5 + w.len, 65536, &ev) == 0 && ev.kind == SOTTO_NET_EV_NOTICE && ev.id == 7 &&
              ev.has_id && ev.body_len == bl && memcmp(ev.body, body, bl) == 0,
          "NOTICE frame decodes to a NOTICE event (not a message)");
    sotto_net_event_clear(&ev);
    fr[9 + 16] = 9; /* bad kind */
    CHECK(sotto__net_decode(fr + 4, 5 + w.len, 65536, &ev) == 0 && ev.kind == SOTTO_NET_EV_BAD && ev.has_id &&
              ev.id == 7,
          "a bad NOTICE is a BAD event with its id (so it can be acknowledged)");
    sotto_net_event_clear(&ev);
  }

  /* Key transparency: requests and answers (both read in proto/). */
  {
    uint8_t head[SOTTO_SRV_KT_HEAD_LEN], cos[2 * SOTTO_SRV_KT_COSIG_LEN], pk[SOTTO_SRV_KT_PK_LEN];
    struct sotto_srv_str user;
    struct sotto_srv_kt_range rg;
    struct sotto_srv_kt_cosign cs;
    struct sotto_srv_kt_head kh;
    struct sotto_srv_kt_proof kp;
    struct sotto_srv_kt_entry ke[4];
    size_t nk = 0;
    uint64_t old;
    memset(head, 0x11, sizeof head);
    memset(cos, 0x22, sizeof cos);
    memset(pk, 0x33, sizeof pk);
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_search_req(&w, "alice");
    CHECK(!w.err && sotto__srv_parse_kt_search_req(b, w.len, &user) == 0 && STR_IS(user, "alice"),
          "KT_SEARCH request");
    CHECK(sotto__srv_parse_kt_search_req(b, w.len - 1, &user) != 0, "... one byte short is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_u64_req(&w, 7);
    CHECK(!w.err && sotto__srv_parse_kt_consistency_req(b, w.len, &old) == 0 && old == 7, "KT_CONSISTENCY request");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_u64_req(&w, 0);
    CHECK(sotto__srv_parse_kt_consistency_req(b, w.len, &old) != 0, "... size 0 is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_updates_req(&w, 5, 3);
    CHECK(!w.err && sotto__srv_parse_kt_updates_req(b, w.len, &rg) == 0 && rg.first == 5 && rg.count == 3,
          "KT_UPDATES request");
    CHECK(sotto__srv_parse_kt_updates_req(b, w.len - 1, &rg) != 0, "... one byte short is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_updates_req(&w, 5, SOTTO_SRV_KT_MAX_UPDATES + 1);
    CHECK(sotto__srv_parse_kt_updates_req(b, w.len, &rg) != 0, "... more than the limit is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_cosign_req(&w, pk, head, cos);
    CHECK(!w.err && sotto__srv_parse_kt_cosign_req(b, w.len, &cs) == 0 && memcmp(cs.witness_pk, pk, 32) == 0 &&
              memcmp(cs.head, head, sizeof head) == 0 && memcmp(cs.cosig, cos, SOTTO_SRV_KT_COSIG_LEN) == 0,
          "KT_COSIGN request");
    CHECK(sotto__srv_parse_kt_cosign_req(b, w.len - 1, &cs) != 0, "... one byte short is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_head(&w, head, cos, 2);
    CHECK(!w.err && sotto__srv_parse_kt_head(b, w.len, &kh) == 0 && kh.n_cosigs == 2 &&
              memcmp(kh.head, head, sizeof head) == 0 && memcmp(kh.cosigs, cos, sizeof cos) == 0,
          "KT_HEAD answer");
    CHECK(sotto__srv_parse_kt_head(b, w.len - 1, &kh) != 0 && sotto__srv_parse_kt_head(b, w.len + 1, &kh) != 0,
          "... one byte short or long is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_proof(&w, head, (const uint8_t *)"proofbytes", 10);
    CHECK(!w.err && sotto__srv_parse_kt_proof(b, w.len, &kp) == 0 && kp.proof_len == 10 &&
              memcmp(kp.proof, "proofbytes", 10) == 0 && memcmp(kp.head, head, sizeof head) == 0,
          "KT_SEARCH / KT_CONSISTENCY answer");
    CHECK(sotto__srv_parse_kt_proof(b, w.len - 1, &kp) != 0, "... one byte short is refused");
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, 2);
    sotto__srv_put_kt_entry(&w, head, (const uint8_t *)"update-one", 10);
    sotto__srv_put_kt_entry(&w, head, (const uint8_t *)"two", 3);
    CHECK(!w.err && sotto__srv_parse_kt_updates(b, w.len, ke, 4, 100, &nk) == 0 && nk == 2 &&
              ke[0].update_len == 10 && memcmp(ke[1].update, "two", 3) == 0 && ke[1].update_len == 3,
          "KT_UPDATES answer");
    CHECK(sotto__srv_parse_kt_updates(b, w.len - 1, ke, 4, 100, &nk) != 0 &&
              sotto__srv_parse_kt_updates(b, w.len, ke, 1, 100, &nk) != 0 &&
              sotto__srv_parse_kt_updates(b, w.len, ke, 4, 5, &nk) != 0,
          "... short, too many entries or too long an update is refused");
  }
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
