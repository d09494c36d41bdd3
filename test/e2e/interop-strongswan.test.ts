// ikev2d against strongSwan's charon (Debian), both directions: site-to-site tunnel,
// ping through ESP, a Child SA rekey started by each side, IKE SA rekey, clean shutdown.
import { describe, expect, it } from 'vitest';
import { ping } from '../helpers/netns.js';
import { startStrongswan, strongswanUnavailable, type Strongswan } from '../helpers/strongswan.js';
import { cleanupAfterEach, connectionYaml, e2eUnavailable, espPackets, installedChildren, kernelCounts, siteToSite, sleep, startIkev2d } from './harness.js';

const why = (await e2eUnavailable()) ?? strongswanUnavailable();
if (why) console.warn(`SKIPPED: ikev2d <-> strongSwan interop: ${why}`);

const PSK = 'interop-pre-shared-key-0123456789abcdef';
const swans: Strongswan[] = [];
// the reference peers stop first, then the daemons and namespaces
const { daemons, namespaces } = cleanupAfterEach(async () => {
  for (const s of swans.splice(0)) await s.stop().catch(() => undefined);
});

describe.skipIf(why !== null)('ikev2d <-> strongSwan', () => {
  for (const initiator of ['ikev2d', 'strongswan'] as const) {
    it(`${initiator} initiates: tunnel, ping through ESP, rekeys from both sides`, async () => {
      const site = await siteToSite();
      namespaces.push(...site.all);
      // gw-a runs ikev2d, gw-b runs charon
      const swan = await startStrongswan(site.gwB.name, {
        name: 'site', localAddrs: [site.gwBOuter], remoteAddrs: [site.gwAOuter], localId: 'gw-b.example', remoteId: 'gw-a.example', psk: PSK,
        proposals: ['aes256gcm16-prfsha384-x25519'],
        children: [{ name: 'lan', localTs: [site.lanB], remoteTs: [site.lanA], espProposals: ['aes256gcm16-x25519'], startAction: 'none' }],
      });
      swans.push(swan);
      const d = await startIkev2d(site.gwA, 'gwa', {
        listen: [site.gwAOuter],
        connections: connectionYaml({
          name: 'site', local: site.gwAOuter, remote: site.gwBOuter, localId: 'gw-a.example', remoteId: 'gw-b.example', psk: PSK,
          children: [{ name: 'lan', localTs: [site.lanA], remoteTs: [site.lanB], startAction: initiator === 'ikev2d' ? 'start' : 'none' }],
        }),
      });
      daemons.push(d);
      if (initiator === 'strongswan') await swan.initiate({ child: 'lan', timeoutSec: 60 });
      await d.waitChildren(1, 90_000);

      const p = await ping(site.hostA, site.hostBAddr, { count: 5, timeoutS: 5 });
      expect(p.received, p.output).toBe(5);
      expect(await espPackets(site.gwA)).toBeGreaterThanOrEqual(10);
      const theirs = await swan.listSas();
      expect(theirs[0]!.children[0]!.packetsIn).toBeGreaterThanOrEqual(5);

      // Child SA rekey started by ikev2d, then by charon
      let child = installedChildren(await d.listSas())[0]!;
      await d.ctl('rekey', 'child', String(child.childId));
      await d.waitFor('Child SA rekeyed by ikev2d', (s) => installedChildren(s).some((c) => c.spiIn !== child.spiIn), 60_000);
      child = installedChildren(await d.listSas())[0]!;
      await swan.rekey({ child: 'lan' });
      await d.waitFor('Child SA rekeyed by charon', (s) => installedChildren(s).some((c) => c.spiIn !== child.spiIn), 60_000);
      // IKE SA rekey by ikev2d
      const ike = (await d.listSas())[0]!;
      await d.ctl('rekey', 'ike', ike.ikeSaId);
      await d.waitFor('IKE SA rekeyed', (s) => s.length === 1 && s[0]!.ikeSaId !== ike.ikeSaId && s[0]!.state === 'established', 60_000);
      await sleep(500);
      const p2 = await ping(site.hostA, site.hostBAddr, { count: 5, timeoutS: 5 });
      expect(p2.received, p2.output).toBe(5);

      expect(await d.stop()).toBe(0);
      const k = await kernelCounts(site.gwA);
      expect(k.sas, k.text).toBe(0);
      expect(k.policies, k.text).toBe(0);
      // charon received our Deletes
      const end = Date.now() + 30_000;
      while (Date.now() < end && (await swan.listSas()).length > 0) await sleep(250);
      expect(await swan.listSas()).toEqual([]);
    });
  }
});
