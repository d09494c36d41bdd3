// Rekeys, kernel events, NAT traversal, DPD, reload and teardown through the strict harness,
// with the cross-kernel zero-loss rules on: a host only switches its outbound policy to an SPI
// the peer already has inbound, and never deletes an inbound SA the peer still sends with.
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType } from '../../../src/ike/codec/constants.js';
import { EnginePairHarness, mirrored, peerConfig, type PeerOptions } from '../../helpers/engine-pair.js';
import type { Host } from '../../helpers/lossy-link.js';

function pair(a: PeerOptions = {}, b: PeerOptions = {}, link = {}): EnginePairHarness {
  return new EnginePairHarness(peerConfig('a', a), peerConfig('b', b), link);
}

function child(p: EnginePairHarness, h: Host) {
  const sa = p.engines[h].listSas(p.now).find((s) => s.state === 'established');
  return sa?.children.find((c) => c.state === 'installed');
}

describe('Child SA rekeys (make-before-break on the fake kernels)', () => {
  for (const optimized of [true, false]) {
    it(`${optimized ? 'optimized' : 'regular'}: old inbound kept for the grace period, then removed; no switch before the peer can decrypt`, () => {
      const p = pair({ optimized, grace: '3s' }, { optimized, grace: '3s' });
      p.establish();
      const before = child(p, 'a')!;
      p.call('a', (e, now) => e.rekeyChild(now, before.childId));
      p.run(200);
      const ev = p.eventsOf('child-rekeyed');
      expect(ev).toHaveLength(2);
      expect(ev.every((e) => e.optimized === optimized)).toBe(true);
      // Overlap: both old and new inbound SAs on the initiator while in-flight packets drain.
      expect(p.kernels.a.inbound.has(before.spiIn)).toBe(true);
      expect(p.kernels.a.inbound.size).toBe(2);
      expect(p.kernels.a.outbound.size).toBe(1);
      p.run(3_500);
      expect(p.kernels.a.inbound.has(before.spiIn)).toBe(false);
      expect([p.kernels.a.inbound.size, p.kernels.b.inbound.size]).toEqual([1, 1]);
      const after = child(p, 'a')!;
      expect(after.spiIn).not.toBe(before.spiIn);
      expect(p.kernels.a.policies.get(`site/${100}`)).toBe(after.spiOut);
      expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
      expect(p.allViolations()).toEqual([]);
      expect(p.engines.a.stats().rekeys.child).toBeGreaterThanOrEqual(1);
    });
  }

  it('timer-driven: 24 h of 1 h Child SA rekeys over a lossy, duplicating, reordering link end with one SA pair', () => {
    const p = pair({ childRekey: '1h', ikeRekey: '48h' }, { childRekey: '1h', ikeRekey: '48h' }, { lossRate: 0.15, duplicateRate: 0.15, jitterMs: 50, seed: 4 });
    p.establish(60_000);
    p.run(24 * 3600_000);
    expect(p.thrown).toEqual([]);
    // Loss can delay the initiator's Delete beyond the grace period: the known bug shown by the
    // "KNOWN BUG: ... grace" test below. Every other rule must hold.
    expect(p.allViolations().filter((v) => !/deleted inbound SPI .* while the peer still sends/.test(v))).toEqual([]);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect(p.eventsOf('ike-down')).toHaveLength(0);
    expect(p.eventsOf('child-down')).toHaveLength(0);
    // Both ends run rekey timers: 24 h / ~55 min, shared between the two sides.
    expect(p.eventsOf('child-rekeyed', 'a').length).toBeGreaterThanOrEqual(24);
    expect([p.kernels.a.inbound.size, p.kernels.a.outbound.size, p.kernels.a.policies.size]).toEqual([1, 1, 1]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  // Regression: the Child SA rekey timer must follow the Child SA to the IKE SA that replaced its own.
  it('a Child SA whose IKE SA was rekeyed is still rekeyed by its timer', () => {
    const p = pair({ childRekey: '1h', ikeRekey: '48h' }, { childRekey: '1h', ikeRekey: '48h' });
    p.establish();
    const id = p.engines.a.listSas(p.now)[0]!.ikeSaId;
    p.call('a', (e, now) => e.rekeyIke(now, id));
    p.run(10_000);
    expect(p.eventsOf('ike-rekeyed')).toHaveLength(2);
    p.run(2 * 3600_000);
    expect(p.eventsOf('child-down')).toEqual([]);
    expect(p.eventsOf('child-rekeyed', 'a').length).toBeGreaterThanOrEqual(2);
  });

  it('24 h with 1 h Child SA rekeys, 4 h IKE SA rekeys and DPD at 5% loss, 5 seeds: one IKE SA and one mirrored Child SA pair at the end', () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= 5; seed++) {
      const o = { childRekey: '1h', ikeRekey: '4h', dpd: '60s' };
      const p = pair(o, o, { lossRate: 0.05, duplicateRate: 0.05, jitterMs: 30, seed });
      p.establish(60_000);
      p.run(24 * 3600_000);
      const retired = new Set(p.events.flatMap((e) => (e.event.type === 'ike-rekeyed' ? [`${e.host}:${e.event.oldIkeSaId}`] : [])));
      const down = p.events.flatMap((e) => (e.event.type === 'ike-down' && !retired.has(`${e.host}:${e.event.ikeSaId}`) ? [`ike-down: ${e.event.reason}`] : []));
      // The delete-grace known bug above is excluded here; every other rule must hold.
      const v = [...p.allViolations().filter((x) => !/while the peer still sends/.test(x)), ...p.thrown, ...down, ...p.eventsOf('child-down').map((e) => `child-down: ${e.reason}`), ...mirrored(p.kernels.a, p.kernels.b)];
      const shape = [p.engines.a.listSas(p.now).length, p.engines.b.listSas(p.now).length, p.kernels.a.inbound.size, p.kernels.b.inbound.size, p.kernels.a.policies.size, p.kernels.b.policies.size];
      if (shape.some((n) => n !== 1)) v.push(`shape ${shape.join('/')}`);
      if (p.eventsOf('child-rekeyed', 'a').length < 24 || p.eventsOf('ike-rekeyed', 'a').length < 5) v.push('too few rekeys');
      if (v.length) problems.push(`seed ${seed}: ${v.join('; ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('timer-driven IKE SA rekeys every 4 h: no IKE SA is lost, old ones are retired', () => {
    const p = pair({ childRekey: '48h', ikeRekey: '4h' }, { childRekey: '48h', ikeRekey: '4h' }, { lossRate: 0.1, duplicateRate: 0.1, jitterMs: 30, seed: 77 });
    p.establish(60_000);
    p.run(24 * 3600_000);
    expect(p.thrown).toEqual([]);
    expect(p.allViolations()).toEqual([]);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect(p.eventsOf('ike-rekeyed', 'a').length).toBeGreaterThanOrEqual(5);
    // Only retired IKE SAs go down (reason "rekeyed", or a lost answer to the Delete of the old
    // IKE SA that the peer, having deleted it, cannot repeat); never an IKE SA still in use.
    const retired = new Set(p.events.flatMap((e) => (e.event.type === 'ike-rekeyed' ? [`${e.host}:${e.event.oldIkeSaId}`] : [])));
    const down = p.events.flatMap((e) => (e.event.type === 'ike-down' ? [`${e.host}:${e.event.ikeSaId}`] : []));
    expect(down.filter((id) => !retired.has(id))).toEqual([]);
    expect(p.eventsOf('ike-down').length).toBeGreaterThan(0);
    expect(p.eventsOf('child-down')).toEqual([]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  // Regression (found by a 24 h soak at 15% loss): the rekey initiator's old inbound SA must outlive
  // the Delete that makes the peer switch its own outbound SA, however long loss delays it; the grace
  // period starts at the Delete's acknowledgement.
  it('a Delete delayed by loss beyond the grace period does not cut the peer\'s traffic: the old inbound SA waits for its acknowledgement', () => {
    const p = pair({ grace: '5s' }, { grace: '5s' });
    p.establish();
    const c = child(p, 'a')!;
    let dropped = 0;
    // Drop the first two INFORMATIONAL requests from the initiator after the rekey: its Delete.
    p.link.dropIf = (from, data) => {
      const d = decodeMessage(data);
      if (from === 'a' && d.ok && d.message.header.exchangeType === ExchangeType.INFORMATIONAL && !d.message.header.flags.response && dropped < 2) return ++dropped > 0;
      return false;
    };
    p.call('a', (e, now) => e.rekeyChild(now, c.childId));
    p.run(60_000);
    expect(dropped).toBe(2);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(p.lossViolations).toEqual([]);
  });

  // Regression (found by a 6 h soak at 10% loss): simultaneous Child SA rekeys (RFC 7296 §2.8.1)
  // whose exchanges complete in an order changed by loss (the peer's first request and its answer to
  // ours are lost, so its retransmitted request meets our outstanding one). The peer's Delete of its
  // redundant SA must not remove the per-reqid policies, and our late answer must find the rival that
  // the peer already switched to, so that neither end re-points a policy from an SPI it no longer uses.
  it('a rekey collision reordered by loss ends with one SA pair and policies never removed', () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= 24; seed++) {
      const p = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed });
      p.establish();
      let lostResponse = 0;
      let lostRequest = 0;
      p.link.dropIf = (from, data) => {
        const d = decodeMessage(data);
        if (from !== 'b' || !d.ok || d.message.header.exchangeType !== ExchangeType.CREATE_CHILD_SA) return false;
        if (d.message.header.flags.response) return lostResponse === 0 ? ++lostResponse > 0 : false;
        return lostRequest === 0 ? ++lostRequest > 0 : false;
      };
      p.call('b', (e, now) => e.rekeyChild(now, child(p, 'b')!.childId));
      p.run(20);
      p.call('a', (e, now) => e.rekeyChild(now, child(p, 'a')!.childId));
      p.run(120_000);
      const v = [...p.allViolations(), ...p.eventsOf('child-down').map((e) => `child-down: ${e.reason}`)];
      if (p.kernels.a.inbound.size !== 1 || p.kernels.b.inbound.size !== 1) v.push(`inbound SAs left: ${p.kernels.a.inbound.size}/${p.kernels.b.inbound.size}`);
      if (v.length) problems.push(`seed ${seed}: ${v.join('; ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('10 rounds of simultaneous Child SA rekeys from both ends at 15% loss with reordering, one peer optimized and one not, 6 seeds: every rule holds, one mirrored SA pair', () => {
    const problems: string[] = [];
    let collisions = 0;
    for (let seed = 21; seed <= 26; seed++) {
      const p = pair({ optimized: true }, { optimized: false }, { lossRate: 0.15, duplicateRate: 0.05, jitterMs: 30, seed });
      p.establish(60_000);
      for (let round = 0; round < 10; round++) {
        for (const h of ['a', 'b'] as const) {
          const c = child(p, h);
          if (c) p.call(h, (e, now) => e.rekeyChild(now, c.childId));
          p.run(round % 4);
        }
        p.run(90_000);
      }
      p.link.opts.lossRate = 0;
      p.link.opts.duplicateRate = 0;
      p.run(120_000);
      collisions += p.eventsOf('notice').filter((e) => /simultaneous rekey/.test(e.message)).length;
      // Only IKE SAs that came up count (a half-open one may time out when loss hits IKE_SA_INIT).
      const up = new Set(p.eventsOf('ike-up').map((e) => e.ikeSaId));
      const down = p.eventsOf('ike-down').filter((e) => up.has(e.ikeSaId)).map((e) => `ike-down: ${e.reason}`);
      const v = [...p.allViolations(), ...p.thrown, ...p.eventsOf('child-down').map((e) => `child-down: ${e.reason}`), ...down, ...mirrored(p.kernels.a, p.kernels.b)];
      const shape = [p.kernels.a.inbound.size, p.kernels.b.inbound.size, p.kernels.a.policies.size, p.kernels.b.policies.size];
      if (shape.some((n) => n !== 1)) v.push(`shape ${shape.join('/')}`);
      if (v.length) problems.push(`seed ${seed}: ${v.join('; ')}`);
    }
    expect(problems).toEqual([]);
    expect(collisions).toBeGreaterThan(10);
  });

  it('kernel soft EXPIRE of both directions starts exactly one rekey', () => {
    const p = pair();
    p.establish();
    const c = child(p, 'a')!;
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'expire', spi: c.spiIn, destination: '192.0.2.1', hard: false }));
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'expire', spi: c.spiOut, destination: '192.0.2.2', hard: false }));
    p.run(30_000);
    expect(p.eventsOf('child-rekeyed', 'a')).toHaveLength(1);
    expect(p.allViolations()).toEqual([]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('kernel hard EXPIRE deletes the Child SA on both sides, the IKE SA stays', () => {
    const p = pair();
    p.establish();
    const c = child(p, 'a')!;
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'expire', spi: c.spiIn, destination: '192.0.2.1', hard: true }));
    p.run(5_000);
    expect(p.eventsOf('child-down')).toHaveLength(2);
    expect(p.kernels.b.empty).toBe(true);
    expect(p.engines.a.listSas(p.now)[0]?.state).toBe('established');
    expect(p.engines.b.listSas(p.now)[0]?.children).toHaveLength(0);
    // Teardown of a's side: the kernel already removed the inbound SA itself, so only the
    // rest must go; what matters here is that nothing is left.
    expect(p.kernels.a.outbound.size + p.kernels.a.policies.size).toBe(0);
  });

  it('an EXPIRE for an unknown SPI changes nothing', () => {
    const p = pair();
    p.establish();
    const before = JSON.stringify(p.engines.a.listSas(p.now));
    const actions = p.call('a', (e, now) => e.kernelEvent(now, { type: 'expire', spi: 0xdeadbeef, destination: '192.0.2.1', hard: true }));
    expect(actions).toEqual([]);
    expect(JSON.stringify(p.engines.a.listSas(p.now))).toBe(before);
  });
});

