/* SPDX-License-Identifier: Apache-2.0 */
/* bench_attach.h: the attachment rows of bench_server (bench_attach.c). */
#ifndef SOTTO_BENCH_ATTACH_H
#define SOTTO_BENCH_ATTACH_H

struct attach_result {
  double s_up, s_down, f_up, f_down; /* MB/s: sotto, floor */
  double mib;                        /* the file's size */
};

/* Sends one file through sotto-server (ports and the floor's pinned
 * fingerprint given) and moves the same bytes through relay_floor. */
void bench_attach(const char *srv_port, const char *floor_port, const char *floor_fp, int smoke,
                  struct attach_result *r);

#endif
