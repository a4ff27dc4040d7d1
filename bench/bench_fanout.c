/* SPDX-License-Identifier: Apache-2.0 */
/* bench_fanout.c: the client core's cost of one message to an account with
 * N devices (bench/run fanout; docs/benchmarks.md, "Fan-out").
 *
 *   bench_fanout [--json] [--messages M] [--e2e-messages E] [--rounds R] [--smoke]
 *   bench_fanout --protocol [--json] [--e2e-messages E] [--rounds R] [--smoke]
 *
 * Rows fanout_core_1, _2, _4, _8: messages/s through the core's whole send
 * path for a recipient whose verified signed list has N devices, without
 * the network: the content encoded, the recorded list read and verified
 * (devices_list_of: every membership signature and the account signature),
 * the targets set, one store transaction that loads, steps and saves the
 * N sessions (fanout_encrypt), and its commit (a sealed-store write of N
 * session records). Sessions exist already (started from local bundles and
 * warmed up): what is measured is the per-message cost, as in a
 * conversation. Each row is the median of R rounds of M messages, the rows
 * interleaved round by round; the ratio column is the median over rounds
 * of the time per message against N = 1 in the same round. Target: N = 4
 * costs at most 4.5x N = 1.
 *
 * Rows fanout_e2e_1, _2, _4, _8 (fanout_e2e.c): the same send path end to
 * end through the real sotto-server over TLS on 127.0.0.1 (sc_send_text to
 * a recipient with N linked devices, each message's SEND_MULTI answered by
 * the server before the next), E messages per round, beside a floor: the
 * server's relay of one SEND_MULTI of N opaque envelopes of the same size
 * on the same connection. Same rounds, medians and ratio as above.
 *
 * --protocol (bench/run protocol and bench/run server; issue 11's rows):
 * only the end-to-end rows, named fanout_1, _2, _4, _8, JSON
 * {"bench":"fanout_N","unit":"msg/s","sotto":...} as those programs' rows,
 * and a line with fanout_4's cost per message against fanout_1's and the
 * 4.5x target.
 *
 * --smoke (make bench-smoke): a few messages, one round, no figure judged;
 * fails if a row is missing or measured nothing. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>
#include <sotto/session.h>

#include "account.h"
#include "contact.h"
#include "content.h"
#include "core.h"
#include "devices.h"
#include "fanout_e2e.h"
#include "messaging.h"
#include "record.h"
#include "sotto_client.h"
#include "store.h"

#define PASS "bench passphrase"
#define MAX_DEV 8
#define MSG_TEXT "a message of about a hundred bytes, as people write them: short, with a question at the end?"

static int g_json, g_smoke, g_protocol;
static size_t g_m = 500, g_e2e_m = 200, g_rounds = 5;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_fanout: %s\n", what);
  exit(1);
}

/* One device of the recipient: an identity and the public half of a bundle. */
struct dev {
  struct sotto_identity id;
  struct sotto_bundle b;
};

static void make_dev(struct dev *d, uint32_t dev_id) {
  uint8_t spk_priv[SOTTO_PRIVKEY_LEN], kem_sk[SOTTO_KEM_SECRETKEY_LEN];
  memset(d, 0, sizeof *d);
  if (sotto_keypair_generate(d->id.pub, d->id.priv) || sotto_registration_id_generate(&d->id.registration_id) ||
      sotto_keypair_generate(d->b.signed_prekey, spk_priv) ||
      sotto_signed_prekey_sign(d->b.signed_prekey_sig, d->id.priv, d->b.signed_prekey) ||
      sotto_kem_keypair_generate(d->b.kem_prekey, kem_sk) ||
      sotto_kem_prekey_sign(d->b.kem_prekey_sig, d->id.priv, d->b.kem_prekey))
    die("cannot make a device's keys");
  memcpy(d->b.identity_key, d->id.pub, SOTTO_PUBKEY_LEN);
  d->b.registration_id = d->id.registration_id;
  d->b.device_id = dev_id;
  d->b.signed_prekey_id = 1;
  d->b.has_kem_prekey = 1;
  d->b.kem_prekey_id = 1;
  sodium_memzero(spk_priv, sizeof spk_priv);
  sodium_memzero(kem_sk, sizeof kem_sk);
}

