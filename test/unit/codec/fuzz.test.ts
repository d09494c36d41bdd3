// Hostile input: well over 100,000 mutated and random datagrams. The decoder must answer every one
// with a result (never an exception, never its internal-error fallback), quickly, and whatever it
// accepts must re-encode to exactly the bytes it was given.
import { describe, expect, it } from 'vitest';
import {
  ExchangeType,
  NotifyType,
  PayloadType,
  Reassembler,
  decodeMessage,
  decodePayloadChain,
  decodeProtected,
  encodeFragments,
  encodeMessage,
  encodePayloadChain,
  encodeProtected,
  type DecodeError,
  type DecodeResult,
} from '../../../src/ike/codec/index.js';
import { createProtection, ENCR } from '../../../src/ike/crypto/index.js';
import { createChildVariants, header, ikeAuthInner, ikeAuthResponseInner, ikeSaInitRequest, ikeSaInitResponse, informationalVariants } from './fixtures.js';
import { ANDROID_IKE_AUTH, ANDROID_IKE_SA_INIT, STRONGSWAN_IKE_SA_INIT_WITH_COOKIE } from './vectors.js';

const SEED = Number(process.env.CODEC_FUZZ_SEED ?? 0x1ce2);
const MUTATED = 110_000;
const RANDOM = 20_000;

/** mulberry32: small deterministic PRNG so a failure can be replayed with CODEC_FUZZ_SEED. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, bytes, pick: <T>(a: readonly T[]): T => a[int(a.length)]! };
}

const protection = createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: Buffer.alloc(36, 0x5e) });

function corpus(): Buffer[] {
  const out: Buffer[] = [ANDROID_IKE_SA_INIT, ANDROID_IKE_AUTH, STRONGSWAN_IKE_SA_INIT_WITH_COOKIE, encodeMessage(ikeSaInitRequest()), encodeMessage(ikeSaInitResponse())];
  const inner = { a: ikeAuthInner(), b: ikeAuthResponseInner(), ...createChildVariants(), ...informationalVariants() };
  for (const payloads of Object.values(inner)) {
    out.push(encodeMessage({ header: header(ExchangeType.CREATE_CHILD_SA, { messageId: 3 }), payloads }));
    out.push(encodeProtected(header(ExchangeType.INFORMATIONAL, { messageId: 4 }), payloads, protection));
  }
  out.push(...encodeFragments(header(ExchangeType.IKE_AUTH, { messageId: 1 }), ikeAuthInner(), protection, 500).slice(0, 2));
  return out;
}

/** Offsets of 16-bit length fields found by walking the payload chain (best effort). */
function lengthFieldOffsets(buf: Buffer): number[] {
  const offsets = [24, 26];
  let o = 28;
  let next = buf[16] ?? 0;
  while (next !== 0 && o + 4 <= buf.length && offsets.length < 64) {
    offsets.push(o + 2);
    // Substructure lengths sit at +2 of proposal, transform, selector and attribute headers too.
    for (let k = o + 6; k < Math.min(buf.length - 1, o + 40); k += 4) offsets.push(k);
    const len = buf.readUInt16BE(o + 2);
    if (next === PayloadType.SK || next === PayloadType.SKF || len < 4) break;
    next = buf[o]!;
    o += len;
  }
  return offsets.filter((x) => x + 1 < buf.length);
}

function fixHeaderLength(buf: Buffer): Buffer {
  if (buf.length >= 28) buf.writeUInt32BE(buf.length, 24);
  return buf;
}

type Rng = ReturnType<typeof prng>;

function mutate(rng: Rng, base: Buffer, all: Buffer[]): Buffer {
  let b: Buffer = Buffer.from(base);
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(9)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + rng.int(4); i < n && b.length; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
        break;
      case 1: { // interesting byte values
        const v = rng.pick([0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xfe, 0xff, 33, 41, 46, 53]);
        if (b.length) b[rng.int(b.length)] = v;
        break;
      }
      case 2: // truncation
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 3: { // length-field edits
        const offs = lengthFieldOffsets(b);
        if (!offs.length) break;
        const at = rng.pick(offs);
        const cur = b.readUInt16BE(at);
        const v = rng.pick([0, 1, 3, 4, 5, 7, 8, 0xffff, 0x8000, cur + 1, cur - 1, cur + 4, cur - 4, rng.int(0x10000)]);
        b.writeUInt16BE(((v % 0x10000) + 0x10000) % 0x10000, at);
        break;
      }
      case 4: { // splice with another corpus message
        const other = rng.pick(all);
        const cut = rng.int(b.length + 1);
        const from = rng.int(other.length + 1);
        b = Buffer.concat([b.subarray(0, cut), other.subarray(from)]);
        break;
      }
      case 5: { // insert random octets
        const at = rng.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
        break;
      }
      case 6: { // delete octets
        const at = rng.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
        break;
      }
      case 7: // next-payload / type octet edits in the header
        if (b.length > 16) b[16] = rng.int(256);
        break;
      default: // overwrite a run with random data
        if (b.length) {
          const at = rng.int(b.length);
          rng.bytes(Math.min(b.length - at, 1 + rng.int(16))).copy(b, at);
        }
    }
  }
  // Mostly keep the header Length consistent so the mutation reaches the payload parsers.
  if (rng.next() < 0.85) b = fixHeaderLength(Buffer.from(b));
  return b;
}

