/* SPDX-License-Identifier: Apache-2.0 */
/* srv_limits.c: the rate limits sotto-server checks on the I/O thread before
 * a request is queued, and the KEYS_LOW push budget. The buckets are keyed
 * (ratelimit.c) by account, device, address or prefix, never by connection,
 * so that a reconnect finds the same budget. The queue quotas are checked
 * inside the transaction (srv_handlers.c, SEND), where the counts are true.
 *
 * In cluster mode (--cluster) the low-rate limits (registrations, failed
 * logins, BUNDLE requests and one-time keys handed out, device changes) are
 * kept in Redis for the whole cluster (sotto__srv_cluster_limit, one round
 * trip per check), so a client that moves between nodes meets one budget.
 * While Redis is down each node falls back to its own buckets (said by the
 * cluster_degraded log line, limits=per-node). SEND and KEYS_LOW stay per
 * node: a SEND is too frequent for a round trip on the I/O thread, and a
 * device's live connection (where its SENDs come from) is on one node at a
 * time, so its budget moves with it; an account with devices on several
 * nodes has at most one send budget per node. */
#include <string.h>

#include "srv_internal.h"

/* KEYS_LOW pushes are bounded per device (keys-low-interval): whatever
 * other accounts fetch, a device is asked to make keys at most that often. */
int sotto__srv_keys_low_due(struct srv *s, int64_t devkey) {
  uint64_t k = sotto__lim_key(&s->lim, SOTTO_LIM_KEYS_LOW, &devkey, sizeof devkey);
  if (s->cfg->keys_low_interval_s <= 0) return 1;
  return sotto__lim_take(&s->lim, k, 1.0 / ((double)s->cfg->keys_low_interval_s * 1000.0), 1.0,
                         sotto__srv_mono_ms());
}

/* Registrations per address, per prefix and for the whole server: all three
 * must have a token, then each pays one. */
static int limit_register_local(struct srv *s, struct conn *c) {
  const struct sotto_srv_config *g = s->cfg;
  int64_t t = sotto__srv_mono_ms();
  uint64_t ka = sotto__lim_key(&s->lim, SOTTO_LIM_REG_ADDR, c->addr, c->alen);
  uint64_t kp = sotto__lim_key(&s->lim, SOTTO_LIM_REG_PREFIX, c->pfx, c->alen);
  uint64_t kg = sotto__lim_key(&s->lim, SOTTO_LIM_REG_GLOBAL, NULL, 0);
  if (!sotto__lim_peek(&s->lim, ka, sotto__srv_per_min(g->register_rate), g->register_burst, t) ||
      !sotto__lim_peek(&s->lim, kp, sotto__srv_per_min(g->register_prefix_rate), g->register_prefix_burst,
                       t) ||
      !sotto__lim_take(&s->lim, kg, sotto__srv_per_min(g->register_global_rate), g->register_global_burst,
                       t)) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  (void)sotto__lim_take(&s->lim, ka, sotto__srv_per_min(g->register_rate), g->register_burst, t);
  (void)sotto__lim_take(&s->lim, kp, sotto__srv_per_min(g->register_prefix_rate), g->register_prefix_burst,
                        t);
  return 0;
}

int sotto__srv_limit_register(struct srv *s, struct conn *c) {
  const struct sotto_srv_config *g = s->cl ? s->cfg : NULL;
  if (g) {
    const struct srv_climit b[3] = {
        {SOTTO_LIM_REG_ADDR, c->addr, c->alen, sotto__srv_per_min(g->register_rate), g->register_burst},
        {SOTTO_LIM_REG_PREFIX, c->pfx, c->alen, sotto__srv_per_min(g->register_prefix_rate),
         g->register_prefix_burst},
        {SOTTO_LIM_REG_GLOBAL, NULL, 0, sotto__srv_per_min(g->register_global_rate), g->register_global_burst}};
    int r = sotto__srv_cluster_limit(s, 't', b, 3);
    if (r == 1) return 0;
    if (r == 0) {
      s->m.rate_limited++;
      return SOTTO_SRV_E_RATE;
    }
  }
  return limit_register_local(s, c);
}

