// A post-quantum tunnel over a 1280-octet MTU: X25519 + ML-KEM-768 + ML-KEM-1024 for the IKE SA (RFC 9370
// ADDKE in IKE_INTERMEDIATE), X25519 + ML-KEM-768 for the Child SAs (IKE_FOLLOWUP_KE after every
// CREATE_CHILD_SA) and a mandatory PPK (RFC 8784). The ML-KEM messages do not fit 1280 octets, so they
// travel as RFC 7383 fragments: counted on the wire by nftables in each gateway, with no IP fragment
// at all. Rekeyed under a ping flood with zero loss; a second Child SA is created with IKE_FOLLOWUP_KE.
import { describe, expect, it } from 'vitest';
import type { Netns } from '../helpers/netns.js';
import { connectionYaml, e2eUnavailable, installedChildren, kernelCounts, siteToSite, sleep, startGateways, startPing, cleanupAfterEach, stopGatewaysCleanly } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e post-quantum tunnel over a small MTU: ${why}`);

const { daemons, namespaces } = cleanupAfterEach();

const MTU = 1280;
const IKE_PROPOSAL = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024';
const ESP_PROPOSAL = 'aes256gcm16-x25519-ke1_mlkem768';
const PPK = `    ppk: { keys: [{ id: e2e-ppk, key: "0x${'a5'.repeat(32)}" }], required: yes }\n    require_pq: yes\n`;

function pqYaml(o: Parameters<typeof connectionYaml>[0]): string {
  return connectionYaml({ ...o, ike: `      fragmentation: yes\n      fragment_size: ${MTU}\n`, extra: PPK })
    .replace('proposals: [aes256gcm16-prfsha384-x25519]', `proposals: [${IKE_PROPOSAL}]`)
    .replaceAll('esp_proposals: [aes256gcm16-x25519]', `esp_proposals: [${ESP_PROPOSAL}]`);
}

/**
 * nftables counters on a gateway's received IKE datagrams (UDP port 500, no non-ESP marker: no NAT),
 * before any defragmentation (prerouting, priority -450): RFC 7383 fragments (first payload SKF, 53) per
 * exchange type, and IP fragments of any kind.
 */
async function countIke(ns: Netns): Promise<void> {
  await ns.sh(
    [
      'nft add table inet ikefrag',
      `nft add chain inet ikefrag pre '{ type filter hook prerouting priority -450; }'`,
      // IKE header: Next Payload at octet 16, Exchange Type at 18 of the UDP payload (th = UDP header, 8 octets).
      `nft add rule inet ikefrag pre udp dport 500 @th,192,8 53 @th,208,8 43 counter comment '"skf-intermediate"'`,
      `nft add rule inet ikefrag pre udp dport 500 @th,192,8 53 @th,208,8 44 counter comment '"skf-followup"'`,
      `nft add rule inet ikefrag pre udp dport 500 @th,192,8 53 counter comment '"skf-any"'`,
      `nft add rule inet ikefrag pre udp dport 500 counter comment '"ike-any"'`,
      `nft add rule inet ikefrag pre ip frag-off '&' 0x3fff != 0 counter comment '"ip-fragment"'`,
    ].join(' && '),
  );
}

async function ikeCounters(ns: Netns): Promise<Record<string, number>> {
  const text = (await ns.exec(['nft', 'list', 'chain', 'inet', 'ikefrag', 'pre'])).stdout;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/counter packets (\d+) bytes \d+ comment "([a-z-]+)"/g)) out[m[2]!] = Number(m[1]);
  return out;
}

describe.skipIf(why !== null)('post-quantum tunnel over a 1280-octet MTU (RFC 7383 fragmentation)', () => {
  it('ML-KEM rounds in fragmented IKE_INTERMEDIATE and IKE_FOLLOWUP_KE; 4 Child SA and 2 IKE SA rekeys under a flood with zero loss; a new Child SA via IKE_FOLLOWUP_KE', async () => {
    const site = await siteToSite({ wanMtu: MTU });
    namespaces.push(...site.all);
    for (const gw of [site.gwA, site.gwB]) {
      expect((await gw.exec(['ip', 'link', 'show', 'wan'])).stdout).toContain(`mtu ${MTU}`);
      await countIke(gw);
    }
    const { a, b } = await startGateways(site, daemons, {
      extraDaemon: '  rekey_grace_time: 3s\n',
      children: (side, localLan, remoteLan) => [
        { name: 'lan', localTs: [localLan], remoteTs: [remoteLan], ...(side === 'a' ? { startAction: 'start' as const } : {}) },
        { name: 'dmz', localTs: [side === 'a' ? '10.11.0.0/24' : '10.12.0.0/24'], remoteTs: [side === 'a' ? '10.12.0.0/24' : '10.11.0.0/24'] },
      ],
      yaml: (_side, o) => pqYaml(o),
    });
    await a.waitChildren();
    await b.waitChildren();
    const sa = (await a.listSas())[0]!;
    expect(sa.suite).toContain('ML-KEM-768');
    expect(sa.suite).toContain('ML-KEM-1024');
    // IKE_INTERMEDIATE: the ML-KEM-1024 round does not fit 1280 octets, both directions were fragmented.
    const afterSetup = { a: await ikeCounters(site.gwA), b: await ikeCounters(site.gwB) };
    expect(afterSetup.b['skf-intermediate'], JSON.stringify(afterSetup)).toBeGreaterThanOrEqual(2);
    expect(afterSetup.a['skf-intermediate'], JSON.stringify(afterSetup)).toBeGreaterThanOrEqual(2);

    const flood = startPing(site.hostA, site.hostBAddr, 0.01);
    await sleep(1000);
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const d = i % 2 === 0 ? a : b;
      const before = installedChildren(await d.listSas()).find((c) => c.name === 'lan')!;
      seen.add(before.spiIn);
      await d.ctl('rekey', 'child', String(before.childId));
      await d.waitFor(`Child SA rekey ${i + 1}`, (s) => installedChildren(s).some((c) => c.name === 'lan' && !seen.has(c.spiIn)) && !s.some((x) => x.children.some((c) => c.state === 'rekeying')), 60_000);
    }
    for (let i = 0; i < 2; i++) {
      const d = i % 2 === 0 ? a : b;
      const old = (await d.listSas()).find((s) => s.state === 'established')!;
      await d.ctl('rekey', 'ike', old.ikeSaId);
      await d.waitFor(`IKE SA rekey ${i + 1}`, (s) => s.length === 1 && s[0]!.state === 'established' && s[0]!.ikeSaId !== old.ikeSaId && installedChildren(s).length === 1, 60_000);
    }
    await sleep(1000);
    const r = await flood.stop();
    expect(r.transmitted, r.output).toBeGreaterThan(100);
    expect(r.received, `lost ${r.transmitted - r.received} of ${r.transmitted}`).toBe(r.transmitted);

    // A new Child SA whose proposal has an ADDKE: CREATE_CHILD_SA + IKE_FOLLOWUP_KE, then installed on both.
    await a.ctl('initiate', 'site', 'dmz');
    await a.waitFor('the dmz Child SA', (s) => installedChildren(s).some((c) => c.name === 'dmz'), 60_000);
    await b.waitFor('the dmz Child SA', (s) => installedChildren(s).some((c) => c.name === 'dmz'), 60_000);
    expect((await kernelCounts(site.gwA)).sas).toBeGreaterThanOrEqual(4);

    // IKE_FOLLOWUP_KE (Child SA rekeys, IKE SA rekeys, the new Child SA) was fragmented both ways, and
    // no IKE datagram needed IP fragmentation.
    const end = { a: await ikeCounters(site.gwA), b: await ikeCounters(site.gwB) };
    const all = JSON.stringify(end);
    console.info(`IKE datagrams received (nftables): ${all}; ping ${r.received}/${r.transmitted}`);
    expect(end.a['skf-followup'], all).toBeGreaterThanOrEqual(3);
    expect(end.b['skf-followup'], all).toBeGreaterThanOrEqual(3);
    expect(end.a['ip-fragment'], all).toBe(0);
    expect(end.b['ip-fragment'], all).toBe(0);
    expect(end.a['ike-any']! + end.b['ike-any']!, all).toBeGreaterThan(end.a['skf-any']! + end.b['skf-any']!);

    await stopGatewaysCleanly(site, a, b);
  });
});
