#!/usr/bin/env node
// bench: needs-kernel
// N site-to-site tunnels (one IKE SA + one Child SA each, PSK, AES-GCM-256, X25519) between two
// daemons in two network namespaces: ikev2d against ikev2d, then strongSwan's charon against
// charon in the same run. For each: time to establish all N, tunnels/s, and the memory each IKE
// SA costs (VmRSS from /proc/PID/status before/after, divided by N; for ikev2d also V8's
// heapUsed from the control socket's `stats`, after a full GC), on the initiator and on the responder; then
// ikev2d/charon ratios. For ikev2d also how fast all N Child SAs rekey when asked at once.
// Uses the compiled dist/ (npm run build). Talks to ikev2d's control sockets directly.
//
// Usage: node scripts/bench/tunnels.mjs [tunnels]
//   tunnels                 default $IKEV2D_BENCH_TUNNELS or 1000
//   IKEV2D_BENCH_CHARON_TUNNELS   N for charon (default: the same N)
//   IKEV2D_BENCH_NO_CHARON=1      ikev2d only
//   IKEV2D_BENCH_ONLY_CHARON=1    charon only (no ratios)
//   IKEV2D_BENCH_NODE_ARGS        extra node options for the ikev2d processes (e.g. --cpu-prof)
//   IKEV2D_BENCH_PHASE_TIMEOUT    seconds allowed to establish (default 300)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IKEV2D = join(ROOT, 'dist', 'cli', 'ikev2d.js');
const CHARON = process.env.IKEV2D_CHARON ?? '/usr/sbin/charon-systemd';
const SWANCTL = process.env.IKEV2D_SWANCTL ?? '/usr/sbin/swanctl';
const N = Number(process.argv[2] ?? process.env.IKEV2D_BENCH_TUNNELS ?? 1000);
const N_CHARON = Number(process.env.IKEV2D_BENCH_CHARON_TUNNELS ?? N);
const PHASE_MS = Number(process.env.IKEV2D_BENCH_PHASE_TIMEOUT ?? 300) * 1000;
if (!Number.isInteger(N) || N < 1 || N > 60000 || !Number.isInteger(N_CHARON) || N_CHARON < 1 || N_CHARON > 60000) {
  console.error('tunnels: N must be an integer in 1..60000');
  process.exit(2);
}
const PSK = 'bench-pre-shared-key-0123456789abcdef';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ip = (...a) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

if (!existsSync(IKEV2D)) {
  console.error(`${IKEV2D} missing: run npm run build`);
  process.exit(1);
}

const tag = `bt${process.pid}`;
// never a 9p share (inside scripts/vm-run the repository is one): no Unix sockets there
const dir = mkdtempSync(join(existsSync('/run') ? '/run' : '/tmp', 'ikev2d-bench-'));
const procs = [];
const namespaces = [];

process.on('exit', () => {
  for (const p of procs) try { p.kill('SIGKILL'); } catch { /* gone */ }
  for (const n of namespaces) try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone */ }
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

/** Two namespaces joined by a veth pair: A = 192.0.2.1, B = 192.0.2.2. */
function twoNamespaces(suffix) {
  const a = `${tag}-${suffix}a`, b = `${tag}-${suffix}b`;
  ip('netns', 'add', a);
  namespaces.push(a);
  ip('netns', 'add', b);
  namespaces.push(b);
  ip('link', 'add', 'wan', 'netns', a, 'type', 'veth', 'peer', 'name', 'wan', 'netns', b);
  ip('-n', a, 'addr', 'add', '192.0.2.1/24', 'dev', 'wan');
  ip('-n', b, 'addr', 'add', '192.0.2.2/24', 'dev', 'wan');
  for (const n of [a, b]) { ip('-n', n, 'link', 'set', 'wan', 'up'); ip('-n', n, 'link', 'set', 'lo', 'up'); }
  return { a, b };
}

function deleteNamespaces(ns) {
  for (const n of [ns.a, ns.b]) {
    try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone */ }
    namespaces.splice(namespaces.indexOf(n), 1);
  }
}

