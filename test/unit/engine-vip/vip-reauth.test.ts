// A road warrior with a virtual IP reauthenticates (RFC 7296 §2.8.3): the new IKE SA asks for an
// address again and gets the same lease (leases are per identity), the Child SA is re-created for
// the same narrowed selectors, and the address stays on the host while the old IKE SA goes.
import { describe, expect, it } from 'vitest';
import { EnginePairHarness, mirrored } from '../../helpers/engine-pair.js';
import { vipConfig } from './vip-net.js';

const GW = '192.0.2.2';
const ALICE = '192.0.2.1';

describe('reauthentication with a virtual IP', () => {
  it('the gateway that leased the address does not reauthenticate (only an initiator asks for a virtual IP): refused, error event, SAs untouched', () => {
    const a = vipConfig({ addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true });
    const b = vipConfig({ addr: GW, id: 'gw.example', peerAddr: ALICE, peerId: 'alice.example', pools: ['10.99.0.0/24'], localTs: ['10.2.0.0/24'] });
    b.connections[0]!.ike.reauthTime = 600;
    b.connections[0]!.ike.lifetime.rekeyTime = 3_600;
    b.connections[0]!.ike.lifetime.lifeTime = 4_000;
    const p = new EnginePairHarness(a, b);
    p.establish();
    const sb = p.engines.b.listSas(p.now)[0]!;
    expect(() => p.engines.b.reauthenticate(p.now, sb.ikeSaId)).toThrow(/virtual IP leased to the peer/);
    p.run(700_000);
    expect(p.eventsOf('error', 'b').some((e) => e.message.includes('virtual IP leased to the peer'))).toBe(true);
    expect(p.engines.b.listSas(p.now).map((s) => s.ikeSaId)).toEqual([sb.ikeSaId]);
    expect(p.engines.a.listSas(p.now)[0]!.virtualIps).toEqual(['10.99.0.1']);
    expect(p.allViolations()).toEqual([]);
    // Rekeyed instead of running into the hard lifetime; the lease follows the rekey.
    p.run(4_100_000);
    expect(p.eventsOf('ike-rekeyed', 'b').length).toBeGreaterThan(0);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect(p.engines.a.listSas(p.now)[0]!.virtualIps).toEqual(['10.99.0.1']);
    expect(p.allViolations()).toEqual([]);
  });

  for (const who of ['a'] as const) {
    it(`reauthenticated by the road warrior (${who}): same virtual IP, address never removed, one IKE SA, no violations`, () => {
      const a = vipConfig({ addr: ALICE, id: 'alice.example', peerAddr: GW, peerId: 'gw.example', vips: ['0.0.0.0'], remoteTs: ['10.2.0.0/24'], start: true });
      const b = vipConfig({ addr: GW, id: 'gw.example', peerAddr: ALICE, peerId: 'alice.example', pools: ['10.99.0.0/24'], localTs: ['10.2.0.0/24'] });
      const p = new EnginePairHarness(a, b);
      p.establish();
      p.run(135_000);
      const before = { a: p.engines.a.listSas(p.now)[0]!, b: p.engines.b.listSas(p.now)[0]! };
      expect(before.a.virtualIps).toEqual(['10.99.0.1']);
      const logA = p.kernels.a.log.length;
      p.call(who, (e, now) => e.reauthenticate(now, before[who].ikeSaId));
      p.run(20_000);
      const after = { a: p.engines.a.listSas(p.now), b: p.engines.b.listSas(p.now) };
      expect(after.a).toHaveLength(1);
      expect(after.b).toHaveLength(1);
      expect(after.a[0]!.ikeSaId).not.toBe(before.a.ikeSaId);
      expect(after.a[0]!.virtualIps).toEqual(['10.99.0.1']);
      expect(after.b[0]!.virtualIps).toEqual(['10.99.0.1']);
      expect(after.a[0]!.children[0]!.localTs).toEqual(['10.99.0.1-10.99.0.1']);
      expect(p.kernels.a.log.slice(logA).filter((k) => k.op === 'removeVirtualIp')).toEqual([]);
      expect([...p.kernels.a.virtualIps.keys()]).toEqual(['10.99.0.1/32']);
      expect(p.allViolations()).toEqual([]);
      expect(p.thrown).toEqual([]);
      expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    });
  }
});
