/* SPDX-License-Identifier: Apache-2.0 */
/* srv_metrics.c: the Prometheus text endpoint of sotto-server (--metrics). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_internal.h"

/* ---- metrics ------------------------------------------------------------------- */

/* Writes one plain-text HTTP answer and closes after it. */
static void http_answer(struct srv *s, struct conn *c, const char *status, const char *ctype, const char *body,
                        size_t n) {
  char hdr[160];
  uint8_t *p;
  snprintf(hdr, sizeof hdr, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status, ctype, n);
  if ((p = sotto__srv_wbuf_reserve(c, strlen(hdr) + n)) != NULL) {
    memcpy(p, hdr, strlen(hdr));
    memcpy(p + strlen(hdr), body, n);
    c->wlen += strlen(hdr) + n;
  }
  c->closing = 1;
  c->deadline_ms = sotto__srv_mono_ms() + CLOSE_GRACE_MS;
  sotto__srv_do_write(s, c);
}

/* /healthz: the process answers. /readyz: the store answers (and in
 * cluster mode, Redis; without it the node still serves, degraded: 200 with
 * the explanation, so that a load balancer keeps every node when Redis
 * goes). */
static int health_answer(struct srv *s, struct conn *c) {
  char body[512];
  int64_t qc, qb;
  if (c->rhave >= 12 && memcmp(c->rbuf, "GET /healthz", 12) == 0) {
    http_answer(s, c, "200 OK", "text/plain", "ok\n", 3);
    return 1;
  }
  if (c->rhave < 11 || memcmp(c->rbuf, "GET /readyz", 11) != 0) return 0;
  if (s->rstore.ops->queue_total(s->rstore.impl, &qc, &qb) != 0) {
    snprintf(body, sizeof body, "not ready: the %s store does not answer\n", s->rstore.backend);
    http_answer(s, c, "503 Service Unavailable", "text/plain", body, strlen(body));
  } else if (!sotto__srv_cluster_ready(s, body, sizeof body - 16)) {
    size_t n = strlen(body);
    memmove(body + 10, body, n + 1);
    memcpy(body, "degraded: ", 10);
    snprintf(body + n + 10, sizeof body - n - 10, "\n");
    http_answer(s, c, "200 OK", "text/plain", body, strlen(body));
  } else {
    http_answer(s, c, "200 OK", "text/plain", "ready\n", 6);
  }
  return 1;
}

