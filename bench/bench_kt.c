/* SPDX-License-Identifier: Apache-2.0 */
/* bench_kt.c: the key-transparency core (lib/kt) on a log it generates.
 *
 *   bench_kt [--json] [--labels N] [--smoke]
 *
 * The log holds N label-versions (default 1,000,000; --smoke 20,000) in
 * entries of BATCH label-versions. Most are "background" label-versions
 * whose search keys are SHA-256 of a counter (a VRF output is a random
 * 256-bit string too, so the trees have the same shape) to spare one VRF
 * evaluation each while filling; PROBES labels with 1 to 4 versions are
 * added through the real path (VRF, commitment) and searched.
 *
 * Rows (docs/key-transparency.md, "Benchmark", says what each one is):
 *   kt_search_proof  bytes of a search proof (median and max over the probes)
 *   kt_verify        microseconds to verify one search proof (median)
 *   kt_append        label-versions per second through sotto_kt_dir_prepare (VRF
 *                    output + commitment; on every core), _add_prepared and
 *                    sotto_kt_dir_commit, batched, pipelined (the tree work
 *                    of one chunk overlaps the VRFs of the next; VRF_SAMPLE/2
 *                    label-versions); "one_core": all of it on one thread;
 *                    "tree_only": the bulk fill without the VRF
 *   kt_witness       label-versions per second a witness replays (parse,
 *                    insert, prefix and log roots, head signature check)
 *   kt_monitor       bytes per device per day: ROUNDS_PER_DAY monitoring
 *                    rounds (head, 3 cosignatures, consistency proof from the
 *                    last round, the search proof of its own label) on a log
 *                    of one entry per second (1 update/s)
 *   kt_storage       bytes per label-version the operator stores for the log
 *                    (its updates and heads); "memory": the in-memory trees
 *
 * Beside each, the RFC 6962 figure for the same number of label-versions
 * (one log leaf per label-version: an inclusion proof, no privacy, no
 * non-inclusion) and an estimate for the KEYTRANS draft's search (a binary
 * search over log entries, one binary ladder per probed entry), computed
 * from the same measured prefix proofs.
 *
 * --smoke (make bench-smoke): a small log; fails if a row measured nothing.
 * Every proof is verified; a failure stops the program. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sotto/kt.h>

#include "kt/kt_internal.h"

#define BATCH 10000
#define PROBES 400
#define VRF_SAMPLE 20000
#define ROUNDS_PER_DAY 24
#define WITNESSES 3
#define VALUE_LEN 33 /* an account key: type byte + 32 */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn static void die(const char *what, int rc) {
  fprintf(stderr, "bench_kt: %s failed (%s)\n", what, sotto_strerror(rc));
  exit(1);
}

#define CHK(x)                       \
  do {                               \
    int rc_ = (x);                   \
    if (rc_ != 0) die(#x, rc_);      \
  } while (0)

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct upd {
  uint8_t *u;
  size_t len;
  struct sotto_kt_head h;
};

static struct upd *g_upd;
static size_t g_nupd, g_capupd;

static void commit(struct sotto_kt_dir *d, uint64_t ts) {
  size_t cap = sotto_kt_update_len(sotto_kt_dir_staged(d));
  struct upd *e;
  if (g_nupd == g_capupd) {
    g_capupd = g_capupd ? g_capupd * 2 : 256;
    if ((g_upd = realloc(g_upd, g_capupd * sizeof *g_upd)) == NULL) die("realloc", SOTTO_ERR_NOMEM);
  }
  e = &g_upd[g_nupd];
  if ((e->u = malloc(cap)) == NULL) die("malloc", SOTTO_ERR_NOMEM);
  CHK(sotto_kt_dir_commit(d, &e->h, e->u, cap, &e->len, ts));
  g_nupd++;
}

/* The append pipeline: labels sample<from..to> in chunks of CHUNK. Any
 * thread takes the next chunk not yet taken and prepares it
 * (sotto_kt_dir_prepare: VRF output + commitment; it reads only the
 * directory's keys); the calling thread also stages the prepared chunks in
 * order (_add_prepared) and closes an entry every `batch` (_commit), and
 * prepares a chunk itself whenever the next one in order is not ready. So
 * the tree work of one chunk overlaps the VRFs of the next ones and no core
 * waits for the other. */
#define CHUNK 64

struct pipe {
  const struct sotto_kt_dir *d;
  uint8_t (*entries)[SOTTO_KT_ENTRY_LEN];
  size_t from, to, nchunks;
  const uint8_t *value;
  size_t next;        /* next chunk to take (atomic) */
  unsigned char *done; /* per chunk: prepared (atomic) */
  int rc;             /* first failure (atomic) */
};

/* Takes and prepares one chunk; 0 when none was left. */
static int pipe_take(struct pipe *p) {
  size_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED), j, lo, hi;
  int rc = 0;
  if (k >= p->nchunks) return 0;
  lo = p->from + k * CHUNK;
  hi = lo + CHUNK > p->to ? p->to : lo + CHUNK;
  for (j = lo; j < hi && rc == 0; j++) {
    uint8_t label[32], op[16];
    int ll = snprintf((char *)label, sizeof label, "sample%zu", j);
    rc = sotto_kt_dir_prepare(p->entries[j - p->from], op, p->d, label, (size_t)ll, 0, p->value, VALUE_LEN);
  }
  if (rc != 0) __atomic_store_n(&p->rc, rc, __ATOMIC_RELAXED);
  __atomic_store_n(&p->done[k], 1, __ATOMIC_RELEASE);
  return 1;
}

