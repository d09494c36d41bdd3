// IKE_SA_INIT + IKE_AUTH through the independent strict harness: several suites, matching keys,
// TS narrowing, Child SA errors that keep the IKE SA, timer naming, loss and duplication.
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { EnginePairHarness, mirrored, peerConfig, type PeerOptions } from '../../helpers/engine-pair.js';

function pair(a: PeerOptions = {}, b: PeerOptions = {}, link = {}): EnginePairHarness {
  return new EnginePairHarness(peerConfig('a', a), peerConfig('b', b), link);
}

function notifiesIn(data: Buffer): number[] {
  const d = decodeMessage(data);
  if (!d.ok) return [];
  return d.message.payloads.filter((p) => p.type === PayloadType.NOTIFY).map((p) => (p as { notifyType: number }).notifyType);
}

describe('IKE_SA_INIT + IKE_AUTH (strict kernel)', () => {
  for (const [ike, esp] of [
    ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-x25519'],
    ['aes128-sha256-ecp256', 'aes128-sha256-ecp256'],
    ['chacha20poly1305-prfsha256-x25519', 'chacha20poly1305-x25519'],
  ] as const) {
    it(`${ike} / ${esp}: one IKE SA and one Child SA each side, mirrored keys, no rule broken`, () => {
      const p = pair({ ike, esp }, { ike, esp });
      p.establish();
      expect(p.allViolations()).toEqual([]);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(p.eventsOf('child-up')).toHaveLength(2);
      const ka = p.kernels.a;
      const kb = p.kernels.b;
      expect([ka.inbound.size, ka.outbound.size, ka.policies.size]).toEqual([1, 1, 1]);
      expect(mirrored(ka, kb)).toEqual([]);
      // The AEAD keys carry the 4-octet salt; CBC+HMAC has a separate integrity key.
      const inA = [...ka.inbound.values()][0]!;
      if (esp.startsWith('aes256gcm16')) expect(inA.encKey.length).toBe(2 * 36);
      if (esp.startsWith('aes128-sha256')) expect([inA.encKey.length, inA.integKey.length]).toEqual([32, 64]);
      if (esp.startsWith('chacha20')) expect(inA.encKey.length).toBe(2 * 36);
      const [sa] = p.engines.a.listSas(p.now);
      const [sb] = p.engines.b.listSas(p.now);
      expect(sa!.spiI).toBe(sb!.spiI);
      expect(sa!.spiR).toBe(sb!.spiR);
      expect(sa!.initiator).toBe(true);
      expect(sb!.initiator).toBe(false);
      expect(sa!.children[0]!.spiIn).toBe(sb!.children[0]!.spiOut);
      expect(sa!.children[0]!.spiOut).toBe(sb!.children[0]!.spiIn);
      const sa0 = p.engines.a.stats();
      expect(sa0.ikeSas).toBe(1);
      expect(sa0.childSas).toBe(1);
      expect(sa0.halfOpen).toBe(0);
      expect(sa0.datagramsOut).toBe(2);
      expect(p.engines.b.stats().datagramsIn).toBe(2);
    });
  }

  it('IKE_SA_INIT carries NAT detection, fragmentation and signature hash notifies; IKE_AUTH follows', () => {
    const p = pair();
    p.establish();
    const init = p.wire[0]!;
    const n = notifiesIn(init.data);
    expect(n).toContain(NotifyType.NAT_DETECTION_SOURCE_IP);
    expect(n).toContain(NotifyType.NAT_DETECTION_DESTINATION_IP);
    expect(n).toContain(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED);
    expect(n).toContain(NotifyType.SIGNATURE_HASH_ALGORITHMS);
    const d = decodeMessage(p.wire[2]!.data);
    expect(d.ok && d.message.header.exchangeType).toBe(ExchangeType.IKE_AUTH);
  });

  it('timers are named after the SA and the event; none are left after terminate', () => {
    const p = pair({ dpd: '30s' });
    p.establish();
    const [sa] = p.engines.a.listSas(p.now);
    const child = sa!.children[0]!;
    const names = [...p.clock.armed('a').keys()];
    expect(names).toContain(`ike:${sa!.ikeSaId}:rekey`);
    expect(names).toContain(`ike:${sa!.ikeSaId}:dpd`);
    expect(names).toContain(`child:${child.childId}:rekey`);
    expect(names).toContain(`child:${child.childId}:expire`);
    for (const id of names) expect(id).toMatch(/^(ike|child|half-open|cookie)[:-]/);
    // The armed rekey times are the ones listSas reports.
    expect(p.clock.armed('a').get(`child:${child.childId}:rekey`)).toBe(child.rekeyAt);
    expect(p.clock.armed('a').get(`child:${child.childId}:expire`)).toBe(child.expiresAt);
    expect(child.rekeyAt).toBeLessThan(child.expiresAt);
    p.call('a', (e, now) => e.terminate(now, { connection: 'site' }));
    p.run(30_000);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
    expect([...p.clock.armed('a').keys()].filter((k) => k.startsWith('ike:') || k.startsWith('child:'))).toEqual([]);
    expect([...p.clock.armed('b').keys()].filter((k) => k.startsWith('ike:') || k.startsWith('child:'))).toEqual([]);
    expect(p.engines.a.stats()).toMatchObject({ ikeSas: 0, childSas: 0, halfOpen: 0 });
    expect(p.engines.b.stats()).toMatchObject({ ikeSas: 0, childSas: 0, halfOpen: 0 });
    expect(p.allViolations()).toEqual([]);
  });

  it('TS narrowing: the responder narrows a wider offer to its configured selectors, both kernels agree', () => {
    const p = pair({ localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'] }, { localTs: ['10.2.3.0/24'], remoteTs: ['10.1.0.0/24'] });
    p.establish();
    expect(p.allViolations()).toEqual([]);
    const ca = p.engines.a.listSas(p.now)[0]!.children[0]!;
    const cb = p.engines.b.listSas(p.now)[0]!.children[0]!;
    expect(cb.localTs).toEqual(ca.remoteTs);
    expect(cb.remoteTs).toEqual(ca.localTs);
    expect(ca.localTs.join()).toContain('10.1.0.0');
    expect(ca.localTs.join()).toContain('10.1.0.255');
    expect(ca.localTs.join()).not.toContain('10.1.255.255');
    expect(ca.remoteTs.join()).toContain('10.2.3.0');
    expect(ca.remoteTs.join()).toContain('10.2.3.255');
    const specA = p.kernels.a.log.find((k) => k.op === 'installPolicies')!.spec;
    expect(specA.remoteTs[0]).toMatchObject({ startAddress: '10.2.3.0', endAddress: '10.2.3.255' });
  });

  it('disjoint selectors: TS_UNACCEPTABLE fails only the Child SA, the IKE SA stays up', () => {
    const p = pair({}, { localTs: ['10.9.0.0/24'], remoteTs: ['10.8.0.0/24'] });
    p.establish();
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(p.eventsOf('child-up')).toHaveLength(0);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
    expect(p.engines.a.listSas(p.now)[0]?.state).toBe('established');
    expect(p.engines.b.listSas(p.now)[0]?.state).toBe('established');
    expect(p.allViolations()).toEqual([]);
  });

  it('no common ESP proposal: NO_PROPOSAL_CHOSEN fails only the Child SA', () => {
    const p = pair({ esp: 'aes256gcm16-x25519' }, { esp: 'aes128-sha256-ecp256' });
    p.establish();
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(p.eventsOf('child-up')).toHaveLength(0);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.engines.a.listSas(p.now)[0]!.children).toHaveLength(0);
    // The IKE SA still works: an IKE SA rekey over it succeeds.
    const id = p.engines.a.listSas(p.now)[0]!.ikeSaId;
    p.call('a', (e, now) => e.rekeyIke(now, id));
    p.run(5_000);
    expect(p.eventsOf('ike-rekeyed')).toHaveLength(2);
    expect(p.allViolations()).toEqual([]);
  });

  it('no common IKE proposal: NO_PROPOSAL_CHOSEN, nothing left anywhere', () => {
    const p = pair({ ike: 'aes256gcm16-prfsha384-x25519' }, { ike: 'aes128-sha256-ecp256' });
    p.establish(60_000);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.engines.a.listSas(p.now)).toHaveLength(0);
    expect(p.engines.b.stats()).toMatchObject({ ikeSas: 0, halfOpen: 0 });
    expect(notifiesIn(p.wire[1]!.data)).toContain(NotifyType.NO_PROPOSAL_CHOSEN);
  });

  it('wrong PSK: AUTHENTICATION_FAILED, no SA and no kernel state on either side, no retry storm', () => {
    const p = pair({ psk: 'the initiator has this secret, 32+' }, { psk: 'the responder has another one, 32+' });
    p.establish(120_000);
    expect(p.eventsOf('auth-failed').length).toBeGreaterThan(0);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.engines.a.listSas(p.now)).toHaveLength(0);
    expect(p.engines.b.listSas(p.now)).toHaveLength(0);
    expect(p.engines.b.stats().halfOpen).toBe(0);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
    expect(p.wire.length).toBeLessThanOrEqual(6);
  });

  for (const [name, link] of [
    ['every 5th datagram lost', { dropEvery: 5 }],
    ['30% random loss, 30% duplication, reordering', { lossRate: 0.3, duplicateRate: 0.3, jitterMs: 40, seed: 99 }],
    ['50% duplication with reordering', { duplicateRate: 0.5, jitterMs: 20, seed: 7 }],
  ] as const) {
    it(`converges with ${name}: exactly one SA pair, mirrored, nothing installed twice`, () => {
      const p = pair({}, {}, link);
      p.establish(120_000);
      expect(p.allViolations()).toEqual([]);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(p.eventsOf('child-up')).toHaveLength(2);
      expect(p.kernels.a.inbound.size + p.kernels.b.inbound.size).toBe(2);
      expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
      expect(p.engines.b.stats().ikeSas).toBe(1);
      expect(p.engines.b.stats().halfOpen).toBe(0);
    });
  }

  it('retransmission: exponential back-off from the configured timeout, then give up with ike-down', () => {
    const p = pair({ retransmit: { timeout: '2s', base: 2, tries: 3 }, keyingtries: 1 });
    p.link.cut = true;
    const t0 = p.now;
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(120_000);
    const sends = p.wire.filter((w) => w.from === 'a').map((w) => w.at - t0);
    // 1 original + 3 retransmissions at 2, 2+4, 2+4+8 s; a last wait of 16 s before giving up.
    expect(sends).toEqual([0, 2_000, 6_000, 14_000]);
    expect(p.eventsOf('ike-down', 'a')).toHaveLength(1);
    expect(p.engines.a.listSas(p.now)).toHaveLength(0);
    expect(p.engines.a.stats().retransmits).toBe(3);
  });

  it('a response whose message ID is not the outstanding request is dropped', () => {
    const p = pair();
    p.establish();
    // Replay b's IKE_AUTH response (MID 1) to a: a has nothing outstanding with MID 1 now.
    const authResponse = p.wire.filter((w) => w.from === 'b')[1]!.data;
    const before = JSON.stringify(p.engines.a.listSas(p.now));
    const dropped = p.engines.a.stats().dropped;
    p.inject('a', authResponse);
    expect(JSON.stringify(p.engines.a.listSas(p.now))).toBe(before);
    expect(p.engines.a.stats().dropped).toBe(dropped + 1);
    expect(p.allViolations()).toEqual([]);
  });
});
