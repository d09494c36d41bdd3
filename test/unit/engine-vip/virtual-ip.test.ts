// Virtual IPs through configuration payloads (RFC 7296 §2.19, §3.15) between engines: a road
// warrior asks for an address in IKE_AUTH, the gateway leases one from its pool and narrows TSi to
// it; the lease follows the IKE SA through rekeys and goes back to the pool when the IKE SA goes.
import { describe, expect, it } from 'vitest';
import { NotifyType } from '../../../src/ike/codec/constants.js';
import type { ChildSaKernelSpec, KernelAction } from '../../../src/ike/engine/actions.js';
import { EnginePairHarness, mirrored } from '../../helpers/engine-pair.js';
import { gatewayConfig, vipConfig, VipNet } from './vip-net.js';

const GW = '192.0.2.2';
const ALICE = '192.0.2.1';
const CAROL = '192.0.2.11';

function policiesOf(log: KernelAction[]): ChildSaKernelSpec[] {
  return log.flatMap((a) => (a.op === 'installPolicies' ? [a.spec] : []));
}

const range = (ts: { startAddress: string; endAddress: string }) => `${ts.startAddress}-${ts.endAddress}`;

/** Alice (192.0.2.1, harness host a) asks gw (192.0.2.2, host b) for virtual IPs. */
function pair(o: { vips?: string[]; pools?: string[]; dns?: string[]; aRemoteTs?: string[]; bLocalTs?: string[]; bRemoteTs?: string[]; optimized?: boolean; aLocalTs?: string[] } = {}) {
  const a = vipConfig({
    addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example',
    ...(o.vips !== undefined ? { vips: o.vips } : { vips: ['0.0.0.0'] }),
    remoteTs: o.aRemoteTs ?? ['10.2.0.0/24'],
    ...(o.aLocalTs ? { localTs: o.aLocalTs } : {}),
    start: true,
    ...(o.optimized !== undefined ? { optimized: o.optimized } : {}),
  });
  const b = vipConfig({
    addr: GW, id: 'gw.example', peerAddr: ALICE, peerId: 'alice.example',
    ...(o.pools ? { pools: o.pools } : {}),
    ...(o.dns ? { dns: o.dns } : {}),
    localTs: o.bLocalTs ?? ['10.2.0.0/24'],
    ...(o.bRemoteTs ? { remoteTs: o.bRemoteTs } : {}),
    ...(o.optimized !== undefined ? { optimized: o.optimized } : {}),
  });
  return new EnginePairHarness(a, b);
}

