import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createIkeSaProtections,
  createProtection,
  encrInfo,
  ENCR,
  ikeKeyLengths,
  INTEG,
  integInfo,
  type IkeProtection,
} from '../../../src/ike/crypto/index.js';

interface Suite {
  name: string;
  encrId: number;
  keyBits?: number;
  integId?: number;
}

const suites: Suite[] = [];
for (const bits of [128, 192, 256]) {
  suites.push({ name: `AES-GCM-16-${bits}`, encrId: ENCR.AES_GCM_16, keyBits: bits });
  suites.push({ name: `AES-GCM-12-${bits}`, encrId: ENCR.AES_GCM_12, keyBits: bits });
  suites.push({ name: `AES-GCM-8-${bits}`, encrId: ENCR.AES_GCM_8, keyBits: bits });
  for (const [iname, integ] of [
    ['HMAC-SHA1-96', INTEG.HMAC_SHA1_96],
    ['HMAC-SHA2-256-128', INTEG.HMAC_SHA2_256_128],
    ['HMAC-SHA2-384-192', INTEG.HMAC_SHA2_384_192],
    ['HMAC-SHA2-512-256', INTEG.HMAC_SHA2_512_256],
  ] as const) {
    suites.push({ name: `AES-CBC-${bits}/${iname}`, encrId: ENCR.AES_CBC, keyBits: bits, integId: integ });
  }
}
suites.push({ name: 'ChaCha20-Poly1305', encrId: ENCR.CHACHA20_POLY1305 });

function keysFor(s: Suite) {
  const l = ikeKeyLengths(s.encrId, s.keyBits, s.integId);
  return { encKey: randomBytes(l.encKey), integKey: l.integKey ? randomBytes(l.integKey) : undefined };
}

function make(s: Suite, k: { encKey: Buffer; integKey?: Buffer | undefined }, rng?: (n: number) => Buffer): IkeProtection {
  return createProtection({
    encrId: s.encrId,
    ...(s.keyBits !== undefined ? { keyBits: s.keyBits } : {}),
    ...(s.integId !== undefined ? { integId: s.integId } : {}),
    encKey: k.encKey,
    ...(k.integKey ? { integKey: k.integKey } : {}),
    ...(rng ? { rng } : {}),
  });
}

/** An IKE header + SK generic header whose Length fields match `bodyLength`. */
function aadFor(bodyLength: number): Buffer {
  const a = Buffer.alloc(32);
  randomBytes(16).copy(a, 0); // SPIs
  a[16] = 46; // next payload SK
  a[17] = 0x20; // version 2.0
  a[18] = 35; // IKE_AUTH
  a[19] = 0x08; // I flag
  a.writeUInt32BE(1, 20); // MID
  a.writeUInt32BE(32 + bodyLength, 24);
  a[28] = 35; // first inner payload IDi
  a.writeUInt16BE(4 + bodyLength, 30);
  return a;
}

describe('SK payload protection round trips and tamper detection', () => {
  for (const s of suites) {
    it(s.name, () => {
      const k = keysFor(s);
      const p = make(s, k);
      const e = encrInfo(s.encrId, s.keyBits)!;
      expect(p.ivLength).toBe(e.ivLength);
      expect(p.icvLength).toBe(e.aead ? e.icvLength : integInfo(s.integId!)!.icvLength);
      for (const n of [0, 1, 15, 16, 17, 31, 100, 1300]) {
        const pt = randomBytes(n);
        const aad = aadFor(p.bodyLength(n));
        const body = p.seal(aad, pt);
        expect(body.length).toBe(p.bodyLength(n));
        expect(p.overhead(n)).toBe(body.length - n);
        if (!e.aead) expect((body.length - p.ivLength - p.icvLength) % 16).toBe(0);
        expect(p.open(aad, body)).toEqual(pt);
        // the receiver with its own instance over the same keys
        expect(make(s, k).open(aad, body)).toEqual(pt);
        // tampering with the IV, the ciphertext, the ICV or the AAD is detected
        for (const at of [0, p.ivLength, body.length - p.icvLength - 1, body.length - 1]) {
          const t = Buffer.from(body);
          t[at]! ^= 0x01;
          expect(p.open(aad, t)).toBeNull();
        }
        const badAad = Buffer.from(aad);
        badAad[19]! ^= 0x20;
        expect(p.open(badAad, body)).toBeNull();
        // truncated bodies never throw
        expect(p.open(aad, body.subarray(0, body.length - 1))).toBeNull();
        expect(p.open(aad, body.subarray(0, p.ivLength))).toBeNull();
        expect(p.open(aad, Buffer.alloc(0))).toBeNull();
      }
      // a different key does not open it
      const other = make(s, keysFor(s));
      const aad = aadFor(p.bodyLength(10));
      expect(other.open(aad, p.seal(aad, Buffer.alloc(10, 7)))).toBeNull();
      // fresh IVs: sealing twice differs
      expect(p.seal(aad, Buffer.alloc(10))).not.toEqual(p.seal(aad, Buffer.alloc(10)));
    });
  }
});

