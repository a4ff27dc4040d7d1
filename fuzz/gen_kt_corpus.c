/* SPDX-License-Identifier: Apache-2.0 */
/* gen_kt_corpus.c: writes the seed corpora of the key-transparency fuzz
 * targets (fuzz/corpus/kt_NAME/g-NNNN...), deterministically: libsodium's randombytes
 * is a ChaCha20 stream from a fixed seed, and the log uses the fixed keys of
 * kt_fixed.h, so the generated heads, updates and proofs verify in the
 * targets and re-running rewrites the same files.
 *
 * From each valid input it also writes truncations, three single-bit flips
 * and a trailing byte. Usage: gen_kt_corpus CORPUS_DIR (`make fuzz-corpus`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "kt_fixed.h"

static const char *root;
static uint8_t rb_key[32] = "sotto kt fuzz corpus generator";
static uint64_t rb_block, mut_state = 0x6b742d636f727075ull;

static void rb_buf(void *const buf, const size_t n) {
  uint8_t nonce[8];
  size_t i;
  for (i = 0; i < 8; i++) nonce[i] = (uint8_t)(rb_block >> (8 * i));
  rb_block++;
  crypto_stream_chacha20(buf, n, nonce, rb_key);
}

static uint32_t rb_random(void) {
  uint32_t v;
  rb_buf(&v, sizeof v);
  return v;
}

static const char *rb_name(void) { return "sotto-gen-kt-corpus"; }
static struct randombytes_implementation rb_impl = {rb_name, rb_random, NULL, NULL, rb_buf, NULL};

static uint64_t mut_next(void) {
  uint64_t z = (mut_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

_Noreturn static void die(const char *what) {
  fprintf(stderr, "gen_kt_corpus: %s\n", what);
  exit(1);
}

static void put1(const char *t, unsigned *n, const char *desc, const char *var, const uint8_t *p, size_t len) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", root, t);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
  snprintf(path, sizeof path, "%s/%s/g-%04u-%s%s%s", root, t, *n, desc, var[0] ? "-" : "", var);
  if ((f = fopen(path, "wb")) == NULL || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0) die(path);
  (*n)++;
}

static void put(const char *t, unsigned *n, const char *desc, const uint8_t *p, size_t len) {
  uint8_t *m = malloc(len + 1);
  int i;
  if (!m) die("nomem");
  put1(t, n, desc, "", p, len);
  if (len > 1) {
    put1(t, n, desc, "cut1", p, len - 1);
    put1(t, n, desc, "half", p, len / 2);
  }
  for (i = 0; len > 0 && i < 3; i++) {
    char var[32];
    size_t pos = (size_t)(mut_next() % len);
    unsigned bit = (unsigned)(mut_next() % 8);
    memcpy(m, p, len);
    m[pos] ^= (uint8_t)(1u << bit);
    snprintf(var, sizeof var, "flip%zu.%u", pos, bit);
    put1(t, n, desc, var, m, len);
  }
  memcpy(m, p, len);
  m[len] = (uint8_t)mut_next();
  put1(t, n, desc, "trail", m, len + 1);
  free(m);
}

#define CHK(x)                  \
  do {                          \
    if ((x) != 0) die(#x);      \
  } while (0)

static uint8_t buf[1 << 20];

int main(int argc, char **argv) {
  struct sotto_kt_dir *d;
  struct sotto_kt_head h;
  struct sotto_kt_log_id id;
  struct sotto_kt_prefix *p;
  uint8_t op[8][16], *upd, key[32], c[32], pr[9000];
  unsigned nh = 0, np = 0, ns = 0, nu = 0, nv = 0, i, j;
  uint8_t *vseed[3];
  size_t vseed_len[3];
  char vdesc[3][16];
  size_t ul, pl, len;
  static const unsigned sizes[] = {0, 1, 2, 7, 30};
  if (argc != 2) {
    fprintf(stderr, "usage: gen_kt_corpus CORPUS_DIR\n");
    return 2;
  }
  root = argv[1];
  if (randombytes_set_implementation(&rb_impl) != 0 || sodium_init() < 0) die("sodium");

  /* kt_update: the first entry of a log, of several sizes */
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char desc[32];
    CHK(sotto_kt_dir_new(&d, kt_fixed_sig_seed, kt_fixed_vrf_sk));
    for (j = 0; j < sizes[i]; j++) {
      char lab[16];
      snprintf(lab, sizeof lab, "user%u", j);
      CHK(sotto_kt_dir_add(d, op[0], (const uint8_t *)lab, strlen(lab), j % 3, (const uint8_t *)"key", 3));
    }
    upd = malloc(sotto_kt_update_len(sizes[i]));
    CHK(sotto_kt_dir_commit(d, &h, upd, sotto_kt_update_len(sizes[i]), &ul, 1000 + i));
    sotto_kt_head_encode(buf, &h);
    memcpy(buf + SOTTO_KT_HEAD_LEN, upd, ul);
    snprintf(desc, sizeof desc, "entries%u", sizes[i]);
    put("kt_update", &nu, desc, buf, SOTTO_KT_HEAD_LEN + ul);
    free(upd);
    sotto_kt_dir_free(d);
  }

  /* one log of three entries for heads and searches */
  CHK(sotto_kt_dir_new(&d, kt_fixed_sig_seed, kt_fixed_vrf_sk));
  sotto_kt_dir_log_id(&id, d);
  CHK(sotto_kt_dir_add(d, op[0], (const uint8_t *)"alice", 5, 0, (const uint8_t *)"alice-key", 9));
  CHK(sotto_kt_dir_add(d, op[1], (const uint8_t *)"bob", 3, 0, (const uint8_t *)"bob-key-0", 9));
  upd = malloc(1 << 16);
  CHK(sotto_kt_dir_commit(d, &h, upd, 1 << 16, &ul, 1000));
  for (j = 1; j <= 3; j++) {
    char v[16];
    snprintf(v, sizeof v, "bob-key-%u", j);
    CHK(sotto_kt_dir_add(d, op[1 + j], (const uint8_t *)"bob", 3, j, (const uint8_t *)v, 9));
    CHK(sotto_kt_dir_commit(d, &h, upd, 1 << 16, &ul, 1000 + j));
  }
  free(upd);
  /* kt_head: the head with 0, 1, 2 cosignatures */
  sotto_kt_head_encode(buf, &h);
  CHK(sotto_kt_cosign(buf + SOTTO_KT_HEAD_LEN, kt_fixed_w1, 7, &h, &id));
  CHK(sotto_kt_cosign(buf + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN, kt_fixed_w2, 8, &h, &id));
  put("kt_head", &nh, "nocosig", buf, SOTTO_KT_HEAD_LEN);
  put("kt_head", &nh, "cosig1", buf, SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN);
  put("kt_head", &nh, "cosig2", buf, SOTTO_KT_HEAD_LEN + 2 * SOTTO_KT_COSIG_LEN);
  /* kt_search: alice v0, bob v3, an absent label */
  {
    struct {
      const char *label, *value;
      uint32_t v;
      int op;
    } s[] = {{"alice", "alice-key", 0, 0}, {"bob", "bob-key-3", 3, 4}, {"carol", NULL, SOTTO_KT_ABSENT, 0}};
    for (i = 0; i < 3; i++) {
      size_t ll = strlen(s[i].label);
      sotto_kt_head_encode(buf, &h);
      buf[SOTTO_KT_HEAD_LEN] = (uint8_t)ll;
      memcpy(buf + SOTTO_KT_HEAD_LEN + 1, s[i].label, ll);
      len = SOTTO_KT_HEAD_LEN + 1 + ll;
      CHK(sotto_kt_dir_search(buf + len, sizeof buf - len, &pl, d, (const uint8_t *)s[i].label, ll, s[i].v,
                              (const uint8_t *)s[i].value, s[i].value ? strlen(s[i].value) : 0, op[s[i].op]));
      put("kt_search", &ns, s[i].label, buf, len + pl);
    }
  }
  /* kt_version: bob v1 (not his greatest), bob v3, alice v0 (written
   * last, so that the other corpora stay as they were) */
  {
    struct {
      const char *label, *value;
      uint32_t v;
      int op;
    } s[] = {{"bob", "bob-key-1", 1, 2}, {"bob", "bob-key-3", 3, 4}, {"alice", "alice-key", 0, 0}};
    for (i = 0; i < 3; i++) {
      size_t ll = strlen(s[i].label), n;
      uint8_t *b = vseed[i] = malloc(SOTTO_KT_HEAD_LEN + 1 + 255 + 4 + SOTTO_KT_MAX_VERSION_PROOF_LEN);
      if (!b) die("malloc");
      sotto_kt_head_encode(b, &h);
      b[SOTTO_KT_HEAD_LEN] = (uint8_t)ll;
      memcpy(b + SOTTO_KT_HEAD_LEN + 1, s[i].label, ll);
      n = SOTTO_KT_HEAD_LEN + 1 + ll;
      b[n++] = (uint8_t)(s[i].v >> 24);
      b[n++] = (uint8_t)(s[i].v >> 16);
      b[n++] = (uint8_t)(s[i].v >> 8);
      b[n++] = (uint8_t)s[i].v;
      CHK(sotto_kt_dir_prove_version(b + n, SOTTO_KT_MAX_VERSION_PROOF_LEN, &pl, d, (const uint8_t *)s[i].label, ll,
                                     s[i].v, (const uint8_t *)s[i].value, strlen(s[i].value), op[s[i].op]));
      vseed_len[i] = n + pl;
      snprintf(vdesc[i], sizeof vdesc[i], "%s%u", s[i].label, s[i].v);
    }
  }
  sotto_kt_dir_free(d);

  /* kt_prefix_proof: inclusion, another leaf, empty, keys split deep */
  CHK(sotto_kt_prefix_new(&p));
  for (i = 0; i < 64; i++) {
    randombytes_buf(key, 32);
    randombytes_buf(c, 32);
    if (i == 63) {
      key[31] ^= 1; /* the previous key's neighbour: leaves at depth 256 */
    }
    CHK(sotto_kt_prefix_insert(p, key, c));
  }
  for (i = 0; i < 12; i++) {
    char desc[32];
    if (i > 0 && i < 6) randombytes_buf(key, 32);
    if (i == 6) key[31] ^= 1;
    if (i == 7) key[30] ^= 0x10;
    CHK(sotto_kt_prefix_prove(pr, sizeof pr, &pl, p, key));
    memcpy(buf, key, 32);
    memcpy(buf + 32, pr, pl);
    snprintf(desc, sizeof desc, "kind%u", pr[0]);
    put("kt_prefix_proof", &np, desc, buf, 32 + pl);
  }
  sotto_kt_prefix_free(p);
  for (i = 0; i < 3; i++) {
    put("kt_version", &nv, vdesc[i], vseed[i], vseed_len[i]);
    free(vseed[i]);
  }
  printf("gen_kt_corpus: kt_head %u, kt_prefix_proof %u, kt_search %u, kt_update %u, kt_version %u inputs\n", nh, np,
         ns, nu, nv);
  return 0;
}
