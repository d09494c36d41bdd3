#!/usr/bin/env node
// `npm run bench`: run every scripts/bench/*.mjs and print their results as one table.
// Not a test: nothing here passes or fails on a figure; a bench that crashes is reported.
//
// Contract for a bench file (scripts/bench/NAME.mjs, a standalone node script run from the
// repository root with no arguments):
//  - It reports each result as one stdout line holding a JSON object:
//      {"metric": "XFRM SA installs", "value": 12345, "unit": "SA/s", "note": "batch of 1000"}
//    ("note" optional). Every other output line is shown as it is, under the bench's name.
//  - A bench that needs root and a kernel that can carry ESP (XFRM, namespaces, daemons
//    passing traffic) says so with a line `// bench: needs-kernel` among its first 20 lines.
//    Those run directly when the host kernel can carry ESP, else all of them inside ONE
//    scripts/vm-run boot (figures then come from an emulated CPU: compare them with each
//    other, e.g. ikev2d against the strongSwan baseline, not with native ones).
//
// Usage: npm run bench [-- [--no-vm] [--timeout SEC] [NAME ...]]
//   NAME        run only benches whose file name contains NAME
//   --no-vm     skip kernel benches when the host kernel lacks ESP instead of booting the VM
//   --timeout   per bench, seconds (default 600); the VM gets the sum plus 120 s
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_DIR = process.env.IKEV2D_BENCH_DIR ?? join(ROOT, 'scripts', 'bench');
const MARK = '@@ikev2d-bench ';

const args = process.argv.slice(2);
let inside = false, noVm = false, timeoutSec = 600;
const filters = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--inside') inside = true; // internal: we are the runner (in the VM or on an ESP host)
  else if (a === '--no-vm') noVm = true;
  else if (a === '--timeout') timeoutSec = Number(args[++i]);
  else if (a === '-h' || a === '--help') {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    process.exit(0);
  } else filters.push(a);
}

function benches() {
  let files = [];
  try {
    files = readdirSync(BENCH_DIR).filter((f) => f.endsWith('.mjs')).sort();
  } catch {
    /* no bench directory yet */
  }
  return files
    .map((f) => {
      const head = readFileSync(join(BENCH_DIR, f), 'utf8').split('\n').slice(0, 20);
      return { file: join(BENCH_DIR, f), name: basename(f, '.mjs'), kernel: head.some((l) => /^\s*\/\/\s*bench:.*\bneeds-kernel\b/.test(l)) };
    })
    // NAME.mjs matches exactly (used for the kernel runner), NAME as a substring
    .filter((b) => filters.length === 0 || filters.some((x) => (x.endsWith('.mjs') ? `${b.name}.mjs` === x : b.name.includes(x))));
}

/** Run one bench; resolves with its results. `emit` receives each result as it comes. */
function runBench(b, where, emit) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const results = [];
    const child = spawn(process.execPath, [b.file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => {
      console.log(`[${b.name}] timed out after ${timeoutSec} s`);
      child.kill('SIGKILL');
    }, timeoutSec * 1000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const t = line.trim();
      if (t.startsWith('{')) {
        try {
          const r = JSON.parse(t);
          if (r && typeof r.metric === 'string' && r.value !== undefined) {
            const res = { bench: b.name, where, metric: r.metric, value: r.value, unit: String(r.unit ?? ''), note: String(r.note ?? '') };
            results.push(res);
            emit(res);
            return;
          }
        } catch {
          /* not a result line */
        }
      }
      console.log(`[${b.name}] ${line}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      const ok = code === 0;
      console.log(`[${b.name}] ${ok ? 'done' : `FAILED (exit ${code ?? signal})`} in ${secs} s`);
      resolve({ bench: b.name, ok, results });
    });
  });
}

function espOnHost() {
  if (process.getuid?.() !== 0) return false;
  const ns = `ikev2d-bench-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' });
  } catch {
    return false;
  }
  try {
    execFileSync('ip', ['-n', ns, 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x100',
      'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', '0x0102030405060708090a0b0c0d0e0f1011121314', '128'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

if (inside) {
  // Runner mode: run the named benches here, results as marked lines for the caller.
  let failed = 0;
  for (const b of benches()) {
    const r = await runBench(b, process.env.VM_RUN ? 'VM (emulated CPU)' : 'host kernel', (res) => console.log(MARK + JSON.stringify(res)));
    if (!r.ok) {
      failed++;
      console.log(MARK + JSON.stringify({ failed: b.name }));
    }
  }
  process.exit(failed ? 1 : 0);
}

const all = benches();
if (all.length === 0) {
  console.log(`no benches${filters.length ? ` matching ${filters.join(' ')}` : ''} in scripts/bench/`);
  process.exit(filters.length ? 1 : 0);
}
const rows = [];
const failedBenches = [];
const skipped = [];
for (const b of all.filter((x) => !x.kernel)) {
  console.log(`\n=== ${b.name} (host)`);
  const r = await runBench(b, 'host', () => {});
  rows.push(...r.results);
  if (!r.ok) failedBenches.push(b.name);
}

const kernelBenches = all.filter((x) => x.kernel);
if (kernelBenches.length) {
  const names = kernelBenches.map((b) => b.name);
  // exact file names as filters: "ke" must not also pick "ike-rekey"
  const innerArgs = [join(ROOT, 'scripts', 'bench.mjs'), '--inside', '--timeout', String(timeoutSec), ...names.map((n) => `${n}.mjs`)];
  let cmd = null;
  if (espOnHost()) {
    console.log(`\n=== kernel benches on the host kernel: ${names.join(', ')}`);
    cmd = [process.execPath, innerArgs];
  } else if (noVm || process.getuid?.() !== 0) {
    const why = noVm ? '--no-vm' : 'not root';
    console.log(`\nSKIPPED: kernel benches (${names.join(', ')}): the host kernel cannot carry ESP and ${why}`);
    skipped.push(...names);
  } else {
    const vmTimeout = timeoutSec * kernelBenches.length + 120;
    console.log(`\n=== kernel benches inside scripts/vm-run (host kernel lacks ESP): ${names.join(', ')}`);
    cmd = [join(ROOT, 'scripts', 'vm-run'), ['--modules', 'ipsec', '--mem', '2G', '--timeout', String(vmTimeout), '--', process.execPath, ...innerArgs]];
  }
  if (cmd) {
    const code = await new Promise((resolve) => {
      const child = spawn(cmd[0], cmd[1], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!line.startsWith(MARK)) return console.log(line);
        const r = JSON.parse(line.slice(MARK.length));
        if (r.failed) failedBenches.push(r.failed);
        else {
          rows.push(r);
        }
      });
      child.on('close', (c) => resolve(c));
    });
    if (code !== 0 && failedBenches.length === 0) failedBenches.push(`kernel runner (exit ${code})`);
  }
}

// One table over everything.
const header = ['bench', 'metric', 'value', 'unit', 'where', 'note'];
const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
const table = rows.map((r) => [r.bench, r.metric, fmt(r.value), r.unit, r.where, r.note]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
console.log(`\n=== results (${rows.length}) ===`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const row of table) console.log(line(row));
const silent = all.filter((b) => !rows.some((r) => r.bench === b.name) && !failedBenches.includes(b.name) && !skipped.includes(b.name));
if (silent.length) console.log(`(no JSON result lines from: ${silent.map((b) => b.name).join(', ')}; their output is above)`);
if (skipped.length) console.log(`SKIPPED: ${skipped.join(', ')}`);
if (failedBenches.length) {
  console.log(`FAILED: ${failedBenches.join(', ')}`);
  process.exit(1);
}
