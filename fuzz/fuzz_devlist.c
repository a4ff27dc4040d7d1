/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_devlist.c: libFuzzer target for the signed device list
 * (sotto/devlist.h). A list that parses has 1..MAX entries with strictly
 * increasing ids, NUL-terminated names within the limit, and every entry is
 * found by its id; a list that does not parse leaves the output zeroed. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/devlist.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct sotto_devlist zero;
  struct sotto_devlist l;
  unsigned i;
  if (sodium_init() < 0) abort();
  if (sotto_devlist_parse(&l, data, size) != 0) {
    if (memcmp(&l, &zero, sizeof l) != 0) abort();
    return 0;
  }
  if (l.n == 0 || l.n > SOTTO_DEVLIST_MAX_DEVICES || l.version == 0) abort();
  if (strlen(l.username) == 0 || strlen(l.username) > SOTTO_DEVLIST_MAX_USERNAME) abort();
  for (i = 0; i < l.n; i++) {
    if (strlen(l.dev[i].name) > SOTTO_DEVLIST_MAX_NAME) abort();
    if (i > 0 && l.dev[i].device_id <= l.dev[i - 1].device_id) abort();
    if (sotto_devlist_find(&l, l.dev[i].device_id) != (int)i) abort();
  }
  return 0;
}
