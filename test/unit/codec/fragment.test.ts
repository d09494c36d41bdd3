// RFC 7383 fragmentation: every fragment separately protected, any arrival order, duplicates,
// losses, forged fragments, re-fragmentation with a higher Total Fragments, and bounded memory/time.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ExchangeType,
  PayloadType,
  Reassembler,
  certPayload,
  decodeMessage,
  encodeFragments,
  encodeProtectedForSending,
  type IkeMessage,
  type Payload,
  type ReassemblyResult,
  type SkProtection,
} from '../../../src/ike/codec/index.js';
import { createProtection, ENCR, INTEG } from '../../../src/ike/crypto/index.js';
import { header, ikeAuthInner } from './fixtures.js';

const gcm = (): SkProtection => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 128, encKey: Buffer.alloc(20, 0x42) });
const cbc = (): SkProtection =>
  createProtection({ encrId: ENCR.AES_CBC, keyBits: 256, integId: INTEG.HMAC_SHA2_512_256, encKey: Buffer.alloc(32, 1), integKey: Buffer.alloc(64, 2) });

/** IKE_AUTH inner payloads large enough to need several 1280-octet datagrams. */
function bigAuth(): Payload[] {
  return [...ikeAuthInner(), certPayload(4, randomBytes(3000)), certPayload(4, randomBytes(1500))];
}

const authHeader = (messageId = 1) => header(ExchangeType.IKE_AUTH, { messageId });

function feed(r: Reassembler, now: number, frags: Buffer[], protection: SkProtection): ReassemblyResult[] {
  return frags.map((f) => r.add(now, f, protection));
}

function completed(results: ReassemblyResult[]): IkeMessage {
  const done = results.filter((x): x is Extract<ReassemblyResult, { status: 'complete' }> => x.status === 'complete');
  expect(done).toHaveLength(1);
  return done[0]!.message;
}