static void *pipe_worker(void *arg) {
  struct pipe *p = arg;
  while (__atomic_load_n(&p->rc, __ATOMIC_RELAXED) == 0 && pipe_take(p)) {
  }
  return NULL;
}

/* Appends labels sample<from..to> on `threads` threads (the caller's
 * included) and commits in entries of `batch`. Returns seconds. */
static double append_full_path(struct sotto_kt_dir *d, size_t from, size_t to, unsigned threads, size_t batch,
                               const uint8_t *value, uint64_t *ts) {
  struct pipe p;
  pthread_t th[16];
  size_t k, j;
  unsigned t;
  double t0;
  memset(&p, 0, sizeof p);
  p.d = d;
  p.from = from;
  p.to = to;
  p.value = value;
  p.nchunks = (to - from + CHUNK - 1) / CHUNK;
  p.entries = calloc(to - from ? to - from : 1, SOTTO_KT_ENTRY_LEN);
  p.done = calloc(p.nchunks ? p.nchunks : 1, 1);
  if (!p.entries || !p.done) die("calloc", SOTTO_ERR_NOMEM);
  t0 = now();
  for (t = 1; t < threads; t++)
    if (pthread_create(&th[t], NULL, pipe_worker, &p) != 0) die("pthread_create", SOTTO_ERR_INTERNAL);
  for (k = 0; k < p.nchunks; k++) {
    while (!__atomic_load_n(&p.done[k], __ATOMIC_ACQUIRE)) {
      CHK(__atomic_load_n(&p.rc, __ATOMIC_RELAXED));
      if (!pipe_take(&p)) sched_yield(); /* all taken: chunk k is being prepared */
    }
    CHK(__atomic_load_n(&p.rc, __ATOMIC_RELAXED));
    for (j = from + k * CHUNK; j < to && j < from + (k + 1) * CHUNK; j++) {
      CHK(sotto_kt_dir_add_prepared(d, p.entries[j - from]));
      if (sotto_kt_dir_staged(d) == batch) commit(d, (*ts)++);
    }
  }
  if (sotto_kt_dir_staged(d)) commit(d, (*ts)++);
  for (t = 1; t < threads; t++) pthread_join(th[t], NULL);
  CHK(p.rc);
  free(p.entries);
  free(p.done);
  return now() - t0;
}

static unsigned ceil_log2(uint64_t n) {
  unsigned k = 0;
  while ((1ull << k) < n) k++;
  return k;
}

