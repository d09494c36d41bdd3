// Two ikev2d gateways authenticating with certificates (RFC 7427 signatures: ECDSA P-256 through an
// intermediate CA on one side, Ed25519 on the other), tunnel up, traffic through ESP, a Child SA rekey.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ping } from '../helpers/netns.js';
import { connectionYaml, e2eUnavailable, espPackets, installedChildren, siteToSite, startGateways, cleanupAfterEach } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e certificates: ${why}`);

// Only when the test runs: the hooks of a file whose tests are all skipped do not run either.
const pki = why === null ? mkdtempSync(join(tmpdir(), 'ikev2d-e2e-pki-')) : '';
afterAll(() => {
  if (pki) rmSync(pki, { recursive: true, force: true });
});
const { daemons, namespaces } = cleanupAfterEach();

/** The harness writes PSK connections; swap in certificate authentication for both ends. */
function certYaml(o: Parameters<typeof connectionYaml>[0], me: { id: string; cert: string[]; key: string }, peerId: string): string {
  return connectionYaml({ ...o, localId: me.id, remoteId: peerId })
    .replace(/local: \{ addrs: \[("[^"]+")\], id: [^ ]+ \}/, `local: { addrs: [$1], id: ${me.id}, auth: pubkey, cert: [${me.cert.map((f) => join(pki, f)).join(', ')}], key: ${join(pki, me.key)} }`)
    .replace(/remote: \{ addrs: \[("[^"]+")\], id: [^ ]+ \}/, `remote: { addrs: [$1], id: ${peerId}, auth: pubkey, ca: [${join(pki, 'ca.crt')}] }`)
    .replace(/\n    psk: .*\n/, '\n');
}

describe.skipIf(why !== null)('certificate authentication between two gateways', () => {
  it('ECDSA (via an intermediate CA) <-> Ed25519: tunnel up, ping through ESP, Child SA rekey', async () => {
    execFileSync('bash', [join(process.cwd(), 'scripts/gen-test-certs.sh'), pki], { stdio: 'pipe' });
    const gw1 = { id: 'gw1.example.org', cert: ['gw1.crt', 'int.crt'], key: 'gw1.key' };
    const gw3 = { id: 'gw3.example.org', cert: ['gw3-ed25519.crt'], key: 'gw3-ed25519.key' };
    const site = await siteToSite();
    namespaces.push(...site.all);
    // gw-a is gw1 (ECDSA via the intermediate CA), gw-b is gw3 (Ed25519)
    const { a, b } = await startGateways(site, daemons, { yaml: (side, o) => (side === 'a' ? certYaml(o, gw1, gw3.id) : certYaml(o, gw3, gw1.id)) });
    await a.waitChildren();
    await b.waitChildren();
    const r = await ping(site.hostA, site.hostBAddr, { count: 5, intervalS: 0.2, timeoutS: 5 });
    expect(r.received, r.output).toBe(5);
    expect(await espPackets(site.gwA)).toBeGreaterThanOrEqual(5);
    const before = installedChildren(await a.listSas())[0]!;
    await a.ctl('rekey', 'child', String(before.childId));
    await a.waitFor('Child SA rekey', (s) => installedChildren(s).some((c) => c.spiIn !== before.spiIn), 60_000);
    const r2 = await ping(site.hostA, site.hostBAddr, { count: 3, intervalS: 0.2, timeoutS: 5 });
    expect(r2.received, r2.output).toBe(3);
  });
});
