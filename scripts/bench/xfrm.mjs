#!/usr/bin/env node
// XFRM install/delete throughput: the addon (XfrmClient when dist/ is built,
// else the raw addon socket) against `ip -batch`, in the same run, each in a
// fresh network namespace.
//
//   node scripts/bench/xfrm.mjs [--n 10000] [--no-vm]
//
// Needs root and a kernel with ESP. When the host kernel lacks ESP the script
// re-runs itself inside scripts/vm-run (unless --no-vm); numbers from the VM
// (QEMU TCG) are far below bare metal for both contenders, the ratio is what
// carries over.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
let N = Number(opt('n', '10000'));
const noVm = args.includes('--no-vm');

if (process.getuid?.() !== 0) {
  console.error('xfrm bench: needs root (network namespaces, XFRM)');
  process.exit(2);
}
const addonFile = join(root, 'build', 'Release', 'xfrm.node');
if (!existsSync(addonFile)) {
  console.error("xfrm bench: addon not built: run 'npm run build:native'");
  process.exit(2);
}

function ip(...a) {
  return execFileSync('ip', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function hasEsp() {
  const ns = `xfrmbench-probe-${process.pid}`;
  try {
    ip('netns', 'add', ns);
    ip('-n', ns, 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x100',
      'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', '0x' + '11'.repeat(20), '128');
    return true;
  } catch {
    return false;
  } finally {
    try { ip('netns', 'del', ns); } catch { /* gone */ }
  }
}

if (!hasEsp()) {
  if (noVm || process.env.VM_RUN) {
    console.error('xfrm bench: this kernel cannot hold ESP SAs');
    process.exit(2);
  }
  console.log('xfrm bench: host kernel lacks ESP; running inside scripts/vm-run (QEMU)');
  const r = spawnSync(join(root, 'scripts', 'vm-run'), ['--modules', 'ipsec', '--timeout', '1500', '--',
    process.execPath, fileURLToPath(import.meta.url), ...args, '--no-vm'], { stdio: 'inherit', cwd: root });
  process.exit(r.status ?? 1);
}

// --- contenders ---------------------------------------------------------

const keyHex = '0123456789abcdef0123456789abcdef01234567'; // 16 + 4 salt octets
const key = Buffer.from(keyHex, 'hex');
const spiOf = (i) => 0x10000 + i;

async function openAddon(nsPath) {
  const dist = join(root, 'dist', 'kernel', 'xfrm-client.js');
  if (existsSync(dist)) {
    const { XfrmClient } = await import(pathToFileURL(dist).href);
    const c = XfrmClient.open({ netns: nsPath });
    return {
      via: 'XfrmClient (validated)',
      add: (i) => c.addSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: spiOf(i), mode: 'tunnel', reqid: i + 1,
        aead: { name: 'rfc4106(gcm(aes))', key, icvBits: 128 }, replayWindow: 32 }),
      del: (i) => c.deleteSa({ dst: '192.0.2.2', spi: spiOf(i) }),
      count: async () => (await c.dumpSas()).length,
      close: () => c.close(),
    };
  }
  const addon = createRequire(import.meta.url)(addonFile);
  const s = new addon.XfrmSocket({ netns: nsPath });
  return {
    via: 'raw addon socket (dist/ not built)',
    add: (i) => s.request('newsa', { family: 2, src: '192.0.2.1', dst: '192.0.2.2', spi: spiOf(i), proto: 50, mode: 1,
      reqid: i + 1, replayWindow: 32, aead: { name: 'rfc4106(gcm(aes))', key, icvBits: 128 } }),
    del: (i) => s.request('delsa', { family: 2, dst: '192.0.2.2', spi: spiOf(i), proto: 50 }),
    count: async () => (await s.request('dumpsa', {})).length,
    close: () => s.close(),
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function benchAddon() {
  const ns = `xfrmbench-a-${process.pid}`;
  ip('netns', 'add', ns);
  try {
    const c = await openAddon(`/var/run/netns/${ns}`);
    // all requests issued at once; the client keeps a bounded window in flight
    let t = now();
    await Promise.all(Array.from({ length: N }, (_, i) => c.add(i)));
    const install = now() - t;
    const installed = await c.count();
    t = now();
    await Promise.all(Array.from({ length: N }, (_, i) => c.del(i)));
    const del = now() - t;
    const left = await c.count();
    c.close();
    if (installed !== N || left !== 0) throw new Error(`addon: ${installed} installed, ${left} left`);
    return { via: c.via, install, del };
  } finally {
    ip('netns', 'del', ns);
  }
}

function benchIpBatch() {
  const ns = `xfrmbench-i-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'xfrmbench-'));
  ip('netns', 'add', ns);
  try {
    const add = [];
    const del = [];
    for (let i = 0; i < N; i++) {
      add.push(`xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi ${spiOf(i)} mode tunnel reqid ${i + 1} ` +
        `replay-window 32 aead rfc4106(gcm(aes)) 0x${keyHex} 128`);
      del.push(`xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp spi ${spiOf(i)}`);
    }
    writeFileSync(join(dir, 'add'), add.join('\n') + '\n');
    writeFileSync(join(dir, 'del'), del.join('\n') + '\n');
    let t = now();
    ip('-n', ns, '-batch', join(dir, 'add'));
    const install = now() - t;
    const installed = ip('-n', ns, 'xfrm', 'state', 'count').match(/(\d+)/)?.[1];
    t = now();
    ip('-n', ns, '-batch', join(dir, 'del'));
    const delT = now() - t;
    const left = ip('-n', ns, 'xfrm', 'state', 'count').match(/(\d+)/)?.[1];
    if (Number(installed) !== N || Number(left) !== 0) throw new Error(`ip -batch: ${installed} installed, ${left} left`);
    return { install, del: delT };
  } finally {
    ip('netns', 'del', ns);
    rmSync(dir, { recursive: true, force: true });
  }
}

const rate = (s) => Math.round(N / s);
const kernel = execFileSync('uname', ['-r']).toString().trim();
const where = process.env.VM_RUN ? `inside the QEMU VM, kernel ${kernel}` : `kernel ${kernel}`;
console.log(`xfrm bench: N=${N} ESP tunnel SAs (rfc4106(gcm(aes)) 128), ${where}`);
// The kernel frees deleted SAs (and their crypto transforms) in deferred work
// that would bill the next phase: pause between phases. Contenders alternate
// over `--rounds` rounds (default 2) and each keeps its best round; a short
// untimed warm-up round comes first (JIT, first-use module loading).
const settle = () => new Promise((r) => setTimeout(r, Number(opt('settle-ms', '2000'))));
const rounds = Number(opt('rounds', '2'));
{
  const n = N;
  N = Math.min(N, 500);
  await benchAddon();
  benchIpBatch();
  N = n;
  await settle();
}
let a;
let b;
const best = (x, y) => (!x ? y : { ...y, install: Math.min(x.install, y.install), del: Math.min(x.del, y.del) });
for (let r = 0; r < rounds; r++) {
  b = best(b, benchIpBatch());
  await settle();
  a = best(a, await benchAddon());
  await settle();
}
console.log(`addon via ${a.via}`);
console.log(`SA install: addon ${rate(a.install)}/s, ip -batch ${rate(b.install)}/s, ratio ${(b.install / a.install).toFixed(2)}`);
console.log(`SA delete:  addon ${rate(a.del)}/s, ip -batch ${rate(b.del)}/s, ratio ${(b.del / a.del).toFixed(2)}`);
