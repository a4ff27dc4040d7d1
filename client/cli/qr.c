/* SPDX-License-Identifier: Apache-2.0 */
/* qr.c: terminal QR codes (see qr.h). */
#include "qr.h"

#include <qrencode.h>

#define QUIET 2

/* 1 if module (x, y) is dark; outside the symbol is the light quiet zone. */
static int dark(const QRcode *q, int x, int y) {
  if (x < 0 || y < 0 || x >= q->width || y >= q->width) return 0;
  return q->data[y * q->width + x] & 1;
}

int qr_print(FILE *out, const uint8_t *data, size_t len) {
  QRcode *q;
  int x, y;
  if (len > 2048) return -1;
  q = QRcode_encodeData((int)len, data, 0, QR_ECLEVEL_M);
  if (!q) return -1;
  /* Light background drawn as full blocks, dark modules as spaces, so the
   * code scans on a dark terminal; each character holds two rows. */
  for (y = -QUIET; y < q->width + QUIET; y += 2) {
    for (x = -QUIET; x < q->width + QUIET; x++) {
      int top = dark(q, x, y), bot = dark(q, x, y + 1);
      fputs(top && bot ? " " : top ? "\xe2\x96\x84" : bot ? "\xe2\x96\x80" : "\xe2\x96\x88", out);
    }
    fputc('\n', out);
  }
  QRcode_free(q);
  return 0;
}
