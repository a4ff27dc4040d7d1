/* SPDX-License-Identifier: Apache-2.0 */
/* kt_fixed.h: the fixed keys of the key-transparency fuzz targets and of
 * their corpus generator (gen_kt_corpus.c), so generated inputs verify. */
#ifndef SOTTO_FUZZ_KT_FIXED_H
#define SOTTO_FUZZ_KT_FIXED_H

#include <sodium.h>
#include <string.h>

#include <sotto/kt.h>

static const uint8_t kt_fixed_sig_seed[32] = {'s', 'o', 't', 't', 'o', '-', 'f', 'u', 'z', 'z', '-', 's', 'i', 'g'};
static const uint8_t kt_fixed_vrf_sk[32] = {'s', 'o', 't', 't', 'o', '-', 'f', 'u', 'z', 'z', '-', 'v', 'r', 'f'};
static const uint8_t kt_fixed_w1[32] = {'w', '1'};
static const uint8_t kt_fixed_w2[32] = {'w', '2'};

static inline void kt_fixed_log_id(struct sotto_kt_log_id *id) {
  uint8_t sk[64];
  crypto_sign_seed_keypair(id->sig_pk, sk, kt_fixed_sig_seed);
  if (sotto_kt_vrf_public_key(id->vrf_pk, kt_fixed_vrf_sk) != 0) memset(id->vrf_pk, 0, 32);
  sodium_memzero(sk, sizeof sk);
}

static inline void kt_fixed_witness_pks(uint8_t pks[64]) {
  uint8_t sk[64];
  crypto_sign_seed_keypair(pks, sk, kt_fixed_w1);
  crypto_sign_seed_keypair(pks + 32, sk, kt_fixed_w2);
}

#endif
