import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPrf, isSupportedPrf, prfPlus, PRF } from '../../../src/ike/crypto/index.js';
import { hex, loadJson } from './vectors.js';

const PRF_BY_NAME: Record<string, number> = {
  PRF_HMAC_SHA2_256: PRF.HMAC_SHA2_256,
  PRF_HMAC_SHA2_384: PRF.HMAC_SHA2_384,
  PRF_HMAC_SHA2_512: PRF.HMAC_SHA2_512,
};

describe('createPrf', () => {
  it.each([
    [PRF.HMAC_SHA1, 'sha1', 20],
    [PRF.HMAC_SHA2_256, 'sha256', 32],
    [PRF.HMAC_SHA2_384, 'sha384', 48],
    [PRF.HMAC_SHA2_512, 'sha512', 64],
  ])('PRF %i is HMAC-%s with %i-octet keys and output', (id, hash, len) => {
    const prf = createPrf(id);
    expect(prf.keyLength).toBe(len);
    expect(prf.outputLength).toBe(len);
    const key = Buffer.from('key material');
    const data = Buffer.from('some data to authenticate');
    expect(prf.compute(key, data)).toEqual(createHmac(hash, key).update(data).digest());
    // parts are hashed as their concatenation
    expect(prf.compute(key, [data.subarray(0, 5), data.subarray(5)])).toEqual(prf.compute(key, data));
  });

  it('refuses unsupported PRFs', () => {
    expect(isSupportedPrf(PRF.HMAC_MD5)).toBe(false);
    expect(isSupportedPrf(PRF.AES128_XCBC)).toBe(false);
    expect(() => createPrf(PRF.HMAC_MD5)).toThrow(/unsupported PRF/);
  });
});

describe('prf+ (CAVP SP 800-135 / strongSwan vectors)', () => {
  const file = loadJson('ikev2-prfplus-cavp-sha2.json');
  for (const [name, v] of Object.entries<any>(file.vectors)) {
    it(name, () => {
      const prf = createPrf(PRF_BY_NAME[v.prf]!);
      const out = hex(v.out);
      expect(prfPlus(prf, hex(v.key), hex(v.salt), out.length).toString('hex')).toBe(v.out);
      // a shorter request is a prefix of the longer one
      expect(prfPlus(prf, hex(v.key), hex(v.salt), 7)).toEqual(out.subarray(0, 7));
    });
  }

  it('produces at most 255 blocks', () => {
    const prf = createPrf(PRF.HMAC_SHA2_256);
    expect(prfPlus(prf, Buffer.alloc(32, 1), Buffer.from('s'), 255 * 32)).toHaveLength(255 * 32);
    expect(() => prfPlus(prf, Buffer.alloc(32, 1), Buffer.from('s'), 255 * 32 + 1)).toThrow(/255 blocks/);
  });

  it('matches the definition T1 = prf(K, S|1), Tn = prf(K, Tn-1|S|n)', () => {
    const prf = createPrf(PRF.HMAC_SHA2_384);
    const k = Buffer.from('k'.repeat(48));
    const s = Buffer.from('seed');
    const t1 = createHmac('sha384', k).update(Buffer.concat([s, Buffer.from([1])])).digest();
    const t2 = createHmac('sha384', k).update(Buffer.concat([t1, s, Buffer.from([2])])).digest();
    expect(prfPlus(prf, k, s, 60)).toEqual(Buffer.concat([t1, t2]).subarray(0, 60));
  });
});
