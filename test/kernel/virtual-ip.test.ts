// Virtual IPs on the loopback device of a fresh network namespace (src/kernel/virtual-ip.ts):
// added and removed idempotently, IPv4 and IPv6, bad specs refused before anything runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addVirtualIp, installSourceRoutes, removeSourceRoutes, removeVirtualIp, VirtualIpError } from '../../src/kernel/virtual-ip.js';
import type { VirtualIpSpec } from '../../src/ike/engine/actions.js';
import { canMakeNetns, connectVeth, createNetns, type Netns } from '../helpers/netns.js';

const ok = canMakeNetns();
if (!ok) console.warn('SKIPPED: virtual IP kernel tests need root and iproute2 (network namespaces)');

const vip = (address: string, prefixLength: number): VirtualIpSpec => ({ connection: 'home', ikeSaId: '01', address, prefixLength });

describe.skipIf(!ok)('virtual IPs on lo', () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns('vip');
  });
  afterAll(async () => {
    await ns?.delete();
  });
  const lo = async () => (await ns.exec(['ip', 'addr', 'show', 'dev', 'lo'])).stdout;

  it('IPv4: added once, a second add is no error, removed, a second remove is no error', async () => {
    await addVirtualIp(vip('10.99.0.1', 32), { netns: ns.name });
    expect(await lo()).toMatch(/inet 10\.99\.0\.1\/32 /);
    await addVirtualIp(vip('10.99.0.1', 32), { netns: ns.name });
    await removeVirtualIp(vip('10.99.0.1', 32), { netns: ns.name });
    expect(await lo()).not.toMatch(/10\.99\.0\.1/);
    await removeVirtualIp(vip('10.99.0.1', 32), { netns: ns.name });
  });

  it('IPv6 without duplicate address detection: usable at once', async () => {
    await addVirtualIp(vip('fd00:99::1', 128), { netns: ns.name });
    await addVirtualIp(vip('fd00:99::1', 128), { netns: ns.name });
    const text = await lo();
    expect(text).toMatch(/inet6 fd00:99::1\/128 /);
    expect(text).not.toMatch(/tentative/);
    await removeVirtualIp(vip('fd00:99::1', 128), { netns: ns.name });
    expect(await lo()).not.toMatch(/fd00:99::1/);
    await removeVirtualIp(vip('fd00:99::1', 128), { netns: ns.name });
  });

  it('bad specs and a missing device are errors naming the address', async () => {
    await expect(addVirtualIp(vip('10.99.0.1', 33), { netns: ns.name })).rejects.toThrow(VirtualIpError);
    await expect(addVirtualIp(vip('not-an-address', 32), { netns: ns.name })).rejects.toThrow(/not an IPv4 or IPv6 address/);
    await expect(addVirtualIp(vip('10.99.0.2', 32), { netns: ns.name, device: 'nosuchdev0' })).rejects.toThrow(/10\.99\.0\.2\/32 to nosuchdev0/);
  });
});

describe.skipIf(!ok)('source routes from a virtual IP', () => {
  let ns: Netns;
  let peer: Netns;
  beforeAll(async () => {
    ns = await createNetns('viprt');
    peer = await createNetns('viprt-peer');
    await connectVeth({ ns, ifname: 'wan', v4: '192.0.2.1/24' }, { ns: peer, ifname: 'wan', v4: '192.0.2.2/24' });
    await addVirtualIp(vip('10.99.0.1', 32), { netns: ns.name });
  });
  afterAll(async () => {
    await ns?.delete();
    await peer?.delete();
  });

  it("the host's traffic to the remote selectors leaves from the virtual IP; removed again without a trace", async () => {
    const routes = { vip: '10.99.0.1', peer: '192.0.2.2', destinations: ['10.2.0.0/24', '10.3.0.0/16'] };
    await installSourceRoutes(routes, { netns: ns.name });
    await installSourceRoutes(routes, { netns: ns.name }); // replace: no error the second time
    const table = (await ns.exec(['ip', 'route', 'show', 'table', '220'])).stdout;
    expect(table).toMatch(/10\.2\.0\.0\/24 dev wan .*src 10\.99\.0\.1/);
    expect(table).toMatch(/10\.3\.0\.0\/16 dev wan .*src 10\.99\.0\.1/);
    expect((await ns.exec(['ip', 'rule', 'show'])).stdout).toMatch(/^220:\s+from all lookup 220/m);
    expect((await ns.exec(['ip', 'route', 'get', '10.2.0.10'])).stdout).toMatch(/src 10\.99\.0\.1/);
    // Other destinations keep the physical address.
    await ns.exec(['ip', 'route', 'add', '10.4.0.0/24', 'via', '192.0.2.2']);
    expect((await ns.exec(['ip', 'route', 'get', '10.4.0.10'])).stdout).toMatch(/src 192\.0\.2\.1/);
    await removeSourceRoutes(routes, { netns: ns.name });
    await removeSourceRoutes(routes, { netns: ns.name });
    expect((await ns.exec(['ip', 'route', 'show', 'table', '220'])).stdout.trim()).toBe('');
  });

  it('a peer without a route is an error naming it', async () => {
    await expect(installSourceRoutes({ vip: '10.99.0.1', peer: '203.0.113.9', destinations: ['10.2.0.0/24'] }, { netns: ns.name })).rejects.toThrow(/no route to the peer 203\.0\.113\.9/);
  });
});
