/* SPDX-License-Identifier: Apache-2.0 */
/* bench_group.c: throwaway throughput comparison of Sender Keys, libsotto vs
 * libsignal-protocol-c (through sigc). One "message" = encrypt (sign) +
 * decrypt (verify) of a 100-byte plaintext with one receiver, as in
 * notes/signal-v3.md 3.1 (d). Prints the median of 3 runs per library.
 * Usage: group_bench [messages_per_run]   (default 3000). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sotto/group.h>

#include "sigc.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double run_sotto(unsigned n) {
  struct sotto_sender_key *s, *r;
  uint8_t d[SOTTO_SKDM_MAX_LEN], pt[100], m[SOTTO_GROUP_MESSAGE_MAX_LEN(100)], out[256];
  size_t dn, mn, on;
  unsigned i;
  double t0;

  memset(pt, 'x', sizeof pt);
  if (sotto_sender_key_new(&s) || sotto_sender_key_new(&r) ||
      sotto_sender_key_distribution(s, d, sizeof d, &dn) || sotto_sender_key_process(r, d, dn))
    exit(1);
  t0 = now();
  for (i = 0; i < n; i++) {
    if (sotto_group_encrypt(s, m, sizeof m, &mn, pt, sizeof pt) != 0) exit(1);
    if (sotto_group_decrypt(r, out, sizeof out, &on, m, mn) != 0 || on != 100) exit(1);
  }
  t0 = now() - t0;
  sotto_sender_key_free(s);
  sotto_sender_key_free(r);
  return n / t0;
}

static double run_sigc(unsigned n) {
  struct sigc_user *a = sigc_user_new("a", 1), *b = sigc_user_new("b", 1);
  uint8_t pt[100], *d = NULL, *m, *out;
  size_t dn, mn, on;
  unsigned i;
  double t0;

  memset(pt, 'x', sizeof pt);
  if (!a || !b || sigc_group_create(a, "g", &d, &dn) || sigc_group_process(b, "g", "a", 1, d, dn))
    exit(1);
  free(d);
  t0 = now();
  for (i = 0; i < n; i++) {
    if (sigc_group_encrypt(a, "g", pt, sizeof pt, &m, &mn) != 0) exit(1);
    if (sigc_group_decrypt(b, "g", "a", 1, m, mn, &out, &on) != 0 || on != 100) exit(1);
    free(m);
    free(out);
  }
  t0 = now() - t0;
  sigc_user_free(a);
  sigc_user_free(b);
  return n / t0;
}

int main(int argc, char **argv) {
  unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 3000, k;
  double so[3], sg[3];
  for (k = 0; k < 3; k++) {
    so[k] = run_sotto(n);
    sg[k] = run_sigc(n);
  }
  printf("runs: sotto %.0f %.0f %.0f msg/s; libsignal-c %.0f %.0f %.0f msg/s\n", so[0], so[1],
         so[2], sg[0], sg[1], sg[2]);
  qsort(so, 3, sizeof so[0], cmp_d);
  qsort(sg, 3, sizeof sg[0], cmp_d);
  printf("%-28s %12s %10s\n", "group enc+dec, 100 B", "msg/s", "us/msg");
  printf("%-28s %12.0f %10.1f\n", "libsotto", so[1], 1e6 / so[1]);
  printf("%-28s %12.0f %10.1f\n", "libsignal-protocol-c 2.3.3", sg[1], 1e6 / sg[1]);
  printf("%-28s %12.2fx\n", "ratio", so[1] / sg[1]);
  return 0;
}
