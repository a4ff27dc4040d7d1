/* SPDX-License-Identifier: Apache-2.0 */
/* grp.h: local group state for Sender Keys groups (docs/client.md, "Groups").
 *
 * The server knows nothing of groups: membership travels in GROUP_UPDATE
 * contents over pairwise sessions, and each member keeps:
 *   "group/GIDHEX"          id, local name, epoch, members, and the members
 *                           that already hold our current sender key (our
 *                           own name: our own other devices do)
 *   "gsk/GIDHEX/MEMBER/DEV" the Sender Key record of device DEV of MEMBER
 *                           (MEMBER = us, DEV = this device: our own
 *                           signing chain)
 *   "gsk/GIDHEX/MEMBER"     a per-member record of before, still read */
#ifndef SOTTO_CLIENT_GRP_H
#define SOTTO_CLIENT_GRP_H

#include <sotto/group.h>

#include "core.h"
#include "content.h"

struct grp {
  uint8_t gid[GROUP_ID_LEN];
  char name[GROUP_NAME_MAX + 1];
  uint32_t epoch;
  size_t n;
  char members[GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
  size_t n_dist;
  char dist[GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
};

/* 1 if name is an acceptable group name (1-64 of A-Z a-z 0-9 _ . -). */
int grp_name_ok(const char *name);
/* 1 found, 0 absent, <0 STORE_E_*. */
int grp_load(struct store *st, const uint8_t gid[GROUP_ID_LEN], struct grp *g);
int grp_find(struct store *st, const char *name, struct grp *g);
int grp_save(struct store *st, const struct grp *g);
/* Deletes the group and every sender key record of its members. */
int grp_delete(struct store *st, const struct grp *g);
int grp_each(struct store *st, int (*cb)(void *ud, const struct grp *g), void *ud);

int grp_has(const char list[][SC_USER_MAX + 1], size_t n, const char *user);
/* Appends (if absent) / removes user in a member or distribution list. */
void grp_list_add(char list[][SC_USER_MAX + 1], size_t *n, const char *user);
void grp_list_del(char list[][SC_USER_MAX + 1], size_t *n, const char *user);

/* Sender key records are kept per (member, device): "gsk/GID/MEMBER/DEV"
 * (docs/groups.md). GRP_SK_NAME_MAX bounds a name. */
#define GRP_SK_NAME_MAX 112
/* The record name of device dev of member (dev 0: the per-member record
 * written before chains were kept per device, still read). */
void grp_sk_name(char *rn, size_t cap, const struct grp *g, const char *member, uint32_t dev);
/* Sender key record of device dev (> 0) of member in g: 1 loaded, 0 new
 * empty record, <0 error. A device with no record of its own falls back to
 * the member's record from before per-device chains (nothing lost on
 * upgrade). */
int grp_sk_load(struct store *st, const struct grp *g, const char *member, uint32_t dev,
                struct sotto_sender_key **out);
int grp_sk_save(struct store *st, const struct grp *g, const char *member, uint32_t dev,
                const struct sotto_sender_key *rec);
/* Forgets one device's chain of member (and the per-member record). */
int grp_sk_del_dev(struct store *st, const struct grp *g, const char *member, uint32_t dev);
/* Forgets every chain of member in g. */
int grp_sk_del(struct store *st, const struct grp *g, const char *member);

struct sotto_devlist;
/* Inside a transaction: user's verified device list went from old (NULL:
 * none known) to now; me is our account, own_dev this device. In every
 * group with user: a device added makes user (our own name: our other
 * devices) get our sender key again before our next group message; a
 * device removed (or listed under another key) has its chain forgotten
 * and ours retired, so the next group send starts a chain it never saw.
 * 0 or STORE_E_*. */
int grp_follow_devices(struct store *st, const char *user, const char *me, uint32_t own_dev,
                       const struct sotto_devlist *old, const struct sotto_devlist *now);

/* Makes a local name unique: name, then name-2, name-3, ... */
int grp_unique_name(struct store *st, const char *want, const uint8_t gid[GROUP_ID_LEN], char out[GROUP_NAME_MAX + 1]);

#endif
