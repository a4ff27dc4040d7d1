#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// echo-bot.js: a sotto bot in 60 lines. It talks JSON-RPC to a running
// `sotto daemon` (docs/client.md, "The daemon"), subscribes to incoming
// messages and answers each one to its sender (or to its group) with
// "echo: TEXT". No dependencies beyond Node.js.
//
//   sotto --home ~/bot daemon --socket ~/bot/sotto.sock &
//   node examples/echo-bot.js ~/bot/sotto.sock
//
// It stops on SIGINT/SIGTERM or when the daemon goes away.
'use strict';
const net = require('net');

const path = process.argv[2];
if (!path) {
  console.error('usage: echo-bot.js SOCKET');
  process.exit(2);
}
const sock = net.createConnection(path);
sock.setEncoding('utf8');
let nextId = 1;
let buf = '';

function call(method, params) {
  sock.write(JSON.stringify({ jsonrpc: '2.0', method, params, id: nextId++ }) + '\n');
}

sock.on('connect', () => call('subscribeReceive', {}));
sock.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const msg = JSON.parse(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    if (msg.error) console.error(`echo-bot: error ${msg.error.code}: ${msg.error.message}`);
    else if (msg.id === 1) console.log(`echo-bot: subscribed (${msg.result}), waiting for messages`);
    if (msg.method !== 'receive') continue;
    const env = msg.params.envelope;
    const dm = env.dataMessage;
    if (!dm || typeof dm.message !== 'string') continue;
    const reply = { message: `echo: ${dm.message}` };
    if (dm.groupInfo) reply.group = dm.groupInfo.groupName;
    else reply.recipient = env.source;
    console.log(`echo-bot: ${env.source}${dm.groupInfo ? ' in ' + dm.groupInfo.groupName : ''}: ${JSON.stringify(dm.message)}`);
    call('send', reply);
  }
});
sock.on('error', (e) => {
  console.error(`echo-bot: ${e.message}`);
  process.exit(1);
});
sock.on('close', () => process.exit(0));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => sock.end());
