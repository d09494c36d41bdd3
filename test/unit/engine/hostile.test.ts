// Hostile datagrams against both roles: random bytes, bit flips of real traffic, and — the case a
// blind fuzzer rarely reaches — messages with the live SPIs and the expected message IDs but garbage
// bodies, including while a rekey is outstanding. Nothing may throw, and no state may change.
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType, PayloadType } from '../../../src/ike/codec/constants.js';
import { EnginePairHarness, peerConfig } from '../../helpers/engine-pair.js';
import type { Host } from '../../helpers/lossy-link.js';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function snapshot(p: EnginePairHarness, h: Host): string {
  const st = p.engines[h].stats();
  const k = p.kernels[h];
  return JSON.stringify({ sas: p.engines[h].listSas(p.now), ike: st.ikeSas, child: st.childSas, halfOpen: st.halfOpen, kin: [...k.inbound.keys()], kout: [...k.outbound.keys()], pol: [...k.policies] });
}

/** A header with the live SPIs, the given flags/exchange/MID, followed by `body` (lengths consistent). */
function craft(spiI: Buffer, spiR: Buffer, exchange: number, flags: number, mid: number, nextPayload: number, body: Buffer): Buffer {
  const h = Buffer.alloc(28);
  spiI.copy(h, 0);
  spiR.copy(h, 8);
  h[16] = nextPayload;
  h[17] = 0x20;
  h[18] = exchange;
  h[19] = flags;
  h.writeUInt32BE(mid >>> 0, 20);
  h.writeUInt32BE(28 + body.length, 24);
  return Buffer.concat([h, body]);
}

function fuzz(p: EnginePairHarness, target: Host, count: number, seed: number): { sent: number; ikeSaInit: number } {
  const r = rng(seed);
  const corpus = p.wire.map((w) => w.data);
  const sa = p.engines[target].listSas(p.now)[0]!;
  const spiI = Buffer.from(sa.spiI, 'hex');
  const spiR = Buffer.from(sa.spiR, 'hex');
  const exchanges = [ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL, 43, 44, 0, 255];
  let ikeSaInit = 0;
  for (let i = 0; i < count; i++) {
    let d: Buffer;
    const kind = i % 4;
    if (kind === 0) {
      d = Buffer.alloc(r(300));
      for (let j = 0; j < d.length; j++) d[j] = r(256);
    } else if (kind === 1) {
      d = Buffer.from(corpus[r(corpus.length)]!);
      const flips = 1 + r(6);
      for (let j = 0; j < flips && d.length; j++) d[r(d.length)]! ^= 1 << r(8);
      if (r(3) === 0) d = d.subarray(0, r(d.length + 1));
    } else {
      // Live SPIs, plausible exchange and MID (0..3), initiator/response flags in every combination,
      // an SK (46) or SKF (53) or random first payload, and a random body of a plausible size.
      const body = Buffer.alloc(r(4) === 0 ? r(8) : 4 + r(200));
      for (let j = 0; j < body.length; j++) body[j] = r(256);
      if (body.length >= 4 && r(2) === 0) body.writeUInt16BE(body.length, 2); // a consistent generic payload length
      const flags = [0x08, 0x20, 0x28, 0x00][r(4)]!;
      const np = [PayloadType.SK, PayloadType.SKF, r(256)][r(3)]!;
      d = craft(spiI, spiR, exchanges[r(exchanges.length)]!, flags, r(4), np, body);
    }
    // A well-formed IKE_SA_INIT request legitimately creates half-open state: keep those out.
    const decoded = decodeMessage(d);
    if (decoded.ok && decoded.message.header.exchangeType === ExchangeType.IKE_SA_INIT && !decoded.message.header.flags.response && decoded.message.payloads.some((x) => x.type === PayloadType.KE)) {
      ikeSaInit++;
      continue;
    }
    const port = r(2) === 0 ? 500 : 4500;
    const before = p.thrown.length;
    try {
      p.inject(target, d, undefined, port);
    } catch {
      // recorded in p.thrown
    }
    if (p.thrown.length !== before) throw new Error(`datagram ${i} threw: ${p.thrown.at(-1)} (${d.toString('hex').slice(0, 120)})`);
  }
  return { sent: count - ikeSaInit, ikeSaInit };
}