/* Failed logins per (address, account) and per address prefix: only
 * failures are charged (when the answer is known, limit_auth_done), so
 * correct logins from a busy address always pass; an empty bucket refuses
 * before any lookup, so a secret guessed past the limit is never confirmed.
 * Keying on the account too means that failures against one account do not
 * lock out the others behind the same address (CGNAT). */
int sotto__srv_limit_auth(struct srv *s, struct conn *c, const struct sotto_srv_auth *m) {
  const struct sotto_srv_config *g = s->cfg;
  uint8_t au[16 + SOTTO_SRV_USER_MAX];
  int64_t t = sotto__srv_mono_ms();
  memcpy(au, c->addr, c->alen);
  memcpy(au + c->alen, m->username.p, m->username.len);
  c->auth_key_user = sotto__lim_key(&s->lim, SOTTO_LIM_AUTH_ADDR_USER, au, c->alen + m->username.len);
  c->auth_key_pfx = sotto__lim_key(&s->lim, SOTTO_LIM_AUTH_ADDR, c->pfx, c->alen);
  c->auth_cl = 0;
  if (s->cl) {
    const struct srv_climit b[2] = {
        {SOTTO_LIM_AUTH_ADDR_USER, au, c->alen + m->username.len, sotto__srv_per_min(g->auth_fail_rate),
         g->auth_fail_burst},
        {SOTTO_LIM_AUTH_ADDR, c->pfx, c->alen, sotto__srv_per_min(g->auth_fail_prefix_rate),
         g->auth_fail_prefix_burst}};
    int r = sotto__srv_cluster_limit(s, 'p', b, 2);
    if (r == 0) {
      s->m.rate_limited++;
      sotto__srv_log(2, "auth_rate", "refused=1 peer=%08x cluster=1", sotto__srv_peer_tag(c));
      return SOTTO_SRV_E_AUTH_RATE;
    }
    if (r == 1) {
      /* Charged in Redis afterwards if wrong: the identity is kept for that. */
      c->auth_cl = 1;
      c->auth_ulen = m->username.len;
      memcpy(c->auth_user, m->username.p, m->username.len);
      c->auth_held = 1;
      return 0;
    }
  }
  if (!sotto__lim_peek(&s->lim, c->auth_key_user, sotto__srv_per_min(g->auth_fail_rate), g->auth_fail_burst,
                       t) ||
      !sotto__lim_peek(&s->lim, c->auth_key_pfx, sotto__srv_per_min(g->auth_fail_prefix_rate),
                       g->auth_fail_prefix_burst, t)) {
    s->m.rate_limited++;
    sotto__srv_log(2, "auth_rate", "refused=1 peer=%08x", sotto__srv_peer_tag(c));
    return SOTTO_SRV_E_AUTH_RATE;
  }
  c->auth_held = 1;
  return 0;
}

/* Only a wrong AUTH costs a token: correct logins (and ones the store could
 * not check) never use the failed-login buckets up. */
void sotto__srv_limit_auth_done(struct srv *s, struct conn *c, int wrong) {
  int64_t t = sotto__srv_mono_ms();
  if (!c->auth_held) return;
  c->auth_held = 0;
  if (!wrong) return;
  if (c->auth_cl) {
    const struct sotto_srv_config *g = s->cfg;
    uint8_t au[16 + SOTTO_SRV_USER_MAX];
    struct srv_climit b[2] = {
        {SOTTO_LIM_AUTH_ADDR_USER, au, c->alen + c->auth_ulen, sotto__srv_per_min(g->auth_fail_rate),
         g->auth_fail_burst},
        {SOTTO_LIM_AUTH_ADDR, c->pfx, c->alen, sotto__srv_per_min(g->auth_fail_prefix_rate),
         g->auth_fail_prefix_burst}};
    memcpy(au, c->addr, c->alen);
    memcpy(au + c->alen, c->auth_user, c->auth_ulen);
    c->auth_cl = 0;
    if (sotto__srv_cluster_limit(s, 'c', b, 2) >= 0) return;
  }
  sotto__lim_charge(&s->lim, c->auth_key_user, sotto__srv_per_min(s->cfg->auth_fail_rate),
                    s->cfg->auth_fail_burst, t);
  sotto__lim_charge(&s->lim, c->auth_key_pfx, sotto__srv_per_min(s->cfg->auth_fail_prefix_rate),
                    s->cfg->auth_fail_prefix_burst, t);
}

