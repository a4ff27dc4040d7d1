#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// driver.js: @signalapp/libsignal-client@0.103.0 as a TEST AND BENCHMARK PEER
// for libsotto (AGPL-3.0: run as a separate process over a pipe; never linked
// into or shipped with anything sotto installs).
//
// Line protocol on stdin/stdout, one request per line, one reply per line:
//   request:  <command> <arg> <arg> ...      (binary arguments in lowercase hex,
//                                             '.' = empty, '-' = absent,
//                                             numbers in decimal)
//   reply:    ok [<value> ...]               (same encodings)
//         or: err <message text>
// Requests are handled strictly in order. The module is loaded from the
// directory named by SOTTO_LIBSIGNAL_NODE_DIR (scripts/fetch-libsignal-node.sh
// installs it there); anything else is a hard error, so a missing peer makes
// the calling test fail rather than skip.
'use strict';

const path = require('path');
const readline = require('readline');

const dir = process.env.SOTTO_LIBSIGNAL_NODE_DIR;
if (!dir) {
  process.stdout.write('err SOTTO_LIBSIGNAL_NODE_DIR not set\n');
  process.exit(2);
}
let S;
try {
  S = require(path.join(path.resolve(dir), 'node_modules', '@signalapp', 'libsignal-client'));
} catch (e) {
  process.stdout.write(`err cannot load @signalapp/libsignal-client from ${dir}: ${String(e.message).replace(/\s+/g, ' ')}\n`);
  process.exit(2);
}
const pkgVersion = require(path.join(path.resolve(dir), 'node_modules', '@signalapp', 'libsignal-client',
                                     'package.json')).version;