int main(int argc, char **argv) {
  static const uint8_t sig_seed[32] = {'b', 'e', 'n', 'c', 'h'}, vrf_sk[32] = {'v', 'r', 'f'};
  struct sotto_kt_dir *d = NULL;
  struct sotto_kt_witness *w = NULL;
  struct sotto_kt_log_id id;
  struct sotto_kt_head head;
  uint8_t (*opening)[4][16];
  uint8_t *proof, value[SOTTO_KT_MAX_VALUE_LEN], key[32], c[32], ctr[8], label[32];
  size_t *sizes, *pathb, n = 1000000, probes = PROBES, sample = VRF_SAMPLE, batch = BATCH, i, j, filled = 0;
  size_t pl, vl, lookups_total = 0;
  unsigned ncores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
  double append_one, append_one_cpu, cpu0;
  double *vt, t0, t_fill = 0, t_vrf, t_wit, append_full, append_tree, witness_rate, verify_us;
  double search_med, search_max, monitor, storage, memory, rfc_incl, kt_est;
  uint64_t ts = 1700000000000ull, bytes_upd = 0;
  uint32_t ver;
  int json = 0, smoke = 0;

  for (i = 1; i < (size_t)argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--smoke") == 0) {
      smoke = 1;
    } else if (strcmp(argv[i], "--labels") == 0 && i + 1 < (size_t)argc) {
      n = strtoul(argv[++i], NULL, 10);
    } else {
      fprintf(stderr,
              "usage: bench_kt [--json] [--labels N] [--smoke]\n"
              "  --json        one JSON object per line, nothing else on stdout\n"
              "  --labels N    label-versions in the generated log (default 1000000)\n"
              "  --smoke       a log of 20000 (CI): no figure judged, fails if a row is missing\n");
      return 2;
    }
  }
  if (ncores < 1) ncores = 1;
  if (ncores > 16) ncores = 16;
  if (smoke) {
    n = 20000;
    probes = 40;
    sample = 200;
    batch = 1000;
  }
  if (n < 2 * (probes * 4 + sample) || n > 50000000) {
    fprintf(stderr, "bench_kt: --labels must be between %zu and 50000000\n", 2 * (probes * 4 + sample));
    return 2;
  }
  if (sodium_init() < 0) die("sodium_init", SOTTO_ERR_INTERNAL);
  CHK(sotto_kt_dir_new(&d, sig_seed, vrf_sk));
  sotto_kt_dir_log_id(&id, d);
  opening = calloc(probes, sizeof *opening);
  sizes = calloc(probes, sizeof *sizes);
  pathb = calloc(probes, sizeof *pathb);
  vt = calloc(probes, sizeof *vt);
  proof = malloc(SOTTO_KT_MAX_SEARCH_PROOF_LEN);
  if (!opening || !sizes || !pathb || !vt || !proof) die("calloc", SOTTO_ERR_NOMEM);
  memset(value, 0x05, VALUE_LEN);

  if (!json) fprintf(stderr, "bench_kt: filling a log of %zu label-versions (%zu per entry)...\n", n, batch);
  /* 1. background label-versions, tree-only path, in entries of `batch` */
  {
    size_t background = n - probes * 4 - sample; /* probes have up to 4 versions; see below */
    uint64_t k = 0;
    while (filled < background) {
      size_t m = background - filled < batch ? background - filled : batch;
      t0 = now();
      for (j = 0; j < m; j++, k++) {
        for (i = 0; i < 8; i++) ctr[i] = (uint8_t)(k >> (8 * i));
        crypto_hash_sha256(key, ctr, 8);
        c[0] = (uint8_t)k;
        memcpy(c + 1, key, 31);
        CHK(sotto__kt_dir_add_key(d, key, c));
      }
      commit(d, ts++);
      t_fill += now() - t0;
      filled += m;
    }
    append_tree = (double)filled / t_fill;
  }
  /* 2. the real path: VRF output + commitment per label-version, batched;
   * on one core, then with the VRF on every core (sotto_kt_dir_prepare) */
  cpu0 = cpu_now();
  t_vrf = append_full_path(d, 0, sample / 2, 1, batch, value, &ts);
  append_one = (double)(sample / 2) / t_vrf;
  append_one_cpu = (double)(sample / 2) / (cpu_now() - cpu0);
  t_vrf = append_full_path(d, sample / 2, sample, ncores, batch, value, &ts);
  append_full = (double)(sample - sample / 2) / t_vrf;
  filled += sample;
  /* 3. probe labels: label i has versions 0..(i % 4), one version per entry round */
  for (i = 0; i < 4; i++) {
    for (j = 0; j < probes; j++) {
      int ll = snprintf((char *)label, sizeof label, "probe%zu", j);
      if (i > j % 4) continue;
      value[1] = (uint8_t)i;
      CHK(sotto_kt_dir_add(d, opening[j][i], label, (size_t)ll, (uint32_t)i, value, VALUE_LEN));
      filled++;
    }
    commit(d, ts++);
  }
  /* pad to exactly n with background keys */
  {
    uint64_t k = 1ull << 40;
    while (filled < n) {
      for (i = 0; i < 8; i++) ctr[i] = (uint8_t)(k >> (8 * i));
      crypto_hash_sha256(key, ctr, 8);
      CHK(sotto__kt_dir_add_key(d, key, key));
      filled++;
      k++;
      if (sotto_kt_dir_staged(d) == batch) commit(d, ts++);
    }
    if (sotto_kt_dir_staged(d)) commit(d, ts++);
  }
  CHK(sotto_kt_dir_head(&head, d));

  /* search proofs: size and verification time */
  if (!json) fprintf(stderr, "bench_kt: %zu search proofs...\n", probes);
  for (j = 0; j < probes; j++) {
    uint32_t m = (uint32_t)(j % 4);
    int ll = snprintf((char *)label, sizeof label, "probe%zu", j);
    uint8_t got[SOTTO_KT_MAX_VALUE_LEN];
    value[1] = (uint8_t)m;
    CHK(sotto_kt_dir_search(proof, SOTTO_KT_MAX_SEARCH_PROOF_LEN, &pl, d, label, (size_t)ll, m, value, VALUE_LEN,
                            opening[j][m]));
    sizes[j] = pl;
    lookups_total += proof[4];
    pathb[j] = pl - (size_t)proof[4] * (80 + 2) - 16 - 2 - VALUE_LEN - 8 - 1 - 32 * (size_t)ceil_log2(head.tree_size);
    t0 = now();
    CHK(sotto_kt_search_verify(&ver, got, &vl, &head, &id, label, (size_t)ll, proof, pl));
    vt[j] = (now() - t0) * 1e6;
    if (ver != m || vl != VALUE_LEN || memcmp(got, value, VALUE_LEN) != 0) die("search result", SOTTO_ERR_INTERNAL);
  }
  qsort(sizes, probes, sizeof *sizes, cmp_size);
  qsort(vt, probes, sizeof *vt, cmp_dbl);
  search_med = (double)sizes[probes / 2];
  search_max = (double)sizes[probes - 1];
  verify_us = vt[probes / 2];

  /* witness replay */
  if (!json) fprintf(stderr, "bench_kt: a witness replays %zu entries...\n", g_nupd);
  CHK(sotto_kt_witness_new(&w, &id));
  t0 = now();
  for (i = 0; i < g_nupd; i++) {
    CHK(sotto_kt_witness_apply(w, g_upd[i].u, g_upd[i].len, &g_upd[i].h));
    bytes_upd += g_upd[i].len + SOTTO_KT_HEAD_LEN;
  }
  t_wit = now() - t0;
  witness_rate = (double)n / t_wit;
  memory = (double)sotto_kt_dir_memory(d) / (double)n;
  storage = (double)bytes_upd / (double)n;
  sotto_kt_witness_free(w);

  /* monitoring: a log of one entry per second, a round every 86400/R s */
  {
    struct sotto_kt_log *log;
    uint64_t size = 2 * 86400, step = 86400 / ROUNDS_PER_DAY;
    uint8_t leaf[32], cp[SOTTO_KT_MAX_LOG_PROOF * 32];
    size_t cpl;
    CHK(sotto_kt_log_new(&log));
    for (i = 0; i < size; i++) {
      for (j = 0; j < 8; j++) ctr[j] = (uint8_t)(i >> (8 * j));
      crypto_hash_sha256(leaf, ctr, 8);
      CHK(sotto_kt_log_append(log, leaf));
    }
    CHK(sotto_kt_log_consistency_proof(cp, sizeof cp, &cpl, log, size - step, size));
    monitor = ROUNDS_PER_DAY * (SOTTO_KT_HEAD_LEN + WITNESSES * SOTTO_KT_COSIG_LEN + (double)cpl + search_med);
    sotto_kt_log_free(log);
  }

  /* comparisons for the same number of label-versions */
  rfc_incl = 32.0 * ceil_log2(n);
  {
    /* KEYTRANS draft: the search probes about log2(entries) + 1 log entries;
     * at each, a binary ladder of about the same lookups (prefix proofs, the
     * VRF proofs sent once), plus the log proof of the probed entries. */
    double entries = (double)head.tree_size, probed = ceil(log2(entries)) + 1, med_path = 0;
    qsort(pathb, probes, sizeof *pathb, cmp_size);
    med_path = (double)pathb[probes / 2];
    kt_est = probed * med_path + (double)lookups_total / (double)probes * 80 + 32 * 2 * ceil(log2(entries));
  }

  if (json) {
    printf("{\"bench\":\"kt_search_proof\",\"unit\":\"bytes\",\"sotto\":%.0f,\"max\":%.0f,\"rfc6962\":%.0f,"
           "\"keytrans_estimate\":%.0f,\"labels\":%zu,\"entries\":%llu}\n",
           search_med, search_max, rfc_incl, kt_est, n, (unsigned long long)head.tree_size);
    printf("{\"bench\":\"kt_verify\",\"unit\":\"us\",\"sotto\":%.1f,\"labels\":%zu}\n", verify_us, n);
    printf("{\"bench\":\"kt_append\",\"unit\":\"updates/s\",\"sotto\":%.0f,\"one_core\":%.0f,"
           "\"one_core_cpu\":%.0f,\"tree_only\":%.0f,\"cores\":%u,\"batch\":%zu}\n",
           append_full, append_one, append_one_cpu, append_tree, ncores, batch);
    printf("{\"bench\":\"kt_witness\",\"unit\":\"updates/s\",\"sotto\":%.0f,\"batch\":%zu}\n", witness_rate, batch);
    printf("{\"bench\":\"kt_monitor\",\"unit\":\"bytes/device/day\",\"sotto\":%.0f,\"rounds_per_day\":%d}\n", monitor,
           ROUNDS_PER_DAY);
    printf("{\"bench\":\"kt_storage\",\"unit\":\"bytes/entry\",\"sotto\":%.1f,\"memory\":%.1f}\n", storage, memory);
  } else {
    printf("key transparency on a log of %zu label-versions in %llu entries (%zu per entry); one core\n"
           "except kt_append (the VRF on %u cores, the trees on one)\n\n",
           n, (unsigned long long)head.tree_size, batch, ncores);
    printf("%-16s %-17s %11s %11s %11s  %s\n", "row", "unit", "sotto", "rfc6962", "keytrans", "target");
    printf("%-16s %-17s %11.0f %11.0f %11.0f  %s\n", "kt_search_proof", "bytes (median)", search_med, rfc_incl,
           kt_est, "<= 10240");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "", "bytes (max)", search_max, "", "", "");
    printf("%-16s %-17s %11.1f %11s %11s  %s\n", "kt_verify", "us", verify_us, "-", "-", "<= 1000");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "kt_append", "updates/s", append_full, "-", "-", ">= 20000");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "", "  one core", append_one, "", "", "");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "", "  one core (cpu)", append_one_cpu, "", "", "");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "", "  tree only", append_tree, "", "", "");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "kt_witness", "updates/s", witness_rate, "-", "-", ">= 20000");
    printf("%-16s %-17s %11.0f %11s %11s  %s\n", "kt_monitor", "bytes/device/day", monitor, "-", "-", "");
    printf("%-16s %-17s %11.1f %11s %11s  %s\n", "kt_storage", "bytes/entry", storage, "-", "-", "");
    printf("%-16s %-17s %11.1f %11s %11s  %s\n", "", "  memory", memory, "", "", "");
    printf("\nsearch: probes with 1-4 versions (%.1f lookups each on average: VRF proof + prefix proof);\n"
           "rfc6962: inclusion proof in a plain log of one leaf per label-version (no privacy, no\n"
           "non-inclusion); keytrans: estimate for the draft's binary search over %llu entries built from\n"
           "the same measured prefix proofs. monitor: %d rounds/day at 1 entry/s, %d cosignatures.\n"
           "Wall-clock rates on this (shared) machine; \"one core (cpu)\": per CPU second used.\n",
           (double)lookups_total / (double)probes, (unsigned long long)head.tree_size, ROUNDS_PER_DAY, WITNESSES);
  }
  if (!(search_med > 0 && verify_us > 0 && append_full > 0 && append_one > 0 && append_tree > 0 && witness_rate > 0 && monitor > 0 &&
        storage > 0 && isfinite(append_full) && isfinite(witness_rate))) {
    fprintf(stderr, "bench_kt: a row measured nothing\n");
    return 1;
  }
  if (smoke) fprintf(stderr, "bench_kt --smoke: all 6 rows produced (figures not judged)\n");
  for (i = 0; i < g_nupd; i++) free(g_upd[i].u);
  free(g_upd);
  free(opening);
  free(sizes);
  free(pathb);
  free(vt);
  free(proof);
  sotto_kt_dir_free(d);
  return 0;
}
