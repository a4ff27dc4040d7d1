/* SPDX-License-Identifier: Apache-2.0 */
/* store_scan.c: proves that a client's home directory holds no plaintext.
 *
 * usage: store_scan HOME [TEXT...]   (passphrase in SOTTO_PASSPHRASE)
 *        store_scan --has HOME NAME   exit 0 if the record NAME exists, 1 if not
 *        store_scan --find HOME TEXT  exit 0 if any record, opened with the
 *            passphrase, holds TEXT (a disappeared or deleted message must not), 1 if none
 *        store_scan --spqr HOME PEER  exit 0 if the session with PEER runs SPQR, 1 if not
 *        store_scan --group-decrypt HOME SENDER DEV HEX
 *            HEX: a SenderKeyMessage (an envelope's body, as the server
 *            stores it). Prints its chain id; exit 0 if one of HOME's sender
 *            key records of SENDER's device DEV (any group) decrypts it (the
 *            store is not written: a check, not a receive), 1 if none does
 *        store_scan --plant-old-session HOME PEER_HOME PEER
 *            replaces HOME's session with PEER by one as a client before
 *            issue 13 made it (PQXDH without SPQR), from a bundle of PEER's
 *            real identity (read from PEER_HOME) with fresh signed pre-keys
 *
 * Opens the store with the client's own code, collects every secret it
 * holds (identity private key, device credential, signed/one-time/KEM
 * pre-keys, and every high-entropy 32-byte slice of each session and sender
 * key record), then reads every file under HOME and fails if any of those
 * bytes, or any TEXT given (message texts the test sent), occurs in a file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <sodium.h>
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "store.h"
#include <sotto/group.h>

#define MAX_NEEDLES 100000
#define SLICE 32

struct needle {
  uint8_t b[SLICE];
  char what[64];
};

static struct needle *needles;
static size_t n_needles;

static int distinct(const uint8_t *p, size_t n) {
  int seen[256] = {0}, d = 0;
  size_t i;
  for (i = 0; i < n; i++)
    if (!seen[p[i]]++) d++;
  return d;
}

static void add(const uint8_t *p, const char *what) {
  if (n_needles == MAX_NEEDLES || distinct(p, SLICE) < 20) return;
  memcpy(needles[n_needles].b, p, SLICE);
  snprintf(needles[n_needles].what, sizeof needles[n_needles].what, "%s", what);
  n_needles++;
}

static int collect(void *ud, const char *name, const uint8_t *v, size_t n) {
  size_t off;
  (void)ud;
  if (!strncmp(name, "opk/", 4) || !strncmp(name, "spk/", 4)) {
    if (n == 32) add(v, name);
  } else if (!strncmp(name, "kem/", 4)) {
    for (off = 1; off + SLICE <= n; off += 512) add(v + off, name);
  } else if (!strncmp(name, "session/", 8) || !strncmp(name, "gsk/", 4)) {
    for (off = 0; off + SLICE <= n; off += 8) add(v + off, name);
  }
  return 0;
}

static int scan_file(const char *path, char **texts, int n_texts) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long len;
  size_t i;
  int bad = 0, t;
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(len > 0 ? (size_t)len : 1);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    free(buf);
    printf("FAIL cannot read %s\n", path);
    return 1;
  }
  fclose(f);
  for (i = 0; i < n_needles; i++)
    if (memmem(buf, (size_t)len, needles[i].b, SLICE)) {
      printf("FAIL %s contains key material of record '%s' in the clear\n", path, needles[i].what);
      bad++;
    }
  for (t = 0; t < n_texts; t++)
    if (memmem(buf, (size_t)len, texts[t], strlen(texts[t]))) {
      printf("FAIL %s contains the message text \"%s\" in the clear\n", path, texts[t]);
      bad++;
    }
  free(buf);
  return bad;
}

/* --spqr and --plant-old-session (test_spqr_migration.sh). */
static int session_tool(int argc, char **argv, const char *pass) {
  struct store *st = NULL;
  struct account *a = NULL;
  struct sotto_session *s = NULL;
  struct sotto_bundle b;
  char err[256], rn[64];
  uint8_t *v, *rec = NULL;
  uint8_t spk_priv[32], kem_sk[SOTTO_KEM_SECRETKEY_LEN];
  size_t n;
  int rc, ret = 2;

  if (strcmp(argv[1], "--spqr") == 0) {
    if (argc != 4 || store_open(&st, argv[2], pass, strlen(pass), err, sizeof err) != 0) return 2;
    snprintf(rn, sizeof rn, "session/%s", argv[3]);
    rc = store_get(st, rn, &v, &n);
    if (rc == 1) {
      if (sotto_session_deserialize(&s, v, n) == 0) ret = sotto_session_has_spqr(s) ? 0 : 1;
      store_free_value(v, n);
    }
    printf("session with %s: %s\n", argv[3], ret == 0 ? "SPQR" : ret == 1 ? "no SPQR" : "none");
    sotto_session_free(s);
    store_close(st);
    return ret;
  }
  if (argc != 5) return 2;
  /* The peer's identity, and a bundle signed with it. */
  if (store_open(&st, argv[3], pass, strlen(pass), err, sizeof err) != 0 || account_load(st, &a) != 0)
    goto out;
  memset(&b, 0, sizeof b);
  b.registration_id = a->id.registration_id;
  b.device_id = 1;
  memcpy(b.identity_key, a->id.pub, sizeof b.identity_key);
  b.signed_prekey_id = 0xFFFF00;
  b.has_kem_prekey = 1;
  b.kem_prekey_id = 0xFFFF01;
  if (sotto_keypair_generate(b.signed_prekey, spk_priv) != 0 ||
      sotto_signed_prekey_sign(b.signed_prekey_sig, a->id.priv, b.signed_prekey) != 0 ||
      sotto_kem_keypair_generate(b.kem_prekey, kem_sk) != 0 ||
      sotto_kem_prekey_sign(b.kem_prekey_sig, a->id.priv, b.kem_prekey) != 0)
    goto out;
  account_free(a);
  a = NULL;
  store_close(st);
  st = NULL;
  /* Our side: a version 4 session without SPQR replaces the current one. */
  if (store_open(&st, argv[2], pass, strlen(pass), err, sizeof err) != 0 || account_load(st, &a) != 0)
    goto out;
  snprintf(rn, sizeof rn, "session/%s", argv[4]);
  rc = store_get(st, rn, &v, &n);
  if (rc == 1) {
    rc = sotto_session_deserialize(&s, v, n);
    store_free_value(v, n);
  } else {
    rc = rc == 0 ? sotto_session_new(&s) : -1;
  }
  if (rc != 0 || sotto_session_init_from_bundle_ex(s, &a->id, &b, SOTTO_INIT_NO_SPQR) != 0 ||
      sotto_session_has_spqr(s) != 0)
    goto out;
  n = sotto_session_serialized_size(s);
  if (!(rec = malloc(n)) || sotto_session_serialize(s, rec, n, &n) != 0) goto out;
  if (store_begin(st) != 0) goto out;
  if (store_put(st, rn, rec, n) != 0 || store_commit(st) != 0) {
    store_rollback(st);
    goto out;
  }
  printf("planted a session without SPQR with %s\n", argv[4]);
  ret = 0;
out:
  if (ret) fprintf(stderr, "store_scan %s: failed\n", argv[1]);
  sodium_memzero(spk_priv, sizeof spk_priv);
  sodium_memzero(kem_sk, sizeof kem_sk);
  free(rec);
  sotto_session_free(s);
  if (a) account_free(a);
  if (st) store_close(st);
  return ret;
}

