/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_crash.c: durability under SIGKILL.
 *
 * Alice streams envelopes to bob (pipelined) while bob receives and acks
 * most of them; the server is killed with SIGKILL at a random moment, 12
 * times, and restarted on the same data directory. Afterwards bob drains his
 * queue. Checked: every envelope whose SEND was acknowledged is delivered at
 * least once; every delivered envelope is one alice sent, byte for byte, from
 * alice's device; a server id always names the same envelope. Bounded: each
 * round runs < 1 s, the drain < 20 s. */
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srvtest.h"
#include "testutil.h"
#include "wire.h"

#define ROUNDS 12
#define MAX_SEQ 200000
#define WINDOW 64
#define BODY_LEN 64

static uint64_t acked_id[MAX_SEQ];  /* server id from alice's OK, 0 if none */
static uint64_t seen_id[MAX_SEQ];   /* server id bob saw it under, 0 if not yet */
static uint8_t round_of[MAX_SEQ];   /* the round alice sent it in */
static uint8_t body_key[crypto_generichash_KEYBYTES];
static unsigned bad_body, id_mismatch;

static void make_body(uint8_t out[BODY_LEN], uint32_t seq) {
  uint8_t s[4] = {(uint8_t)(seq >> 24), (uint8_t)(seq >> 16), (uint8_t)(seq >> 8), (uint8_t)seq};
  memcpy(out, s, 4);
  crypto_generichash(out + 4, BODY_LEN - 4, s, 4, body_key, sizeof body_key);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
};