const KINDS = new Set<DecodeError['kind']>(['header', 'syntax', 'critical', 'integrity', 'unprotected', 'fragment']);
const NOTIFIES = new Set([undefined, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, NotifyType.INVALID_SYNTAX, NotifyType.INVALID_MAJOR_VERSION]);

interface Stats {
  ok: number;
  errors: Map<string, number>;
  slowest: number;
}

function check(input: Buffer, r: DecodeResult, stats: Stats): void {
  if (r.ok) {
    stats.ok++;
    const again = encodeMessage(r.message);
    if (!again.equals(input)) throw new Error(`accepted input does not re-encode exactly: ${input.toString('hex')}`);
    return;
  }
  const e = r.error;
  if (e.reason.startsWith('internal')) throw new Error(`decoder fell back on an internal error (${e.reason}) for ${input.toString('hex')}`);
  if (!KINDS.has(e.kind) || !NOTIFIES.has(e.notify) || e.reason.length === 0) throw new Error(`bad error shape ${JSON.stringify(e)}`);
  if (e.kind === 'critical' && e.notifyData?.length !== 1) throw new Error('critical error without the payload type octet');
  stats.errors.set(e.kind, (stats.errors.get(e.kind) ?? 0) + 1);
}

function timed<T>(stats: Stats, f: () => T): T {
  const t0 = performance.now();
  const out = f();
  const dt = performance.now() - t0;
  if (dt > stats.slowest) stats.slowest = dt;
  return out;
}

describe(`decoder fuzz (seed ${SEED})`, () => {
  it(`survives ${MUTATED} mutated and ${RANDOM} random datagrams`, () => {
    const rng = prng(SEED);
    const all = corpus();
    const stats: Stats = { ok: 0, errors: new Map(), slowest: 0 };
    const t0 = performance.now();
    for (let i = 0; i < MUTATED; i++) {
      const input = mutate(rng, rng.pick(all), all);
      check(input, timed(stats, () => decodeMessage(input)), stats);
    }
    for (let i = 0; i < RANDOM; i++) {
      // Half pure noise, half a plausible IKEv2 header over noise.
      const body = rng.bytes(rng.int(rng.next() < 0.1 ? 4000 : 400));
      let input: Buffer = body;
      if (i % 2 === 0 && body.length >= 28) {
        body[17] = 0x20;
        body[16] = rng.pick([33, 34, 35, 40, 41, 42, 44, 46, 47, 53, rng.int(256)]);
        input = fixHeaderLength(body);
      }
      check(input, timed(stats, () => decodeMessage(input)), stats);
    }
    const elapsed = performance.now() - t0;
    console.log(`codec fuzz: ${MUTATED + RANDOM} inputs in ${elapsed.toFixed(0)} ms, ${stats.ok} accepted, errors ${JSON.stringify([...stats.errors])}, slowest ${stats.slowest.toFixed(2)} ms`);
    // The mutations must reach past the header into the payload parsers, and some must stay valid.
    expect(stats.errors.get('syntax') ?? 0).toBeGreaterThan(MUTATED / 4);
    expect(stats.errors.get('critical') ?? 0).toBeGreaterThan(10);
    expect(stats.ok).toBeGreaterThan(1000);
    // Bounded time: no single datagram takes long (generous for a shared CI machine).
    expect(stats.slowest).toBeLessThan(250);
    expect(elapsed).toBeLessThan(60_000);
  });

  it('decodePayloadChain survives random chains with every first payload type', () => {
    const rng = prng(SEED + 1);
    const inner = encodePayloadChain(ikeAuthInner()).bytes;
    for (let i = 0; i < 20_000; i++) {
      const first = i < 256 ? i : rng.int(256);
      const buf = rng.next() < 0.5 ? rng.bytes(rng.int(300)) : mutate(rng, inner, [inner]);
      const r = decodePayloadChain(first, buf);
      if (r.ok) {
        const again = encodePayloadChain(r.payloads);
        expect(again.bytes.equals(buf)).toBe(true);
      } else {
        expect(r.error.reason.startsWith('internal')).toBe(false);
      }
    }
  });

  it('decodeProtected and the Reassembler never accept a mutated protected datagram', () => {
    const rng = prng(SEED + 2);
    const sk = encodeProtected(header(ExchangeType.INFORMATIONAL, { messageId: 4 }), ikeAuthInner(), protection);
    const frags = encodeFragments(header(ExchangeType.IKE_AUTH, { messageId: 1 }), ikeAuthInner(), protection, 400);
    const reassembler = new Reassembler({ maxBytes: 64 * 1024 });
    for (let i = 0; i < 10_000; i++) {
      const m = mutate(rng, sk, [sk, ...frags]);
      const r = decodeProtected(m, protection);
      if (r.ok) expect(m.equals(sk)).toBe(true); // only an unchanged message may open
      else expect(r.error.reason.startsWith('internal')).toBe(false);
      const f = mutate(rng, rng.pick(frags), frags);
      const fr = reassembler.add(i, f, protection);
      expect(fr.status === 'complete' && !frags.some((x) => x.equals(f))).toBe(false);
      expect(reassembler.bytesHeld).toBeLessThanOrEqual(64 * 1024);
    }
  });
});