/* --find: 1 if the record holds the text. */
static int find_cb(void *ud, const char *name, const uint8_t *v, size_t n) {
  const char *t = ud;
  (void)name;
  return memmem(v, n, t, strlen(t)) != NULL;
}

/* --group-decrypt (test_multidevice_rotation.sh) */
struct gd {
  const char *suffix; /* "/SENDER/DEV" */
  const uint8_t *msg;
  size_t len;
  int ok;
};

static int gd_cb(void *ud, const char *name, const uint8_t *v, size_t n) {
  struct gd *g = ud;
  struct sotto_sender_key *rec = NULL;
  size_t nl = strlen(name), sl = strlen(g->suffix), out_len = 0;
  uint8_t *pt;
  if (nl < sl || strcmp(name + nl - sl, g->suffix) != 0) return 0;
  if (sotto_sender_key_deserialize(&rec, v, n) != 0) return 0;
  if ((pt = malloc(g->len)) != NULL && sotto_group_decrypt(rec, pt, g->len, &out_len, g->msg, g->len) == 0) g->ok = 1;
  free(pt);
  sotto_sender_key_free(rec);
  return 0;
}

static int group_decrypt(int argc, char **argv, const char *pass) {
  struct store *st = NULL;
  struct gd g;
  char err[256], suffix[96];
  uint8_t *msg;
  size_t len = 0;
  uint32_t chain = 0;
  if (argc != 6) return 2;
  if (!(msg = malloc(strlen(argv[5]) / 2 + 1)) ||
      sodium_hex2bin(msg, strlen(argv[5]) / 2 + 1, argv[5], strlen(argv[5]), NULL, &len, NULL) != 0 || len == 0) {
    fprintf(stderr, "store_scan --group-decrypt: not hex\n");
    return 2;
  }
  if (sotto_group_message_chain_id(msg, len, &chain) != 0) {
    fprintf(stderr, "store_scan --group-decrypt: not a SenderKeyMessage\n");
    return 2;
  }
  printf("chain %u\n", (unsigned)chain);
  if (store_open(&st, argv[2], pass, strlen(pass), err, sizeof err) != 0) {
    fprintf(stderr, "store_scan --group-decrypt: cannot open %s: %s\n", argv[2], err);
    return 2;
  }
  snprintf(suffix, sizeof suffix, "/%s/%s", argv[3], argv[4]);
  memset(&g, 0, sizeof g);
  g.suffix = suffix;
  g.msg = msg;
  g.len = len;
  if (store_scan(st, "gsk/", gd_cb, &g) < 0) return 2;
  printf("%s\n", g.ok ? "decrypted" : "cannot decrypt");
  store_close(st);
  free(msg);
  return g.ok ? 0 : 1;
}