const hex = (b) => (b.length === 0 ? '.' : Buffer.from(b).toString('hex'));
const unhex = (s) => {
  if (s === '-') return null;
  if (s === '.') return new Uint8Array(0);
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error('bad hex argument');
  const b = Buffer.from(s, 'hex');
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};
const num = (s) => {
  if (!/^[0-9]+$/.test(s)) throw new Error('bad number argument');
  return Number(s);
};
const uuidStr = (b) => {
  const h = hex(b);
  if (h.length !== 32) throw new Error('uuid must be 16 bytes');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const uuidBytes = (u) => (typeof u === 'string' ? unhex(u.replace(/-/g, '')) : u);

// ---- parties: one in-memory store set per name -------------------------------

class Party {
  constructor(name, deviceId, aci) {
    this.name = name;
    this.deviceId = deviceId;
    this.aci = aci; // S.Aci
    this.address = S.ProtocolAddress.new(aci, deviceId);
    this.identity = S.IdentityKeyPair.generate();
    this.regId = 1 + Math.floor(Math.random() * 16380);
    this.sessions = new Map();
    this.identities = new Map();
    this.prekeys = new Map();
    this.signed = new Map();
    this.kyber = new Map();
    this.senderKeys = new Map();
    const self = this;
    this.sessionStore = new (class extends S.SessionStore {
      async saveSession(a, r) { self.sessions.set(a.toString(), r.serialize()); }
      async getSession(a) {
        const b = self.sessions.get(a.toString());
        return b ? S.SessionRecord.deserialize(b) : null;
      }
      async getExistingSessions(as) {
        return as.map((a) => {
          const b = self.sessions.get(a.toString());
          if (!b) throw new Error(`no session for ${a}`);
          return S.SessionRecord.deserialize(b);
        });
      }
    })();
    this.identityStore = new (class extends S.IdentityKeyStore {
      async getIdentityKey() { return self.identity.privateKey; }
      async getLocalRegistrationId() { return self.regId; }
      async saveIdentity(a, k) {
        const old = self.identities.get(a.toString());
        self.identities.set(a.toString(), k.serialize());
        return old && Buffer.compare(old, k.serialize()) !== 0 ? 1 : 0;
      }
      async isTrustedIdentity(a, k) {
        const old = self.identities.get(a.toString());
        return !old || Buffer.compare(old, k.serialize()) === 0;
      }
      async getIdentity(a) {
        const b = self.identities.get(a.toString());
        return b ? S.PublicKey.deserialize(b) : null;
      }
    })();
    this.preKeyStore = new (class extends S.PreKeyStore {
      async savePreKey(id, r) { self.prekeys.set(id, r); }
      async getPreKey(id) {
        const r = self.prekeys.get(id);
        if (!r) throw new Error(`no prekey ${id}`);
        return r;
      }
      async removePreKey(id) { self.prekeys.delete(id); }
    })();
    this.signedStore = new (class extends S.SignedPreKeyStore {
      async saveSignedPreKey(id, r) { self.signed.set(id, r); }
      async getSignedPreKey(id) {
        const r = self.signed.get(id);
        if (!r) throw new Error(`no signed prekey ${id}`);
        return r;
      }
    })();
    this.kyberStore = new (class extends S.KyberPreKeyStore {
      async saveKyberPreKey(id, r) { self.kyber.set(id, r); }
      async getKyberPreKey(id) {
        const r = self.kyber.get(id);
        if (!r) throw new Error(`no kyber prekey ${id}`);
        return r;
      }
      async markKyberPreKeyUsed() {}
    })();
    this.senderKeyStore = new (class extends S.SenderKeyStore {
      async saveSenderKey(a, d, r) { self.senderKeys.set(`${a}/${d}`, r.serialize()); }
      async getSenderKey(a, d) {
        const b = self.senderKeys.get(`${a}/${d}`);
        return b ? S.SenderKeyRecord.deserialize(b) : null;
      }
    })();
  }
}

const parties = new Map();
const party = (n) => {
  const p = parties.get(n);
  if (!p) throw new Error(`unknown party ${n}`);
  return p;
};
// Peers are named by ACI (16 bytes hex) and device id.
const addr = (aciHex, dev) => S.ProtocolAddress.new(S.Aci.fromUuidBytes(unhex(aciHex)), num(dev));

// ---- commands -----------------------------------------------------------------

const cmds = {
  // Liveness and the cost of one round trip through the pipe (bench baseline).
  ping: () => [],
  version: () => [pkgVersion],

  // Curve25519 / XEdDSA.
  keypair: () => {
    const k = S.PrivateKey.generate();
    return [hex(k.serialize()), hex(k.getPublicKey().serialize())];
  },
  pubkey: (priv) => [hex(S.PrivateKey.deserialize(unhex(priv)).getPublicKey().serialize())],
  sign: (priv, msg) => [hex(S.PrivateKey.deserialize(unhex(priv)).sign(unhex(msg)))],
  verify: (pub, msg, sig) =>
    [S.PublicKey.deserialize(unhex(pub)).verify(unhex(msg), unhex(sig)) ? '1' : '0'],
  agree: (priv, pub) =>
    [hex(S.PrivateKey.deserialize(unhex(priv)).agree(S.PublicKey.deserialize(unhex(pub))))],

  // Safety numbers: fingerprint <scannable version> <iterations> <local id> <local key>
  // <remote id> <remote key> -> digits, scannable payload.
  fingerprint: (ver, iter, lid, lkey, rid, rkey) => {
    const f = S.Fingerprint.new(num(iter), num(ver), unhex(lid) || new Uint8Array(0),
                                S.PublicKey.deserialize(unhex(lkey)),
                                unhex(rid) || new Uint8Array(0),
                                S.PublicKey.deserialize(unhex(rkey)));
    return [f.displayableFingerprint().toString(), hex(f.scannableFingerprint().toBuffer())];
  },
  // fp_compare <ours> <theirs> -> 1 | 0 (err on a version mismatch or bad payload)
  fp_compare: (ours, theirs) =>
    [S.ScannableFingerprint._fromBuffer(unhex(ours)).compare(
        S.ScannableFingerprint._fromBuffer(unhex(theirs))) ? '1' : '0'],

  // KEM (libsignal's only shipped PQXDH KEM: Kyber-1024 round 3, type 0x08).
  kem_keypair: () => {
    const k = S.KEMKeyPair.generate();
    return [hex(k.getPublicKey().serialize()), hex(k.getSecretKey().serialize())];
  },

  // ---- parties (sessions and groups) ----
  // party <name> <aci hex> <device> -> identity public key
  party: (name, aci, dev) => {
    const p = new Party(name, num(dev), S.Aci.fromUuidBytes(unhex(aci)));
    parties.set(name, p);
    return [hex(p.identity.publicKey.serialize()), String(p.regId)];
  },
  // bundle <name> <with one-time prekey 0|1> -> regid dev opk_id|- opk|- spk_id spk spk_sig
  //   ik kyber_id kyber kyber_sig
  bundle: (name, withOpk) => {
    const p = party(name);
    const id = 1 + p.signed.size + p.prekeys.size + p.kyber.size;
    const spk = S.PrivateKey.generate();
    const spkSig = p.identity.privateKey.sign(spk.getPublicKey().serialize());
    p.signed.set(id, S.SignedPreKeyRecord.new(id, Date.now(), spk.getPublicKey(), spk, spkSig));
    const kk = S.KEMKeyPair.generate();
    const kSig = p.identity.privateKey.sign(kk.getPublicKey().serialize());
    p.kyber.set(id, S.KyberPreKeyRecord.new(id, Date.now(), kk, kSig));
    let opkId = '-', opkPub = '-';
    if (withOpk === '1') {
      const opk = S.PrivateKey.generate();
      p.prekeys.set(id, S.PreKeyRecord.new(id, opk.getPublicKey(), opk));
      opkId = String(id);
      opkPub = hex(opk.getPublicKey().serialize());
    }
    return [String(p.regId), String(p.deviceId), opkId, opkPub, String(id),
            hex(spk.getPublicKey().serialize()), hex(spkSig), hex(p.identity.publicKey.serialize()),
            String(id), hex(kk.getPublicKey().serialize()), hex(kSig)];
  },
  // process_bundle <name> <peer aci> <peer dev> <regid> <opk_id|-> <opk|-> <spk_id> <spk>
  //   <spk_sig> <ik> <kyber_id> <kyber> <kyber_sig>
  process_bundle: async (name, aci, dev, regid, opkId, opk, spkId, spk, spkSig, ik, kid, kpub,
                         ksig) => {
    const p = party(name);
    const b = S.PreKeyBundle.new(num(regid), num(dev), opkId === '-' ? null : num(opkId),
                                 opk === '-' ? null : S.PublicKey.deserialize(unhex(opk)),
                                 num(spkId), S.PublicKey.deserialize(unhex(spk)), unhex(spkSig),
                                 S.PublicKey.deserialize(unhex(ik)), num(kid),
                                 S.KEMPublicKey.deserialize(unhex(kpub)), unhex(ksig));
    await S.processPreKeyBundle(b, addr(aci, dev), p.address, p.sessionStore, p.identityStore);
    return [];
  },
  // encrypt <name> <peer aci> <peer dev> <plaintext> -> type ciphertext
  encrypt: async (name, aci, dev, pt) => {
    const p = party(name);
    const c = await S.signalEncrypt(unhex(pt), addr(aci, dev), p.address, p.sessionStore,
                                    p.identityStore);
    return [String(c.type()), hex(c.serialize())];
  },
  // decrypt <name> <peer aci> <peer dev> <type 2|3> <ciphertext> -> plaintext
  decrypt: async (name, aci, dev, type, ct) => {
    const p = party(name);
    const a = addr(aci, dev);
    let out;
    if (type === '3') {
      out = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(unhex(ct)), a,
                                        p.address, p.sessionStore, p.identityStore,
                                        p.preKeyStore, p.signedStore, p.kyberStore);
    } else {
      out = await S.signalDecrypt(S.SignalMessage.deserialize(unhex(ct)), a, p.address,
                                  p.sessionStore, p.identityStore);
    }
    return [hex(out)];
  },
  // session <name> <peer aci> <peer dev> -> serialized SessionRecord | -
  session: (name, aci, dev) => {
    const b = party(name).sessions.get(addr(aci, dev).toString());
    return [b ? hex(b) : '-'];
  },
  set_session: (name, aci, dev, rec) => {
    party(name).sessions.set(addr(aci, dev).toString(), unhex(rec));
    return [];
  },

  // ---- sender keys ----
  // skdm_create <name> <distribution uuid> -> SenderKeyDistributionMessage
  skdm_create: async (name, dist) => {
    const p = party(name);
    const m = await S.SenderKeyDistributionMessage.create(p.address, uuidStr(unhex(dist)),
                                                          p.senderKeyStore);
    return [hex(m.serialize())];
  },
  // skdm_process <name> <sender aci> <sender dev> <skdm> -> distribution uuid
  skdm_process: async (name, aci, dev, skdm) => {
    const p = party(name);
    const m = S.SenderKeyDistributionMessage.deserialize(unhex(skdm));
    await S.processSenderKeyDistributionMessage(addr(aci, dev), m, p.senderKeyStore);
    return [hex(uuidBytes(m.distributionId()))];
  },
  // group_encrypt <name> <distribution uuid> <plaintext> -> SenderKeyMessage
  group_encrypt: async (name, dist, pt) => {
    const p = party(name);
    const c = await S.groupEncrypt(p.address, uuidStr(unhex(dist)), p.senderKeyStore, unhex(pt));
    return [hex(c.serialize())];
  },
  // group_decrypt <name> <sender aci> <sender dev> <SenderKeyMessage> -> plaintext
  group_decrypt: async (name, aci, dev, ct) => {
    const p = party(name);
    return [hex(await S.groupDecrypt(addr(aci, dev), p.senderKeyStore, unhex(ct)))];
  },

  // ---- benchmark pairs (bench_protocol's spqr_* rows): both parties in this
  // process, so one request is one whole operation; the pipe's cost per
  // request is what `ping` measures.
  // lsb_pair <tag>: parties <tag>a and <tag>b, a session a -> b (PQXDH +
  //   SPQR, as libsignal always does) and one round trip. -> []
  lsb_pair: async (tag) => {
    const [a, b] = lsbParties(tag);
    await lsbStart(a, b);
    await lsbMsg(a, b, new Uint8Array(100));
    await lsbMsg(b, a, new Uint8Array(100));
    return [];
  },
  // lsb_msg <tag> <dir 0: a -> b, 1: b -> a> <plaintext> -> type length pq
  //   (length of the message, after checking the plaintext came back, and the
  //   bytes of its pq_ratchet field, 0 for a PreKeySignalMessage)
  lsb_msg: async (tag, dir, pt) => {
    const a = party(`${tag}a`), b = party(`${tag}b`);
    return dir === '0' ? lsbMsg(a, b, unhex(pt)) : lsbMsg(b, a, unhex(pt));
  },
  // lsb_setup <plaintext>: a new pair, a -> b session from b's bundle (one-time
  //   pre-key, Kyber pre-key) and its first message decrypted. -> type length pq
  lsb_setup: async (pt) => {
    const [a, b] = lsbParties('setup');
    await lsbStart(a, b);
    return lsbMsg(a, b, unhex(pt));
  },
};

