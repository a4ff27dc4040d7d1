/* SPDX-License-Identifier: Apache-2.0 */
/* kt.h: the client side of key transparency (docs/key-transparency.md,
 * "Clients"): the pinned log and witnesses, the last head seen, the checks
 * of a contact's key and the monitoring of our own.
 *
 * Record "kt" (one per store): the log's public keys and the witnesses
 * pinned at first contact with a server that runs KT (TOFU, like the
 * certificate pin), those the user added, k, whether KT is required, the
 * last head accepted, the version and value of our own label this device
 * made or first saw, and the last monitoring result. */
#ifndef SOTTO_CLIENT_KT_H
#define SOTTO_CLIENT_KT_H

#include <stdint.h>

#include <sotto/kt.h>

#include "conn.h"
#include "core.h"

#define KT_MAX_WITNESSES 16
#define KT_NAME_MAX 32
#define KT_MONITOR_EVERY_S 86400 /* at least this often during receive --follow / the daemon */

struct kt_witness {
  char name[KT_NAME_MAX + 1];
  uint8_t pk[SOTTO_KT_SIGN_PK_LEN];
  uint8_t added; /* 1: added by the user, 0: announced by the server at first contact */
  uint64_t last_size; /* the largest head size we saw it cosign (0: none) */
};

/* Monitoring results. */
enum { KT_MON_NONE = 0, KT_MON_OK = 1, KT_MON_ALERT = 2, KT_MON_FAILED = 3 };

struct kt_state {
  uint8_t pinned; /* sig_pk, vrf_pk and the server's witnesses are pinned */
  uint8_t sig_pk[SOTTO_KT_SIGN_PK_LEN], vrf_pk[SOTTO_KT_VRF_PK_LEN];
  uint8_t n_wit;
  struct kt_witness wit[KT_MAX_WITNESSES];
  uint8_t k_set;    /* the user chose k (sotto kt require K) */
  uint8_t k;        /* witnesses required when k_set */
  uint8_t required; /* KT is mandatory for this server */
  uint8_t off;      /* the server answered without KT when last asked */
  uint8_t has_head;
  uint8_t head[SOTTO_KT_HEAD_LEN];
  uint8_t has_own;  /* own_version / own_value hold our label as we know it */
  uint32_t own_version;
  uint8_t own_value[CONN_IDENTITY_BLOB_LEN];
  uint8_t mon_result;     /* KT_MON_* */
  uint64_t mon_time;      /* seconds */
  char mon_detail[256];
  /* record version 2: acknowledged alerts and the device-list label */
  uint8_t key_alert[32];  /* SHA-256 of the alerting key entry (version, value); zero: none */
  uint8_t key_acked[32];  /* the key alert `sotto kt ack` acknowledged */
  uint8_t has_list_ok;    /* list_ok: the device-list value last found to be ours */
  uint8_t list_ok[36];    /* u32 version || SHA-256 of the signed list */
  uint8_t list_result;    /* KT_MON_* of the device-list label */
  char list_detail[256];
  uint8_t list_alert[32]; /* SHA-256 of the alerting device-list value; zero: none */
  uint8_t list_acked[32]; /* the device-list alert `sotto kt ack` acknowledged */
  /* record version 3: every version of the device-list label is checked */
  uint8_t has_list_seen;  /* list_seen holds: */
  uint32_t list_seen;     /* versions of the label up to this one were checked (or were there at the first check) */
};

/* The record (defaults when absent). 0 or a STORE_E_*. */
int kt_load(struct store *st, struct kt_state *s);
int kt_save(struct store *st, const struct kt_state *s);
/* The witnesses required by s (k, or by default 1 if any are pinned). */
unsigned kt_required(const struct kt_state *s);

/* The check before a contact's key is used: identity/len must be the
 * value the log holds for user under a head signed by the log and
 * cosigned by enough witnesses, consistent with the last head seen.
 * 0 (also when the server runs no KT and it is not required), or the
 * recorded SC_ERR_KT_* with its sentence (nothing may be sent). */
int kt_check_contact(struct sc_client *c, struct conn *k, const char *user, const uint8_t *identity, size_t len);
/* The check before a contact's signed device list is used: (list_version,
 * SHA-256 of list) must be the value the log holds for user's device-list
 * label ("devices:" + username) under a checked head. 0 (also when the
 * server runs no KT and it is not required), or SC_ERR_KT_* with its
 * sentence (nothing may be sent). */
int kt_check_list(struct sc_client *c, struct conn *k, const char *user, uint32_t list_version, const uint8_t *list,
                  size_t len);
/* The check when the server shows no device list for user: 0 if the log
 * holds none for user either, or its newest version is the deletion marker
 * (an unregistered account: no devices), or the server runs no KT;
 * SC_ERR_KT_LIST_HIDDEN with its sentence when the log holds a list the
 * server does not serve (nothing may be sent). The case of an older list
 * is kt_check_list's (also SC_ERR_KT_LIST_HIDDEN). */
int kt_check_no_list(struct sc_client *c, struct conn *k, const char *user);
/* Monitoring of our own label (every connect; daily while linked): the
 * result is stored, and an alert or a failed check is an SC_EV_KT_ALERT.
 * Never fails the caller (0), except on a store failure. */
int kt_monitor(struct sc_client *c, struct conn *k);
/* Monitoring of our own device-list label ("devices:" + username; after
 * logging in, since device 1 publishes its list then): the logged value
 * must be one our account key signed (the last one found ours, or the
 * list the server serves now, verified, hashing to it). The result is
 * stored; an alert not acknowledged or a failed check is an
 * SC_EV_KT_ALERT. 0, or a store failure. */
int kt_monitor_list(struct sc_client *c, struct conn *k);

#endif
