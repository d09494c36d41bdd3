// Real ESP between two namespaces, installed through applyKernelAction from
// ChildSaKernelSpecs; SA counters prove the traffic went through ESP.
import { describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { KernelAction } from '../../src/ike/engine/actions.js';
import { applyKernelAction, saSpecFor } from '../../src/kernel/child-sa.js';
import { ENCR, INTEG } from '../../src/kernel/ike-mapping.js';
import type { XfrmClient, XfrmEvent } from '../../src/kernel/xfrm-client.js';
import { ping, pingFlood } from '../helpers/netns.js';
import { espOk } from './env.js';
import { childPair, espInUdpListener, twoHosts, type ChildOptions } from './topology.js';

async function apply(client: XfrmClient, action: KernelAction) {
  const r = await applyKernelAction(client, action);
  if (r?.type === 'action-failed') throw new Error(`${action.op} failed: ${r.message}`);
  return r;
}

const cases: [string, boolean, ChildOptions][] = [
  ['tunnel IPv4 AES-GCM-16/256, ESN', false, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 256 }, esn: true, replayWindow: 128 }],
  ['tunnel IPv6 AES-CBC-128 + HMAC-SHA2-256-128', true, { mode: 'tunnel', encr: { id: ENCR.AES_CBC, keyBits: 128 }, integ: { id: INTEG.HMAC_SHA2_256_128 } }],
  ['transport IPv4 AES-CBC-256 + HMAC-SHA2-512-256', false, { mode: 'transport', encr: { id: ENCR.AES_CBC, keyBits: 256 }, integ: { id: INTEG.HMAC_SHA2_512_256 } }],
  ['transport IPv6 AES-GCM-16/128', true, { mode: 'transport', encr: { id: ENCR.AES_GCM_16, keyBits: 128 } }],
  ['tunnel IPv4 ChaCha20-Poly1305', false, { mode: 'tunnel', encr: { id: ENCR.CHACHA20_POLY1305, keyBits: 256 } }],
  ['tunnel IPv4 AES-GCM-16/128 NAT-T (ESP in UDP 4500)', false, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 128 }, encap: true }],
  ['transport IPv6 AES-CBC-192 + HMAC-SHA2-384-192 NAT-T', true, { mode: 'transport', encr: { id: ENCR.AES_CBC, keyBits: 192 }, integ: { id: INTEG.HMAC_SHA2_384_192 }, encap: true }],
];

