/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_frame.c: the sotto-server frame decoder over a byte stream.
 * Splits the input into length-prefixed frames exactly as the server does
 * (sotto__srv_frame_len with the unauthenticated and authenticated caps,
 * then sotto__srv_frame_parse) and hands each payload to the parser of its
 * type, so one input exercises framing and every request parser.
 * proto.c is compiled into the target directly because the libFuzzer build
 * of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse results are only collected: the target checks memory safety. */
static int sink;

static void parse_payload(const struct sotto_srv_frame *f) {
  static struct sotto_srv_keys keys;
  struct sotto_srv_hello h;
  struct sotto_srv_register reg;
  struct sotto_srv_auth au;
  struct sotto_srv_target t;
  struct sotto_srv_send s;
  struct sotto_srv_err e;
  struct sotto_srv_env env;
  struct sotto_srv_bundle b;
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n;
  uint64_t id;
  switch (f->type) {
    case SOTTO_SRV_HELLO: sink |= sotto__srv_parse_hello(f->p, f->len, &h); break;
    case SOTTO_SRV_REGISTER: sink |= sotto__srv_parse_register(f->p, f->len, &reg); break;
    case SOTTO_SRV_AUTH: sink |= sotto__srv_parse_auth(f->p, f->len, &au); break;
    case SOTTO_SRV_KEYS_UPLOAD: sink |= sotto__srv_parse_keys(f->p, f->len, &keys); break;
    case SOTTO_SRV_BUNDLE: sink |= sotto__srv_parse_bundle_req(f->p, f->len, &t); break;
    case SOTTO_SRV_DEVICES: sink |= sotto__srv_parse_devices_req(f->p, f->len, &t); break;
    case SOTTO_SRV_SEND: sink |= sotto__srv_parse_send(f->p, f->len, 65536, &s); break;
    case SOTTO_SRV_ACK: sink |= sotto__srv_parse_ack(f->p, f->len, &id); break;
    case SOTTO_SRV_DEVICE_REMOVE: {
      uint32_t dev;
      sink |= sotto__srv_parse_device_remove(f->p, f->len, &dev);
      break;
    }
    case SOTTO_SRV_ROTATE_SECRET: sink |= (int)f->len; break; /* empty payload */
    case SOTTO_SRV_EPOCH: sink |= sotto__srv_parse_epoch(f->p, f->len, &id); break;
    case SOTTO_SRV_ERR:
    case SOTTO_SRV_CLOSE: sink |= sotto__srv_parse_err(f->p, f->len, &e); break;
    case SOTTO_SRV_MSG: sink |= sotto__srv_parse_env(f->p, f->len, &env); break;
    case SOTTO_SRV_OK:
      sink |= sotto__srv_parse_bundle(f->p, f->len, &b);
      sink |= sotto__srv_parse_devices(f->p, f->len, ids, SOTTO_SRV_MAX_DEVICES, &n);
      break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  int authed = 0;
  while (size - off >= SOTTO_SRV_FRAME_HDR) {
    uint32_t blen;
    struct sotto_srv_frame f;
    uint8_t *copy;
    if (sotto__srv_frame_len(data + off, authed ? SOTTO_SRV_MAX_FRAME : SOTTO_SRV_MAX_FRAME_UNAUTH, &blen) != 0)
      return 0;
    off += SOTTO_SRV_FRAME_HDR;
    if (blen > size - off) return 0;
    /* Exact-size copy so that ASan catches any read past the frame. */
    if ((copy = malloc(blen)) == NULL) return 0;
    memcpy(copy, data + off, blen);
    if (sotto__srv_frame_parse(copy, blen, &f) != 0) abort(); /* blen >= 5 was checked */
    parse_payload(&f);
    if (f.type == SOTTO_SRV_AUTH) authed = 1;
    free(copy);
    off += blen;
  }
  return 0;
}
