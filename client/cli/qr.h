/* SPDX-License-Identifier: Apache-2.0 */
/* qr.h: a QR code on the terminal (libqrencode), two modules per character
 * cell with Unicode half blocks, dark on light with a quiet zone. */
#ifndef SOTTO_CLIENT_QR_H
#define SOTTO_CLIENT_QR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 0, or -1 if the payload cannot be encoded. */
int qr_print(FILE *out, const uint8_t *data, size_t len);

#endif
