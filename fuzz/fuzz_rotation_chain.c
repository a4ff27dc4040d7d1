/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_rotation_chain.c: the ROTATION answer a (possibly hostile) server
 * sends before the client trusts its certificate (proto/rotation.c): the
 * chain parser, the single-statement parser, the encoder round trip, and
 * the client's walk (sotto__rot_follow) from the first statement's old key
 * to the last one's certificate at a time inside the first window, so the
 * signature checks run on fuzzed bytes.
 * Invariants: a parsed chain re-encodes to the same bytes; the walk only
 * succeeds when the link it ended on carries a valid signature (checked
 * again here); nothing reads out of bounds (ASan). rotation.c is compiled in
 * directly because the libFuzzer build of fuzz/ links libsotto only. */
#include "rotation.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_rot_statement c[SOTTO_ROT_MAX_CHAIN];
  static uint8_t out[SOTTO_ROT_CHAIN_MAX_LEN];
  struct sotto_rot_statement one;
  struct sotto__wr w;
  uint64_t ser = 0;
  size_t n = 0, i;

  if (sodium_init() < 0) abort();
  if (sotto__rot_parse_statement(data, size, &one) == 0 && one.version != SOTTO_ROT_VERSION) abort();
  if (sotto__rot_parse_chain(data, size, c, SOTTO_ROT_MAX_CHAIN, &n) != 0) return 0;
  sotto__wr_init(&w, out, sizeof out);
  sotto__rot_put_chain(&w, c, n);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  if (n == 0) return 0;
  if (sotto__rot_follow(c, n, c[0].old_key, 0, c[n - 1].new_fp, c[n - 1].new_key, c[0].not_before, &ser) == 0) {
    /* Accepted: then the link it ended on (serial ser, to exactly the
     * presented certificate) carries a valid signature. Other statements
     * with that serial may be invalid: the walk skips them as replays. */
    int found = 0;
    for (i = 0; i < n; i++)
      if (c[i].serial == ser && memcmp(c[i].new_fp, c[n - 1].new_fp, SOTTO_ROT_FP_LEN) == 0 &&
          memcmp(c[i].new_key, c[n - 1].new_key, SOTTO_ROT_KEY_LEN) == 0 && sotto__rot_check_sig(&c[i]) == 0)
        found = 1;
    if (!found) abort();
  }
  return 0;
}