describe.skipIf(!espOk)('ESP traffic between two namespaces', () => {
  for (const [name, v6, opts] of cases) {
    it(name, async () => {
      const p = await twoHosts(v6);
      const listeners: ChildProcess[] = [];
      try {
        if (opts.encap) {
          listeners.push(await espInUdpListener(p.a.ns, 4500, v6), await espInUdpListener(p.b.ns, 4500, v6));
        }
        const c = childPair(p, opts, 0xc1000001, 0xc2000002);
        for (const [host, spec, inKeys, outKeys] of [
          [p.a, c.specA, c.keysBA, c.keysAB],
          [p.b, c.specB, c.keysAB, c.keysBA],
        ] as const) {
          await apply(host.client, { op: 'installInboundSa', spec, keys: inKeys });
          await apply(host.client, { op: 'installOutboundSa', spec, keys: outKeys });
          await apply(host.client, { op: 'installPolicies', spec });
        }
        const sa = await p.a.client.getSa({ dst: p.b.outer, spi: 0xc1000001 });
        if (opts.encap) {
          expect(sa.encap).toMatchObject({ type: 2, sport: 4500, dport: 4500 });
          // the listener's bypassIpsec() shows as two per-socket allow policies
          const sock = (await p.a.client.dumpPolicies({ includeSocket: true })).filter((x) => x.socket);
          expect(sock.map((x) => `${x.dir}:${x.action}`).sort()).toEqual(['in:allow', 'out:allow']);
        }
        expect(sa.esn).toBe(opts.esn === true);

        const dst = opts.mode === 'tunnel' ? p.b.inner : p.b.outer;
        const src = opts.mode === 'tunnel' ? p.a.inner : p.a.outer;
        const r = await ping(p.a.ns, dst, { count: 5, intervalS: 0.2, src });
        expect(r.received, r.output).toBe(5);
        const f = await pingFlood(p.a.ns, dst, { count: 50, src });
        expect(f.received, f.output).toBe(50);

        const ca = await apply(p.a.client, { op: 'queryCounters', spec: c.specA });
        const cb = await apply(p.b.client, { op: 'queryCounters', spec: c.specB });
        expect(ca).toMatchObject({ type: 'counters', childId: c.specA.childId });
        if (ca?.type !== 'counters' || cb?.type !== 'counters') throw new Error('no counters');
        expect(ca.packetsOut).toBeGreaterThanOrEqual(55);
        expect(ca.packetsIn).toBeGreaterThanOrEqual(55);
        expect(cb.packetsIn).toBe(ca.packetsOut);
        expect(cb.packetsOut).toBe(ca.packetsIn);
        expect(ca.bytesOut).toBeGreaterThan(5 * 56);
        expect(ca.lastUseOut).toBeGreaterThan(0);

        for (const [host, spec] of [[p.a, c.specA], [p.b, c.specB]] as const) {
          await apply(host.client, { op: 'deletePolicies', spec });
          await apply(host.client, { op: 'deleteOutboundSa', spec });
          await apply(host.client, { op: 'deleteInboundSa', spec });
          // deleting again is not an error (already gone)
          await apply(host.client, { op: 'deleteInboundSa', spec });
          expect(await host.client.dumpSas()).toEqual([]);
          expect(await host.client.dumpPolicies()).toEqual([]);
        }
        // with the policies gone, traffic flows in the clear and the SAs are absent
        const clear = await ping(p.a.ns, p.b.outer, { count: 1 });
        expect(clear.received).toBe(1);
      } finally {
        for (const l of listeners) l.kill();
        await p.close();
      }
    });
  }

  it('route-based: if_id on SAs and policies, traffic through an XFRM interface', async () => {
    const p = await twoHosts(false);
    try {
      // an xfrm interface with if_id 42 on each host; the peer's inner prefix is routed into it
      for (const [h, peerNet] of [[p.a, '203.0.113.0/24'], [p.b, '198.51.100.0/24']] as const) {
        await h.ns.exec(['ip', 'link', 'add', 'ipsec42', 'type', 'xfrm', 'dev', 'veth0', 'if_id', '42']);
        await h.ns.exec(['ip', 'link', 'set', 'ipsec42', 'up']);
        await h.ns.exec(['ip', 'route', 'replace', peerNet, 'dev', 'ipsec42', 'src', h.inner]);
      }
      const c = childPair(p, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 128 }, ifId: 42 }, 0xc5000001, 0xc5000002);
      for (const [host, spec, inKeys, outKeys] of [[p.a, c.specA, c.keysBA, c.keysAB], [p.b, c.specB, c.keysAB, c.keysBA]] as const) {
        await apply(host.client, { op: 'installInboundSa', spec, keys: inKeys });
        await apply(host.client, { op: 'installOutboundSa', spec, keys: outKeys });
        await apply(host.client, { op: 'installPolicies', spec });
      }
      expect((await p.a.client.getSa({ dst: p.b.outer, spi: 0xc5000001 })).ifId).toBe(42);
      expect((await p.a.client.dumpPolicies()).every((x) => x.ifId === 42)).toBe(true);
      const r = await ping(p.a.ns, p.b.inner, { count: 5, src: p.a.inner });
      expect(r.received, r.output).toBe(5);
      const ca = await apply(p.a.client, { op: 'queryCounters', spec: c.specA });
      expect(ca).toMatchObject({ packetsOut: 5, packetsIn: 5 });
      // the packets really crossed the interface
      const stats = (await p.a.ns.exec(['cat', '/sys/class/net/ipsec42/statistics/tx_packets'])).stdout.trim();
      expect(Number(stats)).toBeGreaterThanOrEqual(5);
      for (const [host, spec] of [[p.a, c.specA], [p.b, c.specB]] as const) {
        await apply(host.client, { op: 'deletePolicies', spec });
        await apply(host.client, { op: 'deleteOutboundSa', spec });
        await apply(host.client, { op: 'deleteInboundSa', spec });
        expect(await host.client.dumpSas()).toEqual([]);
        expect(await host.client.dumpPolicies()).toEqual([]);
      }
    } finally {
      await p.close();
    }
  });

  it('MAPPING event when the peer\'s NAT-T source port changes; updateSaEncap follows it in place', async () => {
    const p = await twoHosts(false);
    const listeners: ChildProcess[] = [];
    try {
      listeners.push(await espInUdpListener(p.a.ns, 4500, false), await espInUdpListener(p.b.ns, 4500, false));
      const c = childPair(p, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 128 }, encap: true }, 0xc4000001, 0xc4000002);
      for (const [host, spec, inKeys, outKeys] of [[p.a, c.specA, c.keysBA, c.keysAB], [p.b, c.specB, c.keysAB, c.keysBA]] as const) {
        await apply(host.client, { op: 'installInboundSa', spec, keys: inKeys });
        await apply(host.client, { op: 'installOutboundSa', spec, keys: outKeys });
        await apply(host.client, { op: 'installPolicies', spec });
      }
      // A now sends from 4501, as if a NAT had re-mapped it
      await p.a.client.updateSa({ ...saSpecFor(c.specA, 'out', c.keysAB), encap: { sport: 4501, dport: 4500 } });
      p.b.client.subscribe(['mapping']);
      const mapping = new Promise<XfrmEvent>((resolve) => p.b.client.on('mapping', resolve));
      const r = await ping(p.a.ns, p.b.inner, { count: 2, src: p.a.inner });
      expect(r.received).toBe(2);
      const ev = await mapping;
      expect(ev).toMatchObject({ type: 'mapping', dst: p.b.outer, spi: 0xc4000001, proto: 'esp', oldSrc: p.a.outer, newSrc: p.a.outer, oldSport: 4500, newSport: 4501 });

      // B follows the new mapping in place (RFC 7296 §2.23): same SPIs, same keys, new port. With A's
      // socket on 4500 gone, B's replies only arrive if they now go to 4501.
      listeners.push(await espInUdpListener(p.a.ns, 4501, false));
      listeners[0]!.kill();
      const followed = { ...c.specB, encap: { localPort: 4500, remotePort: 4501 } };
      await apply(p.b.client, { op: 'updateSaEncap', spec: followed, keysIn: c.keysAB, keysOut: c.keysBA });
      const out = await p.b.client.getSa({ dst: p.a.outer, spi: c.specB.spiOut });
      const inb = await p.b.client.getSa({ dst: p.b.outer, spi: c.specB.spiIn });
      expect(out.encap).toMatchObject({ type: 2, sport: 4500, dport: 4501 });
      expect(inb.encap).toMatchObject({ type: 2, sport: 4501, dport: 4500 });
      const again = await ping(p.a.ns, p.b.inner, { count: 3, src: p.a.inner });
      expect(again.received, again.output).toBe(3);
      for (const [host, spec] of [[p.a, c.specA], [p.b, c.specB]] as const) {
        await apply(host.client, { op: 'deletePolicies', spec });
        await apply(host.client, { op: 'deleteOutboundSa', spec });
        await apply(host.client, { op: 'deleteInboundSa', spec });
        expect(await host.client.dumpSas()).toEqual([]);
      }
    } finally {
      for (const l of listeners) l.kill();
      await p.close();
    }
  });

  it('a kernel refusal becomes action-failed with the kernel message', async () => {
    const p = await twoHosts(false);
    try {
      const c = childPair(p, { mode: 'tunnel', encr: { id: ENCR.AES_GCM_16, keyBits: 128 } }, 0xc3000001, 0xc3000002);
      await apply(p.a.client, { op: 'installOutboundSa', spec: c.specA, keys: c.keysAB });
      const again = await applyKernelAction(p.a.client, { op: 'installOutboundSa', spec: c.specA, keys: c.keysAB });
      expect(again).toMatchObject({ type: 'action-failed', message: expect.stringContaining('File exists') });
      const badKeys = await applyKernelAction(p.a.client, { op: 'installInboundSa', spec: c.specA, keys: { encKey: Buffer.alloc(3) } });
      expect(badKeys).toMatchObject({ type: 'action-failed', message: expect.stringContaining('keys.encKey') });
      await apply(p.a.client, { op: 'deleteOutboundSa', spec: c.specA });
      expect(await p.a.client.dumpSas()).toEqual([]);
    } finally {
      await p.close();
    }
  });
});