function shuffle<T>(a: T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomBytes(1)[0]! % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('encodeFragments', () => {
  for (const [name, make] of [['AES-GCM', gcm], ['AES-CBC + HMAC-SHA2-512', cbc]] as const) {
    it(`${name}: cuts the inner chain into SKF datagrams within the size limit`, () => {
      const protection = make();
      const inner = bigAuth();
      const frags = encodeFragments(authHeader(), inner, protection, 1232);
      expect(frags.length).toBeGreaterThan(4);
      frags.forEach((f, i) => {
        expect(f.length).toBeLessThanOrEqual(1232);
        const d = decodeMessage(f);
        if (!d.ok) throw new Error(d.error.reason);
        expect(d.message.header.nextPayload).toBe(PayloadType.SKF);
        expect(d.message.header.messageId).toBe(1);
        const skf = d.message.payloads[0]!;
        if (skf.type !== PayloadType.SKF) throw new Error('not SKF');
        expect(skf.fragmentNumber).toBe(i + 1);
        expect(skf.totalFragments).toBe(frags.length);
        // RFC 7383 §2.5: the first inner payload type only in fragment 1.
        expect(skf.innerFirst).toBe(i === 0 ? PayloadType.IDi : 0);
      });
      const r = new Reassembler();
      const message = completed(feed(r, 0, frags, protection));
      expect(message.payloads).toEqual(inner);
      expect(message.header.exchangeType).toBe(ExchangeType.IKE_AUTH);
      expect(r.bytesHeld).toBe(0);
      expect(r.messagesPending).toBe(0);
    });
  }

  it('sends one SK message when it fits or fragmentation is off, fragments otherwise', () => {
    const protection = gcm();
    const small = encodeProtectedForSending(authHeader(), ikeAuthInner(), protection, { fragmentation: true, maxMessage: 4000 });
    expect(small).toHaveLength(1);
    expect(small[0]![16]).toBe(PayloadType.SK);
    const off = encodeProtectedForSending(authHeader(), bigAuth(), protection, { fragmentation: false, maxMessage: 1000 });
    expect(off).toHaveLength(1);
    expect(off[0]![16]).toBe(PayloadType.SK);
    const on = encodeProtectedForSending(authHeader(), bigAuth(), protection, { fragmentation: true, maxMessage: 1000 });
    expect(on.length).toBeGreaterThan(5);
    expect(on.every((f) => f[16] === PayloadType.SKF && f.length <= 1000)).toBe(true);
  });

  it('works without maxPlaintext (only overhead) and refuses a limit nothing fits in', () => {
    const full = gcm();
    const minimal: SkProtection = { seal: full.seal.bind(full), open: full.open.bind(full), overhead: full.overhead.bind(full) };
    const frags = encodeFragments(authHeader(), bigAuth(), minimal, 576);
    expect(frags.every((f) => f.length <= 576)).toBe(true);
    expect(completed(feed(new Reassembler(), 0, frags, full)).payloads).toHaveLength(bigAuth().length);
    expect(() => encodeFragments(authHeader(), bigAuth(), full, 60)).toThrow(/no inner octets fit/);
  });
});

describe('Reassembler', () => {
  const protection = gcm();
  const inner = bigAuth();
  const frags = encodeFragments(authHeader(), inner, protection, 1000);

  it('accepts fragments in any order', () => {
    for (const order of [[...frags].reverse(), shuffle(frags), shuffle(frags)]) {
      const results = feed(new Reassembler(), 0, order, protection);
      expect(results.slice(0, -1).every((x) => x.status === 'incomplete')).toBe(true);
      expect(completed(results).payloads).toEqual(inner);
    }
  });

  it('drops duplicates and still completes once', () => {
    const r = new Reassembler();
    const rest = shuffle(frags.slice(3));
    const order = [frags[0]!, frags[2]!, frags[0]!, frags[2]!, frags[2]!, frags[1]!, ...rest];
    const results = feed(r, 0, order, protection);
    expect(results.map((x) => x.status).slice(0, 6)).toEqual(['incomplete', 'incomplete', 'dropped', 'dropped', 'dropped', 'incomplete']);
    for (const d of results) if (d.status === 'dropped') expect(d.reason).toMatch(/duplicate fragment [13]\//);
    expect(completed(results).payloads).toEqual(inner);
    // After completion the key is free: a late copy starts a new reassembly (the engine's Message ID
    // window decides whether it is a retransmitted request, RFC 7383 §2.6.1).
    expect(r.add(0, frags[0]!, protection).status).toBe('incomplete');
  });

  it('waits across a lost fragment until the retransmission brings it', () => {
    const r = new Reassembler();
    const lost = 3;
    const first = feed(r, 0, frags.filter((_, i) => i !== lost), protection);
    expect(first.every((x) => x.status === 'incomplete')).toBe(true);
    expect(r.messagesPending).toBe(1);
    // The retransmission repeats every fragment; the ones already held are duplicates.
    const again = feed(r, 1000, frags, protection);
    expect(completed(again).payloads).toEqual(inner);
  });

  it('drops a forged fragment without storing it and completes with the genuine one', () => {
    const r = new Reassembler();
    const forged = Buffer.from(frags[1]!);
    forged[forged.length - 1] ^= 0x80;
    const res = r.add(0, forged, protection);
    expect(res).toEqual({ status: 'dropped', reason: expect.stringMatching(/integrity/), integrity: true });
    expect(r.messagesPending).toBe(0);
    expect(r.bytesHeld).toBe(0);
    expect(completed(feed(r, 0, frags, protection)).payloads).toEqual(inner);
  });

  it('drops fragments sealed with another key', () => {
    const other = createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 128, encKey: randomBytes(20) });
    const res = feed(new Reassembler(), 0, frags, other);
    expect(res.every((x) => x.status === 'dropped' && x.integrity === true)).toBe(true);
  });

  it('restarts on a higher Total Fragments and ignores the stale lower ones (RFC 7383 §2.6)', () => {
    const smaller = encodeFragments(authHeader(), inner, protection, 600);
    expect(smaller.length).toBeGreaterThan(frags.length);
    const r = new Reassembler();
    feed(r, 0, frags.slice(0, 3), protection);
    const restart = r.add(0, smaller[4]!, protection);
    expect(restart).toEqual({ status: 'incomplete', received: 1, total: smaller.length });
    const stale = r.add(0, frags[3]!, protection);
    expect(stale.status === 'dropped' && stale.reason).toMatch(/Total Fragments \d+ below/);
    expect(completed(feed(r, 0, smaller, protection)).payloads).toEqual(inner);
  });

  it('keeps messages apart by Message ID and direction', () => {
    const other = encodeFragments(header(ExchangeType.IKE_AUTH, { messageId: 1, response: true, initiator: false }), ikeAuthInner(), protection, 700);
    const mid2 = encodeFragments(authHeader(2), ikeAuthInner(), protection, 700);
    const r = new Reassembler();
    const mixed: Buffer[] = [];
    const n = Math.max(frags.length, other.length, mid2.length);
    for (let i = 0; i < n; i++) for (const set of [frags, other, mid2]) if (set[i]) mixed.push(set[i]!);
    const results = feed(r, 0, mixed, protection);
    const done = results.filter((x) => x.status === 'complete');
    expect(done).toHaveLength(3);
    const byMid = done.map((d) => d.status === 'complete' && [d.message.header.messageId, d.message.header.flags.response, d.message.payloads.length]);
    expect(byMid).toContainEqual([1, false, inner.length]);
    expect(byMid).toContainEqual([1, true, ikeAuthInner().length]);
    expect(byMid).toContainEqual([2, false, ikeAuthInner().length]);
  });

  it('refuses Total Fragments above the limit', () => {
    const r = new Reassembler({ maxFragments: 4 });
    const res = r.add(0, frags[0]!, protection);
    expect(res.status === 'dropped' && res.reason).toMatch(/above the limit of 4/);
    expect(r.messagesPending).toBe(0);
  });

  it('bounds the octets held: a message larger than the budget is dropped', () => {
    const r = new Reassembler({ maxBytes: 2000 });
    const results = feed(r, 0, frags, protection);
    expect(results.some((x) => x.status === 'dropped' && /reassembly limit/.test(x.reason))).toBe(true);
    expect(results.some((x) => x.status === 'complete')).toBe(false);
    expect(r.bytesHeld).toBeLessThanOrEqual(2000);
  });

  it('evicts the oldest partial message beyond maxMessages and when the byte budget needs room', () => {
    const r = new Reassembler({ maxMessages: 2 });
    const sets = [1, 2, 3].map((mid) => encodeFragments(authHeader(mid), inner, protection, 1000));
    sets.forEach((s, i) => r.add(i, s[0]!, protection));
    expect(r.messagesPending).toBe(2);
    // MID 1 was evicted: its remaining fragments start over and cannot complete.
    expect(feed(r, 10, sets[0]!.slice(1), protection).some((x) => x.status === 'complete')).toBe(false);
    expect(completed(feed(r, 10, sets[2]!.slice(1), protection)).header.messageId).toBe(3);
  });

  it('expires partial messages after the timeout', () => {
    const r = new Reassembler({ timeoutMs: 5000 });
    feed(r, 0, frags.slice(0, 2), protection);
    expect(r.messagesPending).toBe(1);
    r.expire(4999);
    expect(r.messagesPending).toBe(1);
    r.expire(5000);
    expect(r.messagesPending).toBe(0);
    expect(r.bytesHeld).toBe(0);
    // Late fragments start a new reassembly that cannot complete without the expired ones.
    expect(feed(r, 6000, frags.slice(2), protection).every((x) => x.status === 'incomplete')).toBe(true);
  });

  it('reports a malformed reassembled chain and non-fragment input as errors', () => {
    const crit = encodeFragments(authHeader(), [{ type: PayloadType.UNKNOWN, critical: true, rawType: 222, data: Buffer.alloc(2000) }], protection, 800);
    const res = feed(new Reassembler(), 0, crit, protection);
    const last = res[res.length - 1]!;
    expect(last.status === 'error' && last.error.kind).toBe('critical');
    expect(last.status === 'error' && last.error.header?.messageId).toBe(1);
    const notFrag = new Reassembler().add(0, Buffer.alloc(5), protection);
    expect(notFrag.status === 'error' && notFrag.error.kind).toBe('header');
  });
});