/* Records "devlist/bob" (as devices.c does) with devices 1..n. */
static void put_list(struct sc_client *c, struct dev *devs, unsigned n) {
  static struct sotto_devlist l;
  static uint8_t buf[SOTTO_DEVLIST_MAX_LEN];
  struct rec_wr w;
  size_t len = 0;
  unsigned i;
  memset(&l, 0, sizeof l);
  snprintf(l.username, sizeof l.username, "bob");
  memcpy(l.account_key, devs[0].id.pub, 32);
  l.version = n;
  l.n = n;
  for (i = 0; i < n; i++) {
    l.dev[i].device_id = i + 1;
    memcpy(l.dev[i].device_key, devs[i].id.pub, 32);
    snprintf(l.dev[i].name, sizeof l.dev[i].name, "device %u", i + 1);
    l.dev[i].added_at_ms = 1700000000000ull;
    if (sotto_devlist_member_sign(l.dev[i].member_sig, devs[i].id.priv, "bob", l.account_key, i + 1))
      die("cannot sign a membership");
  }
  if (sotto_devlist_sign(&l, devs[0].id.priv, buf, sizeof buf, &len)) die("cannot sign the list");
  rec_wr_init(&w, len + 8);
  rec_put_u8(&w, 1);
  rec_put_str16(&w, buf, len);
  if (rec_wr_ok(&w) || store_begin(c->st) || store_put(c->st, "devlist/bob", w.p, w.len) || store_commit(c->st))
    die("cannot record the list");
  rec_wr_free(&w);
}

/* One message through the core's send path to every device of the list. */
static void send_one(struct sc_client *c, struct fanout *f, struct sotto_devlist *l, uint64_t ts) {
  struct content ct;
  struct rec_wr pt;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = ts;
  ct.text = (const uint8_t *)MSG_TEXT;
  ct.text_len = strlen(MSG_TEXT);
  rec_wr_init(&pt, SC_MAX_TEXT + 8192);
  if (content_encode(&pt, &ct)) die("cannot encode");
  if (devices_list_of(c, "bob", l) != 1) die("the recorded list does not load");
  fanout_clear(f);
  fanout_targets(f, "bob", l, 0);
  if (store_begin(c->st)) die("store_begin");
  if (fanout_encrypt(c, f, pt.p, pt.len)) {
    fprintf(stderr, "bench_fanout: %s\n", sc_errdetail(c));
    die("fanout_encrypt");
  }
  if (store_commit(c->st)) die("store_commit");
  rec_wr_free(&pt);
}

/* Starts the sessions with devices 1..n from their bundles (one
 * transaction), then a few messages so that the chains are warm. */
static void start_sessions(struct sc_client *c, struct dev *devs, unsigned n, struct sotto_devlist *l,
                           struct fanout *f) {
  unsigned i;
  if (store_begin(c->st)) die("store_begin");
  for (i = 0; i < n; i++) {
    struct sotto_session *s = NULL;
    if (session_load_dev(c->st, "bob", i + 1, &s) < 0 || sotto_session_init_from_bundle(s, &c->acct->id, &devs[i].b) ||
        session_save_dev(c->st, "bob", i + 1, s))
      die("cannot start a session");
    sotto_session_free(s);
  }
  if (store_commit(c->st)) die("store_commit");
  for (i = 0; i < 5; i++) send_one(c, f, l, 1000 + i);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* --protocol: the end-to-end rows under issue 11's names (fanout_N, key
 * sotto, messages/s), and fanout_4's cost per message against fanout_1's. */
static void print_protocol_rows(const struct fanout_e2e_result *e) {
  size_t i, i1 = FANOUT_E2E_ROWS, i4 = FANOUT_E2E_ROWS;
  for (i = 0; i < FANOUT_E2E_ROWS; i++) {
    if (e->devices[i] == 1) i1 = i;
    if (e->devices[i] == 4) i4 = i;
  }
  for (i = 0; i < FANOUT_E2E_ROWS; i++) {
    char row[32];
    snprintf(row, sizeof row, "fanout_%u", e->devices[i]);
    if (g_json) {
      printf("{\"bench\":\"%s\",\"unit\":\"msg/s\",\"sotto\":%.1f,\"floor\":%.1f,\"us_per_msg\":%.1f,"
             "\"time_vs_1\":%.2f,\"devices\":%u,\"messages\":%zu,\"rounds\":%zu,\"path\":\"sc_send_text via "
             "sotto-server\"}\n",
             row, e->rate[i], e->floor[i], 1e6 / e->rate[i], e->ratio[i], e->devices[i], g_e2e_m, g_rounds);
      continue;
    }
    if (i == 0)
      printf("%-10s %-6s %11s %11s %11s %9s  %s\n", "row", "unit", "sotto", "floor", "us/msg", "time/N=1", "target");
    printf("%-10s %-6s %11.1f %11.1f %11.1f %9.2f  %s\n", row, "msg/s", e->rate[i], e->floor[i], 1e6 / e->rate[i],
           e->ratio[i], e->devices[i] == 4 ? "<= 4.5" : "");
  }
  if (!g_json && i1 < FANOUT_E2E_ROWS && i4 < FANOUT_E2E_ROWS)
    printf("\nfanout_4 / fanout_1 cost per message: %.2fx (target <= 4.5x: %s; median of the per-round ratios)\n"
           "%zu messages per round, %zu rounds (rows interleaved): sc_send_text to a recipient with N linked\n"
           "devices through sotto-server over TLS on 127.0.0.1, each SEND_MULTI answered before the next\n"
           "(the client core's whole send path); floor: the server's relay of one SEND_MULTI of N opaque\n"
           "%zu-byte envelopes on the same connection\n",
           e->ratio[i4], e->ratio[i4] <= 4.5 ? "met" : "NOT met", g_e2e_m, g_rounds, e->envelope_len);
}

