// Encryption and integrity transform descriptions: key, salt, IV, ICV and block sizes for the
// IKE SK payload (RFC 7296 §3.14, RFC 5282, RFC 7634) and the key lengths of ESP KEYMAT (RFC 7296 §2.17).
import { ENCR, INTEG } from './constants.js';

export interface EncrInfo {
  /** Transform Type 1 id. */
  readonly id: number;
  readonly name: string;
  /** Cipher key size in bits (the Key Length attribute for AES). */
  readonly keyBits: number;
  /** Cipher key octets, without the salt. */
  readonly keyLength: number;
  /** Salt/nonce octets appended to the key in KEYMAT and SK_e* (RFC 5282 §4: GCM 4, CCM 3; RFC 4106/7634). */
  readonly saltLength: number;
  /** Per-message IV carried on the wire. */
  readonly ivLength: number;
  /** AEAD tag length (0 for non-AEAD ciphers; their ICV comes from the integrity transform). */
  readonly icvLength: number;
  /** Plaintext alignment the SK padding must reach (1 = no alignment needed). */
  readonly blockSize: number;
  readonly aead: boolean;
  /** Whether this module can protect SK payloads with it (otherwise ESP-only: lengths known, no cipher here). */
  readonly ikeCapable: boolean;
  /** keyLength + saltLength: the length of SK_e* and of the ESP encryption key in KEYMAT. */
  readonly keymatLength: number;
  /** node:crypto cipher name, when ikeCapable. */
  readonly cipher?: string;
}

export interface IntegInfo {
  readonly id: number;
  readonly name: string;
  /** Key octets (SK_a* and ESP KEYMAT). */
  readonly keyLength: number;
  /** Truncated ICV octets. */
  readonly icvLength: number;
  /** node:crypto HMAC hash name, when usable for SK payloads. */
  readonly hash?: string;
  readonly ikeCapable: boolean;
}

type EncrDef = {
  name: string;
  keyBits: readonly number[];
  defaultKeyBits?: number;
  saltLength: number;
  ivLength: number;
  icvLength: number;
  blockSize: number;
  aead: boolean;
  cipher?: (bits: number) => string;
};

const ENCR_DEFS: Record<number, EncrDef> = {
  [ENCR.AES_CBC]: { name: 'ENCR_AES_CBC', keyBits: [128, 192, 256], saltLength: 0, ivLength: 16, icvLength: 0, blockSize: 16, aead: false, cipher: (b) => `aes-${b}-cbc` },
  [ENCR.AES_GCM_8]: { name: 'ENCR_AES_GCM_8', keyBits: [128, 192, 256], saltLength: 4, ivLength: 8, icvLength: 8, blockSize: 1, aead: true, cipher: (b) => `aes-${b}-gcm` },
  [ENCR.AES_GCM_12]: { name: 'ENCR_AES_GCM_12', keyBits: [128, 192, 256], saltLength: 4, ivLength: 8, icvLength: 12, blockSize: 1, aead: true, cipher: (b) => `aes-${b}-gcm` },
  [ENCR.AES_GCM_16]: { name: 'ENCR_AES_GCM_16', keyBits: [128, 192, 256], saltLength: 4, ivLength: 8, icvLength: 16, blockSize: 1, aead: true, cipher: (b) => `aes-${b}-gcm` },
  // RFC 7634: 256-bit key plus 4-octet salt; the transform carries no Key Length attribute.
  [ENCR.CHACHA20_POLY1305]: { name: 'ENCR_CHACHA20_POLY1305', keyBits: [256], defaultKeyBits: 256, saltLength: 4, ivLength: 8, icvLength: 16, blockSize: 1, aead: true, cipher: () => 'chacha20-poly1305' },
  // ESP-only here (the kernel implements them): key lengths for KEYMAT only.
  [ENCR.AES_CTR]: { name: 'ENCR_AES_CTR', keyBits: [128, 192, 256], saltLength: 4, ivLength: 8, icvLength: 0, blockSize: 1, aead: false },
  [ENCR.AES_CCM_8]: { name: 'ENCR_AES_CCM_8', keyBits: [128, 192, 256], saltLength: 3, ivLength: 8, icvLength: 8, blockSize: 1, aead: true },
  [ENCR.AES_CCM_12]: { name: 'ENCR_AES_CCM_12', keyBits: [128, 192, 256], saltLength: 3, ivLength: 8, icvLength: 12, blockSize: 1, aead: true },
  [ENCR.AES_CCM_16]: { name: 'ENCR_AES_CCM_16', keyBits: [128, 192, 256], saltLength: 3, ivLength: 8, icvLength: 16, blockSize: 1, aead: true },
  // RFC 4543: integrity-only AEAD, AES key plus 4-octet salt.
  [ENCR.NULL_AUTH_AES_GMAC]: { name: 'ENCR_NULL_AUTH_AES_GMAC', keyBits: [128, 192, 256], saltLength: 4, ivLength: 8, icvLength: 16, blockSize: 1, aead: true },
  [ENCR.NULL]: { name: 'ENCR_NULL', keyBits: [0], defaultKeyBits: 0, saltLength: 0, ivLength: 0, icvLength: 0, blockSize: 1, aead: false },
};