static void metrics_answer(struct srv *s, struct conn *c) {
  char *body;
  size_t cap = 32768, n = 0;
  int64_t qc = 0, qb = 0;
  int i;
  char hdr[128];
  static const char *const le[5] = {"1", "10", "100", "1000", "+Inf"};
  uint64_t cum = 0;
  if (health_answer(s, c)) return;
  if ((body = malloc(cap)) == NULL) {
    sotto__srv_conn_drop(s, c);
    return;
  }
  (void)s->rstore.ops->queue_total(s->rstore.impl, &qc, &qb);
#define P(...) n += (size_t)snprintf(body + n, n < cap ? cap - n : 0, __VA_ARGS__)
  P("# TYPE sotto_connections gauge\nsotto_connections %d\n", s->n_conns - 1 < 0 ? 0 : s->n_conns - 1);
  P("# TYPE sotto_connections_unauthenticated gauge\nsotto_connections_unauthenticated %d\n", s->n_unauth);
  P("# TYPE sotto_connections_total counter\nsotto_connections_total %llu\n",
    (unsigned long long)s->m.conns_total);
  P("# TYPE sotto_connections_rejected_total counter\nsotto_connections_rejected_total %llu\n",
    (unsigned long long)s->m.conns_rejected);
  P("# TYPE sotto_tls_handshake_failures_total counter\nsotto_tls_handshake_failures_total %llu\n",
    (unsigned long long)s->m.tls_failed);
  P("# TYPE sotto_ops_waiting gauge\nsotto_ops_waiting %d\n", s->n_ops);
  P("# TYPE sotto_messages_in_total counter\nsotto_messages_in_total %llu\n",
    (unsigned long long)s->m.msgs_in);
  P("# TYPE sotto_messages_out_total counter\nsotto_messages_out_total %llu\n",
    (unsigned long long)s->m.msgs_out);
  P("# TYPE sotto_acks_total counter\nsotto_acks_total %llu\n", (unsigned long long)s->m.acks);
  P("# TYPE sotto_messages_expired_total counter\nsotto_messages_expired_total %llu\n",
    (unsigned long long)s->m.expired);
  P("# TYPE sotto_queue_depth gauge\nsotto_queue_depth %lld\n", (long long)qc);
  P("# TYPE sotto_queue_bytes gauge\nsotto_queue_bytes %lld\n", (long long)qb);
  P("# TYPE sotto_registrations_total counter\nsotto_registrations_total %llu\n",
    (unsigned long long)s->m.registrations);
  if (sotto__srv_kt_pending_count(s) >= 0) {
    P("# TYPE sotto_kt_pending gauge\nsotto_kt_pending %lld\n", (long long)sotto__srv_kt_pending_count(s));
    P("# TYPE sotto_kt_apply_failed_total counter\nsotto_kt_apply_failed_total %llu\n",
      (unsigned long long)sotto__srv_kt_apply_failed(s));
    P("# TYPE sotto_kt_items_redone_total counter\nsotto_kt_items_redone_total %llu\n",
      (unsigned long long)sotto__srv_kt_late_items(s));
  }
  P("# TYPE sotto_auth_total counter\nsotto_auth_total{result=\"ok\"} "
    "%llu\nsotto_auth_total{result=\"fail\"} %llu\n",
    (unsigned long long)s->m.auth_ok, (unsigned long long)s->m.auth_fail);
  P("# TYPE sotto_bundles_total counter\nsotto_bundles_total %llu\n", (unsigned long long)s->m.bundles);
  P("# TYPE sotto_rate_limited_total counter\nsotto_rate_limited_total %llu\n",
    (unsigned long long)s->m.rate_limited);
  P("# TYPE sotto_link_slots gauge\nsotto_link_slots %zu\n", sotto__srv_link_open_count(s));
  P("# TYPE sotto_link_total counter\nsotto_link_total{event=\"opened\"} %llu\n"
    "sotto_link_total{event=\"provisioned\"} %llu\nsotto_link_total{event=\"done\"} %llu\n"
    "sotto_link_total{event=\"expired\"} %llu\nsotto_link_total{event=\"refused\"} %llu\n",
    (unsigned long long)s->m.link_opened, (unsigned long long)s->m.link_provisioned,
    (unsigned long long)s->m.link_done, (unsigned long long)s->m.link_expired,
    (unsigned long long)s->m.link_refused);
  P("# TYPE sotto_blob_io_thread_total counter\nsotto_blob_io_thread_total %llu\n",
    (unsigned long long)s->m.blob_io_thread);
  P("# TYPE sotto_blob_put_inplace_total counter\nsotto_blob_put_inplace_total %llu\n",
    (unsigned long long)__atomic_load_n(&s->m.blob_put_inplace, __ATOMIC_RELAXED));
  P("# TYPE sotto_commit_failures_total counter\nsotto_commit_failures_total %llu\n",
    (unsigned long long)s->m.commit_failures);
  P("# TYPE sotto_commit_retries_total counter\nsotto_commit_retries_total %llu\n",
    (unsigned long long)s->m.commit_retries);
  if (s->cl)
    P("# TYPE sotto_commit_serial_total counter\nsotto_commit_serial_total{why=\"planned\"} %llu\n"
      "sotto_commit_serial_total{why=\"rerun\"} %llu\n",
      (unsigned long long)s->m.commit_serial_planned, (unsigned long long)s->m.commit_serial_rerun);
  if (s->store.ops->round_trips)
    P("# TYPE sotto_store_round_trips_total counter\nsotto_store_round_trips_total %llu\n",
      (unsigned long long)s->m.store_round_trips);
  P("# TYPE sotto_commit_batch_size histogram\n");
  for (i = 0; i < 5; i++) {
    cum += s->m.batch_hist[i];
    P("sotto_commit_batch_size_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)cum);
  }
  P("sotto_commit_batch_size_sum %llu\nsotto_commit_batch_size_count %llu\n",
    (unsigned long long)s->m.batch_ops, (unsigned long long)s->m.commits);
  {
    /* Where an envelope's time goes, per stage (srv_internal.h, STAGE_*). */
    static const char *const st[STAGE_N] = {"queue",    "commit", "lock",  "answer",
                                            "announce", "page",   "notify", "envelope"};
    static const char *const sle[STAGE_BUCKETS] = {"0.0001", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                   "0.025",  "0.05",   "0.1",   "0.25",   "0.5",   "1",
                                                   "+Inf"};
    int j;
    P("# TYPE sotto_stage_seconds histogram\n");
    for (i = 0; i < STAGE_N; i++) {
      const struct stage_hist *h = &s->m.stage[i];
      if (!h->n) continue;
      cum = 0;
      for (j = 0; j < STAGE_BUCKETS; j++) {
        cum += h->b[j];
        P("sotto_stage_seconds_bucket{stage=\"%s\",le=\"%s\"} %llu\n", st[i], sle[j], (unsigned long long)cum);
      }
      P("sotto_stage_seconds_sum{stage=\"%s\"} %.6f\nsotto_stage_seconds_count{stage=\"%s\"} %llu\n", st[i],
        (double)h->sum_us / 1e6, st[i], (unsigned long long)h->n);
    }
  }
  P("# TYPE sotto_errors_total counter\n");
  for (i = 1; i < 256; i++)
    if (s->m.errors[i])
      P("sotto_errors_total{code=\"%d\",reason=\"%s\"} %llu\n", i, sotto__srv_code_str((unsigned)i),
        (unsigned long long)s->m.errors[i]);
  if (s->m.errors[0])
    P("sotto_errors_total{code=\"other\",reason=\"unknown error\"} %llu\n", (unsigned long long)s->m.errors[0]);
  if (s->cl && n < cap) n += sotto__srv_cluster_metrics(s, body + n, cap - n);
  if (s->pool && n < cap) n += sotto__srv_pool_metrics(s, body + n, cap - n);
#undef P
  if (n >= cap) n = cap - 1;
  snprintf(hdr, sizeof hdr,
           "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n", n);
  {
    uint8_t *p = sotto__srv_wbuf_reserve(c, strlen(hdr) + n);
    if (p) {
      memcpy(p, hdr, strlen(hdr));
      memcpy(p + strlen(hdr), body, n);
      c->wlen += strlen(hdr) + n;
    }
  }
  free(body);
  c->closing = 1;
  c->deadline_ms = sotto__srv_mono_ms() + CLOSE_GRACE_MS;
  sotto__srv_do_write(s, c);
}

void sotto__srv_metrics_feed(struct srv *s, struct conn *c, const uint8_t *p, size_t n) {
  if (c->closing) return;
  if (!c->rbuf && (c->rbuf = malloc(METRICS_REQ_MAX)) == NULL) {
    sotto__srv_conn_drop(s, c);
    return;
  }
  if (n > METRICS_REQ_MAX - c->rhave) n = METRICS_REQ_MAX - c->rhave;
  memcpy(c->rbuf + c->rhave, p, n);
  c->rhave += (uint32_t)n;
  if (memmem(c->rbuf, c->rhave, "\r\n\r\n", 4) || memmem(c->rbuf, c->rhave, "\n\n", 2) ||
      c->rhave == METRICS_REQ_MAX)
    metrics_answer(s, c);
}
