/* SPDX-License-Identifier: Apache-2.0 */
/* attach.h: attachments inside the client core (attach.c; docs/client.md
 * "Attachments"). */
#ifndef SOTTO_CLIENT_ATTACH_H
#define SOTTO_CLIENT_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

struct content;

/* Ciphertext bytes of a file of size bytes (16 more per started chunk; an
 * empty file is one chunk). */
uint64_t attach_cipher_size(uint64_t size);
/* A file name from a sender made safe to create in the downloads directory
 * (at most 100 bytes + NUL): the last path component only, control and
 * formatting characters, invalid UTF-8 and :*?"<>| as '_', no leading or
 * trailing dots and spaces, "file" when nothing is left, Windows' reserved
 * names prefixed with '_', long names cut with their extension kept. */
void attach_safe_name(char out[101], const uint8_t *raw, size_t len);
/* Uploads and sends: the file at fd (or mem, size bytes) to user as name
 * (type), flags ATTACH_FLAG_*, with a caption text (may be NULL). */
int attach_send(struct sc_sent *out, struct sc_client *c, const char *user, int fd, const uint8_t *mem,
                uint64_t size, const char *name, const char *type, uint8_t flags, const char *text, size_t len,
                unsigned send_flags);
/* deliver.c, before each send of a 1:1 file's pointer ct (kind
 * ATTACHMENT, inside attach_send): devices, the devices it goes to in this
 * send (the recipient's and our own other ones), becomes the fetches its
 * blob waits for (BLOB_FETCHES) when the server has another number: a
 * device linked after the upload is counted. 0, or the recorded SC_ERR_*
 * (then nothing is sent). */
int attach_fanout_final(struct sc_client *c, struct conn *k, const struct content *ct, unsigned devices);
/* sc_send_text of a text above SC_MAX_TEXT (checked by the caller): as an
 * attachment flagged ATTACH_FLAG_LONG_TEXT, logged as our text in parts. */
int attach_send_text(struct sc_sent *out, struct sc_client *c, const char *user, const char *text, size_t len,
                     unsigned flags);
/* Inside the inbox's transaction: keeps the pointer for its download. */
int attach_arrived(struct sc_client *c, const char *sender, const struct content *ct, uint64_t sid);
/* Downloads, checks and saves every pointer kept (over k, which it may
 * reconnect after a drop). 0, or the SC_ERR_* of a failure that may pass
 * (the rest waits for the next call); permanent failures are logged as
 * events. */
int attach_fetch_pending(struct sc_client *c, struct conn *k);
/* Inside a transaction: drops the pointers from user still waiting (a
 * request deleted, a sender blocked). 0 or STORE_E_*. */
int attach_forget_from(struct sc_client *c, const char *user);

#endif
