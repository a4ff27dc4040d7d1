/* SPDX-License-Identifier: Apache-2.0 */
/* fe25519.h: field arithmetic mod 2^255-19 for key-form conversions. */
#ifndef SOTTO_FE25519_H
#define SOTTO_FE25519_H
#include <stdint.h>

struct sotto__fe {
  uint64_t v[5];
};

void sotto__fe_frombytes(struct sotto__fe *h, const uint8_t s[32]);
void sotto__fe_tobytes(uint8_t s[32], const struct sotto__fe *f);
void sotto__fe_one(struct sotto__fe *h);
void sotto__fe_add(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g);
void sotto__fe_sub(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g);
void sotto__fe_mul(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g);
void sotto__fe_invert(struct sotto__fe *out, const struct sotto__fe *z);
int sotto__fe_iszero(const struct sotto__fe *f);

#endif
