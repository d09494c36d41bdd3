// IKEv2 ESP transform ids (IANA "Transform Type 1/3" registries, RFC 7296 §3.3.2)
// -> XFRM algorithm names and key layouts.
import type { SaKeys } from '../ike/engine/actions.js';
import type { SaSpec } from './xfrm-client.js';

export const ENCR = {
  DES_IV64: 1, DES: 2, '3DES': 3, NULL: 11, AES_CBC: 12, AES_CTR: 13,
  AES_CCM_8: 14, AES_CCM_12: 15, AES_CCM_16: 16,
  AES_GCM_8: 18, AES_GCM_12: 19, AES_GCM_16: 20,
  NULL_AUTH_AES_GMAC: 21, CAMELLIA_CBC: 23, CHACHA20_POLY1305: 28,
} as const;

export const INTEG = {
  NONE: 0, HMAC_SHA1_96: 2, AES_XCBC_96: 5, AES_CMAC_96: 8,
  HMAC_SHA2_256_128: 12, HMAC_SHA2_384_192: 13, HMAC_SHA2_512_256: 14,
} as const;

export interface XfrmEspAlgorithms {
  aead?: { name: string; keyOctets: number; icvBits: number };
  crypt?: { name: string; keyOctets: number };
  auth?: { name: string; keyOctets: number; truncBits: number };
}

interface AeadMap { name: string; saltOctets: number; icvBits: number; keyBits: number[] }

const AEAD: Record<number, AeadMap> = {
  // RFC 4106 §8.1: KEYMAT = key || 4-octet salt
  [ENCR.AES_GCM_8]: { name: 'rfc4106(gcm(aes))', saltOctets: 4, icvBits: 64, keyBits: [128, 192, 256] },
  [ENCR.AES_GCM_12]: { name: 'rfc4106(gcm(aes))', saltOctets: 4, icvBits: 96, keyBits: [128, 192, 256] },
  [ENCR.AES_GCM_16]: { name: 'rfc4106(gcm(aes))', saltOctets: 4, icvBits: 128, keyBits: [128, 192, 256] },
  // RFC 4309 §7.1: key || 3-octet salt
  [ENCR.AES_CCM_8]: { name: 'rfc4309(ccm(aes))', saltOctets: 3, icvBits: 64, keyBits: [128, 192, 256] },
  [ENCR.AES_CCM_12]: { name: 'rfc4309(ccm(aes))', saltOctets: 3, icvBits: 96, keyBits: [128, 192, 256] },
  [ENCR.AES_CCM_16]: { name: 'rfc4309(ccm(aes))', saltOctets: 3, icvBits: 128, keyBits: [128, 192, 256] },
  // RFC 4543 §3.2
  [ENCR.NULL_AUTH_AES_GMAC]: { name: 'rfc4543(gcm(aes))', saltOctets: 4, icvBits: 128, keyBits: [128, 192, 256] },
  // RFC 7634 §2: 256-bit key || 4-octet salt, no Key Length attribute
  [ENCR.CHACHA20_POLY1305]: { name: 'rfc7539esp(chacha20,poly1305)', saltOctets: 4, icvBits: 128, keyBits: [256] },
};

const CIPHER: Record<number, { name: string; keyBits: number[]; nonceOctets: number }> = {
  [ENCR.AES_CBC]: { name: 'cbc(aes)', keyBits: [128, 192, 256], nonceOctets: 0 },
  // RFC 3686 §5.1: key || 4-octet nonce
  [ENCR.AES_CTR]: { name: 'rfc3686(ctr(aes))', keyBits: [128, 192, 256], nonceOctets: 4 },
  [ENCR['3DES']]: { name: 'cbc(des3_ede)', keyBits: [192], nonceOctets: 0 },
  [ENCR.CAMELLIA_CBC]: { name: 'cbc(camellia)', keyBits: [128, 192, 256], nonceOctets: 0 },
  [ENCR.NULL]: { name: 'ecb(cipher_null)', keyBits: [0], nonceOctets: 0 },
};