describe('wire layout (independent computation with node:crypto)', () => {
  it('AES-GCM (RFC 5282): IV | E(payloads | pad length) | tag, nonce = salt | IV, AAD = header..SK header', () => {
    const key = randomBytes(32);
    const salt = randomBytes(4);
    const iv = randomBytes(8);
    const p = createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: Buffer.concat([key, salt]), rng: () => Buffer.from(iv) });
    const pt = Buffer.from('inner payloads');
    const aad = aadFor(p.bodyLength(pt.length));
    const body = p.seal(aad, pt);
    const c = createCipheriv('aes-256-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
    c.setAAD(aad);
    const expected = Buffer.concat([iv, c.update(Buffer.concat([pt, Buffer.from([0])])), c.final(), c.getAuthTag()]);
    expect(body).toEqual(expected);
  });

  it('ChaCha20-Poly1305 (RFC 7634): 8-octet IV, nonce = salt | IV', () => {
    const key = randomBytes(32);
    const salt = randomBytes(4);
    const iv = randomBytes(8);
    const p = createProtection({ encrId: ENCR.CHACHA20_POLY1305, encKey: Buffer.concat([key, salt]), rng: () => Buffer.from(iv) });
    const pt = Buffer.from('inner payloads');
    const aad = aadFor(p.bodyLength(pt.length));
    const c = createCipheriv('chacha20-poly1305', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: pt.length + 1 });
    const expected = Buffer.concat([iv, c.update(Buffer.concat([pt, Buffer.from([0])])), c.final(), c.getAuthTag()]);
    expect(p.seal(aad, pt)).toEqual(expected);
  });

  it('AES-CBC + HMAC (RFC 7296 §3.14): padding to the block, ICV = trunc HMAC(header..pad length incl. IV)', () => {
    const ek = randomBytes(16);
    const ak = randomBytes(32);
    const iv = randomBytes(16);
    const p = createProtection({ encrId: ENCR.AES_CBC, keyBits: 128, integId: INTEG.HMAC_SHA2_256_128, encKey: ek, integKey: ak, rng: () => Buffer.from(iv) });
    const pt = Buffer.alloc(20, 0xab); // 20 + 11 padding + 1 = 32
    const aad = aadFor(p.bodyLength(pt.length));
    const body = p.seal(aad, pt);
    expect(body.length).toBe(16 + 32 + 16);
    const c = createCipheriv('aes-128-cbc', ek, iv);
    c.setAutoPadding(false);
    const padded = Buffer.concat([pt, Buffer.alloc(11), Buffer.from([11])]);
    const ct = Buffer.concat([c.update(padded), c.final()]);
    const icv = createHmac('sha256', ak).update(Buffer.concat([aad, iv, ct])).digest().subarray(0, 16);
    expect(body).toEqual(Buffer.concat([iv, ct, icv]));
  });

  it('accepts any padding contents and rejects a Pad Length longer than the content', () => {
    const ek = randomBytes(32);
    const ak = randomBytes(32);
    const p = createProtection({ encrId: ENCR.AES_CBC, keyBits: 256, integId: INTEG.HMAC_SHA2_256_128, encKey: ek, integKey: ak });
    const seal = (inner: Buffer) => {
      const iv = randomBytes(16);
      const c = createCipheriv('aes-256-cbc', ek, iv);
      c.setAutoPadding(false);
      const ct = Buffer.concat([c.update(inner), c.final()]);
      const aad = aadFor(16 + ct.length + 16);
      const icv = createHmac('sha256', ak).update(Buffer.concat([aad, iv, ct])).digest().subarray(0, 16);
      return { aad, body: Buffer.concat([iv, ct, icv]) };
    };
    const pt = Buffer.from('0123456789');
    // 10 payload octets, 21 random padding octets, pad length 21 -> 32 octets
    const ok = seal(Buffer.concat([pt, randomBytes(21), Buffer.from([21])]));
    expect(p.open(ok.aad, ok.body)).toEqual(pt);
    const bad = seal(Buffer.concat([randomBytes(31), Buffer.from([32])]));
    expect(p.open(bad.aad, bad.body)).toBeNull();
    const max = seal(Buffer.concat([randomBytes(31), Buffer.from([31])]));
    expect(p.open(max.aad, max.body)).toEqual(Buffer.alloc(0));
  });
});

