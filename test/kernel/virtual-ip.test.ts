// Virtual IPs on the loopback device of a fresh network namespace (src/kernel/virtual-ip.ts):
// added and removed idempotently, IPv4 and IPv6, bad specs refused before anything runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addVirtualIp, removeVirtualIp, VirtualIpError } from '../../src/kernel/virtual-ip.js';
import type { VirtualIpSpec } from '../../src/ike/engine/actions.js';
import { canMakeNetns, createNetns, type Netns } from '../helpers/netns.js';

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