static struct sotto_net *login(struct srv_proc *p, struct sotto_net_ctx **ctx, const struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  if (c && sotto_net_auth(c, a->name, a->dev, a->secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

/* Checks one delivered envelope; returns 1 if valid. */
static int check_msg(const struct sotto_net_event *ev) {
  uint8_t want[BODY_LEN];
  uint32_t seq;
  if (ev->body_len != BODY_LEN || strcmp(ev->sender, "alice") != 0 || ev->sender_device != 1) {
    bad_body++;
    return 0;
  }
  seq = (uint32_t)ev->body[0] << 24 | (uint32_t)ev->body[1] << 16 | (uint32_t)ev->body[2] << 8 | ev->body[3];
  make_body(want, seq);
  if (seq >= MAX_SEQ || memcmp(want, ev->body, BODY_LEN) != 0) {
    bad_body++;
    return 0;
  }
  if ((seen_id[seq] && seen_id[seq] != ev->id) || (acked_id[seq] && acked_id[seq] != ev->id)) id_mismatch++;
  seen_id[seq] = ev->id;
  return 1;
}

int main(int argc, char **argv) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  const char *const extra[] = {"--send-burst", "1000000", "--send-rate", "1000000", "--max-queue", "1000000",
                               "--max-queue-per-sender", "1000000",
                               "--log-level", "0", NULL};
  uint32_t next_seq = 0, pend_req[WINDOW], pend_seq[WINDOW];
  unsigned n_pend = 0, r, kills = 0, acked_total = 0, missing = 0, delivered = 0;
  int drained = 0;
  uint32_t i;
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
  randombytes_buf(body_key, sizeof body_key);
  srand((unsigned)time(NULL));
  REQUIRE(srv_mkdir(&p, "crash") == 0 && srv_start(&p, extra) == 0);
  {
    struct account *acc[2] = {&alice, &bob};
    for (i = 0; i < 2; i++) {
      struct sotto_net *c = srv_connect(&p, &ctx, 1);
      uint8_t ik[33] = {5};
      REQUIRE(c != NULL);
      CHECK_RC(sotto_net_register(c, acc[i]->name, ik, sizeof ik, &acc[i]->dev, acc[i]->secret), 0);
      sotto_net_close(c);
    }
  }

  for (r = 0; r < ROUNDS; r++) {
    struct sotto_net *a, *b;
    int64_t kill_at;
    if (r > 0 && srv_start(&p, extra) != 0) {
      CHECK(!"restart after SIGKILL");
      break;
    }
    a = login(&p, &ctx, &alice);
    b = login(&p, &ctx, &bob);
    CHECK(a && b);
    if (!a || !b) {
      sotto_net_close(a);
      sotto_net_close(b);
      srv_kill(&p);
      continue;
    }
    n_pend = 0;
    kill_at = mono_ms() + 50 + rand() % 500;
    while (mono_ms() < kill_at) {
      struct sotto_net_event ev;
      struct pollfd pf[2] = {{sotto_net_fd(a), POLLIN, 0}, {sotto_net_fd(b), POLLIN, 0}};
      int rc;
      while (n_pend < WINDOW && next_seq < MAX_SEQ) {
        uint8_t body[BODY_LEN];
        uint32_t req;
        make_body(body, next_seq);
        if (sotto_net_send_async(a, "bob", 1, 1, body, BODY_LEN, &req) != 0) break;
        pend_req[n_pend] = req;
        round_of[next_seq] = (uint8_t)r;
        pend_seq[n_pend++] = next_seq++;
      }
      poll(pf, 2, 5);
      while ((rc = sotto_net_next_event(a, 0, &ev)) == 1) {
        if (ev.kind == SOTTO_NET_EV_ANSWER) {
          unsigned k;
          for (k = 0; k < n_pend; k++)
            if (pend_req[k] == ev.req_id) break;
          if (k < n_pend) {
            if (ev.code == 0 && ev.payload_len == 16) {
              struct sotto__rd rd;
              uint64_t id = 0;
              sotto__rd_init(&rd, ev.payload, ev.payload_len);
              if (sotto__rd_u64be(&rd, &id) == 0) {
                acked_id[pend_seq[k]] = id;
                acked_total++;
              }
            } else {
              CHECK_RC(ev.code, 0);
            }
            pend_req[k] = pend_req[n_pend - 1];
            pend_seq[k] = pend_seq[--n_pend];
          }
        }
        sotto_net_event_clear(&ev);
      }
      while ((rc = sotto_net_next_event(b, 0, &ev)) == 1) {
        if (ev.kind == SOTTO_NET_EV_MSG && check_msg(&ev) && rand() % 5 != 0) {
          uint32_t req;
          (void)sotto_net_ack_async(b, ev.id, &req);
        }
        sotto_net_event_clear(&ev);
      }
    }
    srv_kill(&p);
    kills++;
    sotto_net_close(a);
    sotto_net_close(b);
  }
  CHECK(kills >= 10);

  /* Restart once more and drain bob's queue completely. */
  REQUIRE(srv_start(&p, extra) == 0);
  {
    struct sotto_net *b = login(&p, &ctx, &bob);
    int64_t deadline = mono_ms() + 20000;
    CHECK(b != NULL);
    while (b && !drained && mono_ms() < deadline) {
      struct sotto_net_event ev;
      int rc = sotto_net_next_event(b, 1000, &ev);
      if (rc < 0 || rc > 1) break;
      if (rc == 1) {
        if (ev.kind == SOTTO_NET_EV_MSG && check_msg(&ev)) {
          uint32_t req;
          (void)sotto_net_ack_async(b, ev.id, &req);
        }
        if (ev.kind == SOTTO_NET_EV_DRAINED) drained = 1;
        sotto_net_event_clear(&ev);
      }
    }
    if (b) CHECK_RC(sotto_net_ping(b), 0); /* the acks above are committed */
    sotto_net_close(b);
  }
  CHECK(drained);
  for (i = 0; i < next_seq; i++) {
    if (seen_id[i]) delivered++;
    if (acked_id[i] && !seen_id[i]) missing++;
  }
  printf("crash: %u kills, %u sent, %u acked, %u delivered, %u acked-but-missing, %u altered, %u id mismatches\n",
         kills, next_seq, acked_total, delivered, missing, bad_body, id_mismatch);
  if (missing) {
    /* Enough to find the envelopes in the kept data directory and the log:
     * which sequence numbers, which server ids, and in which round alice
     * sent them (round_of). */
    unsigned shown = 0;
    for (i = 0; i < next_seq && shown < 16; i++)
      if (acked_id[i] && !seen_id[i]) {
        printf("crash: missing seq %u id %llu sent in round %u\n", i, (unsigned long long)acked_id[i],
               round_of[i]);
        shown++;
      }
    printf("crash: drained=%d; data directory kept: %s (server log %s)\n", drained, p.dir, p.log);
  }
  CHECK(acked_total > 100);
  CHECK(missing == 0);
  CHECK(bad_body == 0);
  CHECK(id_mismatch == 0);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  if (!missing) srv_rmdir(&p);
  return test_done("test_server_crash");
}
