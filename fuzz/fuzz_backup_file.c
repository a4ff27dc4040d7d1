/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_backup_file.c: libFuzzer target for the parsers of the client's
 * backup file (client/core/backup.h): every input goes through the header
 * parser, the plaintext record walker (as if it had decrypted to these
 * bytes) and the recovery key reader. A parsed header must re-encode to the
 * same 60 bytes; the walker must agree with itself with and without a
 * callback, and hand out only names and values within the store's limits. */
#include <stdlib.h>
#include <string.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
  size_t n;
};

static int each(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct seen *s = ud;
  size_t nl = strlen(name);
  (void)val;
  if (nl == 0 || nl > STORE_MAX_NAME || len > STORE_MAX_VALUE) abort();
  s->n++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct backup_hdr h;
  struct seen s = {0};
  uint8_t out[BACKUP_HDR_LEN], secret[BACKUP_RK_RANDOM];
  uint64_t created;
  char user[33];
  int a, b;

  if (backup_parse_header(data, size, &h) == 0) {
    if (h.opslimit < 1 || h.opslimit > BACKUP_MAX_OPSLIMIT || h.mem_kib > BACKUP_MAX_MEM_KIB) abort();
    backup_put_header(out, &h);
    if (memcmp(out, data, BACKUP_HDR_LEN) != 0) abort();
  }
  a = backup_parse_records(data, size, &created, user, sizeof user, NULL, NULL);
  b = backup_parse_records(data, size, &created, user, sizeof user, each, &s);
  if ((a == 0) != (b == 0)) abort();
  if (a == 0 && strlen(user) > 32) abort();
  if (size <= 256 && backup_rk_parse(secret, (const char *)data, size) == 0) {
    char text[BACKUP_RK_TEXT_LEN + 1];
    (void)text;
  }
  return 0;
}
