/* SPDX-License-Identifier: Apache-2.0 */
/* gen_session_seeds: writes seed corpora for the session fuzz targets from
 * real conversations: fuzz/corpus/{signal_msg,prekey_msg,session_record}/.
 * Run from the repository root: build/bin/gen_session_seeds fuzz/corpus */
#include <sotto/session.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "party.h"

static void put(const char *dir, const char *sub, int i, const uint8_t *b, size_t n) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s/seed-%02d", dir, sub, i);
  if ((f = fopen(path, "wb")) == NULL || fwrite(b, 1, n, f) != n) {
    perror(path);
    exit(1);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  static struct party alice, bob;
  static uint8_t buf[16384], pt[16384], rec[65536];
  struct sotto_session *a, *b;
  struct sotto_bundle bundle;
  size_t n, pn, rn;
  int type, ns = 0, np = 0, nr = 0;
  char text[300];

  if (argc != 2) return 2;
  if (party_init(&alice) || party_init(&bob) || party_add_spk(&bob, 1) || party_add_opk(&bob, 2)) return 1;
  if (party_add_kem(&bob, 9, 1)) return 1;
  for (int round = 0; round < 3; round++) {
    if ((round == 2 ? party_bundle_pq(&bob, 1, 0, 9, &bundle) : party_bundle(&bob, 1, round == 0 ? 2 : 0, &bundle)) ||
        sotto_session_new(&a) || sotto_session_new(&b) ||
        sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH))
      return 1;
    for (int i = 0; i < 12; i++) {
      struct sotto_session *from = (i % 3 == 2) ? b : a, *to = from == a ? b : a;
      struct party *rcpt = to == b ? &bob : &alice;
      memset(text, 'a' + i, sizeof text);
      if (sotto_session_encrypt(from, buf, sizeof buf, &n, &type, (uint8_t *)text, (size_t)(i * 23) % 280))
        return 1;
      if (type == SOTTO_MSG_PREKEY) put(argv[1], "prekey_msg", np++, buf, n);
      else put(argv[1], "signal_msg", ns++, buf, n);
      if (i == 5) continue; /* leave one skipped key in the record */
      if (sotto_session_decrypt(to, &rcpt->id, &rcpt->store, type, buf, n, pt, sizeof pt, &pn)) return 1;
      if (i % 4 == 0) {
        if (sotto_session_serialize(to, rec, sizeof rec, &rn)) return 1;
        put(argv[1], "session_record", nr++, rec, rn);
      }
    }
    sotto_session_free(a);
    sotto_session_free(b);
  }
  printf("wrote %d signal, %d prekey, %d record seeds\n", ns, np, nr);
  return 0;
}
