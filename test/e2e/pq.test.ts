// A post-quantum tunnel between two ikev2d gateways: X25519 + ML-KEM-768 in IKE_INTERMEDIATE
// (RFC 9242/9370) and a mandatory PPK (RFC 8784), rekeyed under a ping flood with zero loss;
// the IKE SA rekeys continue with IKE_FOLLOWUP_KE for the ML-KEM round.
import { describe, expect, it } from 'vitest';
import { connectionYaml, e2eUnavailable, installedChildren, kernelCounts, rekeyChildren, rekeyIkeSas, siteToSite, sleep, startGateways, startPing, cleanupAfterEach, stopGatewaysCleanly } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e post-quantum tunnel: ${why}`);

const { daemons, namespaces } = cleanupAfterEach();

const PQ_PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const PPK = `    ppk: { keys: [{ id: e2e-ppk, key: "0x${'5a'.repeat(32)}" }], required: yes }\n    require_pq: yes\n`;

function pqYaml(o: Parameters<typeof connectionYaml>[0]): string {
  return connectionYaml({ ...o, extra: PPK }).replace('proposals: [aes256gcm16-prfsha384-x25519]', `proposals: [${PQ_PROPOSAL}]`);
}

describe.skipIf(why !== null)('post-quantum tunnel', () => {
  it('X25519 + ML-KEM-768 with a mandatory PPK: up, 4 Child SA and 2 IKE SA rekeys under a flood with zero loss', async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    const { a, b } = await startGateways(site, daemons, { extraDaemon: '  rekey_grace_time: 3s\n', yaml: (_side, o) => pqYaml(o) });
    await a.waitChildren();
    await b.waitChildren();
    const sa = (await a.listSas())[0]!;
    expect(sa.suite).toContain('ML-KEM-768');

    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    await rekeyChildren([a, b], 4);
    await rekeyIkeSas([a, b], 2);
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);
    expect((await a.listSas())[0]!.suite).toContain('ML-KEM-768');
    await stopGatewaysCleanly(site, a, b);
  });

  it('a gateway without the PPK cannot bring the tunnel up (no silent classic fallback)', async () => {
    const site = await siteToSite();
    namespaces.push(...site.all);
    // gw-a (the initiator) alone has the PPK and requires it
    const { a } = await startGateways(site, daemons, { yaml: (side, o) => (side === 'a' ? pqYaml(o) : connectionYaml(o)) });
    await sleep(8000);
    expect(installedChildren(await a.listSas())).toHaveLength(0);
    expect((await kernelCounts(site.gwA)).sas).toBe(0);
    expect((await kernelCounts(site.gwB)).sas).toBe(0);
  });
});