describe('hostile datagrams', () => {
  for (const target of ['b', 'a'] as const) {
    it(`60,000 to the ${target === 'a' ? 'initiator' : 'responder'} of an established IKE SA: no exception, no state change, everything counted as dropped`, () => {
      const p = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 3 });
      p.establish();
      const before = snapshot(p, target);
      const dropped0 = p.engines[target].stats().dropped;
      const { sent } = fuzz(p, target, 60_000, target === 'a' ? 11 : 12);
      expect(sent).toBeGreaterThan(50_000);
      expect(snapshot(p, target)).toBe(before);
      expect(p.engines[target].stats().dropped - dropped0).toBeGreaterThan(sent * 0.5);
      expect(p.eventsOf('ike-down')).toHaveLength(0);
      expect(p.allViolations()).toEqual([]);
      // The SA still works afterwards: a Child SA rekey completes.
      p.run(1_000);
      p.link.dropIf = undefined;
      const c = p.engines.a.listSas(p.now)[0]!.children[0]!;
      p.call('a', (e, now) => e.rekeyChild(now, c.childId));
      p.run(20_000);
      expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    });
  }

  it('20,000 to the responder while a Child SA rekey request is outstanding on the initiator: the rekey still completes', () => {
    const p = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 5 });
    p.establish();
    const c = p.engines.a.listSas(p.now)[0]!.children[0]!;
    p.call('a', (e, now) => e.rekeyChild(now, c.childId));
    // The rekey request is in flight; hit both ends before it is delivered.
    fuzz(p, 'b', 10_000, 21);
    fuzz(p, 'a', 10_000, 22);
    expect(p.thrown).toEqual([]);
    p.run(30_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(p.eventsOf('ike-down')).toHaveLength(0);
    expect(p.allViolations()).toEqual([]);
    expect([p.kernels.a.inbound.size, p.kernels.b.inbound.size]).toEqual([1, 1]);
  });

  it('20,000 random datagrams to a fresh responder create no state', () => {
    const p = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 6 });
    p.establish();
    // Another responder with the same configuration and no SA at all.
    const q = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 7 });
    const r = rng(31);
    for (let i = 0; i < 20_000; i++) {
      const src = p.wire[r(p.wire.length)]!.data;
      const d = Buffer.from(src);
      d[r(d.length)]! ^= 1 << r(8);
      const decoded = decodeMessage(d);
      if (decoded.ok && decoded.message.header.exchangeType === ExchangeType.IKE_SA_INIT && !decoded.message.header.flags.response && decoded.message.payloads.some((x) => x.type === PayloadType.KE)) continue;
      q.inject('b', d);
    }
    expect(q.thrown).toEqual([]);
    expect(q.engines.b.stats()).toMatchObject({ ikeSas: 0, halfOpen: 0, childSas: 0 });
    expect(q.kernels.b.empty).toBe(true);
  });

  it('an IKE_SA_INIT flood from 300 sources: half-open state stops at cookie_threshold, then stateless COOKIEs; all half-open state expires', () => {
    const p = new EnginePairHarness(peerConfig('a'), peerConfig('b', { remoteAddrs: '%any' }), { seed: 3 });
    p.link.cut = true;
    let maxHalfOpen = 0;
    for (let i = 0; i < 300; i++) {
      const q = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 100 + i });
      q.link.cut = true;
      q.call('a', (e, now) => e.initiate(now, 'site'));
      p.inject('b', q.wire[0]!.data, { address: `203.0.113.${i % 250}`, port: 1024 + i });
      maxHalfOpen = Math.max(maxHalfOpen, p.engines.b.stats().halfOpen);
    }
    const threshold = peerConfig('b').cookieThreshold;
    expect(maxHalfOpen).toBe(threshold);
    const answers = p.wire.filter((w) => w.from === 'b').map((w) => decodeMessage(w.data));
    const cookies = answers.filter((d) => d.ok && d.message.payloads.length === 1 && d.message.payloads[0]!.type === PayloadType.NOTIFY && (d.message.payloads[0] as { notifyType: number }).notifyType === 16390);
    expect(answers).toHaveLength(300);
    expect(cookies).toHaveLength(300 - threshold);
    p.run(120_000);
    expect(p.engines.b.stats()).toMatchObject({ ikeSas: 0, halfOpen: 0 });
  });
});

describe('kernel failures', () => {
  it('the responder kernel refuses the policies: the Child SA is rolled back on both sides, the IKE SA stays', () => {
    const p = new EnginePairHarness(peerConfig('a'), peerConfig('b'), { seed: 3 });
    p.establish();
    const failed = p.kernels.b.log.find((k) => k.op === 'installPolicies')!;
    p.call('b', (e, now) => e.kernelEvent(now, { type: 'action-failed', action: failed, message: 'File exists (EEXIST)' }));
    p.run(10_000);
    expect(p.eventsOf('error', 'b').some((e) => /installPolicies/.test(e.message))).toBe(true);
    expect(p.eventsOf('child-down')).toHaveLength(2);
    expect(p.kernels.a.empty).toBe(true);
    expect(p.kernels.b.inbound.size + p.kernels.b.outbound.size).toBe(0);
    expect(p.engines.a.listSas(p.now)[0]?.state).toBe('established');
    expect(p.engines.b.listSas(p.now)[0]?.state).toBe('established');
  });
});