describe('sizing and parameter checks', () => {
  it('maxPlaintext is the largest length whose body fits', () => {
    for (const s of suites) {
      const p = make(s, keysFor(s));
      for (const limit of [40, 100, 541, 1200, 1452]) {
        const m = p.maxPlaintext(limit);
        if (p.bodyLength(0) > limit) {
          expect(m).toBe(0); // nothing fits
          continue;
        }
        expect(p.bodyLength(m)).toBeLessThanOrEqual(limit);
        expect(p.bodyLength(m + 1)).toBeGreaterThan(limit);
      }
      expect(p.maxPlaintext(p.ivLength + p.icvLength)).toBe(0);
    }
  });

  it('refuses wrong key lengths and inconsistent suites', () => {
    expect(() => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: randomBytes(32) })).toThrow(/36-octet SK_e/);
    expect(() => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, integId: INTEG.HMAC_SHA2_256_128, encKey: randomBytes(36) })).toThrow(/AEAD/);
    expect(() => createProtection({ encrId: ENCR.AES_CBC, keyBits: 256, encKey: randomBytes(32) })).toThrow(/integrity/);
    expect(() => createProtection({ encrId: ENCR.AES_CBC, keyBits: 256, integId: INTEG.HMAC_SHA2_256_128, encKey: randomBytes(32), integKey: randomBytes(16) })).toThrow(/32-octet SK_a/);
    expect(() => createProtection({ encrId: ENCR.AES_CBC, encKey: randomBytes(32) })).toThrow(/unsupported/);
    expect(() => createProtection({ encrId: ENCR.AES_CCM_16, keyBits: 128, encKey: randomBytes(19) })).toThrow(/cannot protect/);
    expect(encrInfo(ENCR.AES_GCM_16)).toBeUndefined(); // AES requires the Key Length attribute
    expect(encrInfo(ENCR.AES_GCM_16, 512)).toBeUndefined();
    expect(encrInfo(ENCR.CHACHA20_POLY1305, 128)).toBeUndefined();
    expect(encrInfo(ENCR.CHACHA20_POLY1305)!.keymatLength).toBe(36);
    expect(() => ikeKeyLengths(ENCR.AES_CTR, 128, INTEG.HMAC_SHA2_256_128)).toThrow(/not supported for IKE/);
  });

  it('createIkeSaProtections pairs SK_ei/SK_ai with the original initiator', () => {
    const keys = { skEi: randomBytes(16), skEr: randomBytes(16), skAi: randomBytes(32), skAr: randomBytes(32) };
    const suite = { encrId: ENCR.AES_CBC, keyBits: 128, integId: INTEG.HMAC_SHA2_256_128 };
    const initiator = createIkeSaProtections(suite, keys, true);
    const responder = createIkeSaProtections(suite, keys, false);
    const aad = aadFor(initiator.outbound.bodyLength(5));
    const fromI = initiator.outbound.seal(aad, Buffer.from('hello'));
    expect(responder.inbound.open(aad, fromI)).toEqual(Buffer.from('hello'));
    expect(responder.outbound.open(aad, fromI)).toBeNull();
    const fromR = responder.outbound.seal(aad, Buffer.from('world'));
    expect(initiator.inbound.open(aad, fromR)).toEqual(Buffer.from('world'));
  });
});
