/* test_spqr_braid: SPQR v1 end to end between two libsotto parties
 * (lib/spqr/spqr.c: braid + chain): 1,000 messages in bursts of 1..8 each
 * way, with messages dropped and others delivered out of order; every
 * delivered message gets the sender's key, epochs keep completing, failures
 * leave the state unchanged. (Against libsignal, the pieces are checked in
 * tests/libsignal; the state machine meets libsignal once sessions use it.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "spqr/spqr.h"
#include "testutil.h"

struct pending {
  uint8_t msg[SOTTO_SPQR_MSG_MAX_LEN];
  size_t len;
  uint8_t key[32];
};

static uint32_t rs = 777;
static uint32_t rnd(void) {
  rs = rs * 1103515245u + 12345u;
  return rs >> 8;
}

static struct sotto__spqr A, B;

int main(void) {
  static const uint8_t pqr[32] = {0x42, 1, 2, 3};
  struct pending burst[8];
  int sent = 0, delivered = 0, dropped = 0, good = 0, turn = 0;
  uint64_t max_epoch = 0;

  REQUIRE(sotto__spqr_init(&A, pqr, 1) == 0);
  REQUIRE(sotto__spqr_init(&B, pqr, 0) == 0);
  while (sent < 1000) {
    struct sotto__spqr *from = turn ? &B : &A, *to = turn ? &A : &B;
    int n = 1 + (int)(rnd() % 8), i, has;
    for (i = 0; i < n; i++, sent++) {
      REQUIRE(sotto__spqr_send(from, burst[i].msg, sizeof burst[i].msg, &burst[i].len,
                               burst[i].key, &has) == 0);
      CHECK(has == 1);
    }
    /* Deliver in reverse order when the burst is long, and drop 1 in 12. */
    for (i = 0; i < n; i++) {
      int k = n > 5 ? n - 1 - i : i, rc;
      uint8_t key[32];
      if (rnd() % 12 == 0) {
        dropped++;
        continue;
      }
      rc = sotto__spqr_recv(to, burst[k].msg, burst[k].len, key, &has);
      delivered++;
      if (rc == 0 && has && memcmp(key, burst[k].key, 32) == 0) good++;
      else fprintf(stderr, "message refused: %s\n", tu_errname(rc));
    }
    turn ^= 1;
  }
  max_epoch = A.chain.current_epoch > B.chain.current_epoch ? A.chain.current_epoch
                                                            : B.chain.current_epoch;
  CHECK(good == delivered);
  CHECK(max_epoch >= 5);
  printf("spqr braid: %d sent, %d delivered (%d dropped, bursts reversed), %d keys equal, "
         "epochs reached A %llu B %llu\n", sent, delivered, dropped, good,
         (unsigned long long)A.chain.current_epoch, (unsigned long long)B.chain.current_epoch);

  /* Refusals leave the state as it was. */
  {
    struct pending p;
    uint8_t key[32], bad[SOTTO_SPQR_MSG_MAX_LEN];
    int has, rc;
    CHECK_RC(sotto__spqr_send(&A, p.msg, sizeof p.msg, &p.len, p.key, &has), 0);
    CHECK_RC(sotto__spqr_recv(&B, p.msg, 0, key, &has), SOTTO_ERR_VERSION); /* no SPQR */
    memcpy(bad, p.msg, p.len);
    bad[0] = 2;
    CHECK_RC(sotto__spqr_recv(&B, bad, p.len, key, &has), SOTTO_ERR_VERSION);
    {
      struct sotto__spqr_msg m;
      uint8_t out[SOTTO_SPQR_MSG_MAX_LEN];
      size_t used, n;
      CHECK_RC(sotto__spqr_msg_parse(&m, &used, p.msg, p.len), 0);
      m.epoch += 5; /* an epoch far ahead */
      n = sotto__spqr_msg_write(out, sizeof out, &m);
      CHECK_RC(sotto__spqr_recv(&B, out, n, key, &has), SOTTO_ERR_MALFORMED);
    }
    CHECK_RC(sotto__spqr_recv(&B, p.msg, p.len, key, &has), 0);
    CHECK(has && memcmp(key, p.key, 32) == 0);
    rc = sotto__spqr_recv(&B, p.msg, p.len, key, &has); /* a replay */
    CHECK(rc == SOTTO_ERR_DUPLICATE && has == 0);
  }
  sotto__spqr_clear(&A);
  sotto__spqr_clear(&B);
  return test_done(__FILE__);
}
