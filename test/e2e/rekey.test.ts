// Child SA and IKE SA rekeys through the daemon under a continuous ping flood: not one
// packet may be lost (make-before-break), and the kernel is clean afterwards.
import { afterEach, describe, expect, it } from 'vitest';
import type { Netns } from '../helpers/netns.js';
import { connectionYaml, e2eUnavailable, installedChildren, kernelCounts, removeDir, siteToSite, sleep, startIkev2d, startPing, type Ikev2d } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e rekeys: ${why}`);

const CHILD_REKEYS = Number(process.env.IKEV2D_E2E_CHILD_REKEYS ?? 100);
const IKE_REKEYS = Number(process.env.IKEV2D_E2E_IKE_REKEYS ?? 10);

const daemons: Ikev2d[] = [];
const namespaces: Netns[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) {
    await d.stop().catch(() => undefined);
    removeDir(d.dir);
  }
  for (const ns of namespaces.splice(0)) await ns.delete();
});

describe.skipIf(why !== null)('rekeys under load', () => {
  it(`${CHILD_REKEYS} Child SA and ${IKE_REKEYS} IKE SA rekeys with zero lost packets`, async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const grace = '  rekey_grace_time: 3s\n';
    const b = await startIkev2d(site.gwB, 'gwb', {
      listen: [site.gwBOuter], extraDaemon: grace,
      connections: connectionYaml({ name: 'site', local: site.gwBOuter, remote: site.gwAOuter, localId: 'gw-b.example', remoteId: 'gw-a.example', children: [{ name: 'lan', localTs: [site.lanB], remoteTs: [site.lanA] }] }),
    });
    daemons.push(b);
    const a = await startIkev2d(site.gwA, 'gwa', {
      listen: [site.gwAOuter], extraDaemon: grace,
      connections: connectionYaml({ name: 'site', local: site.gwAOuter, remote: site.gwBOuter, localId: 'gw-a.example', remoteId: 'gw-b.example', children: [{ name: 'lan', localTs: [site.lanA], remoteTs: [site.lanB], startAction: 'start' }] }),
    });
    daemons.push(a);
    await a.waitChildren();
    await b.waitChildren();

    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    const seen = new Set<number>();
    for (let i = 0; i < CHILD_REKEYS; i++) {
      // alternate the initiator of the rekey between the gateways
      const d = i % 2 === 0 ? a : b;
      const before = installedChildren(await d.listSas())[0]!;
      seen.add(before.spiIn);
      await d.ctl('rekey', 'child', String(before.childId));
      await d.waitFor(`Child SA rekey ${i + 1}`, (s) => installedChildren(s).some((c) => !seen.has(c.spiIn)) && !s.some((x) => x.children.some((c) => c.state === 'rekeying')), 60_000);
    }
    for (let i = 0; i < IKE_REKEYS; i++) {
      const d = i % 2 === 0 ? a : b;
      const old = (await d.listSas()).find((s) => s.state === 'established')!;
      await d.ctl('rekey', 'ike', old.ikeSaId);
      await d.waitFor(`IKE SA rekey ${i + 1}`, (s) => s.length === 1 && s[0]!.state === 'established' && s[0]!.ikeSaId !== old.ikeSaId && installedChildren(s).length === 1, 60_000);
    }
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
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    for (const ns of [site.gwA, site.gwB]) {
      const k = await kernelCounts(ns);
      expect(k.sas, k.text).toBe(0);
      expect(k.policies, k.text).toBe(0);
    }
  });
});
