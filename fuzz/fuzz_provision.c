/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_provision.c: the messages of linking a device (client/core/
 * provision.c) as a device reads them from the link slot: the first input
 * byte picks one (low 2 bits: the provisioning payload, the new device's
 * keys, a link code as text, a sealed provisioning message), the rest is
 * its bytes. Whatever parses stays in its bounds and encodes back to the
 * same bytes (payload, keys); a sealed message under fixed keys never opens
 * unless it was made with them (it cannot be: the fuzzer does not know the
 * key), and a failed open leaves the output zeroed. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t secret[PROV_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  static const uint8_t slot[PROV_SLOT_LEN] = {0};
  static struct prov_msg m;
  const uint8_t *p;
  size_t n, i;
  uint8_t sel;
  if (size < 1 || sodium_init() < 0) return 0;
  sel = data[0] & 3;
  p = data + 1;
  n = size - 1;
  if (sel == 0) {
    uint8_t *out = NULL;
    size_t ol = 0;
    if (prov_payload_decode(&m, p, n) != 0) {
      for (i = 0; i < sizeof m; i++)
        if (((const uint8_t *)&m)[i]) abort(); /* zeroed on failure */
      return 0;
    }
    if (m.n_contacts > PROV_MAX_CONTACTS || m.n_groups > PROV_MAX_GROUPS || m.device_id < 2) abort();
    for (i = 0; i < m.n_groups; i++)
      if (m.groups[i].n > GROUP_MAX_MEMBERS) abort();
    if (prov_payload_encode(&out, &ol, &m, n + 1) != 0 || ol != n || memcmp(out, p, n) != 0) abort();
    sodium_memzero(out, ol);
    free(out);
  } else if (sel == 1) {
    struct prov_keys k;
    uint8_t out[PROV_KEYS_MAX];
    size_t ol = 0;
    int rc = prov_keys_decode(&k, p, n, secret);
    if (rc == 0) {
      if (!prov_name_ok(k.name) || prov_keys_encode(out, sizeof out, &ol, &k, secret) != 0 || ol != n ||
          memcmp(out, p, n) != 0)
        abort();
    } else if (rc != -1 && rc != -2) {
      abort();
    }
  } else if (sel == 2) {
    char text[PROV_CODE_TEXT_MAX * 2 + 1], again[PROV_CODE_TEXT_MAX];
    uint8_t s1[PROV_SLOT_LEN], x1[PROV_SECRET_LEN], s2[PROV_SLOT_LEN], x2[PROV_SECRET_LEN];
    size_t tl = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, tl);
    text[tl] = 0;
    if (prov_code_parse(s1, x1, text) == 0) {
      prov_code_format(again, s1, x1);
      if (prov_code_parse(s2, x2, again) != 0 || memcmp(s1, s2, sizeof s1) != 0 || memcmp(x1, x2, sizeof x1) != 0)
        abort();
    }
  } else {
    struct prov_keys k;
    uint8_t priv[32];
    memset(&k, 0, sizeof k);
    memset(priv, 0x42, sizeof priv);
    crypto_scalarmult_base(k.eph, priv);
    if (prov_open(&m, p, n, &k, priv, slot, secret) == 0) abort();
    for (i = 0; i < sizeof m.username; i++)
      if (m.username[i]) abort();
  }
  return 0;
}
