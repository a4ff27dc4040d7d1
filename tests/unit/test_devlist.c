/* SPDX-License-Identifier: Apache-2.0 */
/* test_devlist.c: the signed device list (sotto/devlist.h): round trip, and
 * every way a list can be wrong (forged account signature, missing or bad
 * membership signature, another account's device, duplicate or unordered
 * device ids, too many entries, bad names, truncation, trailing bytes). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#include "testutil.h"

#define NDEV 3

static uint8_t acc_pub[32], acc_priv[32];
static uint8_t dev_pub[SOTTO_DEVLIST_MAX_DEVICES + 1][32], dev_priv[SOTTO_DEVLIST_MAX_DEVICES + 1][32];

/* A list of n devices of "alice": device 1 is the account key itself. */
static void make_list(struct sotto_devlist *l, unsigned n) {
  unsigned i;
  memset(l, 0, sizeof *l);
  strcpy(l->username, "alice");
  memcpy(l->account_key, acc_pub, 32);
  l->version = 7;
  l->n = n;
  for (i = 0; i < n; i++) {
    struct sotto_devlist_entry *e = &l->dev[i];
    e->device_id = i + 1;
    memcpy(e->device_key, dev_pub[i], 32);
    snprintf(e->name, sizeof e->name, i == 1 ? "laptop \xc3\xa9t\xc3\xa9" : "dev%u", i + 1);
    e->added_at_ms = 1700000000000ull + i;
    if (sotto_devlist_member_sign(e->member_sig, dev_priv[i], "alice", acc_pub, e->device_id) != 0) abort();
  }
}

/* Replaces the account signature at the end of buf[len] by a fresh valid
 * one over the (edited) body: what a forger holding the account key, but
 * nothing else, could make. */
static void resign(uint8_t *buf, size_t len) {
  uint8_t m[sizeof SOTTO_DEVLIST_CONTEXT - 1 + SOTTO_DEVLIST_MAX_LEN + 256];
  size_t cl = sizeof SOTTO_DEVLIST_CONTEXT - 1;
  memcpy(m, SOTTO_DEVLIST_CONTEXT, cl);
  memcpy(m + cl, buf, len - 64);
  if (sotto_sign(buf + len - 64, acc_priv, m, cl + len - 64) != 0) abort();
}

static void test_roundtrip(void) {
  struct sotto_devlist l, p;
  uint8_t buf[SOTTO_DEVLIST_MAX_LEN];
  size_t len, i;
  make_list(&l, NDEV);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), 0);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), 0);
  CHECK(strcmp(p.username, "alice") == 0);
  CHECK(memcmp(p.account_key, acc_pub, 32) == 0);
  CHECK(p.version == 7 && p.n == NDEV);
  for (i = 0; i < NDEV; i++) {
    CHECK(p.dev[i].device_id == i + 1);
    CHECK(memcmp(p.dev[i].device_key, dev_pub[i], 32) == 0);
    CHECK(strcmp(p.dev[i].name, l.dev[i].name) == 0);
    CHECK(p.dev[i].added_at_ms == l.dev[i].added_at_ms);
  }
  CHECK(sotto_devlist_find(&p, 2) == 1);
  CHECK(sotto_devlist_find(&p, 9) == -1);
  /* exact size */
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, len - 1, &len), SOTTO_ERR_BUFFER_TOO_SMALL);
  /* the biggest list fits SOTTO_DEVLIST_MAX_LEN */
  make_list(&l, SOTTO_DEVLIST_MAX_DEVICES);
  for (i = 0; i < SOTTO_DEVLIST_MAX_DEVICES; i++) {
    memset(l.dev[i].name, 'x', SOTTO_DEVLIST_MAX_NAME);
    l.dev[i].name[SOTTO_DEVLIST_MAX_NAME] = '\0';
  }
  strcpy(l.username, "abcdefghijklmnopqrstuvwxyz012345");
  for (i = 0; i < SOTTO_DEVLIST_MAX_DEVICES; i++)
    CHECK_RC(sotto_devlist_member_sign(l.dev[i].member_sig, dev_priv[i], l.username, acc_pub,
                                       l.dev[i].device_id), 0);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), 0);
  CHECK(len == SOTTO_DEVLIST_MAX_LEN);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), 0);
  CHECK(p.n == SOTTO_DEVLIST_MAX_DEVICES);
}

static void test_sign_refuses(void) {
  struct sotto_devlist l;
  uint8_t buf[SOTTO_DEVLIST_MAX_LEN];
  size_t len;
  /* not the account key */
  make_list(&l, NDEV);
  CHECK_RC(sotto_devlist_sign(&l, dev_priv[1], buf, sizeof buf, &len), SOTTO_ERR_USAGE);
  /* a device whose membership signature is missing (zeros) or made by another key */
  make_list(&l, NDEV);
  memset(l.dev[2].member_sig, 0, 64);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_AUTH);
  make_list(&l, NDEV);
  CHECK_RC(sotto_devlist_member_sign(l.dev[2].member_sig, dev_priv[5], "alice", acc_pub, 3), 0);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_AUTH);
  /* a membership signature for another device id, or another account */
  make_list(&l, NDEV);
  CHECK_RC(sotto_devlist_member_sign(l.dev[2].member_sig, dev_priv[2], "alice", acc_pub, 4), 0);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_AUTH);
  make_list(&l, NDEV);
  CHECK_RC(sotto_devlist_member_sign(l.dev[2].member_sig, dev_priv[2], "alicf", acc_pub, 3), 0);
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_AUTH);
  /* structure */
  make_list(&l, NDEV);
  l.dev[2].device_id = 2;
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_MALFORMED);
  make_list(&l, NDEV);
  l.n = 0;
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_MALFORMED);
  make_list(&l, NDEV);
  l.n = SOTTO_DEVLIST_MAX_DEVICES + 1;
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_TOO_LARGE);
  make_list(&l, NDEV);
  l.version = 0;
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_MALFORMED);
  make_list(&l, NDEV);
  strcpy(l.dev[0].name, "a\nb");
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_MALFORMED);
  make_list(&l, NDEV);
  strcpy(l.username, "Alice");
  CHECK_RC(sotto_devlist_sign(&l, acc_priv, buf, sizeof buf, &len), SOTTO_ERR_MALFORMED);
  CHECK(len == 0);
  CHECK_RC(sotto_devlist_member_sign(l.dev[0].member_sig, dev_priv[0], "alice", acc_pub, 0), SOTTO_ERR_USAGE);
}

