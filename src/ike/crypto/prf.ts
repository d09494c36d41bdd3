// Pseudo-random functions and prf+ (RFC 7296 §2.13).
import { createHmac } from 'node:crypto';
import { PRF } from './constants.js';

export interface Prf {
  /** Transform Type 2 id. */
  readonly id: number;
  readonly name: string;
  /** Preferred key length in octets (length of SK_d, SK_pi, SK_pr). */
  readonly keyLength: number;
  /** Output length in octets. */
  readonly outputLength: number;
  /** prf(key, data); `data` given as parts is hashed as their concatenation. */
  compute(key: Buffer, data: Buffer | readonly Buffer[]): Buffer;
}

const HMAC_PRFS: Record<number, { name: string; hash: string; len: number }> = {
  [PRF.HMAC_SHA1]: { name: 'PRF_HMAC_SHA1', hash: 'sha1', len: 20 },
  [PRF.HMAC_SHA2_256]: { name: 'PRF_HMAC_SHA2_256', hash: 'sha256', len: 32 },
  [PRF.HMAC_SHA2_384]: { name: 'PRF_HMAC_SHA2_384', hash: 'sha384', len: 48 },
  [PRF.HMAC_SHA2_512]: { name: 'PRF_HMAC_SHA2_512', hash: 'sha512', len: 64 },
};

const prfCache = new Map<number, Prf>();

/** Whether `createPrf(id)` will succeed. */
export function isSupportedPrf(id: number): boolean {
  return id in HMAC_PRFS;
}

/** The PRF for a Transform Type 2 id; throws for ids this implementation does not provide. */
export function createPrf(id: number): Prf {
  const cached = prfCache.get(id);
  if (cached) return cached;
  const def = HMAC_PRFS[id];
  if (!def) throw new Error(`unsupported PRF transform id ${id}`);
  const { hash } = def;
  const prf: Prf = {
    id,
    name: def.name,
    // RFC 4868 §2.1.2 / RFC 7296 §2.13: HMAC PRFs use the hash output length as the preferred key length.
    keyLength: def.len,
    outputLength: def.len,
    compute(key: Buffer, data: Buffer | readonly Buffer[]): Buffer {
      const h = createHmac(hash, key);
      if (Buffer.isBuffer(data)) h.update(data);
      else for (const part of data) h.update(part);
      return h.digest();
    },
  };
  prfCache.set(id, prf);
  return prf;
}

/**
 * prf+(K, S) = T1 | T2 | ..., T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n) (RFC 7296 §2.13).
 * The counter is one octet, so at most 255 blocks can be produced; asking for more throws.
 */
export function prfPlus(prf: Prf, key: Buffer, seed: Buffer | readonly Buffer[], length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`prf+ length must be a non-negative integer, got ${length}`);
  const blocks = Math.ceil(length / prf.outputLength);
  if (blocks > 255) {
    throw new RangeError(`prf+ can produce at most 255 blocks (${255 * prf.outputLength} octets for ${prf.name}), ${length} requested`);
  }
  const s = Buffer.isBuffer(seed) ? seed : Buffer.concat(seed as Buffer[]);
  const out: Buffer[] = [];
  let t: Buffer = Buffer.alloc(0);
  for (let n = 1; n <= blocks; n++) {
    t = prf.compute(key, [t, s, Buffer.from([n])]);
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, length);
}
