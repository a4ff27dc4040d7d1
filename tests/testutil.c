/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <sotto/error.h>
#include <stdlib.h>
#include <string.h>

unsigned tu_checks, tu_failures;

const char *tu_errname(int rc) { return sotto_errname(rc); }

int test_done(const char *name) {
  printf("%s: %u checks, %u failed\n", name, tu_checks, tu_failures);
  return tu_failures == 0 ? 0 : 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long tu_unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t n = strlen(hex), i;
  if (n % 2 || n / 2 > cap) return -1;
  for (i = 0; i < n / 2; i++) {
    int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
    if (a < 0 || b < 0) return -1;
    out[i] = (uint8_t)(a << 4 | b);
  }
  return (long)(n / 2);
}

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = 0;
    if (len) *len = (size_t)n;
  }
  return buf;
}