describe('virtual IP assigned in IKE_AUTH (RFC 7296 §2.19)', () => {
  it('the gateway leases the first pool address, narrows TSi to it, and both kernels use it', () => {
    const p = pair({ pools: ['10.99.0.0/24'], dns: ['10.2.0.53', '2001:db8::53'] });
    p.establish();
    expect(p.thrown).toEqual([]);
    expect(p.allViolations()).toEqual([]);
    // Alice: the address and the DNS server of its IP version, put on the host before the policies.
    expect(p.eventsOf('virtual-ip', 'a')).toEqual([
      { type: 'virtual-ip', ikeSaId: expect.any(String), connection: 'site', address: '10.99.0.1', dns: ['10.2.0.53'], assignedTo: 'us' },
    ]);
    expect([...p.kernels.a.virtualIps.keys()]).toEqual(['10.99.0.1/32']);
    const ops = p.kernels.a.log.map((k) => k.op);
    expect(ops.indexOf('addVirtualIp')).toBeGreaterThanOrEqual(0);
    expect(ops.indexOf('addVirtualIp')).toBeLessThan(ops.indexOf('installPolicies'));
    // The gateway: leased to the peer, nothing put on its own host.
    expect(p.eventsOf('virtual-ip', 'b')).toEqual([
      { type: 'virtual-ip', ikeSaId: expect.any(String), connection: 'site', address: '10.99.0.1', dns: ['10.2.0.53'], assignedTo: 'peer' },
    ]);
    expect(p.kernels.b.virtualIps.size).toBe(0);
    // TSi narrowed to the virtual IP on both sides: Alice's local, the gateway's remote selector.
    const [pa] = policiesOf(p.kernels.a.log);
    const [pb] = policiesOf(p.kernels.b.log);
    expect(pa!.localTs.map(range)).toEqual(['10.99.0.1-10.99.0.1']);
    expect(pa!.remoteTs.map(range)).toEqual(['10.2.0.0-10.2.0.255']);
    expect(pb!.remoteTs.map(range)).toEqual(['10.99.0.1-10.99.0.1']);
    expect(pb!.localTs.map(range)).toEqual(['10.2.0.0-10.2.0.255']);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    // Both IKE SAs report the address.
    const [sa] = p.engines.a.listSas(p.now);
    const [sb] = p.engines.b.listSas(p.now);
    expect(sa!.virtualIps).toEqual(['10.99.0.1']);
    expect(sb!.virtualIps).toEqual(['10.99.0.1']);
    expect(sa!.children[0]!.localTs).toEqual(['10.99.0.1-10.99.0.1']);
  });

  it('IPv4 and IPv6 together: one address of each version, both selectors narrowed', () => {
    const p = pair({
      vips: ['0.0.0.0', '::'],
      pools: ['10.99.0.0/24', 'fd00:99::/120'],
      dns: ['2001:db8::53'],
      aRemoteTs: ['10.2.0.0/24', 'fd00:2::/64'],
      bLocalTs: ['10.2.0.0/24', 'fd00:2::/64'],
    });
    p.establish();
    expect(p.allViolations()).toEqual([]);
    expect(p.eventsOf('virtual-ip', 'a').map((e) => [e.address, e.dns])).toEqual([
      ['10.99.0.1', ['2001:db8::53']],
      ['fd00:99::1', ['2001:db8::53']],
    ]);
    expect([...p.kernels.a.virtualIps.keys()].sort()).toEqual(['10.99.0.1/32', 'fd00:99::1/128']);
    const [pa] = policiesOf(p.kernels.a.log);
    const [pb] = policiesOf(p.kernels.b.log);
    expect(pa!.localTs.map(range).sort()).toEqual(['10.99.0.1-10.99.0.1', 'fd00:99::1-fd00:99::1']);
    expect(pb!.remoteTs.map(range).sort()).toEqual(['10.99.0.1-10.99.0.1', 'fd00:99::1-fd00:99::1']);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('IPv6 only: "::" asks for an IPv6 address, the IPv4 pool stays untouched', () => {
    const p = pair({ vips: ['::'], pools: ['10.99.0.0/24', 'fd00:99::100-fd00:99::1ff'], aRemoteTs: ['fd00:2::/64'], bLocalTs: ['fd00:2::/64'] });
    p.establish();
    expect(p.allViolations()).toEqual([]);
    expect(p.eventsOf('virtual-ip', 'a').map((e) => e.address)).toEqual(['fd00:99::100']);
    expect([...p.kernels.a.virtualIps.keys()]).toEqual(['fd00:99::100/128']);
    expect(policiesOf(p.kernels.b.log)[0]!.remoteTs.map(range)).toEqual(['fd00:99::100-fd00:99::100']);
  });

  it('the gateway narrows to the lease within its remote_ts; a Child SA rekey keeps the selectors', () => {
    const p = pair({ pools: ['10.99.0.0/24'], bRemoteTs: ['10.99.0.0/16'] });
    p.establish();
    const child = p.engines.a.listSas(p.now)[0]!.children[0]!;
    p.call('a', (e, now) => e.rekeyChild(now, child.childId));
    // Past rekey_grace_time (10 s), when the old inbound SAs are gone too.
    p.run(15_000);
    expect(p.allViolations()).toEqual([]);
    const [after] = p.engines.a.listSas(p.now);
    expect(after!.children).toHaveLength(1);
    expect(after!.children[0]!.spiIn).not.toBe(child.spiIn);
    expect(after!.children[0]!.localTs).toEqual(['10.99.0.1-10.99.0.1']);
    expect(p.engines.b.listSas(p.now)[0]!.children[0]!.remoteTs).toEqual(['10.99.0.1-10.99.0.1']);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('terminating the IKE SA takes the address off the host after the policies', () => {
    const p = pair({ pools: ['10.99.0.0/24'] });
    p.establish();
    const id = p.engines.a.listSas(p.now)[0]!.ikeSaId;
    p.call('a', (e, now) => e.terminate(now, { ikeSaId: id }));
    p.run(5_000);
    expect(p.allViolations()).toEqual([]);
    expect(p.kernels.a.empty).toBe(true);
    expect(p.kernels.b.empty).toBe(true);
    const ops = p.kernels.a.log.map((k) => k.op);
    expect(ops.lastIndexOf('removeVirtualIp')).toBeGreaterThan(ops.lastIndexOf('deletePolicies'));
    const removed = p.kernels.a.log.filter((k) => k.op === 'removeVirtualIp');
    expect(removed).toHaveLength(1);
    expect(removed[0]!.op === 'removeVirtualIp' && removed[0]!.vip).toMatchObject({ address: '10.99.0.1', prefixLength: 32, connection: 'site' });
  });
});

describe('no virtual IP to give', () => {
  it('a gateway without pools ignores the CP payload; the road warrior, which needs an address, deletes the IKE SA', () => {
    const p = pair({ bRemoteTs: ['0.0.0.0/0'] });
    p.establish();
    expect(p.thrown).toEqual([]);
    expect(p.allViolations()).toEqual([]);
    expect(p.eventsOf('virtual-ip')).toEqual([]);
    // The gateway answered as without CP: its Child SA was created normally, with Alice's full TSi.
    expect(p.eventsOf('child-up', 'b')).toHaveLength(1);
    expect(policiesOf(p.kernels.b.log)[0]!.remoteTs.map(range)).toEqual(['0.0.0.0-255.255.255.255']);
    // Alice installed nothing and closed the IKE SA with the reason.
    expect(p.kernels.a.log).toEqual([]);
    const down = p.eventsOf('ike-down', 'a');
    expect(down).toHaveLength(1);
    expect(down[0]!.reason).toMatch(/virtual IP is required but none was assigned: no CP\(CFG_REPLY\)/);
    expect(p.eventsOf('error', 'a').some((e) => /virtual IP is required/.test(e.message))).toBe(true);
    // The Delete reached the gateway: nothing is left anywhere.
    expect(p.engines.a.listSas(p.now)).toEqual([]);
    expect(p.engines.b.listSas(p.now)).toEqual([]);
    expect(p.kernels.a.empty).toBe(true);
    expect(p.kernels.b.empty).toBe(true);
  });

  it('a gateway with pools refuses a peer that asks for none: FAILED_CP_REQUIRED, no Child SA, the IKE SA stands', () => {
    const a = vipConfig({ addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example', localTs: ['192.0.2.1/32'], remoteTs: ['10.2.0.0/24'], start: true });
    const b = vipConfig({ addr: GW, id: 'gw.example', peerAddr: ALICE, peerId: 'alice.example', pools: ['10.99.0.0/24'], localTs: ['10.2.0.0/24'] });
    const q = new EnginePairHarness(a, b);
    q.establish();
    expect(q.thrown).toEqual([]);
    expect(q.allViolations()).toEqual([]);
    expect(q.eventsOf('child-up')).toEqual([]);
    expect(q.kernels.a.empty && q.kernels.b.empty).toBe(true);
    expect(q.eventsOf('error', 'b').some((e) => /FAILED_CP_REQUIRED/.test(e.message))).toBe(true);
    expect(q.eventsOf('error', 'a').some((e) => e.message.includes(`notify ${NotifyType.FAILED_CP_REQUIRED}`))).toBe(true);
    expect(q.engines.a.listSas(q.now).map((s) => s.state)).toEqual(['established']);
  });
});

describe('leases (gateway with a one-address pool, road warriors alice and carol)', () => {
  function net(o: { optimized?: boolean } = {}) {
    const n = new VipNet();
    n.add('gw', GW, gatewayConfig({ addr: GW, id: 'gw.example', peers: ['alice.example', 'carol.example'], pools: ['10.99.0.7'], localTs: ['10.2.0.0/24'], ...o }));
    for (const [name, addr] of [['alice', ALICE], ['carol', CAROL]] as const) {
      n.add(name, addr, vipConfig({ addr, id: `${name}.example`, peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true, ...o }));
    }
    return n;
  }
  const up = (n: VipNet, who: string) => {
    n.call(who, (e, now) => e.initiate(now, 'site'));
    n.run(5_000);
  };
  const vipOf = (n: VipNet, who: string) => [...n.host(who).kernel.virtualIps.keys()];

  it('pool exhausted: INTERNAL_ADDRESS_FAILURE, no Child SA and no kernel state for the second peer', () => {
    const n = net();
    up(n, 'alice');
    expect(vipOf(n, 'alice')).toEqual(['10.99.0.7/32']);
    up(n, 'carol');
    expect(n.violations()).toEqual([]);
    expect(n.host('carol').kernel.log).toEqual([]);
    expect(n.eventsOf('child-up', 'carol')).toEqual([]);
    expect(n.eventsOf('ike-down', 'carol')[0]!.reason).toMatch(/INTERNAL_ADDRESS_FAILURE/);
    expect(n.eventsOf('error', 'gw').some((e) => /no virtual IP left to lease.*INTERNAL_ADDRESS_FAILURE/.test(e.message))).toBe(true);
    // Carol's IKE SA is gone on both ends; Alice's tunnel is untouched.
    expect(n.host('carol').engine.listSas(n.now)).toEqual([]);
    expect(n.host('gw').engine.listSas(n.now).map((s) => s.connection)).toEqual(['rw-alice']);
    expect(n.host('gw').kernel.policies.size).toBe(1);
    expect(vipOf(n, 'alice')).toEqual(['10.99.0.7/32']);
  });

  it('released when the IKE SA is deleted, then leased to the next peer; the first one now finds the pool exhausted', () => {
    const n = net();
    up(n, 'alice');
    const id = n.host('alice').engine.listSas(n.now)[0]!.ikeSaId;
    n.call('alice', (e, now) => e.terminate(now, { ikeSaId: id }));
    n.run(5_000);
    expect(n.host('alice').kernel.empty).toBe(true);
    expect(n.host('gw').kernel.empty).toBe(true);
    up(n, 'carol');
    expect(n.violations()).toEqual([]);
    expect(vipOf(n, 'carol')).toEqual(['10.99.0.7/32']);
    expect(n.eventsOf('virtual-ip', 'gw').map((e) => [e.connection, e.address])).toEqual([
      ['rw-alice', '10.99.0.7'],
      ['rw-carol', '10.99.0.7'],
    ]);
    up(n, 'alice');
    expect(n.eventsOf('ike-down', 'alice').at(-1)!.reason).toMatch(/INTERNAL_ADDRESS_FAILURE/);
  });

  it('a returning peer gets its own address again while other addresses are free', () => {
    const n = new VipNet();
    n.add('gw', GW, gatewayConfig({ addr: GW, id: 'gw.example', peers: ['alice.example', 'carol.example'], pools: ['10.99.0.0/29'], localTs: ['10.2.0.0/24'] }));
    for (const [name, addr] of [['alice', ALICE], ['carol', CAROL]] as const) {
      n.add(name, addr, vipConfig({ addr, id: `${name}.example`, peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true }));
    }
    up(n, 'carol');
    up(n, 'alice');
    expect(vipOf(n, 'carol')).toEqual(['10.99.0.1/32']);
    expect(vipOf(n, 'alice')).toEqual(['10.99.0.2/32']);
    n.call('alice', (e, now) => e.terminate(now, { connection: 'site' }));
    n.run(5_000);
    up(n, 'alice');
    expect(vipOf(n, 'alice')).toEqual(['10.99.0.2/32']);
    expect(n.violations()).toEqual([]);
  });

  it('a road warrior that restarted (INITIAL_CONTACT) gets its address back from a one-address pool', () => {
    const n = net();
    up(n, 'alice');
    // Alice's host reboots: a fresh engine, no Delete ever sent; the gateway still holds the lease.
    n.add('alice', ALICE, vipConfig({ addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true }));
    up(n, 'alice');
    expect(n.eventsOf('ike-down', 'gw').map((e) => e.reason)).toEqual(['the peer restarted (INITIAL_CONTACT)']);
    expect(n.host('gw').engine.listSas(n.now).map((s) => s.virtualIps)).toEqual([['10.99.0.7']]);
    expect(vipOf(n, 'alice')).toEqual(['10.99.0.7/32']);
    expect(n.violations()).toEqual([]);
  });

  for (const optimized of [false, true]) {
    for (const rekeyer of ['alice', 'gw'] as const) {
      it(`the lease follows the IKE SA through a ${optimized ? 'optimized' : 'regular'} IKE SA rekey started by ${rekeyer}`, () => {
        const n = net({ optimized });
        up(n, 'alice');
        const sas = (who: string) => n.host(who).engine.listSas(n.now);
        const before = sas(rekeyer)[0]!.ikeSaId;
        n.call(rekeyer, (e, now) => e.rekeyIke(now, before));
        n.run(5_000);
        expect(n.violations()).toEqual([]);
        const rekeyed = n.eventsOf('ike-rekeyed', rekeyer);
        expect(rekeyed).toHaveLength(1);
        expect(rekeyed[0]!.optimized).toBe(optimized);
        // One IKE SA on each end, with the address and the Child SA.
        expect(sas('alice').map((s) => [s.ikeSaId !== before || rekeyer === 'gw', s.virtualIps, s.children.length])).toEqual([[true, ['10.99.0.7'], 1]]);
        expect(sas('gw').map((s) => [s.virtualIps, s.children[0]!.remoteTs])).toEqual([[['10.99.0.7'], ['10.99.0.7-10.99.0.7']]]);
        // Alice kept the address on the host throughout.
        expect(n.host('alice').kernel.log.filter((k) => k.op === 'removeVirtualIp')).toEqual([]);
        expect(vipOf(n, 'alice')).toEqual(['10.99.0.7/32']);
        // Still leased: Carol finds the one-address pool exhausted.
        up(n, 'carol');
        expect(n.eventsOf('ike-down', 'carol')[0]!.reason).toMatch(/INTERNAL_ADDRESS_FAILURE/);
        // Deleting the rekeyed IKE SA releases it; Carol gets it now.
        n.call('alice', (e, now) => e.terminate(now, { connection: 'site' }));
        n.run(5_000);
        expect(n.host('alice').kernel.empty).toBe(true);
        up(n, 'carol');
        expect(vipOf(n, 'carol')).toEqual(['10.99.0.7/32']);
        expect(n.violations()).toEqual([]);
      });
    }
  }
});

describe('more Child SAs of a road warrior', () => {
  it('a Child SA created later (CREATE_CHILD_SA) is narrowed to the virtual IP too', () => {
    const a = vipConfig({ addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true, extraChild: { remoteTs: ['10.12.0.0/24'] } });
    const b = vipConfig({ addr: GW, id: 'gw.example', peerAddr: ALICE, peerId: 'alice.example', pools: ['10.99.0.0/24'], localTs: ['10.2.0.0/24'], extraChild: { localTs: ['10.12.0.0/24'], remoteTs: ['0.0.0.0/0'] } });
    const p = new EnginePairHarness(a, b);
    p.establish();
    p.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    p.run(5_000);
    expect(p.thrown).toEqual([]);
    expect(p.allViolations()).toEqual([]);
    const specs = policiesOf(p.kernels.a.log);
    expect(specs.map((x) => [x.child, x.localTs.map(range), x.remoteTs.map(range)])).toEqual([
      ['lan', ['10.99.0.1-10.99.0.1'], ['10.2.0.0-10.2.0.255']],
      ['dmz', ['10.99.0.1-10.99.0.1'], ['10.12.0.0-10.12.0.255']],
    ]);
    expect(policiesOf(p.kernels.b.log).map((x) => [x.child, x.remoteTs.map(range)])).toEqual([
      ['lan', ['10.99.0.1-10.99.0.1']],
      ['dmz', ['10.99.0.1-10.99.0.1']],
    ]);
    // One address on the host for both Child SAs.
    expect([...p.kernels.a.virtualIps.keys()]).toEqual(['10.99.0.1/32']);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });
});
