// IKE SA reauthentication (RFC 7296 §2.8.3) through the daemon under a continuous ping flood:
// a new IKE SA with fresh authentication, the Child SA moved make-before-break, not one packet lost,
// and the kernel holds one SA pair once the grace period is over.
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, e2eUnavailable, installedChildren, kernelCounts, siteToSite, sleep, startGateways, startPing, stopGatewaysCleanly } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e reauthentication: ${why}`);

const REAUTHS = Number(process.env.IKEV2D_E2E_REAUTHS ?? 5);

const { daemons, namespaces } = cleanupAfterEach();

describe.skipIf(why !== null)('reauthentication under load', () => {
  it(`${REAUTHS} reauthentications (ikev2d ctl rekey ike --reauth, from both gateways) with zero lost packets`, async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const { a, b } = await startGateways(site, daemons, { extraDaemon: '  rekey_grace_time: 3s\n' });
    await a.waitChildren();
    await b.waitChildren();

    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    const gateways = [a, b];
    // The last one by the responder of the IKE SA in place: deferred by the engine until the IKE SA is
    // older than the window in which the peer would take it for a simultaneous start (~130 s).
    for (let i = 0; i < REAUTHS; i++) {
      const d = i === REAUTHS - 1 ? b : a;
      const old = (await d.listSas()).find((s) => s.state === 'established')!;
      const oldSpis = new Set(installedChildren([old]).map((c) => c.spiIn));
      await d.ctl('rekey', 'ike', old.ikeSaId, '--reauth');
      await d.waitFor(`reauthentication ${i + 1}`, (s) => s.length === 1 && s[0]!.state === 'established' && s[0]!.ikeSaId !== old.ikeSaId && installedChildren(s).length === 1 && !oldSpis.has(installedChildren(s)[0]!.spiIn), 200_000);
      await sleep(300);
    }
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);
    for (const d of gateways) expect(await d.listSas()).toHaveLength(1);
    // after the grace time only one SA pair and one policy set per side remain
    await sleep(4000);
    for (const ns of [site.gwA, site.gwB]) expect((await kernelCounts(ns)).sas).toBe(2);
    await stopGatewaysCleanly(site, a, b);
  });
});
