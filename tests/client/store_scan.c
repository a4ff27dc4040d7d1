/* SPDX-License-Identifier: Apache-2.0 */
/* store_scan.c: proves that a client's home directory holds no plaintext.
 *
 * usage: store_scan HOME [TEXT...]   (passphrase in SOTTO_PASSPHRASE)
 *        store_scan --has HOME NAME   exit 0 if the record NAME exists, 1 if not
 *
 * Opens the store with the client's own code, collects every secret it
 * holds (identity private key, device credential, signed/one-time/KEM
 * pre-keys, and every high-entropy 32-byte slice of each session and sender
 * key record), then reads every file under HOME and fails if any of those
 * bytes, or any TEXT given (message texts the test sent), occurs in a file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "store.h"

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
