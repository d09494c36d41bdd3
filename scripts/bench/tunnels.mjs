#!/usr/bin/env node
// bench: needs-kernel
// ikev2d against ikev2d in two network namespaces: how fast N site-to-site tunnels (one IKE SA
// and one Child SA each) come up, and how fast their Child SAs rekey when all are asked at once.
// Uses the compiled dist/ (npm run build). Talks to the daemons' control sockets directly.
//
// Usage: node scripts/bench/tunnels.mjs [tunnels=20]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IKEV2D = join(ROOT, 'dist', 'cli', 'ikev2d.js');
const N = Number(process.argv[2] ?? 20);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ip = (...a) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

if (!existsSync(IKEV2D)) {
  console.error(`${IKEV2D} missing: run npm run build`);
  process.exit(1);
}

const tag = `bt${process.pid}`;
const nsA = `${tag}-a`, nsB = `${tag}-b`;
const dir = mkdtempSync(join(existsSync('/run') ? '/run' : '/tmp', 'ikev2d-bench-'));
const procs = [];

function cleanup() {
  for (const p of procs) try { p.kill('SIGTERM'); } catch { /* gone */ }
}
process.on('exit', () => {
  cleanup();
  for (const n of [nsA, nsB]) try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

function request(sock, cmd, args = {}) {
  return new Promise((resolve, reject) => {
    const c = createConnection(sock);
    let buf = '';
    c.on('connect', () => c.write(JSON.stringify({ id: 1, cmd, args }) + '\n'));
    c.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      c.destroy();
      const r = JSON.parse(buf.slice(0, nl));
      r.ok ? resolve(r.result) : reject(new Error(r.error));
    });
    c.on('error', reject);
  });
}

function config(name, local, remote, start) {
  let conns = '';
  for (let i = 0; i < N; i++) {
    const [l, r] = name === 'a' ? [`10.100.${i}.0/24`, `10.200.${i}.0/24`] : [`10.200.${i}.0/24`, `10.100.${i}.0/24`];
    conns += `  t${i}:
    local: { addrs: [${local}], id: ${name}-${i}.example }
    remote: { addrs: [${remote}], id: ${name === 'a' ? 'b' : 'a'}-${i}.example }
    psk: "bench-pre-shared-key-0123456789abcdef"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], retransmit: { timeout: 10s, tries: 5 } }
    children:
      c:
        local_ts: [${l}]
        remote_ts: [${r}]
        esp_proposals: [aes256gcm16]
        start_action: ${start}
`;
  }
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `daemon:
  control_socket: ${dir}/${name}.sock
  state_file: ${dir}/${name}.state.json
  listen: [${local}]
  log_level: warn
  cookie_threshold: ${N * 4}
connections:
${conns}`, { mode: 0o600 });
  return file;
}

async function startDaemon(ns, name, file) {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, IKEV2D, '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  for (let i = 0; i < 600 && !existsSync(join(dir, `${name}.sock`)); i++) await sleep(100);
  if (!existsSync(join(dir, `${name}.sock`))) throw new Error(`ikev2d ${name} did not start`);
}

const installed = (sas) => sas.flatMap((s) => s.children.filter((c) => c.state === 'installed'));

ip('netns', 'add', nsA);
ip('netns', 'add', nsB);
ip('link', 'add', 'wan', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'wan', 'netns', nsB);
ip('-n', nsA, 'addr', 'add', '192.0.2.1/24', 'dev', 'wan');
ip('-n', nsB, 'addr', 'add', '192.0.2.2/24', 'dev', 'wan');
for (const n of [nsA, nsB]) { ip('-n', n, 'link', 'set', 'wan', 'up'); ip('-n', n, 'link', 'set', 'lo', 'up'); }

await startDaemon(nsB, 'b', config('b', '192.0.2.2', '192.0.2.1', 'none'));
const t0 = performance.now();
await startDaemon(nsA, 'a', config('a', '192.0.2.1', '192.0.2.2', 'start'));
const sockA = join(dir, 'a.sock');
let sas = [];
const deadline = Date.now() + 600_000;
while (Date.now() < deadline) {
  sas = await request(sockA, 'list-sas').catch(() => []);
  if (installed(sas).length >= N) break;
  await sleep(200);
}
const setupMs = performance.now() - t0;
if (installed(sas).length < N) throw new Error(`only ${installed(sas).length} of ${N} tunnels came up`);
console.log(JSON.stringify({ metric: 'tunnel setup (IKE SA + Child SA)', value: Number((N / (setupMs / 1000)).toFixed(2)), unit: 'tunnels/s', note: `${N} tunnels in ${(setupMs / 1000).toFixed(1)} s incl. daemon start` }));

const old = new Set(installed(sas).map((c) => c.spiIn));
const t1 = performance.now();
await Promise.all(installed(sas).map((c) => request(sockA, 'rekey', { kind: 'child', id: c.childId })));
while (Date.now() < deadline) {
  const now = installed(await request(sockA, 'list-sas'));
  if (now.filter((c) => !old.has(c.spiIn)).length >= N) break;
  await sleep(100);
}
const rekeyMs = performance.now() - t1;
console.log(JSON.stringify({ metric: 'Child SA rekeys (all at once)', value: Number((N / (rekeyMs / 1000)).toFixed(2)), unit: 'rekeys/s', note: `${N} rekeys in ${(rekeyMs / 1000).toFixed(1)} s` }));
const stats = await request(sockA, 'stats');
console.log(`engine stats on the initiator: ${JSON.stringify(stats)}`);
process.exit(0);