/* Offsets in the encoding of make_list(NDEV): header, then entries. */
static size_t entry_off(const struct sotto_devlist *l, unsigned i) {
  size_t off = 1 + 1 + strlen(l->username) + 32 + 4 + 1;
  unsigned k;
  for (k = 0; k < i; k++) off += SOTTO_DEVLIST_ENTRY_LEN(strlen(l->dev[k].name));
  return off;
}

static void test_parse_refuses(void) {
  struct sotto_devlist l, p;
  uint8_t good[SOTTO_DEVLIST_MAX_LEN], buf[SOTTO_DEVLIST_MAX_LEN + 8];
  size_t len, i, e1, e2;
  make_list(&l, NDEV);
  if (sotto_devlist_sign(&l, acc_priv, good, sizeof good, &len) != 0) abort();
  e1 = entry_off(&l, 1);
  e2 = entry_off(&l, 2);

  /* forged account signature: any bit of the list or of the signature */
  for (i = 0; i < len; i += 7) {
    memcpy(buf, good, len);
    buf[i] ^= 0x01;
    CHECK(sotto_devlist_parse(&p, buf, len) != 0);
    CHECK(p.n == 0 && p.version == 0);
  }
  memcpy(buf, good, len);
  buf[len - 1] ^= 0x80;
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_AUTH);
  /* a list signed by another key that claims to be the account's */
  memcpy(buf, good, len);
  memcpy(buf + 1 + 1 + 5, dev_pub[4], 32);
  resign(buf, len); /* still signed by acc_priv: verifies against nothing */
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_AUTH);

  /* account-signed, but a device's membership signature is bad (zeros) or missing:
   * the "ghost" an account key holder or a server cannot make */
  memcpy(buf, good, len);
  memset(buf + e2 + SOTTO_DEVLIST_ENTRY_LEN(strlen(l.dev[2].name)) - 64, 0, 64);
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_AUTH);
  /* a device key swapped for another one (its signature was for the old key) */
  memcpy(buf, good, len);
  memcpy(buf + e2 + 4, dev_pub[6], 32);
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_AUTH);
  /* device id reuse: entry 3 renumbered to 2 (duplicate) or 1 (unordered) */
  memcpy(buf, good, len);
  buf[e2 + 3] = 2;
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[e1 + 3] = 0;
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  /* an entry renumbered to an unused id: its membership signature no longer matches */
  memcpy(buf, good, len);
  buf[e2 + 3] = 9;
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_AUTH);
  /* name: control character, bad UTF-8, over the limit */
  memcpy(buf, good, len);
  buf[e1 + 4 + 32 + 1] = 0x07;
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[e1 + 4 + 32 + 1 + 7] = 0xC0; /* the é's lead byte made an overlong */
  resign(buf, len);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[e1 + 4 + 32] = SOTTO_DEVLIST_MAX_NAME + 1;
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_TOO_LARGE);
  /* header: format, username, version 0, no entries, too many entries */
  memcpy(buf, good, len);
  buf[0] = 2;
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[2] = 'A';
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  memset(buf + 2 + 5 + 32, 0, 4);
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[2 + 5 + 32 + 4] = 0;
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_MALFORMED);
  memcpy(buf, good, len);
  buf[2 + 5 + 32 + 4] = SOTTO_DEVLIST_MAX_DEVICES + 1;
  CHECK_RC(sotto_devlist_parse(&p, buf, len), SOTTO_ERR_TOO_LARGE);
  /* every truncation, and trailing bytes */
  for (i = 0; i < len; i++) {
    int rc = sotto_devlist_parse(&p, good, i);
    CHECK(rc == SOTTO_ERR_TRUNCATED || rc == SOTTO_ERR_MALFORMED);
  }
  memcpy(buf, good, len);
  buf[len] = 0;
  CHECK_RC(sotto_devlist_parse(&p, buf, len + 1), SOTTO_ERR_TRAILING);
  CHECK_RC(sotto_devlist_parse(&p, buf, SOTTO_DEVLIST_MAX_LEN + 1), SOTTO_ERR_TOO_LARGE);
  CHECK_RC(sotto_devlist_parse(&p, good, len), 0);
}

int main(void) {
  unsigned i;
  if (sodium_init() < 0 || sotto_init() != 0) return 1;
  if (sotto_keypair_generate(acc_pub, acc_priv) != 0) return 1;
  memcpy(dev_pub[0], acc_pub, 32); /* device 1's identity key is the account key */
  memcpy(dev_priv[0], acc_priv, 32);
  for (i = 1; i <= SOTTO_DEVLIST_MAX_DEVICES; i++)
    if (sotto_keypair_generate(dev_pub[i], dev_priv[i]) != 0) return 1;
  test_roundtrip();
  test_sign_refuses();
  test_parse_refuses();
  return test_done("devlist");
}