int main(int argc, char **argv) {
  static const unsigned ns[] = {1, 2, 4, 8};
  static struct dev devs[MAX_DEV];
  struct sotto_devlist *l = calloc(1, sizeof *l);
  struct fanout *f = fanout_new();
  struct sc_client *c = NULL;
  char dir[] = "/tmp/sotto-bench-fanout.XXXXXX", cmd[128];
  static double runs[4][64], ratios[4][64];
  double rate[4], per[4], ratio_med[4];
  uint64_t ts = 100000;
  size_t i, r;
  int k;
  for (k = 1; k < argc; k++) {
    if (strcmp(argv[k], "--json") == 0)
      g_json = 1;
    else if (strcmp(argv[k], "--smoke") == 0)
      g_smoke = 1;
    else if (strcmp(argv[k], "--protocol") == 0)
      g_protocol = 1;
    else if (strcmp(argv[k], "--messages") == 0 && k + 1 < argc)
      g_m = (size_t)strtoul(argv[++k], NULL, 10);
    else if (strcmp(argv[k], "--e2e-messages") == 0 && k + 1 < argc)
      g_e2e_m = (size_t)strtoul(argv[++k], NULL, 10);
    else if (strcmp(argv[k], "--rounds") == 0 && k + 1 < argc)
      g_rounds = (size_t)strtoul(argv[++k], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_fanout [--json] [--messages M] [--e2e-messages E] [--rounds R] [--smoke]\n"
                      "       bench_fanout --protocol [--json] [--e2e-messages E] [--rounds R] [--smoke]\n");
      return 2;
    }
  }
  if (g_smoke) {
    g_m = 10;
    g_e2e_m = 5;
    g_rounds = 1;
  }
  if (g_m == 0 || g_e2e_m == 0 || g_rounds == 0 || g_rounds > 64)
    die("--messages >= 1, --e2e-messages >= 1, --rounds 1..64");
  if (!l || !f || sc_global_init()) die("setup");
  if (g_protocol) goto e2e; /* the end-to-end rows alone */
  if (!mkdtemp(dir)) die("setup");
  if (sc_client_new(&c, dir) || sc_init(c, NULL, PASS, strlen(PASS))) die("cannot create the sender's store");
  snprintf(c->acct->username, sizeof c->acct->username, "alice");
  c->acct->device_id = 1;
  for (i = 0; i < MAX_DEV; i++) make_dev(&devs[i], (uint32_t)i + 1);

  /* every device's session, started and warm */
  put_list(c, devs, MAX_DEV);
  if (devices_list_of(c, "bob", l) != 1) die("the full list does not verify");
  start_sessions(c, devs, MAX_DEV, l, f);
  /* Rounds interleave the rows (1, 2, 4, 8, 1, 2, ...), so that a change
   * of the machine's load during the run touches every row alike; the
   * ratio to N = 1 is taken within each round, then its median. */
  for (r = 0; r < g_rounds; r++) {
    for (i = 0; i < 4; i++) {
      size_t m;
      double t;
      put_list(c, devs, ns[i]);
      if (devices_list_of(c, "bob", l) != 1 || l->n != ns[i]) die("the list does not verify");
      t = now_s();
      for (m = 0; m < g_m; m++) send_one(c, f, l, ts++);
      t = now_s() - t;
      runs[i][r] = t > 0 ? (double)g_m / t : NAN;
    }
    for (i = 0; i < 4; i++) ratios[i][r] = runs[0][r] / runs[i][r];
  }
  for (i = 0; i < 4; i++) {
    qsort(runs[i], g_rounds, sizeof runs[i][0], cmp_d);
    qsort(ratios[i], g_rounds, sizeof ratios[i][0], cmp_d);
    rate[i] = runs[i][g_rounds / 2];
    per[i] = 1e6 / rate[i];
    ratio_med[i] = ratios[i][g_rounds / 2];
    if (!isfinite(rate[i]) || rate[i] <= 0 || !isfinite(ratio_med[i])) {
      fprintf(stderr, "bench_fanout: fanout_core_%u measured nothing\n", ns[i]);
      return 1;
    }
  }
  for (i = 0; i < 4; i++) {
    double ratio = ratio_med[i];
    if (g_json)
      printf("{\"bench\":\"fanout\",\"row\":\"fanout_core_%u\",\"unit\":\"msg/s\",\"sotto\":%.1f,\"us_per_msg\":%.1f,"
             "\"time_vs_1\":%.2f,\"devices\":%u,\"messages\":%zu,\"rounds\":%zu}\n",
             ns[i], rate[i], per[i], ratio, ns[i], g_m, g_rounds);
    else {
      char row[32];
      snprintf(row, sizeof row, "fanout_core_%u", ns[i]);
      if (i == 0)
        printf("%-15s %-6s %11s %11s %9s  %s\n", "row", "unit", "sotto", "us/msg", "time/N=1", "target");
      printf("%-15s %-6s %11.1f %11.1f %9.2f  %s\n", row, "msg/s", rate[i], per[i], ratio, ns[i] == 4 ? "<= 4.5" : "");
    }
  }
  if (!g_json)
    printf("\n%zu messages of %zu bytes per round, median of %zu rounds (rows interleaved; time/N=1: median of the\n"
           "per-round ratios); the core's send path without the network\n"
           "(content, list verified, one transaction stepping and saving N sessions, its commit)\n\n",
           g_m, strlen(MSG_TEXT), g_rounds);
  sc_client_free(c);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_fanout: could not remove %s\n", dir);

