/* SPDX-License-Identifier: Apache-2.0 */
/* test_mlkem768_inc: ML-KEM-768 encapsulation in two steps (SPQR's
 * "incremental" use, lib/pq/mlkem768_inc.c) gives exactly the ciphertext and
 * secret of one-step FIPS 203 encapsulation (itself checked by the ML-KEM
 * KATs), and the header/vector split refuses a vector that does not match. */
#include <string.h>

#include <sodium.h>
#include <sotto/error.h>
#include <sotto/mlkem.h>

#include "pq/mlkem768_inc.h"
#include "testutil.h"

int main(void) {
  static uint8_t pk[SOTTO_MLKEM768_PK_LEN], sk[SOTTO_MLKEM768_SK_LEN], ct[SOTTO_MLKEM768_CT_LEN],
      t[SOTTO_MLKEM768_EK_VEC_LEN];
  uint8_t hdr[SOTTO_MLKEM768_HDR_LEN], ct1[SOTTO_MLKEM768_CT1_LEN], ct2[SOTTO_MLKEM768_CT2_LEN],
      st[SOTTO_MLKEM768_INC_STATE_LEN], m[32], ss[32], ss1[32], ss2[32];
  int i, same = 0;

  REQUIRE(sodium_init() >= 0);
  for (i = 0; i < 50; i++) {
    CHECK_RC(sotto_mlkem768_keypair(pk, sk), 0);
    randombytes_buf(m, sizeof m);
    CHECK_RC(sotto__mlkem768_header(hdr, pk, sizeof pk), 0);
    memcpy(t, pk, sizeof t);
    CHECK_RC(sotto__mlkem768_ek_matches(hdr, t), 0);
    CHECK_RC(sotto__mlkem768_encaps1(ct1, st, ss1, hdr, m), 0);
    CHECK_RC(sotto__mlkem768_encaps2(ct2, st, hdr, t), 0);
    CHECK_RC(sotto_mlkem768_encaps_derand(ct, ss, pk, sizeof pk, m), 0);
    if (memcmp(ct, ct1, sizeof ct1) == 0 && memcmp(ct + sizeof ct1, ct2, sizeof ct2) == 0 &&
        memcmp(ss, ss1, 32) == 0)
      same++;
    CHECK_RC(sotto_mlkem768_decaps(ss2, ct, sizeof ct, sk, sizeof sk), 0);
    CHECK(memcmp(ss2, ss1, 32) == 0);
  }
  CHECK(same == 50);
  /* A vector of another key, a flipped bit, a coefficient >= q: refused,
   * and encaps2 refuses them too. */
  t[100] ^= 1;
  CHECK_RC(sotto__mlkem768_ek_matches(hdr, t), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto__mlkem768_encaps2(ct2, st, hdr, t), SOTTO_ERR_INVALID_KEY);
  t[100] ^= 1;
  t[0] = 0xFF;
  t[1] |= 0x0F;
  CHECK_RC(sotto__mlkem768_ek_matches(hdr, t), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto__mlkem768_header(hdr, pk, sizeof pk - 1), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto__mlkem768_encaps1(NULL, st, ss1, hdr, m), SOTTO_ERR_USAGE);
  return test_done(__FILE__);
}