/** Subnets of tunnel i: 10.<100|200>+(i>>8).<i&255>.0/24 (up to 25,600 tunnels per side). */
const subnet = (side, i) => `10.${(side === 'a' ? 100 : 200) + Math.floor(i / 256) % 100}.${i % 256}.0/24`;
const tsOf = (name, i) => (name === 'a' ? [subnet('a', i), subnet('b', i)] : [subnet('b', i), subnet('a', i)]);

/** Resident set size of a process in bytes (VmRSS in /proc/PID/status). */
function vmRss(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The ESP SAs in a namespace's kernel (`ip xfrm state count`). */
function kernelSaCount(ns) {
  const m = ip('-n', ns, 'xfrm', 'state', 'count').match(/count (\d+)/);
  return m ? Number(m[1]) : 0;
}

/** How long without progress before the rest counts as failed (IKE retransmissions gave up). */
const STALL_MS = Number(process.env.IKEV2D_BENCH_STALL_TIMEOUT ?? 60) * 1000;

/** Waits until `count()` reaches `want`, the phase deadline, or STALL_MS without progress; returns the last count. */
async function waitCount(count, want, deadline, what, pollMs = 200) {
  let have = 0;
  let lastChange = Date.now();
  const report = progress(what);
  while (Date.now() < deadline && Date.now() - lastChange < STALL_MS) {
    const now = await count();
    if (now !== have) lastChange = Date.now();
    have = now;
    report(have, want);
    if (have >= want) break;
    await sleep(pollMs);
  }
  return have;
}

/** A progress line every 10 s while waiting (shown under the bench's name). */
function progress(what) {
  const t0 = Date.now();
  let last = 0;
  return (have, want) => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    console.log(`${what}: ${have}/${want} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  };
}

const kib = (bytes) => Number((bytes / 1024).toFixed(1));
const result = (metric, value, unit, note) => console.log(JSON.stringify({ metric, value, unit, ...(note ? { note } : {}) }));

// ---------------------------------------------------------------- ikev2d <-> ikev2d
function ikev2dConfig(name, local, remote) {
  let conns = '';
  for (let i = 0; i < N; i++) {
    const [l, r] = tsOf(name, i);
    conns += `  t${i}:
    local: { addrs: [${local}], id: ${name}-${i}.example }
    remote: { addrs: [${remote}], id: ${name === 'a' ? 'b' : 'a'}-${i}.example }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], retransmit: { timeout: 10s, tries: 5 } }
    children:
      c:
        local_ts: [${l}]
        remote_ts: [${r}]
        esp_proposals: [aes256gcm16]
        start_action: none
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

async function startIkev2d(ns, name, file) {
  // `ip netns exec` execs the command: the child's pid is node's
  // --expose-gc: `stats {gc: true}` collects garbage first, so the heap figures are live memory
  const extra = (process.env.IKEV2D_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '--expose-gc', ...extra, IKEV2D, '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  const sock = join(dir, `${name}.sock`);
  for (let i = 0; i < 1200 && !existsSync(sock); i++) await sleep(100);
  if (!existsSync(sock)) throw new Error(`ikev2d ${name} did not start`);
  await sleep(1000); // let start-up garbage settle before the baseline
  return { proc: p, sock };
}

const installed = (sas) => sas.flatMap((s) => s.children.filter((c) => c.state === 'installed'));

async function benchIkev2d() {
  const ns = twoNamespaces('i');
  const b = await startIkev2d(ns.b, 'b', ikev2dConfig('b', '192.0.2.2', '192.0.2.1'));
  const a = await startIkev2d(ns.a, 'a', ikev2dConfig('a', '192.0.2.1', '192.0.2.2'));
  // stats first: its collection also returns what start-up left behind before VmRSS is read
  const heapA = (await request(a.sock, 'stats', { gc: true })).memory?.heapUsed;
  const heapB = (await request(b.sock, 'stats', { gc: true })).memory?.heapUsed;
  const before = { a: vmRss(a.proc.pid), b: vmRss(b.proc.pid), heapA, heapB };
  const t0 = performance.now();
  const deadline = Date.now() + PHASE_MS;
  // initiate every connection (the control socket answers once the exchange has started)
  for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) => request(a.sock, 'initiate', { connection: `t${i + k}` })));
  console.log(`ikev2d: ${N} initiations requested after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // poll the kernel, cheap even with thousands of SAs; then confirm with list-sas
  const kernelUp = await waitCount(() => kernelSaCount(ns.a) / 2, N, deadline, 'ikev2d tunnels up (kernel SA pairs on the initiator)');
  const setupMs = performance.now() - t0;
  let sas = await request(a.sock, 'list-sas');
  for (let i = 0; i < 50 && installed(sas).length < Math.floor(kernelUp); i++) {
    await sleep(200);
    sas = await request(a.sock, 'list-sas');
  }
  const up = installed(sas).length;
  if (up === 0) throw new Error(`ikev2d: no tunnel came up (kernel: ${kernelUp} SA pairs)`);
  const partial = up < N ? `; ONLY ${up} of ${N} came up (the rest gave up retransmitting)` : '';
  if (partial) console.log(`ikev2d: only ${up} of ${N} tunnels came up; figures are per established tunnel`);
  await sleep(1000);
  const statsA = await request(a.sock, 'stats', { gc: true });
  const statsB = await request(b.sock, 'stats', { gc: true });
  const after = { a: vmRss(a.proc.pid), b: vmRss(b.proc.pid), heapA: statsA.memory?.heapUsed, heapB: statsB.memory?.heapUsed };
  const out = {
    n: up,
    setupMs,
    rssPerIkeSa: { a: (after.a - before.a) / up, b: (after.b - before.b) / up },
    heapPerIkeSa: before.heapA !== undefined ? { a: (after.heapA - before.heapA) / up, b: (after.heapB - before.heapB) / up } : undefined,
  };
  result('ikev2d: establish N tunnels (IKE SA + Child SA)', Number((setupMs / 1000).toFixed(2)), 's', `N=${N}${partial}`);
  result('ikev2d: tunnel setup rate', Number((up / (setupMs / 1000)).toFixed(2)), 'tunnels/s', `N=${N}${partial}`);
  result('ikev2d: memory per IKE SA, initiator (VmRSS delta / N)', kib(out.rssPerIkeSa.a), 'KiB', `RSS ${kib(before.a)} -> ${kib(after.a)} KiB`);
  result('ikev2d: memory per IKE SA, responder (VmRSS delta / N)', kib(out.rssPerIkeSa.b), 'KiB', `RSS ${kib(before.b)} -> ${kib(after.b)} KiB`);
  if (out.heapPerIkeSa) {
    result('ikev2d: V8 heapUsed per IKE SA, initiator', kib(out.heapPerIkeSa.a), 'KiB', 'control socket stats after a full GC');
    result('ikev2d: V8 heapUsed per IKE SA, responder', kib(out.heapPerIkeSa.b), 'KiB', 'control socket stats after a full GC');
  }

  // every Child SA rekeyed at once
  const old = new Set(installed(sas).map((c) => c.spiIn));
  const t1 = performance.now();
  const rekeyDeadline = Date.now() + PHASE_MS;
  const children = installed(sas);
  const M = children.length;
  for (let i = 0; i < children.length; i += 50) await Promise.all(children.slice(i, i + 50).map((c) => request(a.sock, 'rekey', { kind: 'child', id: c.childId })));
  const fresh = await waitCount(async () => installed(await request(a.sock, 'list-sas')).filter((c) => !old.has(c.spiIn)).length, M, rekeyDeadline, 'ikev2d Child SAs rekeyed', 250);
  const rekeyMs = performance.now() - t1;
  result('ikev2d: Child SA rekeys (all at once)', Number((fresh / (rekeyMs / 1000)).toFixed(2)), 'rekeys/s', `${fresh} of ${M} rekeys in ${(rekeyMs / 1000).toFixed(1)} s`);
  console.log(`ikev2d initiator stats: ${JSON.stringify(await request(a.sock, 'stats'))}`);
  // SIGTERM with every tunnel up: Deletes to all peers, kernel state removed, exit
  const t2 = performance.now();
  const exited = (p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  a.proc.kill('SIGTERM');
  await exited(a.proc);
  const stopMs = performance.now() - t2;
  const leftA = kernelSaCount(ns.a);
  result('ikev2d: shutdown with all tunnels up (SIGTERM to exit)', Number((stopMs / 1000).toFixed(2)), 's', `${up} IKE SAs; ${leftA} kernel SAs left behind`);
  b.proc.kill('SIGTERM');
  await exited(b.proc);
  deleteNamespaces(ns);
  return out;
}

// ---------------------------------------------------------------- charon <-> charon
const CHARON_PLUGINS = 'random nonce openssl aes sha1 sha2 hmac kdf gcm curve25519 pubkey kernel-netlink socket-default vici';

function charonDir(name, n, local, remote, start) {
  const d = join(dir, `charon-${name}`);
  mkdirSync(d, { recursive: true });
  for (const sub of ['x509', 'x509ca', 'private', 'pubkey', 'rsa', 'ecdsa', 'pkcs8', 'pkcs12', 'x509crl', 'x509ocsp', 'x509aa', 'x509ac', 'bliss']) mkdirSync(join(d, sub), { recursive: true });
  writeFileSync(join(d, 'strongswan.conf'), `charon-systemd {
  load_modular = no
  load = ${CHARON_PLUGINS}
  # as ikev2d's cookie_threshold above: no cookies for this many concurrent half-open SAs
  cookie_threshold = ${n * 4}
  block_threshold = ${n * 4}
  init_limit_half_open = 0
  plugins {
    vici {
      socket = unix://${d}/charon.vici
    }
  }
  journal {
    default = -1
  }
  filelog {
    main {
      path = ${d}/charon.log
      default = 0
    }
  }
}
swanctl {
  socket = unix://${d}/charon.vici
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey
}
`);
  const lines = ['connections {'];
  for (let i = 0; i < n; i++) {
    const [l, r] = tsOf(name, i);
    lines.push(`  t${i} {`, '    version = 2', `    local_addrs = ${local}`, `    remote_addrs = ${remote}`,
      '    proposals = aes256gcm16-prfsha384-x25519', '    rand_time = 0s', '    mobike = no',
      '    local {', '      auth = psk', `      id = ${name}-${i}.example`, '    }',
      '    remote {', '      auth = psk', `      id = ${name === 'a' ? 'b' : 'a'}-${i}.example`, '    }',
      '    children {', '      c {', `        local_ts = ${l}`, `        remote_ts = ${r}`, '        esp_proposals = aes256gcm16',
      '        rand_time = 0s', `        start_action = ${start}`, '      }', '    }', '  }');
  }
  lines.push('}', 'secrets {', '  ike-psk {', `    secret = "${PSK}"`, '  }', '}', '');
  writeFileSync(join(d, 'swanctl.conf'), lines.join('\n'), { mode: 0o600 });
  return d;
}

function swanctl(d, args) {
  return execFileSync(SWANCTL, args, { env: { ...process.env, STRONGSWAN_CONF: join(d, 'strongswan.conf') }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 }).toString();
}

async function startCharon(ns, d) {
  const p = spawn('ip', ['netns', 'exec', ns, CHARON], { env: { ...process.env, STRONGSWAN_CONF: join(d, 'strongswan.conf') }, stdio: ['ignore', 'ignore', 'ignore'] });
  procs.push(p);
  const sock = join(d, 'charon.vici');
  for (let i = 0; i < 1200 && !existsSync(sock); i++) await sleep(100);
  if (!existsSync(sock)) throw new Error(`charon in ${ns} did not start`);
  await sleep(1000);
  return p;
}

async function benchCharon() {
  const n = N_CHARON;
  const ns = twoNamespaces('s');
  const dB = charonDir('b', n, '192.0.2.2', '192.0.2.1', 'none');
  const dA = charonDir('a', n, '192.0.2.1', '192.0.2.2', 'start');
  const b = await startCharon(ns.b, dB);
  const a = await startCharon(ns.a, dA);
  const bEmpty = vmRss(b.pid);
  swanctl(dB, ['--load-all', '--noprompt', '--file', join(dB, 'swanctl.conf')]);
  await sleep(1000);
  const before = { a: vmRss(a.pid), b: vmRss(b.pid) };
  // charon's initiator loads its N connections only when it starts them (start_action): what
  // N connection configs cost (seen on the responder, same size) is taken off its delta
  const configPerConn = (before.b - bEmpty) / n;
  const t0 = performance.now();
  // start_action = start: loading the connections initiates all of them
  swanctl(dA, ['--load-all', '--noprompt', '--file', join(dA, 'swanctl.conf')]);
  const deadline = Date.now() + PHASE_MS;
  const up = await waitCount(() => kernelSaCount(ns.a) / 2, n, deadline, 'charon tunnels up (kernel SA pairs on the initiator)');
  const setupMs = performance.now() - t0;
  if (up === 0) throw new Error('charon: no tunnel came up');
  const partial = up < n ? `; ONLY ${up} of ${n} came up` : '';
  await sleep(1000);
  const after = { a: vmRss(a.pid), b: vmRss(b.pid) };
  const out = { n: up, setupMs, rssPerIkeSa: { a: (after.a - before.a) / up - configPerConn, b: (after.b - before.b) / up } };
  result('charon: establish N tunnels (IKE SA + Child SA)', Number((setupMs / 1000).toFixed(2)), 's', `N=${n}; includes swanctl --load-all of the initiator${partial}`);
  result('charon: tunnel setup rate', Number((up / (setupMs / 1000)).toFixed(2)), 'tunnels/s', `N=${n}${partial}`);
  result('charon: memory per IKE SA, initiator (VmRSS delta / N)', kib(out.rssPerIkeSa.a), 'KiB', `RSS ${kib(before.a)} -> ${kib(after.a)} KiB, less ${kib(configPerConn)} KiB/connection of configuration`);
  result('charon: memory per IKE SA, responder (VmRSS delta / N)', kib(out.rssPerIkeSa.b), 'KiB', `RSS ${kib(before.b)} -> ${kib(after.b)} KiB`);
  for (const p of [a, b]) p.kill('SIGTERM');
  await Promise.all([a, b].map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  deleteNamespaces(ns);
  return out;
}

if (process.env.IKEV2D_BENCH_ONLY_CHARON) {
  await benchCharon();
  process.exit(0);
}
const mine = await benchIkev2d();
if (process.env.IKEV2D_BENCH_NO_CHARON || !existsSync(CHARON) || !existsSync(SWANCTL)) {
  console.log(`charon comparison skipped (${process.env.IKEV2D_BENCH_NO_CHARON ? 'IKEV2D_BENCH_NO_CHARON' : `${CHARON} or ${SWANCTL} missing`})`);
} else {
  const theirs = await benchCharon();
  const sameN = theirs.n === mine.n ? `N=${mine.n} both` : `ikev2d N=${mine.n}, charon N=${theirs.n}`;
  const rate = (o) => o.n / o.setupMs;
  result('ikev2d/charon: tunnel setup rate', Number((rate(mine) / rate(theirs)).toFixed(2)), 'x', `${sameN}; >1 = ikev2d faster`);
  // node returns freed start-up heap pages lazily: its RSS can fall while SAs are added, and
  // a ratio of a negative delta means nothing
  for (const [side, k] of [['initiator', 'a'], ['responder', 'b']]) {
    if (mine.rssPerIkeSa[k] > 0 && theirs.rssPerIkeSa[k] > 0) {
      result(`ikev2d/charon: memory per IKE SA, ${side}`, Number((mine.rssPerIkeSa[k] / theirs.rssPerIkeSa[k]).toFixed(2)), 'x', `${sameN}; VmRSS; <1 = ikev2d smaller`);
    } else {
      console.log(`ikev2d/charon memory per IKE SA, ${side}: no ratio (VmRSS deltas ${kib(mine.rssPerIkeSa[k])} vs ${kib(theirs.rssPerIkeSa[k])} KiB; see ikev2d's heapUsed figure)`);
    }
  }
}
process.exit(0);