function lsbParties(tag) {
  const a = new Party(`${tag}a`, 1, S.Aci.fromUuidBytes(require('crypto').randomBytes(16)));
  const b = new Party(`${tag}b`, 1, S.Aci.fromUuidBytes(require('crypto').randomBytes(16)));
  parties.set(a.name, a);
  parties.set(b.name, b);
  return [a, b];
}

async function lsbStart(a, b) {
  const w = cmds.bundle(b.name, '1');
  const bundle = S.PreKeyBundle.new(num(w[0]), num(w[1]), num(w[2]), S.PublicKey.deserialize(unhex(w[3])),
                                    num(w[4]), S.PublicKey.deserialize(unhex(w[5])), unhex(w[6]),
                                    S.PublicKey.deserialize(unhex(w[7])), num(w[8]),
                                    S.KEMPublicKey.deserialize(unhex(w[9])), unhex(w[10]));
  await S.processPreKeyBundle(bundle, b.address, a.address, a.sessionStore, a.identityStore);
}

async function lsbMsg(from, to, pt) {
  const c = await S.signalEncrypt(pt, to.address, from.address, from.sessionStore, from.identityStore);
  let out;
  if (c.type() === 3) {
    out = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(c.serialize()), from.address,
                                      to.address, to.sessionStore, to.identityStore, to.preKeyStore,
                                      to.signedStore, to.kyberStore);
  } else {
    out = await S.signalDecrypt(S.SignalMessage.deserialize(c.serialize()), from.address, to.address,
                                to.sessionStore, to.identityStore);
  }
  if (Buffer.compare(Buffer.from(out), Buffer.from(pt)) !== 0) throw new Error('plaintext differs');
  return [String(c.type()), String(c.serialize().length),
          String(c.type() === 2 ? pqFieldBytes(c.serialize()) : 0)];
}

