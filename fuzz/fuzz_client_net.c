/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_client_net.c: the client's side of the sotto-server protocol
 * (proto/frames.c) over a byte stream from a server: frames split and
 * decoded exactly as the client does, queued in its bounded queue (fed in
 * pieces, with and without dropping), then every event popped; each OK
 * payload goes through every answer parser (HELLO, REGISTER/ADD_DEVICE,
 * AUTH/KEYS_UPLOAD, SEND, DEVICES, BUNDLE).
 * Invariants: the queue never exceeds its bounds; a MSG event has a valid
 * sender and a body within the cap; nothing is lost or leaked (ASan).
 * proto.c and frames.c are compiled in directly because the libFuzzer build
 * of fuzz/ links libsotto only. */
#include "proto.c"
#include "frames.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink;

static void answers(const uint8_t *p, size_t n) {
  static struct sotto_srv_bundle_buf bb;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  uint32_t ids[SOTTO_SRV_MAX_DEVICES], a, b;
  uint64_t x, y;
  uint16_t v;
  size_t cnt;
  sink |= sotto__net_parse_hello(p, n, &v, &a, &b);
  sink |= sotto__net_parse_creds(p, n, &a, secret);
  sink |= sotto__net_parse_counts(p, n, &a, &b);
  sink |= sotto__net_parse_sent(p, n, &x, &y);
  sink |= sotto__srv_parse_devices(p, n, ids, SOTTO_SRV_MAX_DEVICES, &cnt);
  {
    uint32_t days[SOTTO_SRV_MAX_DEVICES];
    int has;
    sink |= sotto__srv_parse_devices_seen(p, n, ids, days, SOTTO_SRV_MAX_DEVICES, &cnt, &has);
  }
  if (sotto__net_parse_bundle(p, n, &bb) == 0 &&
      (bb.identity_len > sizeof bb.identity || bb.spk_len > sizeof bb.spk || bb.kem_len > sizeof bb.kem))
    abort();
}

static void check(const struct sotto__net_queue *q) {
  if (q->n > SOTTO_NET_MAX_EVENTS + SOTTO_NET_CTRL_SLACK ||
      q->bytes > (size_t)SOTTO_NET_MAX_QUEUED + SOTTO_SRV_MAX_FRAME)
    abort();
}

static void drain(struct sotto__net_queue *q) {
  struct sotto_net_event ev;
  while (sotto__net_queue_pop(q, 0, 0, &ev)) {
    if (ev.kind == SOTTO_NET_EV_MSG &&
        (!sotto__srv_username_ok((const uint8_t *)ev.sender, strlen(ev.sender)) ||
         ev.body_len > SOTTO_SRV_MAX_MESSAGE || !ev.has_id))
      abort();
    if (ev.kind == SOTTO_NET_EV_BAD && ev.error >= 0) abort();
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.payload) answers(ev.payload, ev.payload_len);
    sotto_net_event_clear(&ev);
  }
  if (q->n || q->bytes) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto__net_queue q;
  size_t off = 0, step, used;
  int drop;
  uint32_t max_message;
  uint8_t *copy;
  if (size < 1) return 0;
  /* First byte: how the stream is cut and fed, and the message limit. */
  drop = data[0] & 1;
  step = (size_t)1 << ((data[0] >> 1) & 15);
  max_message = (data[0] & 0x80) ? 65536 : SOTTO_SRV_MAX_MESSAGE;
  data++;
  size--;
  /* Exact-size copy so that ASan catches any read past the input. */
  if ((copy = malloc(size ? size : 1)) == NULL) return 0;
  memcpy(copy, data, size);
  memset(&q, 0, sizeof q);
  /* Feed the stream in growing windows as the socket would deliver it;
   * whatever a full queue leaves is fed again after popping the events. */
  for (size_t avail = 0; off < size;) {
    avail = avail + step < size - off ? avail + step : size - off;
    if (sotto__net_feed(&q, copy + off, avail, max_message, drop, drop ? 7 : 0, &used) != 0) break;
    check(&q);
    if (used > avail) abort();
    off += used;
    avail -= used;
    if (used == 0 && avail == size - off) {
      if (q.n == 0) break; /* an incomplete frame at the end */
      drain(&q);
    }
    if (q.n >= SOTTO_NET_MAX_EVENTS / 2) drain(&q);
  }
  drain(&q);
  sotto__net_queue_clear(&q);
  free(copy);
  return 0;
}
