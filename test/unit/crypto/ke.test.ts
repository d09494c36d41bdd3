import { describe, expect, it } from 'vitest';
import { getKeMethod, KE, KeError, NOTIFY_INVALID_SYNTAX, supportedKeMethods, type KeMethod } from '../../../src/ike/crypto/index.js';
import { hex, loadJson } from './vectors.js';

/** A random source that hands out the given bytes (the private key or seed of a vector). */
function fixed(bytes: Buffer) {
  return (n: number) => {
    expect(n).toBe(bytes.length);
    return Buffer.from(bytes);
  };
}

function method(id: number): KeMethod {
  const m = getKeMethod(id);
  if (!m) throw new Error(`method ${id} missing`);
  return m;
}

function expectKeError(fn: () => unknown, reason: string, stage: 'respond' | 'finish'): KeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeError);
    const ke = e as KeError;
    expect(ke.reason).toBe(reason);
    expect(ke.stage).toBe(stage);
    expect(ke.notify).toBe(stage === 'respond' ? NOTIFY_INVALID_SYNTAX : undefined);
    return ke;
  }
  throw new Error('expected a KeError');
}

describe('KE vectors: ECP (RFC 5903 §8), X25519 (RFC 7748, RFC 8031), MODP 2048 (strongSwan)', () => {
  const vectors = { ...loadJson('ke-ecp-x25519.json').vectors, ...loadJson('ke-modp2048.json').vectors };
  for (const [name, v] of Object.entries<any>(vectors)) {
    it(name, () => {
      const m = method(v.ike_ke_method);
      const seed = hex(v.seed_priv_i_then_priv_r);
      const privI = seed.subarray(0, seed.length / 2);
      const privR = seed.subarray(seed.length / 2);
      const init = m.initiate(fixed(privI));
      expect(init.publicData.toString('hex')).toBe(v.pub_i);
      const resp = m.respond(hex(v.pub_i), fixed(privR));
      expect(resp.publicData.toString('hex')).toBe(v.pub_r);
      expect(resp.sharedSecret.toString('hex')).toBe(v.shared);
      expect(init.finish(hex(v.pub_r)).toString('hex')).toBe(v.shared);
    });
  }
});

describe('KE vector: ML-KEM-512 encapsulation (ACVP tcId 1)', () => {
  it('responder data is the ciphertext, shared secret is K', () => {
    const v = loadJson('mlkem512-encap-acvp-tc1.json');
    const m = method(KE.ML_KEM_512);
    const resp = m.respond(hex(v.ek), fixed(hex(v.m)));
    expect(resp.publicData.toString('hex')).toBe(v.c.toLowerCase());
    expect(resp.sharedSecret.toString('hex')).toBe(v.k.toLowerCase());
  });
});

describe('KE agreement for every method', () => {
  it('supports the expected methods', () => {
    expect(supportedKeMethods()).toEqual([14, 15, 16, 19, 20, 21, 31, 32, 35, 36, 37]);
    expect(getKeMethod(KE.NONE)).toBeUndefined();
    expect(getKeMethod(2)).toBeUndefined(); // MODP 1024 is not offered
  });

  for (const id of supportedKeMethods()) {
    const m = method(id);
    it(`${m.name}: both sides derive the same secret, with the draft/RFC sizes`, () => {
      const init = m.initiate();
      expect(init.publicData).toHaveLength(m.initiatorDataLength);
      const resp = m.respond(init.publicData);
      expect(resp.publicData).toHaveLength(m.responderDataLength);
      expect(resp.sharedSecret).toHaveLength(m.sharedSecretLength);
      expect(init.finish(resp.publicData)).toEqual(resp.sharedSecret);
      // fresh keys each time
      const again = m.initiate();
      expect(again.publicData).not.toEqual(init.publicData);
    });

    it(`${m.name}: wrong-length Key Exchange Data is refused on both sides`, () => {
      const init = m.initiate();
      expectKeError(() => m.respond(Buffer.alloc(m.initiatorDataLength - 1, 1)), 'invalid-length', 'respond');
      expectKeError(() => m.respond(Buffer.alloc(m.initiatorDataLength + 1, 1)), 'invalid-length', 'respond');
      expectKeError(() => m.respond(Buffer.alloc(0)), 'invalid-length', 'respond');
      expectKeError(() => init.finish(Buffer.alloc(m.responderDataLength + 1, 1)), 'invalid-length', 'finish');
    });
  }

  const sizes: [number, number, number, number][] = [
    [KE.MODP_2048, 256, 256, 256],
    [KE.MODP_3072, 384, 384, 384],
    [KE.MODP_4096, 512, 512, 512],
    [KE.ECP_256, 64, 64, 32],
    [KE.ECP_384, 96, 96, 48],
    [KE.ECP_521, 132, 132, 66],
    [KE.CURVE25519, 32, 32, 32],
    [KE.CURVE448, 56, 56, 56],
    [KE.ML_KEM_512, 800, 768, 32],
    [KE.ML_KEM_768, 1184, 1088, 32],
    [KE.ML_KEM_1024, 1568, 1568, 32],
  ];
  it.each(sizes)('method %i: KEi %i, KEr %i, secret %i octets (mlkem.md table)', (id, i, r, s) => {
    const m = method(id);
    expect([m.initiatorDataLength, m.responderDataLength, m.sharedSecretLength]).toEqual([i, r, s]);
    expect(m.postQuantum).toBe(id >= 35);
  });
});

