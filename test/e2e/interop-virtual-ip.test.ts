// Virtual IPs (RFC 7296 §2.19) between ikev2d and strongSwan's charon, both ways: charon as a road
// warrior asking ikev2d's pool for an address, and ikev2d asking charon's pool; each time a ping
// from the virtual IP to a host behind the gateway goes through ESP.
//
//   rw (192.0.2.1) == gw (192.0.2.2) -- hostb (10.2.0.10)
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectVeth, createNetns, ping, type Netns } from '../helpers/netns.js';
import { startStrongswan, strongswanUnavailable, type Strongswan } from '../helpers/strongswan.js';
import { cleanupAfterEach, e2eUnavailable, espPackets, sleep, startIkev2d, type Ikev2d } from './harness.js';

const why = (await e2eUnavailable()) ?? strongswanUnavailable();
if (why) console.warn(`SKIPPED: virtual IP interop with strongSwan: ${why}`);

/** The daemon logs an event once the kernel actions before it are done: list-sas can answer earlier. */
async function waitLogged(d: Ikev2d, re: RegExp, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!d.logged(re) && Date.now() < end) await sleep(200);
  return d.logged(re);
}

const PSK = 'interop-virtual-ip-pre-shared-key-0123456789';
const swans: Strongswan[] = [];
// the reference peers stop first, then the daemons and namespaces
const { daemons, namespaces } = cleanupAfterEach(async () => {
  for (const s of swans.splice(0)) await s.stop().catch(() => undefined);
});

async function topology(pool: string) {
  const [rw, gw, hostB] = [await createNetns('rw'), await createNetns('gw'), await createNetns('hostb')];
  namespaces.push(rw, gw, hostB);
  await connectVeth({ ns: rw, ifname: 'wan', v4: '192.0.2.1/24' }, { ns: gw, ifname: 'wan', v4: '192.0.2.2/24' });
  await connectVeth({ ns: gw, ifname: 'lan', v4: '10.2.0.1/24' }, { ns: hostB, ifname: 'eth0', v4: '10.2.0.10/24' });
  await hostB.exec(['ip', 'route', 'add', 'default', 'via', '10.2.0.1']);
  await gw.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // The answers to the virtual IPs must be routable for the XFRM lookup to happen at all.
  await gw.exec(['ip', 'route', 'add', pool, 'via', '192.0.2.1']);
  return { rw, gw, hostB };
}

/** Pings 10.2.0.10 from `ns` until it answers (routes may follow the Child SA by a moment). */
async function pingThrough(ns: Netns): Promise<void> {
  let p = await ping(ns, '10.2.0.10', { count: 3, intervalS: 0.2, timeoutS: 3 });
  for (let i = 0; i < 10 && p.received < 3; i++) {
    await sleep(500);
    p = await ping(ns, '10.2.0.10', { count: 3, intervalS: 0.2, timeoutS: 3 });
  }
  expect(p.received, p.output).toBe(3);
}

describe.skipIf(why !== null)('virtual IPs with strongSwan', () => {
  it('charon asks ikev2d for a virtual IP: 10.99.0.1 and a DNS server, narrowed TSi, ping through ESP', async () => {
    const { rw, gw } = await topology('10.99.0.0/24');
    const g = await startIkev2d(gw, 'gw', {
      listen: ['192.0.2.2'],
      connections: `  rw:
    local: { addrs: [192.0.2.2], id: gw.example }
    remote: { addrs: ["%any"], id: alice.example }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519] }
    passive: yes
    pools: [10.99.0.0/24]
    dns: [10.2.0.53]
    children:
      lan:
        local_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16-x25519]
`,
    });
    daemons.push(g);
    const swan = await startStrongswan(rw.name, {
      name: 'home', localAddrs: ['192.0.2.1'], remoteAddrs: ['192.0.2.2'], localId: 'alice.example', remoteId: 'gw.example', psk: PSK,
      proposals: ['aes256gcm16-prfsha384-x25519'], extra: ['vips = 0.0.0.0'],
      children: [{ name: 'lan', localTs: ['dynamic'], remoteTs: ['10.2.0.0/24'], espProposals: ['aes256gcm16-x25519'] }],
    });
    swans.push(swan);
    await swan.initiate({ child: 'lan', timeoutSec: 60 });
    const sas = await g.waitChildren(1, 90_000);
    expect((sas[0] as unknown as { virtualIps?: string[] }).virtualIps).toEqual(['10.99.0.1']);
    const theirs = await swan.listSas();
    expect(theirs[0]!.children[0]!.localTs).toEqual(['10.99.0.1/32']);
    expect(swan.log()).toMatch(/installing new virtual IP 10\.99\.0\.1/);
    // charon took the DNS server we sent (without its resolve plugin it cannot install it).
    expect(swan.log()).toMatch(/parsed IKE_AUTH response 1 \[ IDr AUTH CPRP\(ADDR DNS\) SA TSi TSr \]/);
    expect(swan.log()).toMatch(/processing INTERNAL_IP4_DNS attribute/);
    const before = await espPackets(gw);
    await pingThrough(rw);
    expect(await espPackets(gw)).toBeGreaterThanOrEqual(before + 6);
  });

  it('ikev2d asks charon for a virtual IP from its pool, routes from it, ping through ESP', async () => {
    const { rw, gw } = await topology('10.98.0.0/24');
    const swan = await startStrongswan(gw.name, {
      name: 'rw', localAddrs: ['192.0.2.2'], remoteAddrs: ['%any'], localId: 'gw.example', remoteId: 'alice.example', psk: PSK,
      proposals: ['aes256gcm16-prfsha384-x25519'], extra: ['pools = rwpool'],
      children: [{ name: 'lan', localTs: ['10.2.0.0/24'], remoteTs: ['dynamic'], espProposals: ['aes256gcm16-x25519'] }],
    });
    swans.push(swan);
    appendFileSync(join(swan.dir, 'swanctl.conf'), 'pools {\n  rwpool {\n    addrs = 10.98.0.0/24\n    dns = 10.2.0.53\n  }\n}\n');
    await swan.load();
    const r = await startIkev2d(rw, 'rw', {
      listen: ['192.0.2.1'],
      connections: `  home:
    local: { addrs: [192.0.2.1], id: alice.example, vips: [0.0.0.0] }
    remote: { addrs: [192.0.2.2], id: gw.example }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519] }
    children:
      lan:
        remote_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16-x25519]
        start_action: start
`,
    });
    daemons.push(r);
    const sas = (await r.waitChildren(1, 90_000)) as unknown as { virtualIps?: string[]; children: { localTs: string[] }[] }[];
    const vip = sas[0]!.virtualIps?.[0];
    expect(vip, r.tail(60)).toMatch(/^10\.98\.0\.\d+$/);
    expect(sas[0]!.children[0]!.localTs).toEqual([`${vip}-${vip}`]);
    expect(await waitLogged(r, /DNS 10\.2\.0\.53/), `${r.tail(30)}\n--- charon ---\n${swan.log().split('\n').filter((l) => /IKE_AUTH|CP|attribute|pool|lease|virtual/i.test(l)).join('\n')}`).toBe(true);
    expect((await rw.exec(['ip', '-4', 'addr', 'show', 'dev', 'lo'])).stdout).toContain(`inet ${vip}/32`);
    const before = await espPackets(rw);
    await pingThrough(rw);
    expect(await espPackets(rw)).toBeGreaterThanOrEqual(before + 6);
    expect(await r.stop()).toBe(0);
    expect((await rw.exec(['ip', '-4', 'addr', 'show', 'dev', 'lo'])).stdout).not.toContain(vip!);
  });
});