int main(int argc, char **argv) {
  struct store *st;
  struct account *a;
  const char *pass = getenv("SOTTO_PASSPHRASE");
  char err[256], path[4096];
  struct dirent *de;
  DIR *d;
  int bad = 0, files = 0;

  if (argc < 2 || !pass || sodium_init() < 0) {
    fprintf(stderr, "usage: SOTTO_PASSPHRASE=... store_scan HOME [TEXT...] | store_scan --has HOME NAME\n");
    return 2;
  }
  if (strcmp(argv[1], "--spqr") == 0 || strcmp(argv[1], "--plant-old-session") == 0)
    return session_tool(argc, argv, pass);
  if (strcmp(argv[1], "--group-decrypt") == 0) return group_decrypt(argc, argv, pass);
  if (strcmp(argv[1], "--find") == 0) {
    int rc;
    if (argc != 4 || store_open(&st, argv[2], pass, strlen(pass), err, sizeof err) != 0) {
      fprintf(stderr, "store_scan --find: cannot open %s\n", argc > 2 ? argv[2] : "");
      return 2;
    }
    rc = store_scan(st, "", find_cb, argv[3]);
    store_close(st);
    printf("%s: %s\n", argv[3], rc == 1 ? "found in a record" : rc == 0 ? "in no record" : "error");
    return rc == 1 ? 0 : rc == 0 ? 1 : 2;
  }
  if (strcmp(argv[1], "--has") == 0) {
    /* Whether the record NAME exists (key lifetimes are tested with it). */
    uint8_t *v;
    size_t n;
    int rc;
    if (argc != 4 || store_open(&st, argv[2], pass, strlen(pass), err, sizeof err) != 0) {
      printf("FAIL cannot open the store: %s\n", argc == 4 ? err : "usage");
      return 2;
    }
    rc = store_get(st, argv[3], &v, &n);
    if (rc == 1) store_free_value(v, n);
    printf("%s %s\n", argv[3], rc == 1 ? "present" : rc == 0 ? "absent" : "error");
    store_close(st);
    return rc == 1 ? 0 : rc == 0 ? 1 : 2;
  }
  needles = calloc(MAX_NEEDLES, sizeof *needles);
  if (!needles || store_open(&st, argv[1], pass, strlen(pass), err, sizeof err) != 0) {
    printf("FAIL cannot open the store in %s: %s\n", argv[1], err);
    return 1;
  }
  if (account_load(st, &a) != 0) {
    printf("FAIL cannot load the account\n");
    return 1;
  }
  add(a->id.priv, "identity private key");
  add(a->secret, "device credential");
  if (store_scan(st, "", collect, NULL) != 0) {
    printf("FAIL cannot read every record\n");
    return 1;
  }
  account_free(a);
  store_close(st);
  if (!(d = opendir(argv[1]))) return 1;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
    bad += scan_file(path, argv + 2, argc - 2);
    files++;
  }
  closedir(d);
  printf("%s: %d file(s), %zu secrets and %d texts looked for, %d found in the clear\n", argv[1], files, n_needles,
         argc - 2, bad);
  sodium_memzero(needles, MAX_NEEDLES * sizeof *needles);
  free(needles);
  return bad ? 1 : 0;
}
