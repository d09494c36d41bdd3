// Child SA and IKE SA rekeys through the daemon under a continuous ping flood: not one
// packet may be lost (make-before-break), and the kernel is clean afterwards.
import { describe, expect, it } from 'vitest';
import { e2eUnavailable, kernelCounts, rekeyChildren, rekeyIkeSas, siteToSite, sleep, startGateways, startPing, cleanupAfterEach, stopGatewaysCleanly } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e rekeys: ${why}`);

const CHILD_REKEYS = Number(process.env.IKEV2D_E2E_CHILD_REKEYS ?? 100);
const IKE_REKEYS = Number(process.env.IKEV2D_E2E_IKE_REKEYS ?? 10);
const EXTRA_REKEYS = Number(process.env.IKEV2D_E2E_EXTRA_REKEYS ?? 20);

const { daemons, namespaces } = cleanupAfterEach();

describe.skipIf(why !== null)('rekeys under load', () => {
  it(`${CHILD_REKEYS} Child SA and ${IKE_REKEYS} IKE SA rekeys with zero lost packets`, async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const { a, b } = await startGateways(site, daemons, { extraDaemon: '  rekey_grace_time: 3s\n' });
    await a.waitChildren();
    await b.waitChildren();

    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    await rekeyChildren([a, b], CHILD_REKEYS);
    await rekeyIkeSas([a, b], IKE_REKEYS);
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);

    const stats = (await a.ctl('stats')) as { rekeys: { ike: number; child: number; optimized: number } };
    expect(stats.rekeys.child).toBeGreaterThanOrEqual(Math.ceil(CHILD_REKEYS / 2));
    // Both gateways announce optimized rekeys and child-pfs-info, so every rekey here is optimized
    // (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §5.1: even the first rekey of the initial Child SA).
    expect(stats.rekeys.optimized).toBe(stats.rekeys.child + stats.rekeys.ike);
    // after the grace time only one SA pair per side remains
    await sleep(4000);
    expect((await kernelCounts(site.gwA)).sas).toBe(2);
    await stopGatewaysCleanly(site, a, b);
  });

  // draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §5.1: without child-pfs-info the initial Child SA's
  // KE method is unknown, so its first rekey is regular and the later ones optimized; for traffic,
  // both kinds are the same make-before-break swap.
  it(`without child-pfs-info: the initial Child SA's first rekey is regular, the next ${EXTRA_REKEYS - 1} optimized, zero lost packets`, async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const { a, b } = await startGateways(site, daemons, { extraDaemon: '  rekey_grace_time: 3s\n', extra: '    child_pfs_info: no\n' });
    await a.waitChildren();
    await b.waitChildren();
    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    await rekeyChildren([a, b], EXTRA_REKEYS);
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);
    for (const d of [a, b]) {
      const stats = (await d.ctl('stats')) as { rekeys: { ike: number; child: number; optimized: number } };
      expect(stats.rekeys.child).toBe(EXTRA_REKEYS);
      expect(stats.rekeys.optimized).toBe(EXTRA_REKEYS - 1);
    }
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    for (const ns of [site.gwA, site.gwB]) expect((await kernelCounts(ns)).sas).toBe(0);
  });

  // An additional Child SA (CREATE_CHILD_SA, PFS with X25519) carries the flood: every one of its
  // rekeys is optimized, and none loses a packet; the initial Child SA beside it is left alone.
  it(`an additional Child SA: ${EXTRA_REKEYS} optimized rekeys under a flood with zero lost packets`, async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const icmp = (ts: string) => `"${ts}[${ts.includes(':') ? 'icmpv6' : 'icmp'}]"`;
    const { a, b } = await startGateways(site, daemons, {
      extraDaemon: '  rekey_grace_time: 3s\n',
      children: (side, local, remote) => {
        const start = side === 'a' ? 'start' : 'none';
        return [
          { name: 'rest', localTs: [local], remoteTs: [remote], startAction: start },
          { name: 'ping', localTs: [icmp(local)], remoteTs: [icmp(remote)], startAction: start, esp: 'aes128gcm16-x25519' },
        ];
      },
    });
    await a.waitChildren(2);
    await b.waitChildren(2);
    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    const pingSa = (await a.listSas())[0]!.children.find((c) => c.name === 'ping')!;
    await rekeyChildren([a, b], EXTRA_REKEYS, 'ping');
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);
    // The flood went through the additional Child SA (it is the more specific policy).
    const now = (await a.listSas())[0]!.children;
    expect(now.find((c) => c.name === 'ping')!.spiIn).not.toBe(pingSa.spiIn);
    for (const d of [a, b]) {
      const stats = (await d.ctl('stats')) as { rekeys: { ike: number; child: number; optimized: number } };
      expect(stats.rekeys.child).toBe(EXTRA_REKEYS);
      expect(stats.rekeys.optimized).toBe(EXTRA_REKEYS);
    }
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    for (const ns of [site.gwA, site.gwB]) expect((await kernelCounts(ns)).sas).toBe(0);
  });
});