// Bytes that field 5 (pq_ratchet: tag, length, value) takes in a
// SignalMessage (version byte, protobuf, 8-byte MAC).
function pqFieldBytes(m) {
  let i = 1, n = 0;
  const end = m.length - 8;
  const varint = () => {
    let v = 0, sh = 0, b;
    do { b = m[i++]; v += (b & 0x7f) * 2 ** sh; sh += 7; } while (b & 0x80);
    return v;
  };
  while (i < end) {
    const start = i, key = varint(), wt = key & 7;
    if (wt === 0) varint();
    else if (wt === 2) { const l = varint(); i += l; }
    else throw new Error('unexpected wire type');
    if (key >>> 3 === 5) n += i - start;
  }
  return n;
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    const words = line.split(' ').filter((w) => w.length > 0);
    if (words.length === 0) continue;
    const f = cmds[words[0]];
    let reply;
    if (!f) {
      reply = `err unknown command ${words[0]}`;
    } else if (f.length !== words.length - 1) {
      reply = `err ${words[0]} takes ${f.length} arguments`;
    } else {
      try {
        const out = await f(...words.slice(1));
        reply = ['ok', ...out].join(' ');
      } catch (e) {
        reply = `err ${String(e && e.message ? e.message : e).replace(/\s+/g, ' ')}`;
      }
    }
    process.stdout.write(reply + '\n');
  }
}

main().catch((e) => {
  process.stdout.write(`err fatal ${String(e.message).replace(/\s+/g, ' ')}\n`);
  process.exit(1);
});
