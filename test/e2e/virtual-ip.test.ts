// A road warrior gets a virtual IP from the gateway's pool (RFC 7296 §2.19) and pings a host behind
// the gateway from it, through ESP: the address is on its loopback device and a route in table 220
// makes it the source of the host's traffic into the tunnel while the IKE SA lives; both are gone
// after SIGTERM.
//
//   rw (192.0.2.1, VIP on lo) == gw (192.0.2.2) -- hostb (10.2.0.10)
import { describe, expect, it } from 'vitest';
import { connectVeth, createNetns, ping } from '../helpers/netns.js';
import { e2eUnavailable, espPackets, kernelCounts, sleep, startIkev2d, type Ikev2d, cleanupAfterEach } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e virtual IPs: ${why}`);

const { daemons, namespaces } = cleanupAfterEach();

/** The daemon logs an event once the kernel actions before it are done: list-sas can answer earlier. */
async function waitLogged(d: Ikev2d, re: RegExp, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!d.logged(re) && Date.now() < end) await sleep(200);
  return d.logged(re);
}

const PSK = 'e2e-virtual-ip-pre-shared-key-0123456789';

const gatewayYaml = `  rw:
    local: { addrs: [192.0.2.2], id: gw.example }
    remote: { addrs: ["%any"], id: alice.example }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], rekey_time: 4h }
    passive: yes
    pools: [10.99.0.0/24]
    dns: [10.2.0.53]
    children:
      lan:
        local_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16-x25519]
`;

const roadWarriorYaml = `  home:
    local: { addrs: [192.0.2.1], id: alice.example, vips: [0.0.0.0] }
    remote: { addrs: [192.0.2.2], id: gw.example }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], rekey_time: 4h }
    children:
      lan:
        remote_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16-x25519]
        start_action: start
