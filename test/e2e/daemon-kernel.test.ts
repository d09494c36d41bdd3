// The daemon shell against the real kernel with a scripted engine (no IKE): kernel actions
// carried out in order through src/kernel, IKE sockets with IPsec bypass and ESP-in-UDP,
// trap policies raising ACQUIREs that reach the engine, timers, the state file, a crashed
// run's leftovers removed at start, and SIGTERM removing everything installed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, kernelHasEsp, ping, type Netns } from '../helpers/netns.js';
import { connectionYaml, daemonYaml, espPackets, kernelCounts, removeDir, ROOT, runDir, siteToSite, sleep } from './harness.js';

const why = !isRoot()
  ? 'needs root'
  : !(await kernelHasEsp())
    ? 'kernel cannot carry ESP (run inside scripts/vm-run, as npm test does)'
    : !existsSync(join(ROOT, 'dist', 'daemon', 'daemon.js')) ? 'dist/ not built (npm run build)' : null;
if (why) console.warn(`SKIPPED: daemon against the kernel: ${why}`);

const FIXTURE = join(ROOT, 'test', 'e2e', 'daemon-kernel-fixture.mjs');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function runFixture(ns: Netns, config: string, side: 'a' | 'b') {
  const proc = spawn('ip', ['netns', 'exec', ns.name, 'node', FIXTURE, config, side], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  proc.stdout.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number>((r) => proc.once('exit', (c) => r(c ?? 1)));
  const has = (re: RegExp) => out.some((l) => re.test(l));
  return {
    out, proc, exited, has,
    async waitLog(re: RegExp, ms = 60_000) {
      const end = Date.now() + ms;
      while (Date.now() < end && !has(re)) await sleep(100);
      if (!has(re)) throw new Error(`no log line ${re} in ${ns.name}:\n${out.slice(-30).join('\n')}`);
    },
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

describe.skipIf(why !== null)('daemon shell against the kernel', () => {
  it('installs SAs and policies in order, passes ESP, traps raise ACQUIRE, state file, clean teardown', async () => {
    const site = await siteToSite();
    cleanups.push(async () => { for (const ns of site.all) await ns.delete(); });
    const mk = (name: string, local: string, remote: string, lan: string, rlan: string, trapLocal: string, trapRemote: string) => {
      const dir = runDir(name);
      cleanups.push(() => removeDir(dir));
      const file = join(dir, 'ikev2d.yaml');
      writeFileSync(file, daemonYaml(dir, {
        listen: [local],
        connections: connectionYaml({
          name: 'site', local, remote, localId: `${name}.example`, remoteId: 'peer.example',
          children: [
            { name: 'lan', localTs: [lan], remoteTs: [rlan], startAction: 'start' },
            { name: 'trapped', localTs: [trapLocal], remoteTs: [trapRemote], startAction: 'trap' },
          ],
        }),
      }));
      return { dir, file };
    };
    const A = mk('gwa', site.gwAOuter, site.gwBOuter, site.lanA, site.lanB, '10.1.0.0/24', '10.9.0.0/24');
    const B = mk('gwb', site.gwBOuter, site.gwAOuter, site.lanB, site.lanA, '10.2.0.0/24', '10.8.0.0/24');
    // a crashed earlier run left a policy with one of our reqids
    writeFileSync(join(A.dir, 'state.json'), JSON.stringify({ pid: 1, startedAt: '', reqids: [4711], children: [] }));
    await site.gwA.exec(['ip', 'xfrm', 'policy', 'add', 'src', '10.5.0.0/24', 'dst', '10.6.0.0/24', 'dir', 'out', 'tmpl', 'src', site.gwAOuter, 'dst', site.gwBOuter, 'proto', 'esp', 'reqid', '4711', 'mode', 'tunnel']);

    const a = runFixture(site.gwA, A.file, 'a');
    const b = runFixture(site.gwB, B.file, 'b');
    cleanups.push(async () => { a.proc.kill('SIGKILL'); b.proc.kill('SIGKILL'); });
    await a.waitLog(/ikev2d started/);
    await b.waitLog(/ikev2d started/);
    expect(a.has(/removed kernel state left by an earlier run/)).toBe(true);
    expect((await site.gwA.exec(['ip', 'xfrm', 'policy'])).stdout).not.toMatch(/10\.5\.0\.0/);
    await a.waitLog(/timer probe fired/);

    // fixed-key SAs installed by both daemons carry the ping
    const p = await ping(site.hostA, site.hostBAddr, { count: 5, timeoutS: 3 });
    expect(p.received, p.output).toBe(5);
    expect(await espPackets(site.gwA)).toBeGreaterThanOrEqual(10);

    // the IKE sockets bypass the policies and 4500 is in ESP-in-UDP mode (socket policies visible)
    const pol = (await site.gwA.exec(['ip', 'xfrm', 'policy'])).stdout;
    expect(pol).toMatch(/socket in/);
    expect(pol).toMatch(/reqid 1001/); // the trap (child 'trapped' got the second reqid)

    // trap: traffic to 10.9.0.0/24 raises an ACQUIRE that reaches the engine with the trap's reqid
    await site.gwA.exec(['ip', 'route', 'add', '10.9.0.0/24', 'dev', 'wan']).catch(() => undefined);
    await site.gwA.exec(['ping', '-c', '1', '-W', '1', '-I', '10.1.0.1', '10.9.0.1']).catch(() => undefined);
    await a.waitLog(/kernel event acquire reqid 1001/, 20_000);

    const readState = () => JSON.parse(readFileSync(join(A.dir, 'state.json'), 'utf8'));
    expect(readState().reqids).toEqual([1000, 1001]);
    // the Child SA list is written within a second of a change
    for (let i = 0; i < 30 && readState().children.length !== 1; i++) await new Promise((r) => setTimeout(r, 100));
    expect(readState().children).toHaveLength(1);

    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    for (const ns of [site.gwA, site.gwB]) {
      const k = await kernelCounts(ns);
      expect(k.sas, k.text).toBe(0);
      expect(k.policies, k.text).toBe(0);
    }
    expect(existsSync(join(A.dir, 'state.json'))).toBe(false);
  });
});
