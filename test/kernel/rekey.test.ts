// Make-before-break rekeys of a Child SA between two namespaces.
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildSaKernelSpec } from '../../src/ike/engine/actions.js';
import {
  completeRekey,
  deleteInboundSa,
  deleteOutboundSa,
  deletePolicies,
  installInboundSa,
  installOutboundSa,
  installPolicies,
  prepareRekey,
  updateOutboundPolicy,
} from '../../src/kernel/child-sa.js';
import { ENCR } from '../../src/kernel/ike-mapping.js';
import { isXfrmError, type XfrmClient } from '../../src/kernel/xfrm-client.js';
import { ping, type Netns } from '../helpers/netns.js';
import { espOk } from './env.js';
import { childPair, twoHosts, type ChildPair, type Pair } from './topology.js';

const opts = { mode: 'tunnel' as const, encr: { id: ENCR.AES_GCM_16, keyBits: 128 }, replayWindow: 128 };

async function install(p: Pair, c: ChildPair): Promise<void> {
  for (const [host, spec, inKeys, outKeys] of [[p.a, c.specA, c.keysBA, c.keysAB], [p.b, c.specB, c.keysAB, c.keysBA]] as const) {
    await installInboundSa(host.client, spec, inKeys);
    await installOutboundSa(host.client, spec, outKeys);
    await installPolicies(host.client, spec);
  }
}

async function packets(client: XfrmClient, dst: string, spi: number): Promise<number> {
  return (await client.getSa({ dst, spi })).current.packets;
}

async function teardown(p: Pair, specA: ChildSaKernelSpec, specB: ChildSaKernelSpec): Promise<void> {
  for (const [host, spec] of [[p.a, specA], [p.b, specB]] as const) {
    await deletePolicies(host.client, spec);
    await deleteOutboundSa(host.client, spec);
    await deleteInboundSa(host.client, spec);
    expect(await host.client.dumpSas()).toEqual([]);
    expect(await host.client.dumpPolicies()).toEqual([]);
  }
}

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

