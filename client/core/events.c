/* SPDX-License-Identifier: Apache-2.0 */
/* events.c: events to the sink, their names and their sentences
 * (sotto_client.h). The message log stores events as fields; the sentence
 * is made here, when an event is shown, so every front end says the same. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "msglog.h"

void sc__emit(struct sc_client *c, struct sc_event *ev) {
  if (!ev->peer) ev->peer = "";
  if (!ev->group) ev->group = "";
  if (!ev->subject) ev->subject = "";
  if (!ev->detail) ev->detail = "";
  if (!ev->text) ev->text = "";
  if (!ev->ref_author) ev->ref_author = "";
  if (c->sink) c->sink(c->sink_ud, ev);
}

void sc__event(struct sc_client *c, int kind, int reason, const char *peer, const char *detail) {
  struct sc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.reason = reason;
  ev.peer = peer;
  ev.detail = detail;
  sc__emit(c, &ev);
}

const char *sc_event_name(int kind) {
  switch (kind) {
    case SC_EV_MESSAGE: return "message";
    case SC_EV_SENT: return "sent";
    case SC_EV_GROUP_JOINED:
    case SC_EV_GROUP_ADDED:
    case SC_EV_GROUP_REMOVED:
    case SC_EV_GROUP_LEFT_US:
    case SC_EV_GROUP_NOT_MEMBER:
    case SC_EV_GROUP_MEMBER_KEY: return "group";
    case SC_EV_HELD:
    case SC_EV_HELD_DROPPED:
    case SC_EV_KEY_HELD_WARNING: return "held";
    case SC_EV_UNREADABLE:
    case SC_EV_UNREADABLE_SUMMARY: return "unreadable";
    case SC_EV_KEY_CHANGED: return "identity_changed";
    case SC_EV_NOT_DELIVERED: return "undelivered";
    case SC_EV_BAD_ENVELOPE: return "bad_envelope";
    case SC_EV_BAD_FRAME: return "bad_frame";
    case SC_EV_DEVICE_CHANGE: return "device_change";
    case SC_EV_SERVER_REPINNED: return "server_repinned";
    case SC_EV_EXPIRED_SENT: return "expired_sent";
    case SC_EV_EXPIRED_RECEIVED: return "expired_received";
    case SC_EV_RESTORED_STORE: return "restored_store";
    case SC_EV_DISPLACED: return "displaced";
    case SC_EV_KT_ALERT: return "kt_alert";
    case SC_EV_LINK_UP: return "link_up";
    case SC_EV_LINK_DOWN: return "link_down";
    case SC_EV_KEYS_ROTATED: return "keys_rotated";
    case SC_EV_KEYS_TOPPED_UP: return "keys_topped_up";
    case SC_EV_DRAINED: return "drained";
    case SC_EV_NOTICE: return "notice";
    case SC_EV_RETRY_REQUESTED: return "retry_requested";
    case SC_EV_RESENT: return "resent";
    case SC_EV_SESSION_RESET: return "session_reset";
    case SC_EV_DELIVERY: return "delivery";
    case SC_EV_GAP: return "gap";
    case SC_EV_GAP_FILLED: return "gap_filled";
    case SC_EV_TIMER_SET: return "timer";
    case SC_EV_REACTION: return "reaction";
    case SC_EV_EDITED: return "edited";
    case SC_EV_DELETED: return "deleted";
    case SC_EV_CONVO_REFUSED: return "refused";
    case SC_EV_DISAPPEARED: return "disappeared";
    case SC_EV_DEVICE_LIST: return "device_list";
    case SC_EV_ATTACHMENT: return "attachment";
    case SC_EV_DEVICE_REFUSED: return "device_refused";
    case SC_EV_DEVICE_HELD: return "device_held";
    default: return "unknown";
  }
}

const char *sc_event_type(const struct sc_event *ev) {
  static const char *notice[] = {"notice", "identity_changed", "group", "unreadable", "held"};
  if (ev->kind == SC_EV_NOTICE) return notice[ev->reason >= 0 && ev->reason < 5 ? ev->reason : 0];
  if (ev->kind == SC_EV_NOT_DELIVERED && ev->reason == SC_R_KEY_VERIFIED) return "identity_changed";
  return sc_event_name(ev->kind);
}

const char *sc_state_name(int state) {
  switch (state) {
    case SC_STATE_QUEUED: return "queued";
    case SC_STATE_SENT: return "sent";
    case SC_STATE_DELIVERED: return "delivered";
    case SC_STATE_READ: return "read";
    case SC_STATE_FAILED: return "failed";
    case SC_STATE_EXPIRED: return "expired";
    default: return "unknown";
  }
}

int sc_event_is_group_notice(int kind) {
  return kind == SC_EV_GROUP_JOINED || kind == SC_EV_GROUP_ADDED || kind == SC_EV_GROUP_REMOVED ||
         kind == SC_EV_GROUP_LEFT_US || kind == SC_EV_GROUP_NOT_MEMBER || kind == SC_EV_GROUP_MEMBER_KEY;
}

/* snprintf that keeps count of what was needed. */
struct out {
  char *p;
  size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(o->len < o->cap ? o->p + o->len : NULL, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

static const char *why(const struct sc_event *ev) {
  switch (ev->reason) {
    case SC_R_NO_SESSION: return "it belongs to no session with the key you accepted";
    case SC_R_BAD_SENDER: return "invalid sender name";
    case SC_R_UNKNOWN_TYPE: return "unknown message type";
    case SC_R_NO_GROUP_KEY: return "no group key from them: you are not in the group, or were removed";
    default: return ev->detail && ev->detail[0] ? ev->detail : "unknown reason";
  }
}

size_t sc_event_describe(char *buf, size_t cap, const struct sc_event *ev) {
  struct out o = {buf, cap, 0};
  const char *p = ev->peer ? ev->peer : "", *g = ev->group ? ev->group : "", *s = ev->subject ? ev->subject : "";
  size_t i;
  if (cap) buf[0] = 0;
  switch (ev->kind) {
    case SC_EV_MESSAGE:
    case SC_EV_SENT:
    case SC_EV_NOTICE:
      put(&o, "%.*s", (int)(ev->text_len > SC_MAX_TEXT ? SC_MAX_TEXT : ev->text_len), ev->text ? ev->text : "");
      break;
    case SC_EV_GROUP_JOINED:
      if (s[0] && strcmp(p, s) == 0) /* from another device of ours (GROUP_STATE) */
        put(&o, "the group %s, made or joined on another device of yours, is on this one too (members: ", g);
      else
        put(&o, "%s added you to the group %s (members: ", p, g);
      for (i = 0; i < ev->n_members; i++) put(&o, "%s%s", i ? ", " : "", ev->members[i]);
      put(&o, ")");
      break;
    case SC_EV_GROUP_ADDED: put(&o, "%s added %s to the group %s", p, s, g); break;
    case SC_EV_GROUP_REMOVED:
      if (strcmp(p, s) == 0) put(&o, "%s left the group %s", p, g);
      else put(&o, "%s removed %s from the group %s", p, s, g);
      break;
    case SC_EV_GROUP_MEMBER_KEY:
      put(&o,
          "%s, a member of the group %s, wrote from a new identity key (a new safety number); it is held, "
          "not trusted: compare 'sotto safety-number %s'",
          p, g, p);
      break;
    case SC_EV_GROUP_LEFT_US: put(&o, "%s removed you from the group %s", p, g); break;
    case SC_EV_GROUP_NOT_MEMBER: put(&o, "ignored a change to %s from %s, who is not a member", g, p); break;
    case SC_EV_HELD:
      if (ev->reason == SC_R_HELD_TEXT)
        put(&o,
            "from a new, unverified key claiming to be %s (held; not from the %s you know): %.*s\n"
            "  compare 'sotto safety-number %s'; accept the key with 'sotto trust %s' to release it",
            p, p, (int)(ev->text_len > SC_MAX_TEXT ? SC_MAX_TEXT : ev->text_len), ev->text ? ev->text : "", p, p);
      else
        put(&o,
            "a %s from a new, unverified key claiming to be %s is held and NOT applied: compare 'sotto "
            "safety-number %s'; accept the key with 'sotto trust %s' to apply it",
            ev->reason == SC_R_HELD_GROUP_CHANGE ? "group change" : "message", p, p, p);
      break;
    case SC_EV_HELD_DROPPED:
      put(&o,
          "another message from a new, unverified key claiming to be %s was dropped (%llu are held already): "
          "see 'sotto safety-number %s'",
          p, (unsigned long long)ev->count, p);
      break;
    case SC_EV_UNREADABLE:
      switch (ev->reason) {
        case SC_R_BAD_GROUP_KEY: put(&o, "a group key from this member was malformed and ignored"); break;
        case SC_R_FOREIGN_GROUP_KEY: put(&o, "ignored a group key for a group we do not share"); break;
        case SC_R_UNKNOWN_FORMAT: put(&o, "a message in an unknown format was dropped"); break;
        case SC_R_UNEXPECTED_KIND: put(&o, "a message of an unexpected kind was dropped"); break;
        case SC_R_GROUP_FORMAT: put(&o, "a group message in an unknown format was dropped"); break;
        default: put(&o, "a message from %s could not be decrypted (%s) and was dropped", p, why(ev));
      }
      break;
    case SC_EV_UNREADABLE_SUMMARY:
      if (ev->total)
        put(&o, "%llu more messages from %.32s could not be decrypted and were dropped (%llu in all)",
            (unsigned long long)ev->count, p, (unsigned long long)ev->total);
      else
        put(&o, "%llu messages from other senders could not be decrypted and were dropped",
            (unsigned long long)ev->count);
      break;
    case SC_EV_KEY_CHANGED:
      if (ev->reason == SC_R_KEY_FROM_BUNDLE || ev->reason == SC_R_KEY_TRUSTED)
        put(&o,
            "%s's identity key is not the one your last message to them went to (a new safety number): %s. If "
            "they did not reinstall, someone may be in the middle: compare 'sotto safety-number %s' first",
            p,
            ev->reason == SC_R_KEY_FROM_BUNDLE ? "the server handed out a different key for them"
                                               : "you accepted their new key with 'sotto trust' without verifying it",
            p);
      else
        put(&o,
            "%s's identity key changed (a new safety number). If they did not reinstall, someone may be in the "
            "middle: compare with 'sotto safety-number %s'",
            p, p);
      break;
    case SC_EV_KEY_HELD_WARNING:
      put(&o, "messages from a new, unverified key claiming to be %s are held; see 'sotto safety-number %s'", p, p);
      break;
    case SC_EV_NOT_DELIVERED:
      if (ev->reason == SC_R_KEY_VERIFIED)
        put(&o,
            "%s's identity key changed since you verified it: this message was not sent to them "
            "(compare 'sotto safety-number %s')",
            p, p);
      else if (ev->reason == SC_R_NO_SENDER_KEY)
        put(&o, "%s does not have your group key yet; they cannot read this message", p);
      else
        put(&o, "%s", ev->detail && ev->detail[0] ? ev->detail : "the message was not delivered");
      break;
    case SC_EV_BAD_ENVELOPE:
      if (ev->server_id)
        put(&o, "the server sent a malformed envelope (id %llu: %s); skipped and acknowledged",
            (unsigned long long)ev->server_id, ev->detail ? ev->detail : "");
      else
        put(&o, "%llu more malformed frames from the server were skipped", (unsigned long long)ev->count);
      break;
    case SC_EV_BAD_FRAME:
      put(&o, "the server sent a malformed frame (type 0x%02x: %s); skipped", (unsigned)(ev->count & 0xff),
          ev->detail ? ev->detail : "");
      break;
    case SC_EV_DEVICE_CHANGE:
      put(&o, "the devices of your account changed since this device last connected (%s)",
          ev->detail ? ev->detail : "");
      if (ev->count)
        put(&o, ": a device you did not add can receive what is sent to this account; remove it ('sotto device "
                "remove ID') and run 'sotto rotate-secret'");
      break;
    case SC_EV_EXPIRED_SENT: {
      char when[64] = "";
      if (ev->server_timestamp_ms) {
        time_t t = (time_t)(ev->server_timestamp_ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm)) strftime(when, sizeof when, " sent at %Y-%m-%d %H:%M", &tm);
      }
      if (ev->count == 1 && ev->peer && ev->peer[0])
        put(&o, "your message to %s%s expired unread on the server (never fetched); it was not delivered", ev->peer,
            when);
      else if (ev->peer && ev->peer[0])
        put(&o, "%llu of your messages to %s (the first%s) expired unread on the server; they were not delivered",
            (unsigned long long)ev->count, ev->peer, when[0] ? when : " undated");
      else
        put(&o, "%llu of your messages to other recipients expired unread on the server; they were not delivered",
            (unsigned long long)ev->count);
      break;
    }
    case SC_EV_EXPIRED_RECEIVED:
      if (ev->peer && ev->peer[0])
        put(&o, "%llu message%s from %s expired on the server before you fetched %s", (unsigned long long)ev->count,
            ev->count == 1 ? "" : "s", ev->peer, ev->count == 1 ? "it" : "them");
      else
        put(&o, "%llu messages from other senders expired on the server before you fetched them",
            (unsigned long long)ev->count);
      break;
    case SC_EV_SERVER_REPINNED:
      put(&o,
          "the server rotated its TLS certificate; the rotation was signed by the certificate pinned before "
          "(statement %llu), so the new one is pinned now: SHA-256 %s",
          (unsigned long long)ev->count, ev->detail ? ev->detail : "");
      break;
    case SC_EV_RESTORED_STORE:
      put(&o,
          "this store is older than the one this device last used (device epoch %llu here, %llu on the "
          "server): it was restored or copied. Every session is re-keyed before anything is sent; messages the "
          "newer copy received are not here",
          (unsigned long long)ev->count, (unsigned long long)ev->total);
      break;
    case SC_EV_DISPLACED: put(&o, "another sotto of this identity connected; reconnecting when it is done"); break;
    case SC_EV_KT_ALERT: put(&o, "%s", ev->detail && ev->detail[0] ? ev->detail : "key-transparency alert"); break;
    case SC_EV_LINK_UP: put(&o, "connected to the server"); break;
    case SC_EV_LINK_DOWN: {
      int64_t in = ev->next_retry_ms ? (ev->next_retry_ms - sc_monotonic_ms() + 999) / 1000 : 0;
      put(&o, "%s", ev->detail && ev->detail[0] ? ev->detail : "the connection to the server was lost");
      if (ev->next_retry_ms) put(&o, " (trying again in %lld s)", (long long)(in > 0 ? in : 0));
      break;
    }
    case SC_EV_KEYS_ROTATED: put(&o, "the signed and last-resort pre-keys were replaced"); break;
    case SC_EV_KEYS_TOPPED_UP:
      put(&o, "uploaded %llu one-time pre-keys and %llu post-quantum pre-keys", (unsigned long long)ev->count,
          (unsigned long long)ev->total);
      break;
    case SC_EV_DRAINED: put(&o, "no more queued messages"); break;
    case SC_EV_RETRY_REQUESTED:
      put(&o,
          "a message from %s could not be decrypted; a fresh session was started and it was asked for "
          "again",
          p);
      break;
    case SC_EV_RESENT:
      put(&o, "%s could not decrypt our messages: a fresh session is used and %llu message(s) were sent "
          "again", p, (unsigned long long)ev->count);
      break;
    case SC_EV_SESSION_RESET:
      if (ev->reason == SC_R_BY_US)
        put(&o, "you reset the session with %s: the next messages use a fresh one", p);
      else
        put(&o, "%s reset the session with you: the next messages use a fresh one", p);
      break;
    case SC_EV_DELIVERY:
      switch (ev->state) {
        case SC_STATE_QUEUED: put(&o, "your message to %s is queued", p); break;
        case SC_STATE_SENT: put(&o, "your message to %s was sent", p); break;
        case SC_STATE_DELIVERED: put(&o, "your message to %s was delivered", p); break;
        case SC_STATE_READ: put(&o, "your message to %s was read", p); break;
        case SC_STATE_FAILED: put(&o, "your message to %s was given up", p); break;
        case SC_STATE_EXPIRED: put(&o, "your message to %s expired on the server unread", p); break;
        default: put(&o, "your message to %s changed state", p);
      }
      if (ev->reason == SC_R_TOO_OLD)
        put(&o, ": no delivery receipt came in time; it is no longer sent again");
      else if (ev->reason == SC_R_OUTBOX_FULL)
        put(&o, ": the outbox was full; it is no longer sent again");
      else if (ev->detail && ev->detail[0])
        put(&o, ": %s", ev->detail);
      break;
    case SC_EV_GAP:
      if (ev->count > 1)
        put(&o, "%llu messages from %s are missing (they may arrive later)", (unsigned long long)ev->count,
            p);
      else
        put(&o, "a message from %s is missing (it may arrive later)", p);
      break;
    case SC_EV_GAP_FILLED: put(&o, "the missing message from %s arrived", p); break;
    case SC_EV_TIMER_SET: {
      char d[64];
      if (g[0]) put(&o, "[%s] ", g); /* a group's conversation change */
      sc_duration_text(d, sizeof d, (uint32_t)ev->count);
      if (ev->count)
        put(&o, "%s set disappearing messages to %s", ev->reason == SC_R_BY_US ? "you" : p, d);
      else
        put(&o, "%s turned disappearing messages off", ev->reason == SC_R_BY_US ? "you" : p);
      break;
    }
    case SC_EV_REACTION:
      if (g[0]) put(&o, "[%s] ", g);
      if (ev->reason == SC_R_BY_US && ev->detail && ev->detail[0]) /* on another device of ours */
        put(&o, "you reacted %s to message %llu%s%s (on another device)", ev->detail, (unsigned long long)ev->ref_ts,
            g[0] ? "" : " with ", g[0] ? "" : p);
      else if (ev->reason == SC_R_BY_US)
        put(&o, "you removed your reaction to message %llu%s%s (on another device)", (unsigned long long)ev->ref_ts,
            g[0] ? "" : " with ", g[0] ? "" : p);
      else if (ev->detail && ev->detail[0])
        put(&o, "%s reacted %s to message %llu", p, ev->detail, (unsigned long long)ev->ref_ts);
      else
        put(&o, "%s removed their reaction to message %llu", p, (unsigned long long)ev->ref_ts);
      break;
    case SC_EV_EDITED:
    case SC_EV_DELETED:
      if (g[0]) put(&o, "[%s] ", g);
      if (ev->reason == SC_R_BY_US) /* on another device of ours */
        put(&o, "you %s message %llu%s%s (on another device)", ev->kind == SC_EV_EDITED ? "edited" : "deleted",
            (unsigned long long)ev->ref_ts, g[0] ? "" : " to ", g[0] ? "" : p);
      else
        put(&o, "%s %s message %llu", p, ev->kind == SC_EV_EDITED ? "edited" : "deleted", (unsigned long long)ev->ref_ts);
      break;
    case SC_EV_CONVO_REFUSED:
      if (g[0]) put(&o, "[%s] ", g);
      put(&o, "%s's %s of message %llu was refused: %s", p, ev->detail && ev->detail[0] ? ev->detail : "change",
          (unsigned long long)ev->ref_ts,
          ev->reason == SC_R_NOT_AUTHOR      ? "they did not write it"
          : ev->reason == SC_R_OUT_OF_WINDOW ? "too late (edits within 24 hours, deletes within 48 hours)"
          : ev->reason == SC_R_BAD_EMOJI     ? "not a valid reaction"
                                             : "no such message here");
      break;
    case SC_EV_DISAPPEARED:
      put(&o, "%llu disappearing message%s deleted", (unsigned long long)ev->count, ev->count == 1 ? "" : "s");
      break;
    case SC_EV_DEVICE_REFUSED:
      put(&o, "a message from %s's device %u was refused: %s", p, ev->device,
          ev->detail && ev->detail[0] ? ev->detail : "that device is not in their signed device list");
      break;
    case SC_EV_DEVICE_HELD:
      if (ev->reason == SC_R_HELD_GIVEN_UP)
        put(&o, "gave up a message from %s's device %u: %s", p, ev->device, ev->detail ? ev->detail : "");
      else if (ev->reason == SC_R_HELD_FULL)
        put(&o, "a message from %s's device %u cannot be checked yet and was not kept (too many held): %s", p,
            ev->device, ev->detail ? ev->detail : "");
      else
        put(&o, "held: cannot check %s's device %u yet (%s); the message is kept unread and checked again at the "
            "next connection", p, ev->device, ev->detail ? ev->detail : "");
      break;
    case SC_EV_DEVICE_LIST:
      if (!p[0] && ev->error == SC_ERR_DEVICE_HIDDEN)
        put(&o, "%s", ev->detail ? ev->detail : "");
      else if (!p[0])
        put(&o, "%s; your signed device list was published again", ev->detail ? ev->detail : "");
      else if (ev->error)
        put(&o, "%s: %s", p, ev->detail && ev->detail[0] ? ev->detail : "a device list was refused");
      else
        put(&o, "%s's devices changed (signed list version %llu): %s", p, (unsigned long long)ev->count,
            ev->detail ? ev->detail : "");
      break;
    case SC_EV_ATTACHMENT:
      if (ev->reason == SC_R_BY_US && ev->device && ev->total) /* sent from another device of ours */
        put(&o, "file %s (%llu bytes) sent to %s%s from another device could not be saved here: %s", ev->detail,
            (unsigned long long)ev->count, g[0] ? "group " : "", g[0] ? g : p, sc_error_message(-(int)ev->total));
      else if (ev->reason == SC_R_BY_US && ev->device)
        put(&o, "file %s (%llu bytes) sent to %s%s from another device, saved as downloads/%s", ev->detail,
            (unsigned long long)ev->count, g[0] ? "group " : "", g[0] ? g : p, ev->detail);
      else if (ev->reason == SC_R_BY_US && g[0])
        put(&o, "file %s (%llu bytes) sent to group %s", ev->detail, (unsigned long long)ev->count, g);
      else if (ev->reason == SC_R_BY_US)
        put(&o, "file %s (%llu bytes) sent to %s", ev->detail, (unsigned long long)ev->count, p);
      else if (ev->total)
        put(&o, "file %s from %s%s%s could not be saved: %s", ev->detail, p, g[0] ? " in group " : "", g,
            sc_error_message(-(int)ev->total));
      else
        put(&o, "file from %s%s%s saved as downloads/%s (%llu bytes)", p, g[0] ? " in group " : "", g, ev->detail,
            (unsigned long long)ev->count);
      if (ev->text_len) put(&o, ": %.*s", (int)ev->text_len, ev->text);
      break;
    default: put(&o, "unknown event %d", ev->kind);
  }
  return o.len;
}
