// Hostile and broken peers: mutated rekey requests and responses never throw; they are refused with a
// notify or fail the exchange, and leave the existing SAs alone.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { findNotify, notify } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import {
  completeChildRekey,
  completeIkeRekey,
  redundantRekey,
  respondChildRekey,
  respondIkeRekey,
  startChildRekey,
  startIkeRekey,
} from '../../../src/ike/engine/rekey-exchange.js';
import { makePair, rekeyChild, rekeyIke } from './rekey-pair.js';

/** A small seeded PRNG so failures reproduce. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(payloads: Payload[], rnd: () => number): Payload[] {
  const out = payloads.map((p) => ({ ...p }) as Payload);
  const ops = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < ops; k++) {
    const i = Math.floor(rnd() * out.length);
    const op = Math.floor(rnd() * 6);
    const p = out[i];
    if (!p) continue;
    if (op === 0) out.splice(i, 1);
    else if (op === 1) out.push({ ...p } as Payload);
    else if (op === 2 && p.type === PayloadType.NOTIFY) out[i] = { ...p, data: randomBytes(Math.floor(rnd() * 12)) };
    else if (op === 3 && p.type === PayloadType.NOTIFY) out[i] = { ...p, protocol: Math.floor(rnd() * 5), spi: randomBytes([0, 4, 8][Math.floor(rnd() * 3)]!) };
    else if (op === 4 && p.type === PayloadType.KE) out[i] = { ...p, group: [0, 19, 31, 35, 36, 999][Math.floor(rnd() * 6)]!, data: randomBytes(Math.floor(rnd() * 80)) };
    else if (op === 5 && p.type === PayloadType.NONCE) out[i] = { ...p, data: Buffer.alloc(0) };
    else out.splice(i, 0, notify([NotifyType.USE_TRANSPORT_MODE, NotifyType.ADDITIONAL_KEY_EXCHANGE, NotifyType.REKEY_SA, 50401][Math.floor(rnd() * 4)]!, randomBytes(4)));
  }
  return out;
}

describe('mutated requests and responses', () => {
  it('Child SA rekey: 400 mutated requests and responses, no exception, old SAs intact', () => {
    const rnd = prng(7);
    for (let round = 0; round < 400; round++) {
      const { a, b } = makePair({ childKeMethods: [31] });
      const oldA = a.children[0]!;
      const oldB = b.children[0]!;
      const optimized = rnd() < 0.6;
      const { request, pending } = startChildRekey(oldA, a.policy, optimized);
      const bad = mutate(request, rnd);
      const ans = respondChildRekey(b.ike, bad, (spi) => b.children.find((c) => c.spiOut === spi), b.policy, b.childFollowups, 0);
      expect(['done', 'followup', 'refused']).toContain(ans.kind);
      if (ans.kind === 'refused') expect(ans.response.some((p) => p.type === PayloadType.NOTIFY)).toBe(true);
      const good = respondChildRekey(b.ike, request, (spi) => b.children.find((c) => c.spiOut === spi), b.policy, b.childFollowups, 0);
      const out = completeChildRekey(a.ike, pending, mutate(good.response, rnd), a.policy);
      expect(['done', 'followup', 'fallback', 'retry-ke', 'failed']).toContain(out.kind);
      expect(a.children).toEqual([oldA]);
      expect(b.children).toEqual([oldB]);
    }
  });

  it('IKE SA rekey: 200 mutated requests and responses, no exception', () => {
    const rnd = prng(11);
    for (let round = 0; round < 200; round++) {
      const { a, b } = makePair();
      const { request, pending } = startIkeRekey(a.ike, a.policy, rnd() < 0.5);
      const ans = respondIkeRekey(b.ike, mutate(request, rnd), b.policy, b.ikeFollowups, 0);
      expect(['done', 'followup', 'refused']).toContain(ans.kind);
      const good = respondIkeRekey(b.ike, request, b.policy, b.ikeFollowups, 0);
      const out = completeIkeRekey(a.ike, pending, mutate(good.response, rnd), a.policy);
      expect(['done', 'followup', 'fallback', 'retry-ke', 'failed']).toContain(out.kind);
    }
  });
});

describe('follow-up failures inside a rekey', () => {
  it('the responder dropped the chain (timeout): STATE_NOT_FOUND, the rekey fails, the old Child SA stays on both sides', () => {
    const { a, b } = makePair({ esp: ['aes256gcm16-x25519-ke1_mlkem768'], childKeMethods: [31, 36] });
    const oldA = a.children[0]!;
    const oldB = b.children[0]!;
    const realHandle = b.childFollowups.handleRequest.bind(b.childFollowups);
    b.childFollowups.handleRequest = (now, payloads) => {
      b.childFollowups.expire(Number.MAX_SAFE_INTEGER); // the next request came too late
      return realHandle(now, payloads);
    };
    const r = rekeyChild(a, b, oldA, true);
    expect(r.ok).toBe(false);
    expect(findNotify(r.log.responses[1]!, NotifyType.STATE_NOT_FOUND)).toBeDefined();
    expect(r.log.exchanges.map((e) => e.type)).toEqual([ExchangeType.CREATE_CHILD_SA, ExchangeType.IKE_FOLLOWUP_KE]);
    expect(a.children).toEqual([oldA]);
    expect(b.children).toEqual([oldB]);
  });
});

describe('IKE SA rekey collision (RFC 7296 §2.8.2)', () => {
  it('both peers rekey the IKE SA at once (optimized and regular): they agree which new IKE SA survives', () => {
    for (const [aOpt, bOpt] of [
      [true, true],
      [true, false],
      [false, true],
    ] as const) {
      const p1 = makePair();
      const p2 = { a: { ...p1.a }, b: { ...p1.b } };
      const ra = rekeyIke(p1.a, p1.b, aOpt);
      const rb = rekeyIke(p2.b, p2.a, bOpt);
      if (!ra.ok || !rb.ok) throw new Error('rekeys failed');
      // the nonces of the CREATE_CHILD_SA that created each surviving candidate (the last one with a nonce)
      const nonceOf = (list: Payload[][]) => (list.filter((ps) => ps.some((p) => p.type === PayloadType.NONCE)).at(-1)!.find((p) => p.type === PayloadType.NONCE) as { data: Buffer }).data;
      const nonces = (r: typeof ra) => ({ ni: nonceOf(r.log.requests), nr: nonceOf(r.log.responses) });
      const x = nonces(ra);
      const y = nonces(rb);
      expect(redundantRekey(x, y) === 'a').toBe(redundantRekey(y, x) === 'b');
      expect(ra.initiatorIke.keys).toEqual(ra.responderIke.keys);
      expect(rb.initiatorIke.keys).toEqual(rb.responderIke.keys);
    }
  });
});
