#!/usr/bin/env node
// IKE_SA_INIT + IKE_AUTH handshakes per second, two engines back to back in one process (no
// sockets, no kernel: the kernel actions are discarded), and bytes on the wire per handshake, for
// classic and post-quantum suites. Imports the compiled engine: run `npm run build:ts` first.
//
// Usage: node scripts/bench/handshake.mjs [handshakes per suite = 200]
import { existsSync } from 'node:fs';

const dist = new URL('../../dist/', import.meta.url);
if (!existsSync(new URL('ike/engine/engine.js', dist))) {
  console.error('handshake bench: dist/ is missing, run `npm run build:ts` first');
  process.exit(1);
}
const { Engine } = await import(new URL('ike/engine/engine.js', dist).href);
const { parseConfig } = await import(new URL('daemon/config.js', dist).href);

const N = Number(process.argv[2] ?? 200);

function config(side, ike, ppk) {
  const a = side === 'a';
  const yaml = `
connections:
  site:
    local: { addrs: [${a ? '192.0.2.1' : '192.0.2.2'}], id: ${a ? 'a.example' : 'b.example'}, auth: psk }
    remote: { addrs: [${a ? '192.0.2.2' : '192.0.2.1'}], id: ${a ? 'b.example' : 'a.example'}, auth: psk }
    psk: "bench secret bench secret bench secret"
    ike: { proposals: [${ike}] }
    children:
      lan: { local_ts: [10.${a ? 1 : 2}.0.0/24], remote_ts: [10.${a ? 2 : 1}.0.0/24], esp_proposals: [aes256gcm16], start_action: ${a ? 'start' : 'none'} }
`;
  const cfg = parseConfig(yaml, 'bench.yaml').engine;
  cfg.connections[0].children[0].reqid = 1;
  if (ppk) cfg.connections[0].ppk = { keys: [{ id: Buffer.from([2, 0x70, 0x70, 0x6b]), key: Buffer.alloc(64, 7) }], required: true };
  return cfg;
}

function handshake(cfgA, cfgB, ike) {
  const a = new Engine(cfgA);
  const b = new Engine(cfgB);
  const A = { address: '192.0.2.1', port: 500 };
  const B = { address: '192.0.2.2', port: 500 };
  let bytes = 0;
  let up = 0;
  let queue = a.initiate(0, 'site').map((x) => ({ from: 'a', x }));
  while (queue.length) {
    const { from, x } = queue.shift();
    if (x.kind === 'event' && x.event.type === 'child-up') up++;
    if (x.kind !== 'send') continue;
    bytes += x.data.length;
    const to = from === 'a' ? b : a;
    const out = to.receive(0, x.data, from === 'a' ? B : A, from === 'a' ? A : B);
    queue.push(...out.map((y) => ({ from: from === 'a' ? 'b' : 'a', x: y })));
  }
  if (up !== 2) throw new Error(`handshake for ${ike} did not complete`);
  return bytes;
}

const suites = [
  ['X25519', 'aes256gcm16-prfsha384-x25519', false],
  ['ECP-256', 'aes256gcm16-prfsha384-ecp256', false],
  ['X25519 + ML-KEM-768', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', false],
  ['ML-KEM-768', 'aes256gcm16-prfsha384-mlkem768', false],
  ['X25519 + ML-KEM-768 + PPK', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', true],
];
for (const [name, ike, ppk] of suites) {
  const cfgA = config('a', ike, ppk);
  const cfgB = config('b', ike, ppk);
  handshake(cfgA, cfgB, ike); // warm up
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < N; i++) bytes = handshake(cfgA, cfgB, ike);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ metric: `handshakes/s (PSK, AES-GCM-256, ${name})`, value: Math.round(N / secs), unit: 'handshakes/s', note: `both peers in one process, ${N} handshakes` }));
  console.log(JSON.stringify({ metric: `CPU per handshake, both sides (${name})`, value: Math.round((cpu.user + cpu.system) / N), unit: 'us' }));
  console.log(JSON.stringify({ metric: `bytes on the wire per handshake (${name})`, value: bytes, unit: 'bytes', note: 'IKE_SA_INIT (+ IKE_INTERMEDIATE) + IKE_AUTH, both directions' }));
}