describe('IKE SA rekey', () => {
  for (const optimized of [true, false]) {
    it(`${optimized ? 'optimized' : 'regular'}: children move to the new IKE SA, message IDs restart at 0, kernels untouched`, () => {
      const p = pair({ optimized }, { optimized });
      p.establish();
      const old = p.engines.a.listSas(p.now)[0]!;
      const kernelLog = p.kernels.a.log.length;
      p.call('a', (e, now) => e.rekeyIke(now, old.ikeSaId));
      p.run(5_000);
      const ev = p.eventsOf('ike-rekeyed');
      expect(ev).toHaveLength(2);
      expect(ev.every((e) => e.optimized === optimized)).toBe(true);
      const [fresh] = p.engines.a.listSas(p.now);
      expect(p.engines.a.listSas(p.now)).toHaveLength(1);
      expect(fresh!.spiI).not.toBe(old.spiI);
      expect(fresh!.children.map((c) => c.spiIn)).toEqual(old.children.map((c) => c.spiIn));
      expect(p.kernels.a.log.length).toBe(kernelLog); // the Child SAs are not touched
      // The next exchange on the new IKE SA uses message ID 0.
      const c = fresh!.children[0]!;
      const wireBefore = p.wire.length;
      p.call('a', (e, now) => e.rekeyChild(now, c.childId));
      p.run(2_000);
      const next = decodeMessage(p.wire[wireBefore]!.data);
      expect(next.ok && next.message.header.messageId).toBe(0);
      expect(next.ok && next.message.header.spiI.toString('hex')).toBe(fresh!.spiI);
      expect(next.ok && next.message.header.exchangeType).toBe(ExchangeType.CREATE_CHILD_SA);
      expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
      expect(p.allViolations()).toEqual([]);
    });
  }
});

