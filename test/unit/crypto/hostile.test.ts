// Hostile input: whatever a peer sends, the crypto layer answers with null / a result object /
// KeError, never with another exception.
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createProtection,
  ENCR,
  getKeMethod,
  INTEG,
  KeError,
  parseIdentity,
  parseCertReqData,
  parseSignatureHashAlgorithms,
  supportedKeMethods,
  validateCertChain,
  verifyAuth,
  verifyLegacyAuth,
} from '../../../src/ike/crypto/index.js';

const ROUNDS = 300;

describe('hostile input never throws unexpectedly', () => {
  it('SK open() returns null for random bodies and AADs', () => {
    const ps = [
      createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: randomBytes(36) }),
      createProtection({ encrId: ENCR.CHACHA20_POLY1305, encKey: randomBytes(36) }),
      createProtection({ encrId: ENCR.AES_CBC, keyBits: 128, integId: INTEG.HMAC_SHA2_256_128, encKey: randomBytes(16), integKey: randomBytes(32) }),
    ];
    for (let i = 0; i < ROUNDS; i++) {
      for (const p of ps) expect(p.open(randomBytes(randomInt(0, 40)), randomBytes(randomInt(0, 200)))).toBeNull();
    }
  });

  it('KE respond()/finish() fail only with KeError', () => {
    for (const id of supportedKeMethods()) {
      const m = getKeMethod(id)!;
      const rounds = id >= 14 && id <= 16 ? 5 : 30; // MODP is slow
      for (let i = 0; i < rounds; i++) {
        for (const data of [randomBytes(m.initiatorDataLength), randomBytes(randomInt(0, 2000))]) {
          try {
            m.respond(data);
          } catch (e) {
            expect(e).toBeInstanceOf(KeError);
          }
        }
        const init = m.initiate();
        for (const data of [randomBytes(m.responderDataLength), randomBytes(randomInt(0, 2000))]) {
          try {
            init.finish(data);
          } catch (e) {
            expect(e).toBeInstanceOf(KeError);
          }
        }
      }
    }
  });

  it('AUTH verification and notify parsers return results for random data', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const octets = randomBytes(100);
    for (let i = 0; i < ROUNDS; i++) {
      const junk = randomBytes(randomInt(0, 120));
      expect(verifyAuth(ec, junk, octets).ok).toBe(false);
      // well-formed length octet with junk after it
      expect(verifyAuth(ec, Buffer.concat([Buffer.from([junk.length >> 1]), junk]), octets).ok).toBe(false);
      expect(verifyLegacyAuth(9, ec, junk, octets).ok).toBe(false);
      const id = parseIdentity({ type: randomInt(0, 16), data: junk });
      expect(typeof id.ok).toBe('boolean');
      const h = parseSignatureHashAlgorithms(junk);
      expect(h === null || Array.isArray(h)).toBe(true);
      const c = parseCertReqData(junk);
      expect(c === null || Array.isArray(c)).toBe(true);
    }
  });

  it('certificate validation reports malformed DER', () => {
    for (let i = 0; i < 50; i++) {
      const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), randomBytes(256)]);
      expect(validateCertChain({ chain: [der], trustAnchors: [], now: Date.now() })).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });
});