/* Two budgets, both kept per account or device, not per connection: BUNDLE
 * requests per requesting account (over it: ERR rate), and one-time keys
 * handed out per target device (over it the bundle comes without one-time
 * keys: signed pre-key and KEM last-resort key still make a session). So no
 * one drains a device's one-time keys, and the device is never asked to make
 * more than that budget. */
int sotto__srv_limit_bundle(struct srv *s, struct conn *c, const struct sotto_srv_target *m, int *no_otk) {
  const struct sotto_srv_config *g = s->cfg;
  uint8_t tk[SOTTO_SRV_USER_MAX + 4];
  int64_t t = sotto__srv_mono_ms();
  memcpy(tk, m->username.p, m->username.len);
  memcpy(tk + m->username.len, &m->device_id, 4);
  if (s->cl) {
    const struct srv_climit b = {SOTTO_LIM_BUNDLE, &c->account_id, sizeof c->account_id,
                                 sotto__srv_per_min(g->bundle_rate), g->bundle_burst};
    const struct srv_climit o = {SOTTO_LIM_OTK, tk, m->username.len + 4, sotto__srv_per_min(g->bundle_otk_rate),
                                 g->bundle_otk_burst};
    int r = sotto__srv_cluster_limit(s, 't', &b, 1);
    if (r == 0) {
      s->m.rate_limited++;
      return SOTTO_SRV_E_RATE;
    }
    if (r == 1 && (r = sotto__srv_cluster_limit(s, 't', &o, 1)) >= 0) {
      *no_otk = !r;
      return 0;
    }
  }
  if (!sotto__lim_take(&s->lim, c->bundle_key, sotto__srv_per_min(g->bundle_rate), g->bundle_burst, t)) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  *no_otk = !sotto__lim_take(&s->lim, sotto__lim_key(&s->lim, SOTTO_LIM_OTK, tk, m->username.len + 4),
                             sotto__srv_per_min(g->bundle_otk_rate), g->bundle_otk_burst, t);
  return 0;
}

int sotto__srv_limit_kt(struct srv *s, struct conn *c) {
  const struct sotto_srv_config *g = s->cfg;
  uint64_t k = sotto__lim_key(&s->lim, SOTTO_LIM_KT_ADDR, c->addr, c->alen);
  if (!sotto__lim_take(&s->lim, k, sotto__srv_per_min(g->bundle_rate), g->bundle_burst, sotto__srv_mono_ms())) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  return 0;
}

/* Changes to an account's devices (ADD_DEVICE, DEVICE_REMOVE,
 * ROTATE_SECRET) per account: each writes and fans out, so a stolen or
 * buggy device cannot make the server (and the account's other devices) do
 * it without end. */
int sotto__srv_limit_device_change(struct srv *s, struct conn *c) {
  uint64_t k = sotto__lim_key(&s->lim, SOTTO_LIM_DEVICE_CHANGE, &c->account_id, sizeof c->account_id);
  if (s->cl) {
    const struct srv_climit b = {SOTTO_LIM_DEVICE_CHANGE, &c->account_id, sizeof c->account_id,
                                 sotto__srv_per_min(s->cfg->device_change_rate), s->cfg->device_change_burst};
    int r = sotto__srv_cluster_limit(s, 't', &b, 1);
    if (r == 1) return 0;
    if (r == 0) {
      s->m.rate_limited++;
      return SOTTO_SRV_E_RATE;
    }
  }
  if (!sotto__lim_take(&s->lim, k, sotto__srv_per_min(s->cfg->device_change_rate), s->cfg->device_change_burst,
                       sotto__srv_mono_ms())) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  return 0;
}

/* SENDs per account (send-rate per second, send-burst), at the SEND
 * frame's arrival (c->last_rx_ms, set by handle_frame just before). */
int sotto__srv_limit_send(struct srv *s, struct conn *c) {
  if (!sotto__lim_take(&s->lim, c->send_key, s->cfg->send_rate / 1000.0, s->cfg->send_burst, c->last_rx_ms)) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  return 0;
}
