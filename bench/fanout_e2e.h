/* SPDX-License-Identifier: Apache-2.0 */
/* fanout_e2e.h: rows fanout_e2e_1, _2, _4, _8 of bench_fanout (bench/run
 * fanout; docs/benchmarks.md, "Fan-out"): the client core's send path end
 * to end through the real sotto-server over TLS on 127.0.0.1. */
#ifndef SOTTO_BENCH_FANOUT_E2E_H
#define SOTTO_BENCH_FANOUT_E2E_H

#include <stddef.h>

#define FANOUT_E2E_ROWS 4

struct fanout_e2e_result {
  unsigned devices[FANOUT_E2E_ROWS]; /* 1, 2, 4, 8 */
  double rate[FANOUT_E2E_ROWS];      /* messages/s, median over rounds */
  double floor[FANOUT_E2E_ROWS];     /* SEND_MULTI/s of N opaque envelopes, median over rounds */
  double ratio[FANOUT_E2E_ROWS];     /* time per message against N = 1, median of per-round ratios */
  size_t envelope_len;               /* bytes of one floor envelope (the size of a real one) */
};

/* Starts sotto-server in a temporary directory, registers alice and the
 * recipients bob1, bob2, bob4, bob8 (linked devices: bobN has N), then runs
 * `rounds` rounds of m messages per row, interleaved. Dies on any failure
 * (the benchmark never measures failures). */
void fanout_e2e_run(struct fanout_e2e_result *out, size_t m, size_t rounds);

#endif
