/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/mlkem_test.c: helpers for the ML-KEM tests (see mlkem_test.h). */
#include "mlkem_test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct mt_kem mt_kems[MT_NKEMS] = {
    {"ML-KEM-768", 3, SOTTO_MLKEM768_PK_LEN, SOTTO_MLKEM768_SK_LEN, SOTTO_MLKEM768_CT_LEN,
     sotto_mlkem768_keypair, sotto_mlkem768_keypair_derand, sotto_mlkem768_keypair_from_seed,
     sotto_mlkem768_check_pk, sotto_mlkem768_encaps, sotto_mlkem768_encaps_derand, sotto_mlkem768_decaps},
    {"ML-KEM-1024", 4, SOTTO_MLKEM1024_PK_LEN, SOTTO_MLKEM1024_SK_LEN, SOTTO_MLKEM1024_CT_LEN,
     sotto_mlkem1024_keypair, sotto_mlkem1024_keypair_derand, sotto_mlkem1024_keypair_from_seed,
     sotto_mlkem1024_check_pk, sotto_mlkem1024_encaps, sotto_mlkem1024_encaps_derand, sotto_mlkem1024_decaps},
};

unsigned long mt_checks;
unsigned long mt_failures;

void mt_check(int ok, const char *file, int line, const char *fmt, ...) {
  va_list ap;

  mt_checks++;
  if (ok) {
    return;
  }
  mt_failures++;
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void mt_check_bytes(const uint8_t *got, const uint8_t *want, size_t len, const char *file, int line,
                    const char *what) {
  size_t i;

  for (i = 0; i < len; i++) {
    if (got[i] != want[i]) {
      break;
    }
  }
  mt_check(i == len, file, line, "%s: differs at byte %zu of %zu (got %02x, want %02x)", what, i, len,
           i < len ? got[i] : 0, i < len ? want[i] : 0);
}

int mt_all_zero(const uint8_t *p, size_t len) {
  uint8_t acc = 0;
  size_t i;

  for (i = 0; i < len; i++) {
    acc |= p[i];
  }
  return acc == 0;
}

int mt_finish(const char *test_name) {
  if (mt_checks == 0) {
    fprintf(stderr, "FAIL %s: no checks ran\n", test_name);
    return 1;
  }
  printf("%s: %lu checks, %lu failed\n", test_name, mt_checks, mt_failures);
  return mt_failures == 0 ? 0 : 1;
}

char *mt_read_file(const char *dir, const char *name, size_t *len) {
  char path[4096];
  FILE *f = NULL;
  char *buf = NULL;
  size_t n = 0, got;
  int w;

  w = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (w < 0 || (size_t)w >= sizeof path) {
    fprintf(stderr, "FAIL: vector path too long: %s/%s\n", dir, name);
    return NULL;
  }
  f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "FAIL: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  buf = malloc(MT_MAX_FILE + 1);
  if (buf == NULL) {
    fprintf(stderr, "FAIL: out of memory reading %s\n", path);
    fclose(f);
    return NULL;
  }
  /* Read one byte past the cap so an oversized file is detected. */
  while (n <= MT_MAX_FILE && (got = fread(buf + n, 1, MT_MAX_FILE + 1 - n, f)) > 0) {
    n += got;
  }
  if (ferror(f) || n > MT_MAX_FILE) {
    fprintf(stderr, "FAIL: %s: %s\n", path, ferror(f) ? "read error" : "file too large");
    fclose(f);
    free(buf);
    return NULL;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

cJSON *mt_load_json(const char *dir, const char *name) {
  size_t len = 0;
  char *text;
  cJSON *root;

  text = mt_read_file(dir, name, &len);
  if (text == NULL) {
    return NULL;
  }
  root = cJSON_ParseWithLength(text, len);
  if (root == NULL) {
    fprintf(stderr, "FAIL: %s/%s: JSON parse error\n", dir, name);
  }
  free(text);
  return root;
}

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

int mt_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap, size_t *len) {
  size_t i;
  int hi, lo;

  if (hex_len % 2 != 0 || hex_len / 2 > cap) {
    return -1;
  }
  for (i = 0; i < hex_len / 2; i++) {
    hi = hex_nibble(hex[2 * i]);
    lo = hex_nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return -1;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = hex_len / 2;
  return 0;
}

long mt_hex_field(const cJSON *obj, const char *key, uint8_t *out, size_t cap) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  size_t len = 0;

  if (!cJSON_IsString(item) || item->valuestring == NULL) {
    fprintf(stderr, "FAIL: vector field \"%s\" missing or not a string\n", key);
    return -1;
  }
  if (mt_hex_decode(item->valuestring, strlen(item->valuestring), out, cap, &len) != 0) {
    fprintf(stderr, "FAIL: vector field \"%s\" is not hex of at most %zu bytes\n", key, cap);
    return -1;
  }
  return (long)len;
}

const char *mt_str_field(const cJSON *obj, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

  return cJSON_IsString(item) && item->valuestring != NULL ? item->valuestring : "";
}

int mt_int_field(const cJSON *obj, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

  return cJSON_IsNumber(item) ? item->valueint : -1;
}

int mt_has_flag(const cJSON *obj, const char *flag) {
  const cJSON *flags = cJSON_GetObjectItemCaseSensitive(obj, "flags");
  const cJSON *f;

  cJSON_ArrayForEach(f, flags) {
    if (cJSON_IsString(f) && strcmp(f->valuestring, flag) == 0) {
      return 1;
    }
  }
  return 0;
}
