/* SPDX-License-Identifier: Apache-2.0 */
/* test_fingerprint_kat.c: safety numbers and scannable payloads against the
 * libsignal known answers (vectors/signal/libsignal_kats.json,
 * `safety_number_fingerprint`), plus the API's negative cases. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/fingerprint.h>
#include <sotto/keys.h>

#include "testutil.h"

static const char *str_field(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A 33-byte serialized key from hex, as a raw 32-byte key. */
static int key_from_hex(uint8_t out[32], const char *hex) {
  uint8_t ser[33];
  if (hex == NULL || tu_unhex(ser, sizeof ser, hex) != 33) return -1;
  return sotto_pubkey_parse(out, ser, sizeof ser);
}

static void test_kat(const cJSON *v) {
  const char *a_id = str_field(v, "alice_stable_id"), *b_id = str_field(v, "bob_stable_id");
  const char *disp = str_field(v, "displayable_v1_and_v2");
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(v, "iterations");
  uint8_t ak[32], bk[32], want_a[128], want_b[128], want_a2[128], sa[128], sb[128];
  char num_a[SOTTO_SAFETY_NUMBER_LEN + 1], num_b[SOTTO_SAFETY_NUMBER_LEN + 1];
  long la, lb, la2;
  size_t na = 0, nb = 0;
  uint32_t iters;

  if (a_id == NULL || b_id == NULL || disp == NULL || !cJSON_IsNumber(it)) {
    CHECK(!"vector fields missing");
    return;
  }
  iters = (uint32_t)it->valuedouble;
  CHECK(iters == SOTTO_FINGERPRINT_ITERATIONS);
  CHECK(key_from_hex(ak, str_field(v, "alice_identity_key")) == 0);
  CHECK(key_from_hex(bk, str_field(v, "bob_identity_key")) == 0);
  la = tu_unhex(want_a, sizeof want_a, str_field(v, "alice_scannable_v1"));
  lb = tu_unhex(want_b, sizeof want_b, str_field(v, "bob_scannable_v1"));
  la2 = tu_unhex(want_a2, sizeof want_a2, str_field(v, "alice_scannable_v2"));
  CHECK(la == SOTTO_FINGERPRINT_SCANNABLE_LEN && lb == SOTTO_FINGERPRINT_SCANNABLE_LEN);

  /* Both sides display the same 60 digits. */
  CHECK_RC(sotto_safety_number(num_a, (const uint8_t *)a_id, strlen(a_id), ak, (const uint8_t *)b_id,
                               strlen(b_id), bk, iters),
           0);
  CHECK_RC(sotto_safety_number(num_b, (const uint8_t *)b_id, strlen(b_id), bk, (const uint8_t *)a_id,
                               strlen(a_id), ak, iters),
           0);
  CHECK(strcmp(num_a, disp) == 0);
  CHECK(strcmp(num_b, disp) == 0);
  if (strcmp(num_a, disp) != 0) fprintf(stderr, "  got  %s\n  want %s\n", num_a, disp);

  /* Scannable payloads, byte for byte. */
  CHECK_RC(sotto_fingerprint_scannable(sa, sizeof sa, &na, (const uint8_t *)a_id, strlen(a_id), ak,
                                       (const uint8_t *)b_id, strlen(b_id), bk, iters),
           0);
  CHECK_RC(sotto_fingerprint_scannable(sb, sizeof sb, &nb, (const uint8_t *)b_id, strlen(b_id), bk,
                                       (const uint8_t *)a_id, strlen(a_id), ak, iters),
           0);
  CHECK(na == (size_t)la && memcmp(sa, want_a, na) == 0);
  CHECK(nb == (size_t)lb && memcmp(sb, want_b, nb) == 0);

  /* The combined call gives the same. */
  {
    char n2[SOTTO_SAFETY_NUMBER_LEN + 1];
    uint8_t s2[SOTTO_FINGERPRINT_SCANNABLE_LEN];
    CHECK_RC(sotto_fingerprint(n2, s2, (const uint8_t *)a_id, strlen(a_id), ak,
                               (const uint8_t *)b_id, strlen(b_id), bk, iters),
             0);
    CHECK(strcmp(n2, disp) == 0 && memcmp(s2, want_a, sizeof s2) == 0);
  }

  /* Comparing: the two phones match each other, in both directions. */
  CHECK_RC(sotto_fingerprint_compare_scannable(sa, na, want_b, (size_t)lb), 0);
  CHECK_RC(sotto_fingerprint_compare_scannable(sb, nb, want_a, (size_t)la), 0);
  /* Our own payload is not the other phone's (the halves are swapped). */
  CHECK_RC(sotto_fingerprint_compare_scannable(sa, na, sa, na), SOTTO_ERR_AUTH);
  /* Version 2 (current libsignal) against our version 1 is a version
   * mismatch, not a match. */
  CHECK(la2 == SOTTO_FINGERPRINT_SCANNABLE_LEN);
  CHECK_RC(sotto_fingerprint_compare_scannable(sb, nb, want_a2, (size_t)la2), SOTTO_ERR_VERSION);
  CHECK_RC(sotto_fingerprint_compare_scannable(want_a2, (size_t)la2, sb, nb), SOTTO_ERR_VERSION);
  /* Scannable version 2 written byte for byte as libsignal does, and accepted
   * from the other phone when both show version 2. */
  {
    uint8_t sa2[128], sb2[128];
    size_t na2 = 0, nb2 = 0;
    CHECK_RC(sotto_fingerprint_scannable_version(sa2, sizeof sa2, &na2, 2, (const uint8_t *)a_id,
                                                 strlen(a_id), ak, (const uint8_t *)b_id,
                                                 strlen(b_id), bk, iters),
             0);
    CHECK(na2 == (size_t)la2 && memcmp(sa2, want_a2, na2) == 0);
    CHECK_RC(sotto_fingerprint_scannable_version(sb2, sizeof sb2, &nb2, 2, (const uint8_t *)b_id,
                                                 strlen(b_id), bk, (const uint8_t *)a_id,
                                                 strlen(a_id), ak, iters),
             0);
    CHECK_RC(sotto_fingerprint_compare_scannable(sb2, nb2, want_a2, (size_t)la2), 0);
    CHECK_RC(sotto_fingerprint_compare_scannable(sa2, na2, sb2, nb2), 0);
    CHECK_RC(sotto_fingerprint_compare_scannable(sa2, na2, sa2, na2), SOTTO_ERR_AUTH);
    /* Version 1 through the versioned call is the unversioned payload. */
    CHECK_RC(sotto_fingerprint_scannable_version(sb2, sizeof sb2, &nb2, 1, (const uint8_t *)b_id,
                                                 strlen(b_id), bk, (const uint8_t *)a_id,
                                                 strlen(a_id), ak, iters),
             0);
    CHECK(nb2 == nb && memcmp(sb2, sb, nb) == 0);
    /* Versions 0 and 3 are not written. */
    CHECK_RC(sotto_fingerprint_scannable_version(sb2, sizeof sb2, &nb2, 0, (const uint8_t *)b_id,
                                                 strlen(b_id), bk, (const uint8_t *)a_id,
                                                 strlen(a_id), ak, iters),
             SOTTO_ERR_VERSION);
    CHECK_RC(sotto_fingerprint_scannable_version(sb2, sizeof sb2, &nb2, 3, (const uint8_t *)b_id,
                                                 strlen(b_id), bk, (const uint8_t *)a_id,
                                                 strlen(a_id), ak, iters),
             SOTTO_ERR_VERSION);
    CHECK(nb2 == 0);
    /* A version-3 payload (otherwise well formed) is refused as a version. */
    sa2[1] = 3;
    CHECK_RC(sotto_fingerprint_compare_scannable(sb, nb, sa2, na2), SOTTO_ERR_VERSION);
  }

  /* Every single-bit change of the scanned payload is detected: either it no
   * longer parses, or it is a different version, or a mismatch. */
  {
    size_t i, bad = 0;
    for (i = 0; i < (size_t)la * 8; i++) {
      int rc;
      want_a[i / 8] ^= (uint8_t)(1u << (i % 8));
      rc = sotto_fingerprint_compare_scannable(sb, nb, want_a, (size_t)la);
      if (rc == 0) bad++;
      want_a[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    CHECK(bad == 0);
    for (i = 0; i < (size_t)la; i++) {
      int rc = sotto_fingerprint_compare_scannable(sb, nb, want_a, i);
      if (rc == 0 || rc == SOTTO_ERR_AUTH) bad++;
    }
    CHECK(bad == 0);
  }

  /* A different key or a different identifier on one side: other digits,
   * and the scanned payload mismatches. */
  {
    uint8_t other[32], so[SOTTO_FINGERPRINT_SCANNABLE_LEN];
    char no[SOTTO_SAFETY_NUMBER_LEN + 1];
    size_t no_len = 0;
    memcpy(other, bk, 32);
    other[5] ^= 1;
    CHECK_RC(sotto_safety_number(no, (const uint8_t *)a_id, strlen(a_id), ak, (const uint8_t *)b_id,
                                 strlen(b_id), other, iters),
             0);
    CHECK(strcmp(no, disp) != 0);
    CHECK_RC(sotto_fingerprint_scannable(so, sizeof so, &no_len, (const uint8_t *)b_id, strlen(b_id),
                                         other, (const uint8_t *)a_id, strlen(a_id), ak, iters),
             0);
    CHECK_RC(sotto_fingerprint_compare_scannable(sa, na, so, no_len), SOTTO_ERR_AUTH);
    CHECK_RC(sotto_fingerprint_scannable(so, sizeof so, &no_len, (const uint8_t *)"+14153333334", 12,
                                         bk, (const uint8_t *)a_id, strlen(a_id), ak, iters),
             0);
    CHECK_RC(sotto_fingerprint_compare_scannable(sa, na, so, no_len), SOTTO_ERR_AUTH);
  }
}

static void test_api(void) {
  uint8_t k1[32], k2[32], priv[32], buf[SOTTO_FINGERPRINT_SCANNABLE_LEN], id[SOTTO_MAX_STABLE_ID_LEN + 1];
  char num[SOTTO_SAFETY_NUMBER_LEN + 1], num2[SOTTO_SAFETY_NUMBER_LEN + 1];
  size_t n = 9, i;

  if (sotto_keypair_generate(k1, priv) != 0 || sotto_keypair_generate(k2, priv) != 0) exit(2);
  memset(id, 'u', sizeof id);
  /* Identifier length: the limit is accepted, one more is not. Empty and
   * NULL-with-zero-length ids are fine. */
  CHECK_RC(sotto_safety_number(num, id, SOTTO_MAX_STABLE_ID_LEN, k1, id, 1, k2, 2), 0);
  CHECK(strlen(num) == SOTTO_SAFETY_NUMBER_LEN);
  for (i = 0; i < SOTTO_SAFETY_NUMBER_LEN; i++) CHECK(num[i] >= '0' && num[i] <= '9');
  CHECK_RC(sotto_safety_number(num, id, SOTTO_MAX_STABLE_ID_LEN + 1, k1, id, 1, k2, 2),
           SOTTO_ERR_TOO_LARGE);
  CHECK_RC(sotto_safety_number(num, id, 1, k1, id, SOTTO_MAX_STABLE_ID_LEN + 1, k2, 2),
           SOTTO_ERR_TOO_LARGE);
  CHECK_RC(sotto_safety_number(num, NULL, 0, k1, NULL, 0, k2, 2), 0);
  CHECK_RC(sotto_safety_number(num2, (const uint8_t *)"", 0, k1, (const uint8_t *)"", 0, k2, 2), 0);
  CHECK(strcmp(num, num2) == 0);
  CHECK_RC(sotto_safety_number(num, NULL, 3, k1, NULL, 0, k2, 2), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_safety_number(NULL, id, 1, k1, id, 1, k2, 2), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_safety_number(num, id, 1, NULL, id, 1, k2, 2), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_safety_number(num, id, 1, k1, id, 1, k2, 0), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_safety_number(num, id, 1, k1, id, 1, k2, SOTTO_FINGERPRINT_MAX_ITERATIONS + 1),
           SOTTO_ERR_USAGE);
  /* Symmetric: both orders give the same digits. */
  CHECK_RC(sotto_safety_number(num, id, 3, k1, id + 1, 4, k2, 50), 0);
  CHECK_RC(sotto_safety_number(num2, id + 1, 4, k2, id, 3, k1, 50), 0);
  CHECK(strcmp(num, num2) == 0);
  /* Buffers. */
  CHECK_RC(sotto_fingerprint_scannable(buf, sizeof buf - 1, &n, id, 1, k1, id, 1, k2, 2),
           SOTTO_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 0);
  CHECK_RC(sotto_fingerprint_scannable(buf, sizeof buf, NULL, id, 1, k1, id, 1, k2, 2),
           SOTTO_ERR_USAGE);

  /* Malformed scanned payloads. */
  {
    static const uint8_t v0[] = {0x08, 0x00, 0x12, 0x02, 0x0a, 0x00, 0x1a, 0x02, 0x0a, 0x00};
    static const uint8_t noversion[] = {0x12, 0x02, 0x0a, 0x00, 0x1a, 0x02, 0x0a, 0x00};
    static const uint8_t noremote[] = {0x08, 0x01, 0x12, 0x02, 0x0a, 0x00};
    static const uint8_t badwt[] = {0x08, 0x01, 0x10, 0x01, 0x1a, 0x02, 0x0a, 0x00};
    uint8_t ours[SOTTO_FINGERPRINT_SCANNABLE_LEN], big[SOTTO_FINGERPRINT_SCANNABLE_MAX_LEN + 1];
    size_t ol = 0;
    CHECK_RC(sotto_fingerprint_scannable(ours, sizeof ours, &ol, id, 1, k1, id, 1, k2, 2), 0);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, v0, sizeof v0), SOTTO_ERR_VERSION);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, noversion, sizeof noversion),
             SOTTO_ERR_VERSION);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, noremote, sizeof noremote),
             SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, badwt, sizeof badwt), SOTTO_ERR_MALFORMED);
    /* version 1 with short contents */
    {
      static const uint8_t shortc[] = {0x08, 0x01, 0x12, 0x02, 0x0a, 0x00, 0x1a, 0x02, 0x0a, 0x00};
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, shortc, sizeof shortc),
               SOTTO_ERR_MALFORMED);
    }
    /* duplicate version field */
    {
      uint8_t dup[SOTTO_FINGERPRINT_SCANNABLE_LEN + 2];
      dup[0] = 0x08;
      dup[1] = 0x01;
      memcpy(dup + 2, ours, ol);
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, dup, sizeof dup), SOTTO_ERR_MALFORMED);
    }
    /* an unknown trailing field is skipped (protobuf rules) and still matches
     * only the right payload */
    {
      uint8_t ext[SOTTO_FINGERPRINT_SCANNABLE_LEN + 2], theirs[SOTTO_FINGERPRINT_SCANNABLE_LEN];
      size_t tl = 0;
      CHECK_RC(sotto_fingerprint_scannable(theirs, sizeof theirs, &tl, id, 1, k2, id, 1, k1, 2), 0);
      memcpy(ext, theirs, tl);
      ext[tl] = 0x48;
      ext[tl + 1] = 0x05;
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, ext, sizeof ext), 0);
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, theirs, tl), 0);
    }
    memset(big, 0, sizeof big);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, big, sizeof big), SOTTO_ERR_TOO_LARGE);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, NULL, 0), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, ol, NULL, 3), SOTTO_ERR_USAGE);
  }
}

int main(int argc, char **argv) {
  char path[4096];
  char *json;
  cJSON *root;
  const cJSON *fp, *values;

  if (argc != 2) {
    fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
    return 2;
  }
  if (sotto_init() != 0) return 2;
  snprintf(path, sizeof path, "%s/signal/libsignal_kats.json", argv[1]);
  json = tu_read_file(path, NULL);
  REQUIRE(json != NULL);
  root = cJSON_Parse(json);
  free(json);
  REQUIRE(root != NULL);
  fp = cJSON_GetObjectItemCaseSensitive(root, "safety_number_fingerprint");
  values = fp ? cJSON_GetObjectItemCaseSensitive(fp, "values") : NULL;
  CHECK(values != NULL);
  if (values != NULL) test_kat(values);
  cJSON_Delete(root);
  test_api();
  return test_done("group_fingerprint_kat");
}