const AUTH: Record<number, { name: string; keyOctets: number; truncBits: number }> = {
  [INTEG.HMAC_SHA1_96]: { name: 'hmac(sha1)', keyOctets: 20, truncBits: 96 },
  [INTEG.AES_XCBC_96]: { name: 'xcbc(aes)', keyOctets: 16, truncBits: 96 },
  [INTEG.AES_CMAC_96]: { name: 'cmac(aes)', keyOctets: 16, truncBits: 96 },
  // RFC 4868 §2.3: truncated to half the hash output
  [INTEG.HMAC_SHA2_256_128]: { name: 'hmac(sha256)', keyOctets: 32, truncBits: 128 },
  [INTEG.HMAC_SHA2_384_192]: { name: 'hmac(sha384)', keyOctets: 48, truncBits: 192 },
  [INTEG.HMAC_SHA2_512_256]: { name: 'hmac(sha512)', keyOctets: 64, truncBits: 256 },
};

/** True when the ESP transform is a combined-mode (AEAD) cipher. */
export function isAeadTransform(encrId: number): boolean {
  return encrId in AEAD;
}

/**
 * Maps negotiated ESP transforms to XFRM algorithms with the key lengths the
 * kernel will expect (KEYMAT octets, salt included). Throws a TypeError for
 * transforms the kernel layer does not support or inconsistent combinations.
 */
export function mapEspTransforms(encr: { id: number; keyBits: number }, integ?: { id: number }): XfrmEspAlgorithms {
  const a = AEAD[encr.id];
  if (a) {
    const keyBits = encr.id === ENCR.CHACHA20_POLY1305 && encr.keyBits === 0 ? 256 : encr.keyBits;
    if (!a.keyBits.includes(keyBits)) throw new TypeError(`encr.keyBits: ${a.name} takes ${a.keyBits.join('/')} bits, got ${encr.keyBits}`);
    if (integ && integ.id !== INTEG.NONE) throw new TypeError(`integ: must be NONE with the AEAD transform ${encr.id} (RFC 7296 §3.3)`);
    return { aead: { name: a.name, keyOctets: keyBits / 8 + a.saltOctets, icvBits: a.icvBits } };
  }
  const c = CIPHER[encr.id];
  if (!c) throw new TypeError(`encr.id: ESP transform ${encr.id} is not supported by the kernel layer`);
  const keyBits = encr.id === ENCR['3DES'] ? 192 : encr.id === ENCR.NULL ? 0 : encr.keyBits;
  if (!c.keyBits.includes(keyBits)) throw new TypeError(`encr.keyBits: ${c.name} takes ${c.keyBits.join('/')} bits, got ${encr.keyBits}`);
  if (!integ || integ.id === INTEG.NONE) throw new TypeError(`integ: ${c.name} needs an integrity transform`);
  const h = AUTH[integ.id];
  if (!h) throw new TypeError(`integ.id: integrity transform ${integ.id} is not supported by the kernel layer`);
  return { crypt: { name: c.name, keyOctets: keyBits / 8 + c.nonceOctets }, auth: { ...h } };
}

/** The SaSpec algorithm fields for negotiated transforms and their KEYMAT-derived keys. */
export function espAlgorithmFields(
  encr: { id: number; keyBits: number },
  integ: { id: number } | undefined,
  keys: SaKeys,
): Pick<SaSpec, 'aead' | 'crypt' | 'auth'> {
  const m = mapEspTransforms(encr, integ);
  if (m.aead) {
    if (keys.encKey.length !== m.aead.keyOctets) {
      throw new TypeError(`keys.encKey: ${m.aead.name} needs ${m.aead.keyOctets} octets (key + salt), got ${keys.encKey.length}`);
    }
    return { aead: { name: m.aead.name, key: keys.encKey, icvBits: m.aead.icvBits } };
  }
  const crypt = m.crypt!;
  const auth = m.auth!;
  if (keys.encKey.length !== crypt.keyOctets) throw new TypeError(`keys.encKey: ${crypt.name} needs ${crypt.keyOctets} octets, got ${keys.encKey.length}`);
  if (!keys.integKey || keys.integKey.length !== auth.keyOctets) {
    throw new TypeError(`keys.integKey: ${auth.name} needs ${auth.keyOctets} octets, got ${keys.integKey?.length ?? 'none'}`);
  }
  return { crypt: { name: crypt.name, key: keys.encKey }, auth: { name: auth.name, key: keys.integKey, truncBits: auth.truncBits } };
}
