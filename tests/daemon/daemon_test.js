// SPDX-License-Identifier: Apache-2.0
// daemon_test.js: the daemon scenarios of test_daemon.sh, run against two
// live daemons (alice on A_SOCK, bob on B_SOCK) and the CLI (carol's home)
// talking through a real sotto-server. Prints one line per check; exits 1
// if any failed.
'use strict';
const { spawnSync } = require('child_process');
const net = require('net');
const { Rpc } = require('./rpc.js');

const SOTTO = process.env.SOTTO;
const T = process.env.T;
const A = process.env.A_SOCK;
const B = process.env.B_SOCK;
let checks = 0;
let fails = 0;
function check(name, cond, detail) {
  checks++;
  if (cond) console.log('ok   ' + name);
  else {
    fails++;
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + JSON.stringify(detail).slice(0, 400) : ''));
  }
}
function cli(who, args, input) {
  const r = spawnSync(SOTTO, ['--home', `${T}/${who}`, ...args], { input, timeout: 60000, encoding: 'utf8' });
  return { status: r.status, out: r.stdout || '', err: r.stderr || '' };
}
const errCode = (r) => (r && r.error ? r.error.code : undefined);

async function main() {
  const a = await new Rpc(A).open();
  const b = await new Rpc(B).open();

  // version, subscriptions
  let r = await a.call('version');
  check('version answers', r.result && typeof r.result.version === 'string' && r.result.account === 'alice', r);
  r = await b.call('subscribeReceive');
  check('bob subscribes', typeof r.result === 'number', r);
  const subB = r.result;
  r = await a.call('subscribeReceive');
  check('alice subscribes', typeof r.result === 'number' && r.result > 0, r);

  // alice -> bob through two daemons
  r = await a.call('send', { recipient: 'bob', message: 'hello from alice \u00e9\u20ac' });
  check('send returns a timestamp', r.result && r.result.timestamp > 1.6e12, r);
  check('... and the state of the text (sent)', r.result && r.result.state === 'sent', r);
  const ts = r.result && r.result.timestamp;
  // carol (the CLI) wrote to both before either daemon had a subscriber:
  // those messages waited in the store and come now, nothing lost
  let n = await b.note((x) => x.method === 'receive' && x.params.envelope.source === 'carol');
  check('a message that came before anyone subscribed arrives on subscribe', n &&
        n.params.envelope.dataMessage.message === 'carol says hi', n);
  n = await a.note((x) => x.method === 'receive' && x.params.envelope.source === 'carol');
  check('... on both daemons', n && n.params.envelope.dataMessage.message === 'carol says hi', n);
  n = await b.note((x) => x.method === 'receive' && x.params.envelope.source === 'alice');
  const env = n && n.params.envelope;
  check('bob gets a receive notification', env && env.source === 'alice', n);
  check('... with the text (UTF-8)', env && env.dataMessage.message === 'hello from alice \u00e9\u20ac', n);
  check('... the sender timestamp', env && env.timestamp === ts && env.dataMessage.timestamp === ts, n);
  check('... device and server fields', env && env.sourceDevice === 1 && env.serverId > 0 &&
        env.serverTimestamp >= ts && env.serverDeliveredTimestamp >= env.serverTimestamp, n);
  check('... and the subscription id', n && n.params.subscription === subB && n.params.account === 'bob', n);
  // bob's daemon sends a delivery receipt: alice's daemon says so
  n = await a.note((x) => x.method === 'event' && x.params.event === 'delivery' && x.params.timestamp === ts &&
                   x.params.state === 'delivered');
  check('alice\'s daemon gets a delivery event (state delivered) for that text', n && n.params.peer === 'bob', n);

  // bob -> alice
  r = await b.call('send', { recipient: 'alice', message: 'hi alice' });
  n = await a.note((x) => x.method === 'receive' && x.params.envelope.source === 'bob');
  check('alice gets bob\'s answer', n && n.params.envelope.source === 'bob' && n.params.envelope.dataMessage.message === 'hi alice', n);

  // the CLI (carol) and a daemon
  let c = cli('carol', ['send', 'bob', 'carol via the CLI']);
  check('carol (CLI) sends to bob', c.status === 0, c);
  n = await b.note((x) => x.method === 'receive' && x.params.envelope.source === 'carol');
  check('bob\'s daemon receives carol\'s CLI message', n && n.params.envelope.dataMessage.message === 'carol via the CLI', n);
  r = await a.call('send', { recipient: 'carol', message: 'alice to carol' });
  check('alice sends to carol', r.result && r.result.timestamp > 0, r);
  c = cli('carol', ['receive']);
  check('carol (CLI) reads alice\'s daemon message', c.out.includes('alice: alice to carol'), c);

  // contacts, safety numbers, verify
  r = await a.call('listContacts');
  const names = (r.result || []).map((x) => x.username).sort();
  check('listContacts', JSON.stringify(names) === '["bob","carol"]', r);
  const sa = await a.call('getSafetyNumber', { recipient: 'bob' });
  const sb = await b.call('getSafetyNumber', { recipient: 'alice' });
  check('safety numbers agree', sa.result && sb.result && sa.result.safetyNumber === sb.result.safetyNumber &&
        /^[0-9]{60}$/.test(sa.result.safetyNumber), [sa, sb]);
  check('... formatted in groups of five', sa.result && sa.result.formatted.split(' ').length === 12, sa);
  const num = sa.result ? sa.result.safetyNumber : '0'.repeat(60);
  const wrong = num.slice(0, 59) + String((Number(num[59]) + 1) % 10);
  r = await a.call('verify', { recipient: 'bob', safetyNumber: wrong });
  check('a wrong safety number: -32006 mismatch', errCode(r) === -32006 && r.error.data.error === 'mismatch', r);
  r = await a.call('verify', { recipient: 'bob', safetyNumber: num.slice(0, 30) + ' ' + num.slice(30) });
  check('the right one verifies', r.result && r.result.verified === true, r);
  r = await a.call('listContacts');
  check('... and listContacts says so', (r.result || []).some((x) => x.username === 'bob' && x.verified), r);

  // groups
  r = await a.call('createGroup', { name: 'team', members: ['bob', 'carol'] });
  check('createGroup', r.result && r.result.name === 'team' && r.result.members.length === 3 && /^[0-9a-f]{32}$/.test(r.result.id), r);
  const gid = r.result && r.result.id;
  n = await b.note((x) => x.method === 'event' && x.params.group === 'team');
  check('bob is told he joined team', n && n.params.peer === 'alice', n);
  r = await a.call('send', { group: 'team', message: 'hello team' });
  check('send to a group', r.result && r.result.timestamp > 0 && r.result.delivered === 2, r);
  n = await b.note((x) => x.method === 'receive' && x.params.envelope.dataMessage.groupInfo);
  const gi = n && n.params.envelope.dataMessage.groupInfo;
  check('bob receives it with groupInfo', gi && gi.groupName === 'team' && gi.groupId === gid && gi.type === 'DELIVER' &&
        n.params.envelope.dataMessage.message === 'hello team', n);
  c = cli('carol', ['receive']);
  check('carol (CLI) gets the group message', c.out.includes('[team] alice: hello team'), c);
  r = await b.call('listGroups');
  check('listGroups on bob', (r.result || []).some((g) => g.name === 'team' && g.id === gid), r);
  r = await a.call('updateGroup', { group: 'team', removeMembers: ['carol'] });
  check('updateGroup removeMembers', r.result && r.result.members.length === 2 && !r.result.members.includes('carol'), r);
  r = await a.call('updateGroup', { group: 'team', addMembers: ['carol'] });
  check('updateGroup addMembers', r.result && r.result.members.includes('carol'), r);
  r = await a.call('updateGroup', { group: 'team', addMembers: ['carol'] });
  check('adding a member twice: -32008 membership', errCode(r) === -32008 && r.error.data.core, r);
  r = await a.call('updateGroup', { group: 'nosuchgroup', addMembers: ['carol'] });
  check('updating an unknown group: -32001', errCode(r) === -32001, r);

  // history
  r = await b.call('history', { recipient: 'alice' });
  const h = r.result || [];
  check('history with alice, in and out', h.some((e) => e.direction === 'in' && e.message === 'hello from alice \u00e9\u20ac') &&
        h.some((e) => e.direction === 'out' && e.message === 'hi alice'), r);
  r = await b.call('history', { group: 'team', limit: 1 });
  check('history of a group, limit 1', r.result && r.result.length === 1, r);

  // conversations (issue 14): a reaction, an edit, a refused edit, requests
  r = await b.call('sendReaction', { recipient: 'alice', targetTimestamp: ts, emoji: '\u{1F44D}' });
  check('sendReaction', r.result && r.result.targetTimestamp === ts, r);
  n = await a.note((x) => x.method === 'event' && x.params.event === 'reaction' && x.params.targetTimestamp === ts);
  check('... alice gets a reaction event with the emoji', n && n.params.emoji === '\u{1F44D}' &&
        n.params.targetAuthor === 'alice', n);
  r = await a.call('editMessage', { recipient: 'bob', targetTimestamp: ts, message: 'hello, edited' });
  check('editMessage of our own text', r.result && r.result.targetTimestamp === ts, r);
  n = await b.note((x) => x.method === 'event' && x.params.event === 'edited' && x.params.targetTimestamp === ts);
  check('... bob gets an edited event', n && n.params.peer === 'alice', n);
  r = await b.call('history', { recipient: 'alice' });
  check('... bob\'s history has the new text, edited', (r.result || []).some((e) => e.message === 'hello, edited' &&
        e.edited === true), r);
  r = await b.call('editMessage', { recipient: 'alice', targetTimestamp: ts, message: 'forged' });
  check('editing someone else\'s message: refused (not_yours)', r.error && r.error.data.core === 'not_yours', r);
  r = await b.call('listRequests', {});
  check('listRequests: carol (who wrote first) is a request, alice is not', Array.isArray(r.result) &&
        r.result.some((q) => q.username === 'carol' && q.messages >= 1) && !r.result.some((q) => q.username === 'alice'), r);
  r = await b.call('acceptRequest', { recipient: 'carol' });
  check('acceptRequest', r.result && r.result.recipient === 'carol', r);
  r = await b.call('acceptRequest', { recipient: 'carol' });
  check('... a second time: no_request', r.error && r.error.data.core === 'no_request', r);

  // the group versions: a reply, a reaction, a refused edit, the timer (in 'team')
  r = await a.call('send', { group: 'team', message: 'team note' });
  const gts = r.result && r.result.timestamp;
  n = await b.note((x) => x.method === 'receive' && x.params.envelope.dataMessage &&
                   x.params.envelope.dataMessage.message === 'team note');
  check('bob gets the group text', !!n, n);
  r = await b.call('send', { group: 'team', message: 'team reply', quoteTimestamp: gts });
  check('a reply in a group (quoteTimestamp with group)', r.result && r.result.timestamp > 1.6e12, r);
  n = await a.note((x) => x.method === 'receive' && x.params.envelope.dataMessage &&
                   x.params.envelope.dataMessage.message === 'team reply');
  check('... alice gets it quoting her message', n && n.params.envelope.dataMessage.quote &&
        n.params.envelope.dataMessage.quote.id === gts && n.params.envelope.dataMessage.quote.author === 'alice', n);
  r = await b.call('sendReaction', { group: 'team', targetTimestamp: gts, emoji: '\u{1F525}' });
  check('sendReaction in a group', r.result && r.result.group === 'team' && r.result.targetTimestamp === gts, r);
  n = await a.note((x) => x.method === 'event' && x.params.event === 'reaction' && x.params.targetTimestamp === gts);
  check('... alice gets the reaction event of the group', n && n.params.group === 'team' &&
        n.params.emoji === '\u{1F525}', n);
  r = await b.call('editMessage', { group: 'team', targetTimestamp: gts, message: 'forged' });
  check('editing another member\'s group message: not_yours', r.error && r.error.data.core === 'not_yours', r);
  r = await b.call('remoteDelete', { recipient: 'alice', group: 'team', targetTimestamp: gts });
  check('recipient and group together: -32602', errCode(r) === -32602, r);
  r = await a.call('setExpirationTimer', { group: 'team', expiration: 3600 });
  check('setExpirationTimer of a group', r.result && r.result.group === 'team' && r.result.expiration === 3600, r);
  n = await b.note((x) => x.method === 'event' && x.params.event === 'timer' && x.params.group === 'team');
  check('... bob gets the timer event of the group', n && n.params.expiration === 3600, n);
  r = await a.call('setExpirationTimer', { group: 'team', expiration: 0 });
  check('... and off again', r.result && r.result.expiration === 0, r);

  // errors, each answered with its code
  r = await a.call('send', { recipient: 'nosuchuser', message: 'x' });
  check('send to an unknown user: -32001 not_found', errCode(r) === -32001 && r.error.data.error === 'not_found', r);
  r = await a.call('send', { recipient: 'bob' });
  check('send without message: -32602', errCode(r) === -32602 && /message/.test(r.error.message), r);
  r = await a.call('send', { recipient: 'bob', group: 'team', message: 'x' });
  check('send with recipient and group: -32602', errCode(r) === -32602, r);
  r = await a.call('send', { recipient: 'Bad Name', message: 'x' });
  check('send to an invalid username: -32602', errCode(r) === -32602, r);
  r = await a.call('send', { recipient: 'bob', message: 'x', colour: 'red' });
  check('an unknown parameter: -32602', errCode(r) === -32602 && /colour/.test(r.error.message), r);
  r = await a.call('send', { recipient: 'bob', message: 'x'.repeat(61 * 1024) });
  check('a message over 60 KiB: -32602', errCode(r) === -32602, r);
  r = await a.call('history', { limit: 0 });
  check('history limit 0: -32602', errCode(r) === -32602, r);
  // key transparency: this server runs no log (tests/client/test_kt_ghost_devices.sh
  // acknowledges a real alert through ktAck)
  r = await a.call('ktStatus', { refresh: true });
  check('ktStatus answers: the server runs no log', r.result && r.result.state === 'off' && r.result.checkedNow === true &&
        Array.isArray(r.result.witnesses) && r.result.monitor === 'none' && r.result.deviceListMonitor === 'none', r);
  r = await a.call('ktStatus');
  check('ktStatus without refresh: the stored state', r.result && r.result.state === 'off' && r.result.checkedNow === false, r);
  r = await a.call('ktStatus', { refresh: 'yes' });
  check('ktStatus refresh not a boolean: -32602', errCode(r) === -32602, r);
  r = await a.call('ktAck');
  check('ktAck with no alert: an error naming it', r.error && errCode(r) !== undefined && r.error.data.core === 'usage' &&
        /no key-transparency alert/.test(r.error.message), r);
  r = await a.call('ktAck', { all: true });
  check('ktAck with a parameter: -32602', errCode(r) === -32602, r);
  r = await a.call('noSuchMethod', {});
  check('unknown method: -32601', errCode(r) === -32601, r);
  r = await a.call('send', ['bob', 'x']);
  check('positional params: -32602', errCode(r) === -32602, r);
  a.raw('{"jsonrpc":"2.0","method":"version","id":\n');
  let o = await a.orphan();
  check('malformed JSON: -32700 with id null', o && o.error && o.error.code === -32700 && o.id === null, o);
  a.raw('[{"jsonrpc":"2.0","method":"version","id":1}]\n');
  o = await a.orphan();
  check('a batch: -32600', o && o.error && o.error.code === -32600 && /batch/.test(o.error.message), o);
  a.raw('{"jsonrpc":"2.0","method":"version","id":{"x":1}}\n');
  o = await a.orphan();
  check('an object id: -32600', o && o.error && o.error.code === -32600, o);
  a.raw('x'.repeat(300 * 1024) + '\n');
  o = await a.orphan();
  check('a line over 256 KiB: -32600, connection kept', o && o.error && o.error.code === -32600, o);
  r = await a.call('version');
  check('... and the next request is answered', r.result && r.result.version, r);
  a.raw('{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob","message":"a notification send"}}\n');
  n = await b.note((x) => x.method === 'receive' && x.params.envelope.dataMessage.message === 'a notification send');
  check('a notification (no id) is carried out, never answered', n !== null, n);

  // a client that disconnects mid-request
  {
    const s1 = net.createConnection(A);
    await new Promise((res) => s1.once('connect', res));
    s1.write('{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob","mess');
    s1.destroy();
    const s2 = net.createConnection(A);
    await new Promise((res) => s2.once('connect', res));
    s2.write('{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob","message":"sent then gone"},"id":1}\n');
    s2.destroy();
    n = await b.note((x) => x.method === 'receive' && x.params.envelope.dataMessage.message === 'sent then gone');
    check('a client gone before its answer: the send still happened', n !== null, n);
    r = await a.call('version');
    check('... and the daemon serves the others', r.result && r.result.version, r);
  }

  // 1,000 pipelined requests (good, bad, unknown, sends), one write
  {
    const p = await new Rpc(A).open();
    const want = new Map();
    let text = '';
    for (let i = 1; i <= 1000; i++) {
      let line;
      if (i % 10 === 3) {
        line = `{"jsonrpc":"2.0","method":"nope${i}","id":${i}}`;
        want.set(i, -32601);
      } else if (i % 10 === 7) {
        line = `{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob"},"id":${i}}`;
        want.set(i, -32602);
      } else if (i % 10 === 9) {
        line = `{"jsonrpc":"2.0","method":"send","params":{"recipient":"bob","message":"pipelined ${i}"},"id":${i}}`;
        want.set(i, 'sent');
      } else if (i % 50 === 0) {
        line = `{"jsonrpc":"2.0","method":"version","id":${i}`; // broken: -32700, id null
        want.set(i, -32700);
      } else {
        line = `{"jsonrpc":"2.0","method":"${i % 2 ? 'version' : 'listGroups'}","id":${i}}`;
        want.set(i, 'ok');
      }
      text += line + '\n';
    }
    const got = [];
    p.raw(text);
    const done = await p.until(() => (p.lines >= 1000 ? true : null), 120000);
    check('1000 pipelined requests: 1000 answers', done && p.lines === 1000, p.lines);
    // every answer with an id is in p.orphans (ids not registered as pending), in order
    const answers = p.orphans;
    let order = true;
    let prev = 0;
    let wrong = [];
    let parseErrs = 0;
    for (const x of answers) {
      if (x.id === null) {
        if (x.error && x.error.code === -32700) parseErrs++;
        else wrong.push(x);
        continue;
      }
      if (x.id <= prev) order = false;
      prev = x.id;
      const w = want.get(x.id);
      if (typeof w === 'number' ? !(x.error && x.error.code === w) : !x.result) wrong.push(x);
      got.push(x.id);
    }
    const expectIds = [...want.keys()].filter((i) => want.get(i) !== -32700);
    check('... each id answered once, in order', order && got.length === expectIds.length, got.length);
    check('... every bad one with its error code', wrong.length === 0, wrong.slice(0, 3));
    check('... the 20 broken lines as -32700', parseErrs === 20, parseErrs);
    let seen = 0;
    await b.until(() => {
      seen += b.notes.filter((x) => x.method === 'receive' && /^pipelined /.test(x.params.envelope.dataMessage.message)).length;
      b.notes = b.notes.filter((x) => !(x.method === 'receive' && /^pipelined /.test(x.params.envelope.dataMessage.message)));
      return seen >= 100 ? true : null;
    }, 60000);
    check('... and all 100 pipelined sends reached bob\'s daemon', seen === 100, seen);
    p.close();
  }

  // a client that never reads: the daemon stops reading it (back-pressure)
  // and stays responsive; its memory does not follow the flood
  {
    const rss = () => {
      const s = require('fs').readFileSync(`/proc/${process.env.A_PID}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
    };
    const before = rss();
    const s = net.createConnection(A);
    await new Promise((res) => s.once('connect', res));
    s.pause(); // never reads
    const req = '{"jsonrpc":"2.0","method":"history","params":{"limit":1000},"id":1}\n';
    let written = 0;
    const chunk = req.repeat(1000);
    for (let i = 0; i < 40; i++) {
      if (!s.write(chunk)) await new Promise((res) => setTimeout(res, 50));
      written += 1000;
    }
    await new Promise((res) => setTimeout(res, 1500));
    r = await a.call('version', undefined, 10000);
    check('a client that does not read does not block the others', r.result && r.result.version, r);
    const after = rss();
    check(`... and the daemon's memory stays bounded (${before} kB -> ${after} kB)`, after - before < 64 * 1024, [before, after]);
    s.destroy();
  }

  // a subscriber that never reads: its notifications pile up to the 8 MiB
  // cap, then the daemon disconnects it (test_daemon.sh checks the log)
  {
    const lazy = net.createConnection(B);
    await new Promise((res) => lazy.once('connect', res));
    lazy.write('{"jsonrpc":"2.0","method":"subscribeReceive","id":1}\n');
    lazy.pause();
    const big = 'y'.repeat(60000);
    let okSends = 0;
    for (let i = 0; i < 200; i++) {
      r = await a.call('send', { recipient: 'bob', message: `big ${i} ${big}` });
      if (r.result) okSends++;
    }
    let seen = 0;
    await b.until(() => {
      seen += b.notes.filter((x) => x.method === 'receive' && /^big /.test(x.params.envelope.dataMessage.message)).length;
      b.notes = b.notes.filter((x) => !(x.method === 'receive' && /^big /.test(x.params.envelope.dataMessage.message)));
      return seen >= 200 ? true : null;
    }, 120000);
    check('200 messages of 60 KB reach a reading subscriber', okSends === 200 && seen === 200, [okSends, seen]);
    lazy.destroy();
  }

  // at most 64 clients: alice's daemon has one (a); 70 more are tried
  {
    const extra = [];
    for (let i = 0; i < 70; i++) extra.push(await new Rpc(A).open());
    // the refusals come from a busy daemon (right after the send flood):
    // wait up to 10 s for all 7 to be told and closed before counting
    const isRefused = (c) => c.orphans.some((o) => o.error && /too many clients/.test(o.error.message));
    for (let t = 0; t < 100 && extra.filter((c) => isRefused(c) && c.closed).length < 7; t++)
      await new Promise((res) => setTimeout(res, 100));
    const refused = extra.filter(isRefused);
    const served = [];
    for (const c of extra) {
      if (refused.includes(c)) continue;
      const v = await c.call('version', undefined, 5000);
      if (v.result) served.push(c);
    }
    check(`at most 64 clients at once (${served.length + 1} served, ${refused.length} told so and closed)`,
          served.length === 63 && refused.length === 7 && refused.every((c) => c.closed), [served.length, refused.length]);
    extra.forEach((c) => c.close());
    await new Promise((res) => setTimeout(res, 300));
    r = await a.call('version');
    check('... and a client leaving makes room', r.result && r.result.version, r);
    const again = await new Rpc(A).open();
    r = await again.call('version', undefined, 5000);
    check('... for a new one', r.result && r.result.version, r);
    again.close();
  }

  r = await b.call('unsubscribeReceive');
  check('unsubscribeReceive', r.result === true, r);
  r = await b.call('unsubscribeReceive');
  check('... twice: -32001', errCode(r) === -32001, r);
  a.close();
  b.close();
  console.log(`daemon_test.js: ${checks - fails} of ${checks} checks passed`);
  process.exit(fails ? 1 : 0);
}

// After the server restarted: both daemons reconnect by themselves and a
// message goes through again.
async function reconnect() {
  const a = await new Rpc(A).open();
  const b = await new Rpc(B).open();
  const up = async (c) => {
    for (let i = 0; i < 120; i++) {
      const r = await c.call('version');
      if (r.result && r.result.connected) return true;
      await new Promise((res) => setTimeout(res, 500));
    }
    return false;
  };
  check('alice\'s daemon reconnects after the server restarted', await up(a));
  check('bob\'s daemon too', await up(b));
  await b.call('subscribeReceive');
  const r = await a.call('send', { recipient: 'bob', message: 'after the restart' });
  check('a send after the restart', r.result && r.result.timestamp > 0, r);
  const n = await b.note((x) => x.method === 'receive' && x.params.envelope.dataMessage.message === 'after the restart');
  check('... is received', n !== null, n);
  a.close();
  b.close();
  console.log(`daemon_test.js reconnect: ${checks - fails} of ${checks} checks passed`);
  process.exit(fails ? 1 : 0);
}

// devicesAdd does not block the daemon (docs/client.md, the daemon's
// methods): it answers with a job id at once; while the new device has not
// answered (its 'sotto link' is stopped with SIGSTOP), send and history are
// answered; deviceAdded comes when it answers. A new device that never
// answers: deviceAddFailed (timeout) and no device row is left.
function linkStart(home, name) {
  const { spawn } = require('child_process');
  const p = spawn(SOTTO, ['--home', `${T}/${home}`, 'link', '--server', `127.0.0.1:${process.env.PORT}`, '--name', name],
                  { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((res) => p.on('exit', (code) => res(code)));
  const code = new Promise((res) => {
    const deadline = Date.now() + 30000;
    const tick = () => {
      const m = out.match(/^code: (\S+)$/m);
      if (m) return res(m[1]);
      if (Date.now() > deadline) return res(null);
      setTimeout(tick, 100);
    };
    tick();
  });
  return { p, code, exited, out: () => out };
}

async function devices() {
  const a = await new Rpc(A).open();
  const b = await new Rpc(B).open();
  await b.call('subscribeReceive');

  const tab = linkStart('tab', 'tab');
  const code = await tab.code;
  check('the new device prints its code', !!code, tab.out());
  tab.p.kill('SIGSTOP'); // it cannot answer until SIGCONT
  let r = await a.call('devicesAdd', { code, timeout: 60 });
  check('devicesAdd answers at once with a job id', r.result && r.result.jobId > 0 && r.result.pending === true &&
        r.result.deviceId > 1, r);
  const job = r.result && r.result.jobId;
  const dev = r.result && r.result.deviceId;
  check('... the new device\'s name and fingerprint', r.result && r.result.name === 'tab' &&
        /^[0-9]{5}( [0-9]{5}){7}$/.test(r.result.fingerprint), r);
  r = await a.call('send', { recipient: 'bob', message: 'while a device is being added' }, 10000);
  check('while it waits, send is answered', r.result && r.result.timestamp > 0, r);
  r = await a.call('history', { recipient: 'bob', limit: 5 }, 10000);
  check('... and history', Array.isArray(r.result) &&
        r.result.some((e) => e.message === 'while a device is being added'), r);
  r = await a.call('version', undefined, 10000);
  check('... and version', r.result && r.result.account === 'alice', r);
  check('... all before the device was added', !a.notes.some((n) => n.method === 'deviceAdded'), a.notes);
  const n0 = await b.note((x) => x.method === 'receive' &&
                          x.params.envelope.dataMessage.message === 'while a device is being added');
  check('... and bob gets the text', n0 !== null, n0);
  tab.p.kill('SIGCONT');
  let n = await a.note((x) => x.method === 'deviceAdded', 60000);
  check('deviceAdded comes when the new device answered', n && n.params.jobId === job &&
        n.params.deviceId === dev && n.params.name === 'tab' && n.params.listVersion >= 2, n);
  check('... and the new device says it is linked', (await tab.exited) === 0 &&
        tab.out().includes(`Linked: this home is device ${dev} of 'alice'`), tab.out());
  r = await a.call('devices');
  check('devices lists it', Array.isArray(r.result) &&
        r.result.some((x) => x.deviceId === dev && x.listed && x.name === 'tab'), r);

  // a new device that never answers
  const gone = linkStart('gone', 'gone');
  const code2 = await gone.code;
  gone.p.kill('SIGKILL');
  await gone.exited;
  r = await a.call('devicesAdd', { code: code2, timeout: 1 });
  check('devicesAdd for a device that will not answer: a job', r.result && r.result.jobId > job, r);
  const dev2 = r.result && r.result.deviceId;
  n = await a.note((x) => x.method === 'deviceAddFailed', 20000);
  check('deviceAddFailed with the reason (timeout)', n && n.params.jobId === r.result.jobId &&
        n.params.error === 'timeout' && /did not answer in time/.test(n.params.message), n);
  r = await a.call('devices');
  check('... and the device row is gone again', Array.isArray(r.result) &&
        !r.result.some((x) => x.deviceId === dev2), r);
  r = await a.call('devicesAdd', { code: 'not-a-code' });
  check('devicesAdd with a bad code fails at once (no job)', r.error && r.error.data && r.error.data.core === 'link_code' ||
        (r.error && /link code/.test(r.error.message)), r);
  a.close();
  b.close();
  console.log(`daemon_test.js devices: ${checks - fails} of ${checks} checks passed`);
  process.exit(fails ? 1 : 0);
}

(process.argv[2] === 'reconnect' ? reconnect() : process.argv[2] === 'devices' ? devices() : main()).catch((e) => {
  console.log('FAIL exception: ' + (e && e.stack));
  process.exit(1);
});
