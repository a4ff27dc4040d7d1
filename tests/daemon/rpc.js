// SPDX-License-Identifier: Apache-2.0
// rpc.js: a small JSON-RPC 2.0 client over a Unix socket (one object per
// line), for the daemon tests, the echo bot's test and bench/run client.
// Every wait has a deadline.
'use strict';
const net = require('net');

class Rpc {
  constructor(path) {
    this.path = path;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, timer}
    this.orphans = []; // responses with id null (parse errors, invalid requests)
    this.notes = []; // notifications not yet taken
    this.waiters = [];
    this.buf = '';
    this.closed = false;
    this.lines = 0;
  }
  open() {
    return new Promise((resolve, reject) => {
      this.sock = net.createConnection(this.path);
      this.sock.setEncoding('utf8');
      this.sock.once('connect', () => resolve(this));
      this.sock.once('error', reject);
      this.sock.on('data', (d) => this.onData(d));
      this.sock.on('close', () => {
        this.closed = true;
        this.wake();
      });
    });
  }
  onData(d) {
    this.buf += d;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.lines++;
      let o;
      try {
        o = JSON.parse(line);
      } catch (e) {
        this.orphans.push({ unparsable: line });
        continue;
      }
      if (o.method !== undefined && o.id === undefined) this.notes.push(o);
      else if (o.id !== null && this.pending.has(o.id)) {
        const p = this.pending.get(o.id);
        this.pending.delete(o.id);
        p.resolve(o);
      } else this.orphans.push(o);
    }
    this.wake();
  }
  wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }
  // A request; resolves with the whole response object.
  call(method, params, timeoutMs = 20000) {
    const id = this.nextId++;
    const req = { jsonrpc: '2.0', method, id };
    if (params !== undefined) req.params = params;
    return this.request(req, timeoutMs);
  }
  request(req, timeoutMs = 20000) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(req.id);
        resolve({ timeout: true });
      }, timeoutMs);
      this.pending.set(req.id, {
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
      });
      this.sock.write(JSON.stringify(req) + '\n');
    });
  }
  raw(text) {
    this.sock.write(text);
  }
  // Waits for something the predicate finds in the state; null on timeout.
  until(find, timeoutMs = 20000) {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const tick = () => {
        const r = find();
        if (r) return resolve(r);
        if (Date.now() >= deadline) return resolve(null);
        const t = setTimeout(tick, Math.min(200, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          tick();
        });
      };
      tick();
    });
  }
  // The first notification (removed from the queue) matching pred.
  note(pred, timeoutMs = 20000) {
    return this.until(() => {
      const i = this.notes.findIndex(pred);
      if (i < 0) return null;
      return this.notes.splice(i, 1)[0];
    }, timeoutMs);
  }
  orphan(timeoutMs = 20000) {
    return this.until(() => this.orphans.shift() || null, timeoutMs);
  }
  close() {
    this.sock.end();
  }
}

module.exports = { Rpc };