describe('NAT traversal', () => {
  it('a NAT in front of the initiator: both move to port 4500, kernel specs carry UDP encapsulation with the mapped port', () => {
    const p = pair({}, { remoteAddrs: '%any' });
    p.link.nat = { inside: 'a', publicAddress: '198.51.100.7', portMap: new Map([[500, 31500], [4500, 34500]]) };
    p.establish();
    expect(p.allViolations()).toEqual([]);
    expect(p.eventsOf('child-up')).toHaveLength(2);
    const sa = p.engines.a.listSas(p.now)[0]!;
    const sb = p.engines.b.listSas(p.now)[0]!;
    expect(sa.natDetected.local).toBe(true);
    expect(sb.natDetected.remote).toBe(true);
    expect(sa.local.port).toBe(4500);
    expect(sb.remote).toEqual({ address: '198.51.100.7', port: 34500 });
    const ia = p.kernels.a.log.find((k) => k.op === 'installOutboundSa')!.spec;
    const ib = p.kernels.b.log.find((k) => k.op === 'installOutboundSa')!.spec;
    expect(ia.encap).toEqual({ localPort: 4500, remotePort: 4500 });
    expect(ib.encap).toEqual({ localPort: 4500, remotePort: 34500 });
    expect(ib.remote).toBe('198.51.100.7');
    // IKE_AUTH and later went over 4500 from the initiator.
    expect(p.wire.filter((w) => w.from === 'a').slice(1).every((w) => w.local.port === 4500)).toBe(true);
    // A rekey over the NAT works as well.
    p.call('a', (e, now) => e.rekeyChild(now, sa.children[0]!.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  // RFC 7296 §2.23: the host not behind the NAT sends to the address and port of the last valid
  // authenticated packet. A NAT that re-maps the initiator's port (twice here) must not cost the IKE
  // SA, and the Child SA's UDP encapsulation must follow in the kernel (SPIs and keys unchanged).
  it('the IKE SA and the Child SA follow every NAT re-mapping of the initiator port', () => {
    const p = pair({ dpd: '10s' }, { remoteAddrs: '%any', dpd: '10s' });
    p.link.nat = { inside: 'a', publicAddress: '198.51.100.7', portMap: new Map([[500, 31500], [4500, 34500]]) };
    p.establish();
    const before = p.engines.b.listSas(p.now)[0]!.children[0]!;
    for (const port of [45000, 46000]) {
      p.link.nat.portMap.set(4500, port);
      p.run(120_000);
      expect(p.eventsOf('ike-down')).toEqual([]);
      expect(p.engines.b.listSas(p.now)[0]?.remote).toEqual({ address: '198.51.100.7', port });
      const out = [...p.kernels.b.outbound.values()];
      expect(out).toHaveLength(1);
      expect(out[0]!.encap).toEqual({ localPort: 4500, remotePort: port });
      expect([...p.kernels.b.inbound.values()][0]!.encap).toEqual({ localPort: 4500, remotePort: port });
    }
    // Same Child SA throughout, and it still rekeys over the re-mapped path.
    expect(p.engines.b.listSas(p.now)[0]!.children[0]!.spiIn).toBe(before.spiIn);
    p.call('b', (e, now) => e.rekeyChild(now, before.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(p.kernels.b.log.filter((k) => k.op === 'installOutboundSa').at(-1)!.spec.encap).toEqual({ localPort: 4500, remotePort: 46000 });
    expect(p.allViolations()).toEqual([]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('no NAT: port 500 and no encapsulation; force_encap: encapsulation without a NAT', () => {
    const plain = pair();
    plain.establish();
    expect(plain.kernels.a.log.find((k) => k.op === 'installOutboundSa')!.spec.encap).toBeUndefined();
    expect(plain.engines.a.listSas(plain.now)[0]!.local.port).toBe(500);
    const forced = pair({ forceEncap: true });
    forced.establish();
    expect(forced.eventsOf('child-up')).toHaveLength(2);
    expect(forced.kernels.a.log.find((k) => k.op === 'installOutboundSa')!.spec.encap).toEqual({ localPort: 4500, remotePort: 4500 });
    expect(forced.kernels.b.log.find((k) => k.op === 'installOutboundSa')!.spec.encap).toEqual({ localPort: 4500, remotePort: 4500 });
  });
});

describe('both peers start the connection', () => {
  // Regression: IKE_AUTH carries INITIAL_CONTACT, and the receiver used to drop every other IKE SA
  // with that peer, including the one it had itself just initiated. When both gateways initiate at
  // once (start_action start on both, e.g. after a power cut) each kept a different IKE SA and the
  // Child SAs did not match. Now an IKE SA set up at the same time is no stale one, and once both are
  // up the one holding the lowest nonce is deleted by its initiator (as RFC 7296 §2.8.2 does for rekeys).
  for (const [name, link] of [['clean link', {}], ['10% loss, jitter', { lossRate: 0.1, jitterMs: 30 }]] as const) {
    it(`simultaneous initiation ends with one common IKE SA and mirrored Child SAs (${name}, 16 seeds)`, () => {
      const problems: string[] = [];
      for (let seed = 1; seed <= 16; seed++) {
        const p = new EnginePairHarness(peerConfig('a'), peerConfig('b', { startAction: 'start' }), { ...link, seed });
        p.call('a', (e, now) => e.initiate(now, 'site'));
        p.call('b', (e, now) => e.initiate(now, 'site'));
        p.run(120_000);
        // A redundant IKE SA whose Delete was answered but the answer lost stays 'deleting' (its
        // retransmissions give up later, as for any IKE SA delete); it holds no kernel state.
        const sa = p.engines.a.listSas(p.now).filter((s) => s.state === 'established');
        const sb = p.engines.b.listSas(p.now).filter((s) => s.state === 'established');
        const v = [...p.allViolations(), ...mirrored(p.kernels.a, p.kernels.b)];
        if (sa.length !== 1 || sb.length !== 1) v.push(`IKE SAs: ${sa.length}/${sb.length}`);
        else if (sa[0]!.spiI + sa[0]!.spiR !== sb[0]!.spiI + sb[0]!.spiR) v.push('different IKE SAs');
        else if (sa[0]!.children.length !== 1 || sb[0]!.children.length !== 1) v.push(`Child SAs: ${sa[0]!.children.length}/${sb[0]!.children.length}`);
        if (p.kernels.a.inbound.size !== 1 || p.kernels.b.inbound.size !== 1) v.push(`inbound SAs: ${p.kernels.a.inbound.size}/${p.kernels.b.inbound.size}`);
        if (v.length) problems.push(`seed ${seed}: ${v.join('; ')}`);
      }
      expect(problems).toEqual([]);
    });
  }
});

describe('initiate while connecting', () => {
  // Regression: only an established IKE SA used to be reused, so a second initiate() (operator "up"
  // twice, or start plus an ACQUIRE) while the first was still connecting started a second IKE SA
  // with the same Child SA, and the per-reqid policies were installed twice.
  it('initiate() twice while connecting yields one IKE SA and one Child SA', () => {
    const p = pair();
    p.call('a', (e, now) => e.initiate(now, 'site'));
    expect(p.call('a', (e, now) => e.initiate(now, 'site'))).toEqual([]);
    p.run(30_000);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.engines.a.listSas(p.now)[0]!.children).toHaveLength(1);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect(p.allViolations()).toEqual([]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('another Child SA asked for while connecting is created once the IKE SA is up', () => {
    const p = pair({ extraChild: true }, { extraChild: true });
    p.call('a', (e, now) => e.initiate(now, 'site'));
    expect(p.call('a', (e, now) => e.initiate(now, 'site', 'dmz'))).toEqual([]);
    p.run(30_000);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.engines.a.listSas(p.now)[0]!.children.map((c) => c.name).sort()).toEqual(['dmz', 'lan']);
    expect(p.engines.b.listSas(p.now)[0]!.children.map((c) => c.name).sort()).toEqual(['dmz', 'lan']);
    expect(p.allViolations()).toEqual([]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });
});

describe('DPD and teardown', () => {
  it('an idle but live peer answers liveness checks: nothing is torn down in 10 minutes', () => {
    const p = pair({ dpd: '10s' });
    p.establish();
    const wireBefore = p.wire.length;
    p.run(600_000);
    const informational = p.wire.slice(wireBefore).filter((w) => {
      const d = decodeMessage(w.data);
      return d.ok && d.message.header.exchangeType === ExchangeType.INFORMATIONAL;
    });
    // At least one liveness exchange (request + response) per 2 x dpd_delay: the check is skipped when
    // the previous probe's answer counts as activity (so the effective interval is about 20 s here).
    expect(informational.length).toBeGreaterThanOrEqual(2 * 25);
    expect(p.eventsOf('ike-down')).toHaveLength(0);
    expect(p.kernels.a.inbound.size).toBe(1);
  });

  it('a silent peer: DPD gives up, ike-down, the initiator kernel is empty and no timer of that SA is left', () => {
    const p = pair({ dpd: '10s' });
    p.establish();
    const id = p.engines.a.listSas(p.now)[0]!.ikeSaId;
    p.link.cut = true;
    p.run(900_000);
    expect(p.eventsOf('ike-down', 'a')).toHaveLength(1);
    expect(p.kernels.a.empty).toBe(true);
    expect([...p.clock.armed('a').keys()].filter((k) => k.includes(id))).toEqual([]);
    expect(p.engines.a.stats()).toMatchObject({ ikeSas: 0, childSas: 0 });
  });

  it('terminate from the responder side with a second Child SA: both kernels empty, ike-down on both', () => {
    const p = pair({ extraChild: true }, { extraChild: true });
    p.establish();
    p.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    p.run(5_000);
    expect(p.kernels.a.policies.size).toBe(2);
    const id = p.engines.b.listSas(p.now)[0]!.ikeSaId;
    p.call('b', (e, now) => e.terminate(now, { ikeSaId: id }));
    p.run(10_000);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
    expect(p.eventsOf('ike-down')).toHaveLength(2);
    expect(p.eventsOf('child-down')).toHaveLength(4);
    expect(p.allViolations()).toEqual([]);
  });

  it('terminate of an unknown IKE SA is a clear error', () => {
    const p = pair();
    expect(() => p.engines.a.terminate(p.now, { ikeSaId: 'nope' })).toThrow(/nope/);
  });
});

describe('reload and ACQUIRE', () => {
  it('an unchanged configuration leaves the SAs untouched; new proposals keep them and apply at the next rekey, a regular one', () => {
    const p = pair();
    p.establish();
    const before = p.engines.a.listSas(p.now)[0]!;
    const same = p.call('a', (e, now) => e.reload(now, peerConfig('a')));
    expect(same).toEqual([]);
    expect(p.engines.a.listSas(p.now)[0]!.ikeSaId).toBe(before.ikeSaId);
    p.call('a', (e, now) => e.reload(now, peerConfig('a', { esp: 'aes128gcm16-ecp256' })));
    p.call('b', (e, now) => e.reload(now, peerConfig('b', { esp: 'aes128gcm16-ecp256' })));
    p.run(10_000);
    // Same IKE SA and Child SA: nothing was torn down.
    const kept = p.engines.a.listSas(p.now);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.ikeSaId).toBe(before.ikeSaId);
    expect(kept[0]!.children[0]!.spiIn).toBe(before.children[0]!.spiIn);
    expect(kept[0]!.children[0]!.optimizedRekeyReady).toBe(false);
    // The next Child SA rekey is regular (draft §3) and negotiates the new proposal.
    p.call('a', (e, now) => e.rekeyChild(now, kept[0]!.children[0]!.childId));
    p.run(10_000);
    const rekeyed = p.eventsOf('child-rekeyed', 'a');
    expect(rekeyed).toHaveLength(1);
    expect(rekeyed[0]!.optimized).toBe(false);
    const after = p.engines.a.listSas(p.now);
    expect(after[0]!.children[0]!.suite).toMatch(/AES_GCM_16_128/);
    // The rekey after that may be optimized again.
    expect(after[0]!.children[0]!.optimizedRekeyReady).toBe(true);
    p.run(120_000); // past the grace period of the old inbound SAs
    expect([p.kernels.a.inbound.size, p.kernels.b.inbound.size]).toEqual([1, 1]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.allViolations()).toEqual([]);
  });

  it('new IKE proposals: the next IKE SA rekey is regular and uses them; the responder refuses an optimized one meanwhile', () => {
    const p = pair();
    p.establish();
    const before = p.engines.a.listSas(p.now)[0]!;
    p.call('b', (e, now) => e.reload(now, peerConfig('b', { ike: 'aes128gcm16-prfsha256-ecp256' })));
    p.call('a', (e, now) => e.rekeyIke(now, before.ikeSaId));
    p.run(10_000);
    // a (unchanged) tried optimized; b (reloaded) refused it, and a fell back to a regular rekey,
    // which a's old proposals cannot agree with b's new ones on.
    expect(p.eventsOf('ike-rekeyed', 'a')).toHaveLength(0);
    expect(p.eventsOf('error', 'b').map((e) => e.message)).toEqual([
      'refused an IKE SA rekey: the connection was reconfigured; a regular rekey is required',
      'refused an IKE SA rekey: no acceptable IKE proposal',
    ]);
    expect(p.engines.a.listSas(p.now)[0]!.ikeSaId).toBe(before.ikeSaId);
    // Once a has the new proposals too, its regular rekey starts with ECP-256 (its current X25519 is
    // no longer configured), so no INVALID_KE_PAYLOAD round is needed.
    p.call('a', (e, now) => e.reload(now, peerConfig('a', { ike: 'aes128gcm16-prfsha256-ecp256' })));
    p.call('a', (e, now) => e.rekeyIke(now, p.engines.a.listSas(now)[0]!.ikeSaId));
    p.run(10_000);
    const rekeyed = p.eventsOf('ike-rekeyed', 'a');
    expect(rekeyed).toHaveLength(1);
    expect(rekeyed[0]!.optimized).toBe(false);
    expect(p.engines.a.listSas(p.now)[0]!.suite).toMatch(/AES_GCM_16_128.*PRF_HMAC_SHA2_256.*ECP_256/);
    expect(p.eventsOf('error', 'b').some((e) => /KE payload must use/.test(e.message))).toBe(false);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.allViolations()).toEqual([]);
  });

  it('a regular IKE SA rekey answered with INVALID_KE_PAYLOAD retries once with the method the responder names', () => {
    const p = pair();
    p.establish();
    p.call('b', (e, now) => e.reload(now, peerConfig('b', { ike: 'aes256gcm16-prfsha384-ecp256' })));
    p.call('a', (e, now) => e.reload(now, peerConfig('a', { ike: 'aes256gcm16-prfsha384-x25519-ecp256' })));
    p.call('a', (e, now) => e.rekeyIke(now, p.engines.a.listSas(now)[0]!.ikeSaId));
    p.run(10_000);
    expect(p.eventsOf('error', 'b').map((e) => e.message)).toEqual(['refused an IKE SA rekey: KE payload must use method 19']);
    const rekeyed = p.eventsOf('ike-rekeyed', 'a');
    expect(rekeyed).toHaveLength(1);
    expect(rekeyed[0]!.optimized).toBe(false);
    expect(p.engines.a.listSas(p.now)[0]!.suite).toMatch(/ECP_256/);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });

  it('a changed identity or traffic selector re-establishes the connection', () => {
    const p = pair();
    p.establish();
    const before = p.engines.a.listSas(p.now)[0]!;
    p.call('a', (e, now) => e.reload(now, peerConfig('a', { localTs: ['10.1.0.0/25'] })));
    p.run(10_000);
    const after = p.engines.a.listSas(p.now);
    expect(after).toHaveLength(1);
    expect(after[0]!.ikeSaId).not.toBe(before.ikeSaId);
    expect(p.engines.b.listSas(p.now)).toHaveLength(1);
    expect([p.kernels.a.inbound.size, p.kernels.b.inbound.size]).toEqual([1, 1]);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.allViolations()).toEqual([]);
  });

  it('a removed connection is torn down on reload', () => {
    const p = pair();
    p.establish();
    const cfg = peerConfig('a');
    cfg.connections = [];
    p.call('a', (e, now) => e.reload(now, cfg));
    p.run(10_000);
    expect(p.engines.a.listSas(p.now)).toHaveLength(0);
    expect(p.engines.b.listSas(p.now)).toHaveLength(0);
    expect(p.kernels.a.empty && p.kernels.b.empty).toBe(true);
  });

  it('ACQUIRE for a trap child starts the IKE SA and installs that child; a repeated ACQUIRE adds nothing', () => {
    const p = pair({ startAction: 'trap' });
    const reqid = peerConfig('a').connections[0]!.children[0]!.reqid;
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'acquire', reqid, local: '10.1.0.5', remote: '10.2.0.7' }));
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'acquire', reqid, local: '10.1.0.5', remote: '10.2.0.7' }));
    p.run(5_000);
    p.call('a', (e, now) => e.kernelEvent(now, { type: 'acquire', reqid, local: '10.1.0.5', remote: '10.2.0.7' }));
    p.run(5_000);
    expect(p.engines.a.listSas(p.now)).toHaveLength(1);
    expect(p.eventsOf('child-up', 'a')).toHaveLength(1);
    expect(p.kernels.a.inbound.size).toBe(1);
    expect(p.allViolations()).toEqual([]);
  });

  it('ACQUIRE for an unknown reqid does nothing', () => {
    const p = pair();
    expect(p.call('a', (e, now) => e.kernelEvent(now, { type: 'acquire', reqid: 4242, local: '10.1.0.5', remote: '10.2.0.7' }))).toEqual([]);
  });
});
