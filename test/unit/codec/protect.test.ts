// SK messages (RFC 7296 §3.14, RFC 5282 §5.1) with the crypto layer's protections and with an
// independent AES-GCM check written here against node:crypto.
import { createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CodecEncodeError,
  ExchangeType,
  NotifyType,
  PayloadType,
  decodeMessage,
  decodeProtected,
  encodeMessage,
  encodePayloadChain,
  encodeProtected,
  noncePayload,
  notify,
  vendorPayload,
  type Payload,
  type SkProtection,
} from '../../../src/ike/codec/index.js';
import { createProtection, ENCR, INTEG } from '../../../src/ike/crypto/index.js';
import { createChildVariants, header, ikeAuthInner, ikeAuthResponseInner, informationalVariants } from './fixtures.js';

const gcmKey = randomBytes(36); // AES-256 key | 4-octet salt
const suites: Record<string, () => SkProtection> = {
  'AES-GCM-16-256': () => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: gcmKey }),
  'ChaCha20-Poly1305': () => createProtection({ encrId: ENCR.CHACHA20_POLY1305, encKey: Buffer.alloc(36, 7) }),
  'AES-CBC-128 + HMAC-SHA2-256-128': () =>
    createProtection({ encrId: ENCR.AES_CBC, keyBits: 128, integId: INTEG.HMAC_SHA2_256_128, encKey: Buffer.alloc(16, 3), integKey: Buffer.alloc(32, 4) }),
};

const innerVariants: Record<string, Payload[]> = {
  'IKE_AUTH request': ikeAuthInner(),
  'IKE_AUTH response': ikeAuthResponseInner(),
  ...createChildVariants(),
  ...informationalVariants(),
};

