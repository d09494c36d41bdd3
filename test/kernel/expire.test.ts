// Lifetime expiry notifications: soft/hard SA expiry (time and packets) and policy expiry.
import { describe, expect, it } from 'vitest';
import { isXfrmError, type XfrmClient, type XfrmEvent } from '../../src/kernel/xfrm-client.js';
import { XfrmClient as Client } from '../../src/kernel/xfrm-client.js';
import { installInboundSa, installOutboundSa, installPolicies, deletePolicies } from '../../src/kernel/child-sa.js';
import { ENCR } from '../../src/kernel/ike-mapping.js';
import { createNetns, ping } from '../helpers/netns.js';
import { espOk, netnsOk } from './env.js';
import { childPair, twoHosts } from './topology.js';

function collect(c: XfrmClient, type: 'expire' | 'polexpire') {
  const got: XfrmEvent[] = [];
  c.on('event', (e) => { if (e.type === type) got.push(e); });
  return got;
}

async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!netnsOk)('policy expiry', () => {
  it('POLEXPIRE soft then hard; the kernel removes the policy', async () => {
    const ns = await createNetns('polexp');
    const c = Client.open({ netns: ns.path });
    try {
      c.subscribe(['expire']);
      const got = collect(c, 'polexpire');
      // Soft and hard well apart: a late kernel timer (emulated CPU) that finds both due reports only the hard one.
      await c.addPolicy({ selector: { src: '198.51.100.0/24', dst: '203.0.113.0/24' }, dir: 'out', priority: 7, lifetime: { softAddSeconds: 1, hardAddSeconds: 5 } });
      await until(() => got.some((e) => e.type === 'polexpire' && e.hard), 20_000);
      const kinds = got.map((e) => (e.type === 'polexpire' ? e.hard : null));
      expect(kinds[0]).toBe(false);
      expect(kinds).toContain(true);
      const hard = got.find((e) => e.type === 'polexpire' && e.hard);
      expect(hard?.type === 'polexpire' && hard.policy).toMatchObject({ dir: 'out', priority: 7, selector: { src: '198.51.100.0/24' } });
      expect(await c.dumpPolicies()).toEqual([]);
    } finally {
      c.close();
      await ns.delete();
    }
  });
});

describe.skipIf(!espOk)('SA expiry', () => {
  it('time limits: soft EXPIRE then hard EXPIRE with the SA; the SA is gone after hard', async () => {
    const ns = await createNetns('saexp');
    const c = Client.open({ netns: ns.path });
    try {
      c.subscribe(['expire']);
      const got = collect(c, 'expire');
      await c.addSa({
        src: '192.0.2.1', dst: '192.0.2.2', spi: 0xe0000001, mode: 'tunnel', reqid: 31,
        aead: { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(20, 5) }, lifetime: { softAddSeconds: 1, hardAddSeconds: 2 },
      });
      await until(() => got.some((e) => e.type === 'expire' && e.hard), 20_000);
      const soft = got[0];
      expect(soft?.type === 'expire' && soft.hard).toBe(false);
      expect(soft?.type === 'expire' && soft.sa).toMatchObject({ spi: 0xe0000001, dst: '192.0.2.2', src: '192.0.2.1', reqid: 31, mode: 'tunnel' });
      const e = await c.getSa({ dst: '192.0.2.2', spi: 0xe0000001 }).catch((x) => x);
      expect(isXfrmError(e)).toBe(true);
      expect(await c.dumpSas()).toEqual([]);
    } finally {
      c.close();
      await ns.delete();
    }
  });

  it('packet limits on a Child SA: soft at softPackets, hard at hardPackets', async () => {
    const p = await twoHosts(false);
    try {
      const c = childPair(p, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 128 }, softPackets: 3, hardPackets: 6 }, 0xe1000001, 0xe1000002);
      for (const [host, spec, inKeys, outKeys] of [[p.a, c.specA, c.keysBA, c.keysAB], [p.b, c.specB, c.keysAB, c.keysBA]] as const) {
        await installInboundSa(host.client, spec, inKeys);
        await installOutboundSa(host.client, spec, outKeys);
        await installPolicies(host.client, spec);
      }
      p.a.client.subscribe(['expire']);
      const got = collect(p.a.client, 'expire');
      await ping(p.a.ns, p.b.inner, { count: 9, intervalS: 0.1, src: p.a.inner, timeoutS: 1 });
      await until(() => got.some((e) => e.type === 'expire' && e.hard && e.sa.spi === 0xe1000001), 10_000);
      const out = got.filter((e) => e.type === 'expire' && e.sa.spi === 0xe1000001);
      expect(out.map((e) => e.type === 'expire' && e.hard)).toEqual([false, true]);
      const soft = out[0]!;
      expect(soft.type === 'expire' && soft.sa.current.packets).toBeGreaterThanOrEqual(3);
      // the outbound SA is gone; the policy now finds no SA for its pinned SPI
      expect((await p.a.client.dumpSas()).map((s) => s.spi)).not.toContain(0xe1000001);
      for (const [host, spec] of [[p.a, c.specA], [p.b, c.specB]] as const) {
        await deletePolicies(host.client, spec);
        await host.client.flushSas();
        expect(await host.client.dumpSas()).toEqual([]);
        expect(await host.client.dumpPolicies()).toEqual([]);
      }
    } finally {
      await p.close();
    }
  });
});