`;

interface SaWithVip {
  state: string;
  virtualIps?: string[];
  children: { state: string; localTs: string[]; remoteTs: string[] }[];
}

describe.skipIf(why !== null)('virtual IP from a pool', () => {
  it('the road warrior gets 10.99.0.1, pings through the tunnel from it without choosing a source, and loses it at SIGTERM', async () => {
    const [rw, gw, hostB] = [await createNetns('rw'), await createNetns('gw'), await createNetns('hostb')];
    namespaces.push(rw, gw, hostB);
    await connectVeth({ ns: rw, ifname: 'wan', v4: '192.0.2.1/24' }, { ns: gw, ifname: 'wan', v4: '192.0.2.2/24' });
    await connectVeth({ ns: gw, ifname: 'lan', v4: '10.2.0.1/24' }, { ns: hostB, ifname: 'eth0', v4: '10.2.0.10/24' });
    await hostB.exec(['ip', 'route', 'add', 'default', 'via', '10.2.0.1']);
    await gw.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // The inner destinations must be routable for the XFRM lookup to happen at all.
    await gw.exec(['ip', 'route', 'add', '10.99.0.0/24', 'via', '192.0.2.1']);
    await rw.exec(['ip', 'route', 'add', '10.2.0.0/24', 'via', '192.0.2.2']);

    const g = await startIkev2d(gw, 'gw', { listen: ['192.0.2.2'], connections: gatewayYaml });
    daemons.push(g);
    const r = await startIkev2d(rw, 'rw', { listen: ['192.0.2.1'], connections: roadWarriorYaml });
    daemons.push(r);
    const sas = (await r.waitChildren()) as unknown as SaWithVip[];
    const gsas = (await g.waitChildren()) as unknown as SaWithVip[];

    expect(sas[0]!.virtualIps).toEqual(['10.99.0.1']);
    expect(sas[0]!.children[0]!.localTs).toEqual(['10.99.0.1-10.99.0.1']);
    expect(gsas[0]!.virtualIps).toEqual(['10.99.0.1']);
    expect(gsas[0]!.children[0]!.remoteTs).toEqual(['10.99.0.1-10.99.0.1']);
    expect((await rw.exec(['ip', '-4', 'addr', 'show', 'dev', 'lo'])).stdout).toMatch(/inet 10\.99\.0\.1\/32/);
    expect(await waitLogged(r, /virtual IP 10\.99\.0\.1 assigned by the peer, DNS 10\.2\.0\.53/), r.tail(30)).toBe(true);
    // The policies carry the virtual IP as the inner source.
    expect((await rw.exec(['ip', 'xfrm', 'policy'])).stdout).toMatch(/src 10\.99\.0\.1\/32 dst 10\.2\.0\.0\/24/);

    // A route in table 220 gives the host's own traffic into the tunnel the virtual IP as source
    // (added right after the policies; list-sas may answer before that).
    let route = '';
    for (let i = 0; i < 60 && !/src 10\.99\.0\.1/.test(route); i++) {
      if (i > 0) await sleep(250);
      route = (await rw.exec(['ip', 'route', 'get', '10.2.0.10'])).stdout;
    }
    expect(route, r.tail(60)).toMatch(/src 10\.99\.0\.1/);
    const before = await espPackets(rw);
    const p = await ping(rw, '10.2.0.10', { count: 5, intervalS: 0.2, timeoutS: 5 });
    expect(p.received, p.output).toBe(5);
    expect(await espPackets(rw)).toBeGreaterThanOrEqual(before + 10);
    const bound = await ping(rw, '10.2.0.10', { count: 3, intervalS: 0.2, timeoutS: 5, src: '10.99.0.1' });
    expect(bound.received, bound.output).toBe(3);
    // hostb saw the virtual IP as the source: it answered to it through the gateway.
    expect((await gw.exec(['ip', '-s', 'xfrm', 'state'])).stdout).toMatch(/src 192\.0\.2\.2 dst 192\.0\.2\.1/);

    expect(await r.stop()).toBe(0);
    expect((await rw.exec(['ip', '-4', 'addr', 'show', 'dev', 'lo'])).stdout).not.toMatch(/10\.99\.0\.1/);
    expect((await rw.exec(['ip', 'route', 'show', 'table', '220'])).stdout.trim()).toBe('');
    expect((await kernelCounts(rw)).policies).toBe(0);
    await g.waitFor("IKE SA deleted after the road warrior's Delete", (s) => s.length === 0, 30_000);
    expect((await kernelCounts(gw)).sas).toBe(0);
  });

  it('IPv4 and IPv6 virtual IPs over an IPv4 tunnel: both addresses, both routed, pings of both versions through ESP', async () => {
    const [rw, gw, hostB] = [await createNetns('rw'), await createNetns('gw'), await createNetns('hostb')];
    namespaces.push(rw, gw, hostB);
    await connectVeth({ ns: rw, ifname: 'wan', v4: '192.0.2.1/24' }, { ns: gw, ifname: 'wan', v4: '192.0.2.2/24' });
    await connectVeth({ ns: gw, ifname: 'lan', v4: '10.2.0.1/24', v6: 'fd00:2::1/64' }, { ns: hostB, ifname: 'eth0', v4: '10.2.0.10/24', v6: 'fd00:2::10/64' });
    await hostB.exec(['ip', 'route', 'add', 'default', 'via', '10.2.0.1']);
    await hostB.exec(['ip', '-6', 'route', 'add', 'default', 'via', 'fd00:2::1']);
    await gw.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await gw.exec(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    await gw.exec(['ip', 'route', 'add', '10.99.0.0/24', 'via', '192.0.2.1']);
    await gw.exec(['ip', '-6', 'route', 'add', 'fd00:99::/120', 'dev', 'wan']);

    const dual = (yaml: string, from: RegExp, to: string) => yaml.replace(from, to);
    const g = await startIkev2d(gw, 'gw', {
      listen: ['192.0.2.2'],
      connections: dual(dual(gatewayYaml, /pools: \[10\.99\.0\.0\/24\]/, 'pools: [10.99.0.0/24, "fd00:99::/120"]'), /local_ts: \[10\.2\.0\.0\/24\]/, 'local_ts: [10.2.0.0/24, "fd00:2::/64"]'),
    });
    daemons.push(g);
    const r = await startIkev2d(rw, 'rw', {
      listen: ['192.0.2.1'],
      connections: dual(dual(roadWarriorYaml, /vips: \[0\.0\.0\.0\]/, 'vips: [0.0.0.0, "::"]'), /remote_ts: \[10\.2\.0\.0\/24\]/, 'remote_ts: [10.2.0.0/24, "fd00:2::/64"]'),
    });
    daemons.push(r);
    const sas = (await r.waitChildren()) as unknown as SaWithVip[];
    expect(sas[0]!.virtualIps).toEqual(['10.99.0.1', 'fd00:99::1']);
    // (list-sas writes IPv6 selectors uncompressed)
    expect(sas[0]!.children[0]!.localTs).toEqual(['10.99.0.1-10.99.0.1', 'fd00:0099:0000:0000:0000:0000:0000:0001-fd00:0099:0000:0000:0000:0000:0000:0001']);
    let route = '';
    for (let i = 0; i < 60 && !/src fd00:99::1/.test(route); i++) {
      if (i > 0) await sleep(250);
      route = (await rw.exec(['ip', '-6', 'route', 'get', 'fd00:2::10']).catch((e: Error) => ({ stdout: e.message }))).stdout;
    }
    expect(route, r.tail(60)).toMatch(/src fd00:99::1/);
    expect((await rw.exec(['ip', '-6', 'addr', 'show', 'dev', 'lo'])).stdout).toMatch(/inet6 fd00:99::1\/128/);
    const before = await espPackets(rw);
    const p4 = await ping(rw, '10.2.0.10', { count: 3, intervalS: 0.2, timeoutS: 5 });
    expect(p4.received, p4.output).toBe(3);
    const p6 = await ping(rw, 'fd00:2::10', { count: 3, intervalS: 0.2, timeoutS: 5 });
    expect(p6.received, p6.output).toBe(3);
    expect(await espPackets(rw)).toBeGreaterThanOrEqual(before + 12);
    expect(await r.stop()).toBe(0);
    expect((await rw.exec(['ip', 'addr', 'show', 'dev', 'lo'])).stdout).not.toMatch(/10\.99\.0\.1|fd00:99::1/);
    expect((await rw.exec(['ip', '-6', 'route', 'show', 'table', '220'])).stdout.trim()).toBe('');
  });
});