describe('encodeProtected / decodeProtected', () => {
  for (const [suite, make] of Object.entries(suites)) {
    it(`${suite}: every exchange's inner payloads come back`, () => {
      const protection = make();
      for (const [name, inner] of Object.entries(innerVariants)) {
        const h = header(ExchangeType.CREATE_CHILD_SA, { messageId: 5, response: name.includes('response') });
        const bytes = encodeProtected(h, inner, protection);
        const plain = decodeMessage(bytes);
        if (!plain.ok) throw new Error(`${name}: ${plain.error.reason}`);
        expect(plain.message.header.length).toBe(bytes.length);
        expect(plain.message.payloads).toHaveLength(1);
        const sk = plain.message.payloads[0]!;
        expect(sk.type).toBe(PayloadType.SK);
        expect(sk.type === PayloadType.SK && sk.innerFirst).toBe(encodePayloadChain(inner).first);
        // encode(decode(x)) == x also holds for the encrypted form.
        expect(encodeMessage(plain.message).equals(bytes)).toBe(true);

        const r = decodeProtected(bytes, protection);
        if (!r.ok) throw new Error(`${name}: ${r.error.reason}`);
        expect(r.message.payloads, name).toEqual(inner);
        expect(r.message.header.messageId).toBe(5);
        expect(r.unprotected).toEqual([]);
        // The decoded message works as input too (no second parse of the datagram).
        const again = decodeProtected(plain.message, protection);
        expect(again.ok && again.message.payloads).toEqual(inner);
      }
    });
  }

  it('lays out the SK payload per RFC 5282: AAD = header | SK header, IV(8) | ciphertext | tag(16)', () => {
    const protection = suites['AES-GCM-16-256']!();
    const inner = [noncePayload(Buffer.alloc(32, 0x11)), notify(NotifyType.SET_WINDOW_SIZE, Buffer.from('00000004', 'hex'))];
    const bytes = encodeProtected(header(ExchangeType.INFORMATIONAL, { messageId: 9 }), inner, protection);
    expect(bytes[16]).toBe(PayloadType.SK); // header Next Payload
    expect(bytes[28]).toBe(PayloadType.NONCE); // SK Next Payload = first inner payload
    expect(bytes.readUInt16BE(30)).toBe(bytes.length - 28); // SK Payload Length
    const aad = bytes.subarray(0, 32);
    const iv = bytes.subarray(32, 40);
    const tag = bytes.subarray(bytes.length - 16);
    const ct = bytes.subarray(40, bytes.length - 16);
    const d = createDecipheriv('aes-256-gcm', gcmKey.subarray(0, 32), Buffer.concat([gcmKey.subarray(32), iv]), { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    const padded = Buffer.concat([d.update(ct), d.final()]);
    const padLength = padded[padded.length - 1]!;
    expect(padded.subarray(0, padded.length - 1 - padLength).equals(encodePayloadChain(inner).bytes)).toBe(true);
  });

  it('authenticates unprotected payloads placed before SK and returns them separately', () => {
    const protection = suites['AES-CBC-128 + HMAC-SHA2-256-128']!();
    const outer = [vendorPayload(Buffer.from('outside'))];
    const bytes = encodeProtected(header(ExchangeType.INFORMATIONAL), [notify(NotifyType.INITIAL_CONTACT)], protection, outer);
    const r = decodeProtected(bytes, protection);
    if (!r.ok) throw new Error(r.error.reason);
    expect(r.unprotected).toEqual(outer);
    expect(r.message.payloads).toEqual([notify(NotifyType.INITIAL_CONTACT)]);
    const tampered = Buffer.from(bytes);
    tampered[28 + 4] ^= 1; // first octet of the Vendor ID data
    const t = decodeProtected(tampered, protection);
    expect(!t.ok && t.error.kind).toBe('integrity');
  });

  it('never accepts a message with any single bit flipped', () => {
    for (const make of Object.values(suites)) {
      const protection = make();
      const bytes = encodeProtected(header(ExchangeType.INFORMATIONAL, { messageId: 2 }), [notify(NotifyType.INITIAL_CONTACT)], protection);
      let integrity = 0;
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const t = Buffer.from(bytes);
          t[i] ^= 1 << bit;
          const r = decodeProtected(t, protection);
          expect(r.ok, `octet ${i} bit ${bit}`).toBe(false);
          if (!r.ok && r.error.kind === 'integrity') integrity++;
        }
      }
      // Everything but the fields that make the datagram unparsable reaches the integrity check.
      expect(integrity).toBeGreaterThan(bytes.length * 8 - 8 * 12);
    }
  });

  it('reports a wrong key as an integrity failure, distinct from malformed input', () => {
    const bytes = encodeProtected(header(ExchangeType.INFORMATIONAL), [], suites['AES-GCM-16-256']!());
    const other = createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: randomBytes(36) });
    const r = decodeProtected(bytes, other);
    expect(!r.ok && r.error.kind).toBe('integrity');
    expect(!r.ok && r.error.notify).toBeUndefined();
    expect(!r.ok && r.error.header?.exchangeType).toBe(ExchangeType.INFORMATIONAL);
  });

  it('refuses messages without SK, SKF fragments, and messages that were built rather than decoded', () => {
    const protection = suites['AES-GCM-16-256']!();
    const plain = encodeMessage({ header: header(ExchangeType.INFORMATIONAL), payloads: [notify(NotifyType.INITIAL_CONTACT)] });
    const a = decodeProtected(plain, protection);
    expect(!a.ok && a.error.kind).toBe('unprotected');
    const skf = encodeMessage({
      header: header(ExchangeType.IKE_AUTH),
      payloads: [{ type: PayloadType.SKF, critical: false, innerFirst: 35, fragmentNumber: 1, totalFragments: 2, body: Buffer.alloc(40) }],
    });
    const b = decodeProtected(skf, protection);
    expect(!b.ok && b.error.kind).toBe('fragment');
    const built = decodeProtected({ header: header(ExchangeType.IKE_AUTH), payloads: [{ type: PayloadType.SK, critical: false, innerFirst: 0, body: Buffer.alloc(40) }] }, protection);
    expect(!built.ok && built.error.kind).toBe('unprotected');
    const garbage = decodeProtected(Buffer.alloc(10), protection);
    expect(!garbage.ok && garbage.error.kind).toBe('header');
  });

  it('answers a malformed inner chain with INVALID_SYNTAX and an unknown critical inner payload with UNSUPPORTED_CRITICAL_PAYLOAD', () => {
    const protection = suites['AES-GCM-16-256']!();
    // A nonce of 8 octets is authenticated but malformed.
    const bad = encodeProtected(header(ExchangeType.CREATE_CHILD_SA), [noncePayload(Buffer.alloc(8))], protection);
    const r = decodeProtected(bad, protection);
    expect(!r.ok && r.error.kind).toBe('syntax');
    expect(!r.ok && r.error.notify).toBe(NotifyType.INVALID_SYNTAX);
    expect(!r.ok && r.error.reason).toMatch(/^inside SK: NONCE payload #1 at offset 0: Nonce Data of 8 octets/);
    expect(!r.ok && r.error.header?.exchangeType).toBe(ExchangeType.CREATE_CHILD_SA);
    const crit = encodeProtected(header(ExchangeType.IKE_AUTH), [{ type: PayloadType.UNKNOWN, critical: true, rawType: 250, data: Buffer.alloc(3) }], protection);
    const c = decodeProtected(crit, protection);
    expect(!c.ok && c.error.kind).toBe('critical');
    expect(!c.ok && c.error.notifyData).toEqual(Buffer.from([250]));
  });

  it('refuses to encode when the protection breaks its own size promise or SK would overflow', () => {
    const liar: SkProtection = { seal: () => Buffer.alloc(3), open: () => null, overhead: () => 10 };
    expect(() => encodeProtected(header(ExchangeType.INFORMATIONAL), [], liar)).toThrow(CodecEncodeError);
    const protection = suites['AES-GCM-16-256']!();
    expect(() => encodeProtected(header(ExchangeType.IKE_AUTH), [vendorPayload(Buffer.alloc(65_520))], protection)).toThrow(/fragment it/);
  });
});