e2e: /* end to end through the real server */
  fanout_free(f);
  free(l);
  {
    struct fanout_e2e_result e;
    fflush(stdout);
    fanout_e2e_run(&e, g_e2e_m, g_rounds);
    for (i = 0; i < FANOUT_E2E_ROWS; i++)
      if (!isfinite(e.rate[i]) || e.rate[i] <= 0 || !isfinite(e.floor[i]) || e.floor[i] <= 0 ||
          !isfinite(e.ratio[i])) {
        fprintf(stderr, "bench_fanout: fanout_e2e_%u measured nothing\n", e.devices[i]);
        return 1;
      }
    if (g_protocol) {
      print_protocol_rows(&e);
      if (g_smoke) fprintf(stderr, "bench_fanout --protocol --smoke: rows fanout_1.._8 produced\n");
      return 0;
    }
    for (i = 0; i < FANOUT_E2E_ROWS; i++) {
      if (g_json)
        printf("{\"bench\":\"fanout\",\"row\":\"fanout_e2e_%u\",\"unit\":\"msg/s\",\"sotto\":%.1f,\"floor\":%.1f,"
               "\"us_per_msg\":%.1f,\"time_vs_1\":%.2f,\"devices\":%u,\"messages\":%zu,\"rounds\":%zu,"
               "\"envelope_bytes\":%zu}\n",
               e.devices[i], e.rate[i], e.floor[i], 1e6 / e.rate[i], e.ratio[i], e.devices[i], g_e2e_m, g_rounds,
               e.envelope_len);
      else {
        char row[32];
        snprintf(row, sizeof row, "fanout_e2e_%u", e.devices[i]);
        if (i == 0)
          printf("%-15s %-6s %11s %11s %11s %9s %11s  %s\n", "row", "unit", "sotto", "floor", "us/msg", "time/N=1",
                 "sotto/floor", "target");
        printf("%-15s %-6s %11.1f %11.1f %11.1f %9.2f %11.2f  %s\n", row, "msg/s", e.rate[i], e.floor[i],
               1e6 / e.rate[i], e.ratio[i], e.rate[i] / e.floor[i], e.devices[i] == 4 ? "<= 4.5" : "");
      }
    }
    if (!g_json)
      printf("\n%zu messages per round, median of %zu rounds (rows interleaved); sc_send_text to a recipient with N\n"
             "linked devices through sotto-server over TLS on 127.0.0.1, each SEND_MULTI answered before the next;\n"
             "floor: the server's relay of one SEND_MULTI of N opaque %zu-byte envelopes on the same connection\n",
             g_e2e_m, g_rounds, e.envelope_len);
  }
  if (g_smoke) fprintf(stderr, "bench_fanout --smoke: rows fanout_core_1.._8 and fanout_e2e_1.._8 produced\n");
  return 0;
}
