import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cookieSecretVersion, makeCookie, natDetectionHash, verifyCookie } from '../../../src/ike/crypto/index.js';

describe('NAT detection (RFC 7296 §2.23)', () => {
  const spiI = Buffer.from('0011223344556677', 'hex');
  const zero = Buffer.alloc(8);
  it('is SHA-1(SPIi | SPIr | IP | port)', () => {
    const ref = createHash('sha1').update(Buffer.from('0011223344556677' + '0000000000000000' + 'c0000201' + '01f4', 'hex')).digest();
    expect(natDetectionHash(spiI, zero, '192.0.2.1', 500)).toEqual(ref);
    expect(natDetectionHash(spiI, 0n, '192.0.2.1', 500)).toEqual(ref);
    const ref6 = createHash('sha1')
      .update(Buffer.concat([spiI, zero, Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([0x11, 0x94])]))
      .digest();
    expect(natDetectionHash(spiI, zero, '2001:db8::1', 4500)).toEqual(ref6);
    expect(natDetectionHash(spiI, zero, '192.0.2.1', 4500)).not.toEqual(ref);
    expect(() => natDetectionHash(spiI, zero, '192.0.2.1', 70000)).toThrow(/port/);
  });
});

describe('COOKIE (RFC 7296 §2.6)', () => {
  const secret = Buffer.alloc(32, 7);
  const ni = Buffer.alloc(32, 1);
  const spiI = Buffer.from('0102030405060708', 'hex');
  it('binds Ni, IPi, SPIi and the secret; carries its secret version', () => {
    const c = makeCookie(secret, 3, ni, '198.51.100.7', spiI);
    expect(c).toHaveLength(36);
    expect(cookieSecretVersion(c)).toBe(3);
    expect(c.subarray(4)).toEqual(createHash('sha256').update(Buffer.concat([ni, Buffer.from([198, 51, 100, 7]), spiI, secret])).digest());
    expect(verifyCookie(c, secret, 3, ni, '198.51.100.7', spiI)).toBe(true);
    expect(verifyCookie(c, secret, 3, ni, '198.51.100.8', spiI)).toBe(false);
    expect(verifyCookie(c, secret, 3, Buffer.alloc(32, 2), '198.51.100.7', spiI)).toBe(false);
    expect(verifyCookie(c, Buffer.alloc(32, 8), 3, ni, '198.51.100.7', spiI)).toBe(false);
    expect(verifyCookie(c, secret, 4, ni, '198.51.100.7', spiI)).toBe(false);
    expect(verifyCookie(c.subarray(0, 35), secret, 3, ni, '198.51.100.7', spiI)).toBe(false);
    expect(verifyCookie(c, secret, 3, ni, 'not-an-address', spiI)).toBe(false);
    expect(cookieSecretVersion(Buffer.alloc(10))).toBeUndefined();
  });
});