type IntegDef = { name: string; keyLength: number; icvLength: number; hash?: string };

const INTEG_DEFS: Record<number, IntegDef> = {
  [INTEG.HMAC_SHA1_96]: { name: 'AUTH_HMAC_SHA1_96', keyLength: 20, icvLength: 12, hash: 'sha1' },
  [INTEG.HMAC_SHA2_256_128]: { name: 'AUTH_HMAC_SHA2_256_128', keyLength: 32, icvLength: 16, hash: 'sha256' },
  [INTEG.HMAC_SHA2_384_192]: { name: 'AUTH_HMAC_SHA2_384_192', keyLength: 48, icvLength: 24, hash: 'sha384' },
  [INTEG.HMAC_SHA2_512_256]: { name: 'AUTH_HMAC_SHA2_512_256', keyLength: 64, icvLength: 32, hash: 'sha512' },
  // ESP-only here: RFC 3566 / RFC 4494 use a 128-bit AES key.
  [INTEG.AES_XCBC_96]: { name: 'AUTH_AES_XCBC_96', keyLength: 16, icvLength: 12 },
  [INTEG.AES_CMAC_96]: { name: 'AUTH_AES_CMAC_96', keyLength: 16, icvLength: 12 },
};

/**
 * Description of an encryption transform with the given Key Length attribute (bits).
 * Returns undefined for unknown transforms or key sizes the transform does not allow; AES
 * requires the attribute (RFC 7296 §3.3.5), ChaCha20-Poly1305 must not carry another size than 256.
 */
export function encrInfo(id: number, keyBits?: number): EncrInfo | undefined {
  const def = ENCR_DEFS[id];
  if (!def) return undefined;
  const bits = keyBits ?? def.defaultKeyBits;
  if (bits === undefined || !def.keyBits.includes(bits)) return undefined;
  const keyLength = bits / 8;
  const cipher = def.cipher?.(bits);
  return {
    id,
    name: def.name,
    keyBits: bits,
    keyLength,
    saltLength: def.saltLength,
    ivLength: def.ivLength,
    icvLength: def.icvLength,
    blockSize: def.blockSize,
    aead: def.aead,
    ikeCapable: cipher !== undefined,
    keymatLength: keyLength + def.saltLength,
    ...(cipher !== undefined ? { cipher } : {}),
  };
}

/** Description of an integrity transform (0 = NONE gives undefined). */
export function integInfo(id: number): IntegInfo | undefined {
  const def = INTEG_DEFS[id];
  if (!def) return undefined;
  return { id, name: def.name, keyLength: def.keyLength, icvLength: def.icvLength, ikeCapable: def.hash !== undefined, ...(def.hash ? { hash: def.hash } : {}) };
}

export interface KeyLengths {
  /** SK_e* / ESP encryption key length including the salt. */
  encKey: number;
  /** SK_a* / ESP integrity key length (0 with AEAD). */
  integKey: number;
}

function keyLengthsFor(encr: number, keyBits: number | undefined, integ: number | undefined, forIke: boolean): KeyLengths {
  const e = encrInfo(encr, keyBits);
  if (!e) throw new Error(`unsupported encryption transform ${encr}${keyBits !== undefined ? ` with ${keyBits}-bit key` : ''}`);
  if (forIke && !e.ikeCapable) throw new Error(`${e.name} is not supported for IKE SK payloads`);
  if (e.aead) {
    // RFC 5282 §8 / RFC 7296 §3.3: an AEAD cipher is negotiated without integrity (or with NONE).
    if (integ !== undefined && integ !== INTEG.NONE) throw new Error(`${e.name} is combined AEAD; integrity transform ${integ} must be NONE`);
    return { encKey: e.keymatLength, integKey: 0 };
  }
  // RFC 8221 §5: encryption without integrity is not allowed (ENCR_NULL needs integrity too).
  if (integ === undefined || integ === INTEG.NONE) throw new Error(`${e.name} requires an integrity transform`);
  const i = integInfo(integ);
  if (!i) throw new Error(`unsupported integrity transform ${integ}`);
  if (forIke && !i.ikeCapable) throw new Error(`${i.name} is not supported for IKE SK payloads`);
  return { encKey: e.keymatLength, integKey: i.keyLength };
}

/** Lengths of SK_e* and SK_a* (RFC 7296 §2.14); throws for suites this module cannot protect. */
export function ikeKeyLengths(encr: number, keyBits: number | undefined, integ: number | undefined): KeyLengths {
  return keyLengthsFor(encr, keyBits, integ, true);
}

/** Lengths of the ESP encryption (incl. salt) and integrity keys taken from KEYMAT (RFC 7296 §2.17). */
export function espKeyLengths(encr: number, keyBits: number | undefined, integ: number | undefined): KeyLengths {
  return keyLengthsFor(encr, keyBits, integ, false);
}
