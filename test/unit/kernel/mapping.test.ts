import { describe, expect, it } from 'vitest';
import { ENCR, INTEG, espAlgorithmFields, mapEspTransforms } from '../../../src/kernel/ike-mapping.js';

describe('IKEv2 ESP transform -> XFRM algorithm', () => {
  it('ENCR_AES_GCM_16 (20) 128/256 -> rfc4106(gcm(aes)) with the 4-octet salt and ICV 128', () => {
    expect(ENCR.AES_GCM_16).toBe(20);
    expect(mapEspTransforms({ id: 20, keyBits: 128 })).toEqual({ aead: { name: 'rfc4106(gcm(aes))', keyOctets: 20, icvBits: 128 } });
    expect(mapEspTransforms({ id: 20, keyBits: 256 })).toEqual({ aead: { name: 'rfc4106(gcm(aes))', keyOctets: 36, icvBits: 128 } });
  });

  it('ENCR_CHACHA20_POLY1305 (28) -> rfc7539esp(chacha20,poly1305), key 32+4', () => {
    expect(ENCR.CHACHA20_POLY1305).toBe(28);
    expect(mapEspTransforms({ id: 28, keyBits: 256 })).toEqual({ aead: { name: 'rfc7539esp(chacha20,poly1305)', keyOctets: 36, icvBits: 128 } });
    // RFC 7634 sends no Key Length attribute
    expect(mapEspTransforms({ id: 28, keyBits: 0 }).aead?.keyOctets).toBe(36);
  });

  it('ENCR_AES_CBC (12) + AUTH_HMAC_SHA2_{256_128,384_192,512_256} (12,13,14) -> cbc(aes) + truncated hmac', () => {
    expect(ENCR.AES_CBC).toBe(12);
    expect([INTEG.HMAC_SHA2_256_128, INTEG.HMAC_SHA2_384_192, INTEG.HMAC_SHA2_512_256]).toEqual([12, 13, 14]);
    expect(mapEspTransforms({ id: 12, keyBits: 128 }, { id: 12 })).toEqual({
      crypt: { name: 'cbc(aes)', keyOctets: 16 },
      auth: { name: 'hmac(sha256)', keyOctets: 32, truncBits: 128 },
    });
    expect(mapEspTransforms({ id: 12, keyBits: 256 }, { id: 13 }).auth).toEqual({ name: 'hmac(sha384)', keyOctets: 48, truncBits: 192 });
    expect(mapEspTransforms({ id: 12, keyBits: 192 }, { id: 14 })).toEqual({
      crypt: { name: 'cbc(aes)', keyOctets: 24 },
      auth: { name: 'hmac(sha512)', keyOctets: 64, truncBits: 256 },
    });
  });

  it('GCM ICV variants and CCM salt length', () => {
    expect(mapEspTransforms({ id: ENCR.AES_GCM_8, keyBits: 128 }).aead?.icvBits).toBe(64);
    expect(mapEspTransforms({ id: ENCR.AES_GCM_12, keyBits: 192 }).aead).toEqual({ name: 'rfc4106(gcm(aes))', keyOctets: 28, icvBits: 96 });
    expect(mapEspTransforms({ id: ENCR.AES_CCM_16, keyBits: 128 }).aead).toEqual({ name: 'rfc4309(ccm(aes))', keyOctets: 19, icvBits: 128 });
  });

  it('rejects unsupported or inconsistent transforms with a TypeError naming the field', () => {
    expect(() => mapEspTransforms({ id: 99, keyBits: 128 })).toThrow(/encr\.id/);
    expect(() => mapEspTransforms({ id: 20, keyBits: 100 })).toThrow(/encr\.keyBits/);
    expect(() => mapEspTransforms({ id: 12, keyBits: 128 })).toThrow(/integ/);
    expect(() => mapEspTransforms({ id: 12, keyBits: 128 }, { id: 77 })).toThrow(/integ\.id/);
    expect(() => mapEspTransforms({ id: 20, keyBits: 128 }, { id: 12 })).toThrow(/integ: must be NONE/);
  });

  it('checks KEYMAT lengths against the mapping', () => {
    const f = espAlgorithmFields({ id: 20, keyBits: 256 }, undefined, { encKey: Buffer.alloc(36, 1) });
    expect(f.aead?.name).toBe('rfc4106(gcm(aes))');
    expect(f.aead?.key.length).toBe(36);
    expect(() => espAlgorithmFields({ id: 20, keyBits: 256 }, undefined, { encKey: Buffer.alloc(32) })).toThrow(/keys\.encKey.*36.*32/);
    expect(() => espAlgorithmFields({ id: 12, keyBits: 128 }, { id: 12 }, { encKey: Buffer.alloc(16) })).toThrow(/keys\.integKey/);
    const c = espAlgorithmFields({ id: 12, keyBits: 128 }, { id: 12 }, { encKey: Buffer.alloc(16), integKey: Buffer.alloc(32) });
    expect(c.auth).toMatchObject({ name: 'hmac(sha256)', truncBits: 128 });
  });
});
