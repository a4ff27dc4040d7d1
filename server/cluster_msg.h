/* SPDX-License-Identifier: Apache-2.0 */
/* cluster_msg.h: the two short texts cluster mode reads from Redis
 * (srv_cluster.c): an announcement on a node's channel ("m DEVKEY",
 * "r DEVKEY", "k DEVKEY GEN") and a device registry value ("NODE GEN").
 * Redis is trusted infrastructure, but whatever it hands over is parsed
 * strictly anyway: bounded, decimal digits only, no sign, no leading zero,
 * values in range, nothing after the last field. Header-only so that the
 * fuzz target (fuzz/fuzz_cluster_msg.c) tests exactly this code. */
#ifndef SOTTO_SERVER_CLUSTER_MSG_H
#define SOTTO_SERVER_CLUSTER_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SOTTO_CLUSTER_MSG_MAX 96  /* longest announcement accepted */
#define SOTTO_CLUSTER_NODE_MAX 63 /* longest node name (--node-name) */

struct sotto_cluster_msg {
  char kind;      /* 'm' message stored, 'r' device removed, 'k' displaced */
  int64_t devkey; /* > 0 */
  uint64_t gen;   /* 'k' only: the connection's number on that node */
};

/* A decimal number at *p (at most max): digits only, no leading zero
 * (unless it is 0 itself); *p moves past it. 0 or -1. */
static inline int sotto__cluster_num(const char **p, const char *end, uint64_t max, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (s >= end || *s < '0' || *s > '9') return -1;
  if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9') return -1;
  while (s < end && *s >= '0' && *s <= '9') {
    unsigned d = (unsigned)(*s - '0');
    if (v > (max - d) / 10) return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

/* An announcement: 0 with *out filled, or -1 (ignored by the caller). */
static inline int sotto__cluster_msg_parse(const char *m, size_t len, struct sotto_cluster_msg *out) {
  const char *p = m, *end = m + len;
  uint64_t v;
  memset(out, 0, sizeof *out);
  if (!m || len < 3 || len > SOTTO_CLUSTER_MSG_MAX) return -1;
  if (*p != 'm' && *p != 'r' && *p != 'k') return -1;
  out->kind = *p++;
  if (*p++ != ' ' || sotto__cluster_num(&p, end, INT64_MAX, &v) != 0 || v == 0) return -1;
  out->devkey = (int64_t)v;
  if (out->kind == 'k') {
    if (p >= end || *p++ != ' ' || sotto__cluster_num(&p, end, UINT64_MAX, &out->gen) != 0) return -1;
  }
  return p == end ? 0 : -1;
}

/* A registry value "NODE GEN": the node name (letters, digits, '-', '_',
 * '.', 1..SOTTO_CLUSTER_NODE_MAX) into node (NUL-terminated) and its
 * connection number. 0 or -1. */
static inline int sotto__cluster_reg_parse(const char *v, size_t len, char node[SOTTO_CLUSTER_NODE_MAX + 1],
                                           uint64_t *gen) {
  const char *p = v, *end = v + len;
  size_t n = 0;
  node[0] = 0;
  if (!v || len > SOTTO_CLUSTER_NODE_MAX + 1 + 20) return -1;
  while (p < end && *p != ' ') {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.') ||
        n == SOTTO_CLUSTER_NODE_MAX)
      return -1;
    node[n++] = c;
    p++;
  }
  node[n] = 0;
  if (n == 0 || p >= end || *p++ != ' ' || sotto__cluster_num(&p, end, UINT64_MAX, gen) != 0 || p != end) {
    node[0] = 0;
    return -1;
  }
  return 0;
}

#endif