describe('KE invalid peer values', () => {
  for (const id of [KE.MODP_2048, KE.MODP_3072, KE.MODP_4096]) {
    it(`MODP ${id}: values outside 1 < y < p-1 are refused (RFC 6989)`, () => {
      const m = method(id);
      const len = m.initiatorDataLength;
      const one = Buffer.alloc(len);
      one[len - 1] = 1;
      const p = Buffer.from(m.initiate().publicData); // any value; p itself is 0xff.. at both ends
      const allOnes = Buffer.alloc(len, 0xff); // > p-1
      expectKeError(() => m.respond(Buffer.alloc(len)), 'invalid-public-value', 'respond');
      expectKeError(() => m.respond(one), 'invalid-public-value', 'respond');
      expectKeError(() => m.respond(allOnes), 'invalid-public-value', 'respond');
      expectKeError(() => m.initiate().finish(one), 'invalid-public-value', 'finish');
      expect(m.respond(p).sharedSecret).toHaveLength(len);
    });
  }

  for (const id of [KE.ECP_256, KE.ECP_384, KE.ECP_521]) {
    it(`ECP ${id}: a point not on the curve is refused (RFC 6989)`, () => {
      const m = method(id);
      const good = m.initiate().publicData;
      const bad = Buffer.from(good);
      bad[bad.length - 1]! ^= 1; // change y: almost surely off the curve
      expectKeError(() => m.respond(bad), 'invalid-public-value', 'respond');
      const init = m.initiate();
      expectKeError(() => init.finish(bad), 'invalid-public-value', 'finish');
      // the point at infinity has no x|y encoding; all zero is not on the curve
      expectKeError(() => m.respond(Buffer.alloc(m.initiatorDataLength)), 'invalid-public-value', 'respond');
    });
  }

  for (const [id, len] of [
    [KE.CURVE25519, 32],
    [KE.CURVE448, 56],
  ] as const) {
    it(`Montgomery ${id}: low-order points giving an all-zero secret are refused (RFC 8031 §2.3)`, () => {
      const m = method(id);
      const zero = Buffer.alloc(len);
      const one = Buffer.alloc(len);
      one[0] = 1;
      expectKeError(() => m.respond(zero), 'zero-shared-secret', 'respond');
      expectKeError(() => m.respond(one), 'zero-shared-secret', 'respond');
      expectKeError(() => m.initiate().finish(zero), 'zero-shared-secret', 'finish');
    });
  }

  for (const id of [KE.ML_KEM_512, KE.ML_KEM_768, KE.ML_KEM_1024]) {
    it(`ML-KEM ${id}: encapsulation key failing the modulus check is refused with INVALID_SYNTAX`, () => {
      const m = method(id);
      const ek = Buffer.from(m.initiate().publicData);
      // first 12-bit coefficient := 4095 >= q = 3329 (FIPS 203 §7.2 modulus check)
      ek[0] = 0xff;
      ek[1] = ek[1]! | 0x0f;
      const err = expectKeError(() => m.respond(ek), 'invalid-encapsulation-key', 'respond');
      expect(err.notify).toBe(7);
    });

    it(`ML-KEM ${id}: a tampered ciphertext gives a different secret (implicit rejection), not an error`, () => {
      const m = method(id);
      const init = m.initiate();
      const resp = m.respond(init.publicData);
      const ct = Buffer.from(resp.publicData);
      ct[10]! ^= 0x40;
      const ss = init.finish(ct);
      expect(ss).toHaveLength(32);
      expect(ss).not.toEqual(resp.sharedSecret);
    });
  }
});
