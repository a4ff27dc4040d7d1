/* SPDX-License-Identifier: Apache-2.0 */
/* devices.h: signed device lists in the client (docs/multi-device.md).
 *
 * Record "devlist/NAME" (NAME = a contact, or our own username): the last
 * signed device list of that account we verified, as its bytes (format
 * sotto/devlist.h), so that an older version (a rollback) is refused and a
 * change is shown. */
#ifndef SOTTO_CLIENT_DEVICES_H
#define SOTTO_CLIENT_DEVICES_H

#include <stdint.h>

#include <sotto/limits.h>

#include "core.h"

/* At connection (conn.c), device 1: makes sure the server holds the list
 * this device signed (version 1 with device 1 alone the first time), and
 * says so (SC_EV_DEVICE_LIST, peer "") when the server's copy was missing,
 * older or not signed by us, then uploads a newer one. Other devices: only
 * check and record. 0 or an SC_ERR_* (the connection is then not used). */
int devices_publish(struct sc_client *c, struct conn *k);

/* Before a group message: our own list fetched again (devices_publish)
 * unless it was on this connection within the last half-minute, so that a
 * device linked meanwhile gets our sender key before the message, and a
 * removed one makes our chain start anew (grp_follow_devices), as when
 * this device saves its own list. 0 or an SC_ERR_*. */
int devices_refresh_own(struct sc_client *c, struct conn *k);

/* Before a message goes to user, whose identity (account) key is key: the
 * server's copy of user's signed device list must verify against key, name
 * user, and not be older than the one seen before; a newer one is recorded
 * and its changes shown (SC_EV_DEVICE_LIST). An account without a list (a
 * client of before protocol version 2) passes, unless we saw a list of it
 * before (then it is a rollback). 0, or the recorded SC_ERR_DEVLIST_INVALID
 * / SC_ERR_DEVLIST_ROLLBACK (nothing may be sent), or a connection error. */
int devices_check_peer(struct sc_client *c, struct conn *k, const char *user, const uint8_t key[SOTTO_PUBKEY_LEN]);
/* The same check on list bytes the server already gave (the list an ERR(30)
 * to SEND_MULTI carried, docs/protocol-server.md): no DEVLIST_GET, no
 * "checked recently" shortcut; the same verification, rollback, floor and
 * key-transparency checks and the same recording as devices_check_peer. */
int devices_check_peer_list(struct sc_client *c, struct conn *k, const char *user,
                            const uint8_t key[SOTTO_PUBKEY_LEN], const uint8_t *list, size_t len);

/* The account key of our own account: device 1's identity key; on a linked
 * device the one device 1 gave it (record "linked", devices_linked_load),
 * or its own identity key when there is none (a second device of before
 * linking, which shares the account key). 0 or a STORE_E_*. */
int devices_account_key(struct sc_client *c, uint8_t out[SOTTO_PUBKEY_LEN]);
/* The last verified device list recorded for user (a contact, or our own
 * username): 1 and *l, 0 when none, or a STORE_E_*. */
struct sotto_devlist;
int devices_list_of(struct sc_client *c, const char *user, struct sotto_devlist *l);
/* Forgets that user's list was checked on this connection: the next
 * devices_check_peer fetches it again (after ERR(30), or a message from a
 * device the recorded list does not name). */
void devices_recheck(struct sc_client *c, const char *user);
struct sotto_devlist;
struct sotto_devlist_entry;
/* Device 1 (linking, linkdev.c): signs and publishes the next version of
 * our list with entry e added (the linked devices of the last one that
 * still have a device row stay), records it; *version its version. 0 or an
 * SC_ERR_*. */
int devices_add_member(struct sc_client *c, struct conn *k, const struct sotto_devlist_entry *e, uint32_t *version);
/* Our own last recorded list: 1 and *l, 0 none, < 0 STORE_E_*. */
int devices_own(struct sc_client *c, struct sotto_devlist *l);
/* Record "linked" of a linked device: the account key device 1 gave it
 * and its device name. load: 1 found, 0 none (device 1, or a device of
 * before linking), < 0; save inside the caller's transaction. */
int devices_linked_load(struct sc_client *c, uint8_t key[SOTTO_PUBKEY_LEN], char name[65]);
int devices_linked_save(struct sc_client *c, const uint8_t key[SOTTO_PUBKEY_LEN], const char *name);
/* Record "devfloor" of a linked device: the lowest version of its
 * account's list that can name it (the provisioning message's
 * list_version, docs/multi-device.md "Linking"). A list of our account older
 * than it is refused (device_hidden) and never recorded. load: *floor (0
 * when none: device 1, or linked by a device 1 of before), 0 or < 0; save
 * inside the caller's transaction. */
int devices_floor_load(struct sc_client *c, uint32_t *floor);
int devices_floor_save(struct sc_client *c, uint32_t floor);

#endif