function startProc(ns: Netns, args: string[], readyWord: string): Promise<{ proc: ChildProcess; lines: string[] }> {
  const proc = spawn('ip', ['netns', 'exec', ns.name, 'python3', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line === readyWord) resolve({ proc, lines });
      }
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before '${readyWord}'`)));
  });
}

describe.skipIf(!espOk)('make-before-break', () => {
  it('new outbound SPI is used right after UPDPOLICY; the old inbound SA accepts packets during the grace period', async () => {
    const p = await twoHosts(false);
    try {
      const old = childPair(p, opts, 0xa0000001, 0xb0000001);
      await install(p, old);
      const next = childPair(p, opts, 0xa0000002, 0xb0000002);
      next.specA.reqid = old.specA.reqid;
      next.specB.reqid = old.specB.reqid;
      const keysA = { inbound: next.keysBA, outbound: next.keysAB };
      const keysB = { inbound: next.keysAB, outbound: next.keysBA };
      const ping1 = () => ping(p.a.ns, p.b.inner, { count: 3, intervalS: 0.1, src: p.a.inner });

      // both peers reserve and complete the new inbound SA first
      await prepareRekey(p.a.client, next.specA, keysA);
      await prepareRekey(p.b.client, next.specB, keysB);
      // B (responder) switches first, with a grace period for its old inbound SA
      const { retired } = await completeRekey(p.b.client, old.specB, next.specB, keysB, { graceMs: 4000 });
      const bOldInBefore = await packets(p.b.client, p.b.outer, 0xa0000001);
      // A still sends on the old SPI: B's old inbound SA takes it (grace); replies come on the new SPI
      expect((await ping1()).received).toBe(3);
      expect(await packets(p.b.client, p.b.outer, 0xa0000001)).toBe(bOldInBefore + 3);
      expect(await packets(p.a.client, p.a.outer, 0xb0000002)).toBe(3);

      // A: new outbound installed but idle while the policy names the old SPI
      await installOutboundSa(p.a.client, next.specA, next.keysAB);
      const oldOut = await packets(p.a.client, p.b.outer, 0xa0000001);
      expect((await ping1()).received).toBe(3);
      expect(await packets(p.a.client, p.b.outer, 0xa0000002)).toBe(0);
      expect(await packets(p.a.client, p.b.outer, 0xa0000001)).toBe(oldOut + 3);
      // one UPDPOLICY and the kernel uses the new SPI at once
      await updateOutboundPolicy(p.a.client, next.specA);
      expect((await ping1()).received).toBe(3);
      expect(await packets(p.a.client, p.b.outer, 0xa0000002)).toBe(3);
      expect(await packets(p.a.client, p.b.outer, 0xa0000001)).toBe(oldOut + 3);
      expect(await packets(p.b.client, p.b.outer, 0xa0000002)).toBe(3);
      await deleteOutboundSa(p.a.client, old.specA);
      await deleteInboundSa(p.a.client, old.specA);

      // after the grace period B's old inbound SA is gone
      await retired;
      const gone = await p.b.client.getSa({ dst: p.b.outer, spi: 0xa0000001 }).catch((e) => e);
      expect(isXfrmError(gone)).toBe(true);
      expect((await p.b.client.dumpSas()).map((s) => s.spi).sort()).toEqual([0xa0000002, 0xb0000002].sort());
      expect((await ping1()).received).toBe(3);
      await teardown(p, next.specA, next.specB);
    } finally {
      await p.close();
    }
  });

  it('zero loss for a continuous UDP flood across 100 consecutive swaps', async () => {
    const p = await twoHosts(false);
    const procs: ChildProcess[] = [];
    try {
      let cur = childPair(p, opts, 0x10000, 0x20000);
      await install(p, cur);
      const echo = await startProc(p.b.ns, [fixture('udp_flood.py'), 'echo', p.b.inner, '7777'], 'ready');
      procs.push(echo.proc);
      const flood = await startProc(p.a.ns, [fixture('udp_flood.py'), 'send', p.a.inner, p.b.inner, '7777', '1'], 'started');
      procs.push(flood.proc);

      const swaps = 100;
      const retired: Promise<void>[] = [];
      const t0 = Date.now();
      for (let k = 1; k <= swaps; k++) {
        const next = childPair(p, opts, 0x10000 + k, 0x20000 + k);
        const keysA = { inbound: next.keysBA, outbound: next.keysAB };
        const keysB = { inbound: next.keysAB, outbound: next.keysBA };
        await Promise.all([prepareRekey(p.a.client, next.specA, keysA), prepareRekey(p.b.client, next.specB, keysB)]);
        const [rb, ra] = await Promise.all([
          completeRekey(p.b.client, cur.specB, next.specB, keysB, { graceMs: 1000 }),
          completeRekey(p.a.client, cur.specA, next.specA, keysA, { graceMs: 1000 }),
        ]);
        retired.push(rb.retired, ra.retired);
        cur = next;
      }
      const swapMs = Date.now() - t0;
      await Promise.all(retired);
      // let the flood run on the final SAs for a moment, then stop and count
      await new Promise((r) => setTimeout(r, 300));
      const result = new Promise<string>((resolve) => flood.proc.once('exit', () => resolve(flood.lines[flood.lines.length - 1]!)));
      flood.proc.stdin!.write('stop\n');
      const stats = JSON.parse(await result) as { sent: number; received: number; missing: number; duplicates: number; sendErrors: number; firstMissing: number[] };
      const xfrmErrors: string[] = [];
      console.log(`make-before-break: ${swaps} swaps in ${swapMs} ms; flood ${JSON.stringify(stats)}`);
      for (const h of [p.a, p.b]) {
        const x = await h.ns.sh(`awk '$2 != 0' /proc/net/xfrm_stat`);
        if (x.stdout.trim()) xfrmErrors.push(`${h.ns.name}: ${x.stdout.trim()}`);
      }
      expect(stats.sent).toBeGreaterThan(swaps * 2);
      expect(xfrmErrors).toEqual([]);
      expect(stats.sendErrors).toBe(0);
      expect(stats.missing).toBe(0);
      expect(stats.duplicates).toBe(0);

      // only the last generation is left, and it carried the tail of the flood
      for (const [host, spec] of [[p.a, cur.specA], [p.b, cur.specB]] as const) {
        const spis = (await host.client.dumpSas()).map((s) => s.spi).sort();
        expect(spis).toEqual([spec.spiIn, spec.spiOut].sort());
        expect(await packets(host.client, spec.remote, spec.spiOut)).toBeGreaterThan(0);
      }
      await teardown(p, cur.specA, cur.specB);
    } finally {
      for (const pr of procs) pr.kill();
      await p.close();
    }
  });
});
