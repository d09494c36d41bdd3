// SK payload protection (RFC 7296 §3.14 for CBC + HMAC, RFC 5282 for AEAD, RFC 7634 for ChaCha20-Poly1305).
// One IkeProtection protects one direction: the original initiator's messages use SK_ei/SK_ai,
// the original responder's SK_er/SK_ar (RFC 7296 §2.14), whoever sent the request.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CipherGCMTypes } from 'node:crypto';
import { encrInfo, integInfo, type EncrInfo, type IntegInfo } from './algorithms.js';
import { INTEG } from './constants.js';

export type Rng = (n: number) => Buffer;

export interface ProtectionParams {
  encrId: number;
  /** Key Length attribute in bits (required for AES). */
  keyBits?: number;
  /** Integrity transform; omit (or 0) with AEAD ciphers. */
  integId?: number;
  /** SK_e*: cipher key followed by the salt for AEAD ciphers. */
  encKey: Buffer;
  /** SK_a*; required for non-AEAD ciphers. */
  integKey?: Buffer;
  /** Source of IVs (defaults to crypto.randomBytes). */
  rng?: Rng;
}

export interface IkeProtection {
  readonly encr: EncrInfo;
  readonly integ: IntegInfo | undefined;
  /** Octets of IV on the wire. */
  readonly ivLength: number;
  /** Octets of ICV/tag on the wire. */
  readonly icvLength: number;
  /** Length of the SK payload body (IV | encrypted | ICV) for `n` octets of inner payloads. */
  bodyLength(n: number): number;
  /** bodyLength(n) - n: the octets the protection adds to `n` octets of inner payloads. */
  overhead(n: number): number;
  /** The largest inner-payload length whose SK body fits in `bodyLimit` octets (0 if none fits). */
  maxPlaintext(bodyLimit: number): number;
  /**
   * Protect inner payloads. `aad` runs from the first octet of the IKE header to the last octet of
   * the SK (or SKF) payload header, with the final Length fields already filled in (compute them with
   * bodyLength). Returns IV | ciphertext | ICV, the SK payload body. Adds the padding and Pad Length.
   */
  seal(aad: Buffer, plaintext: Buffer): Buffer;
  /**
   * Verify and decrypt an SK payload body (IV | ciphertext | ICV). Returns the inner payloads without
   * padding, or null when the ICV does not verify or the body/padding is malformed. Never throws on input.
   */
  open(aad: Buffer, body: Buffer): Buffer | null;
}

/** Build the protection for one direction; throws for unsupported suites or wrong key lengths. */
export function createProtection(params: ProtectionParams): IkeProtection {
  const encr = encrInfo(params.encrId, params.keyBits);
  if (!encr) throw new Error(`unsupported encryption transform ${params.encrId}${params.keyBits !== undefined ? ` with ${params.keyBits}-bit key` : ''}`);
  if (!encr.ikeCapable || !encr.cipher) throw new Error(`${encr.name} cannot protect IKE SK payloads`);
  if (params.encKey.length !== encr.keymatLength) {
    throw new Error(`${encr.name}-${encr.keyBits} needs a ${encr.keymatLength}-octet SK_e, got ${params.encKey.length}`);
  }
  const rng = params.rng ?? randomBytes;
  if (encr.aead) {
    if (params.integId !== undefined && params.integId !== INTEG.NONE) throw new Error(`${encr.name} is AEAD: integrity transform must be NONE`);
    return createAeadProtection(encr, params.encKey, rng);
  }
  const integ = params.integId !== undefined ? integInfo(params.integId) : undefined;
  if (!integ || !integ.hash) throw new Error(`${encr.name} needs a supported integrity transform, got ${params.integId ?? 'none'}`);
  if (!params.integKey || params.integKey.length !== integ.keyLength) {
    throw new Error(`${integ.name} needs a ${integ.keyLength}-octet SK_a, got ${params.integKey?.length ?? 0}`);
  }
  return createCbcHmacProtection(encr, integ, params.encKey, params.integKey, rng);
}

/** Padding octets so that payloads | Padding | Pad Length is a multiple of the block size. */
function padLengthFor(n: number, blockSize: number): number {
  return (blockSize - ((n + 1) % blockSize)) % blockSize;
}

function commonSizing(ivLength: number, icvLength: number, blockSize: number) {
  const bodyLength = (n: number) => ivLength + n + padLengthFor(n, blockSize) + 1 + icvLength;
  return {
    bodyLength,
    overhead: (n: number) => bodyLength(n) - n,
    maxPlaintext(bodyLimit: number): number {
      const room = bodyLimit - ivLength - icvLength; // for payloads | padding | pad length
      if (room < 1) return 0;
      const aligned = room - (room % blockSize);
      return Math.max(0, aligned - 1);
    },
  };
}

/** Unpad decrypted SK content: the last octet is the Pad Length, which must fit (RFC 7296 §3.14). */
function stripPadding(decrypted: Buffer): Buffer | null {
  if (decrypted.length < 1) return null;
  const padLength = decrypted[decrypted.length - 1]!;
  if (padLength + 1 > decrypted.length) return null;
  return decrypted.subarray(0, decrypted.length - 1 - padLength);
}

function createAeadProtection(encr: EncrInfo, skE: Buffer, rng: Rng): IkeProtection {
  const key = Buffer.from(skE.subarray(0, encr.keyLength));
  // RFC 5282 §4 / RFC 7634 §2: the salt is the last octets of the keying material; nonce = salt | IV.
  const salt = Buffer.from(skE.subarray(encr.keyLength));
  const cipherName = encr.cipher!;
  const tagLength = encr.icvLength;
  const sizing = commonSizing(encr.ivLength, tagLength, encr.blockSize);

  return {
    encr,
    integ: undefined,
    ivLength: encr.ivLength,
    icvLength: tagLength,
    ...sizing,
    seal(aad: Buffer, plaintext: Buffer): Buffer {
      const iv = rng(encr.ivLength);
      if (iv.length !== encr.ivLength) throw new Error(`IV source returned ${iv.length} octets, ${encr.ivLength} needed`);
      const padLength = padLengthFor(plaintext.length, encr.blockSize);
      const trailer = Buffer.alloc(padLength + 1, 0);
      trailer[padLength] = padLength;
      const nonce = Buffer.concat([salt, iv]);
      // chacha20-poly1305 has the same AEAD surface as GCM at runtime (RFC 7634 nonce = salt | IV).
      const c = createCipheriv(cipherName as CipherGCMTypes, key, nonce, { authTagLength: tagLength });
      // RFC 5282 §5.1: the AAD is the IKE header through the SK payload header; the IV is not included.
      c.setAAD(aad);
      const ct1 = c.update(plaintext);
      const ct2 = c.update(trailer);
      const ct3 = c.final();
      return Buffer.concat([iv, ct1, ct2, ct3, c.getAuthTag()]);
    },
    open(aad: Buffer, body: Buffer): Buffer | null {
      // At least IV, the Pad Length octet and the tag.
      if (body.length < encr.ivLength + 1 + tagLength) return null;
      const iv = body.subarray(0, encr.ivLength);
      const ct = body.subarray(encr.ivLength, body.length - tagLength);
      const tag = body.subarray(body.length - tagLength);
      const nonce = Buffer.concat([salt, iv]);
      try {
        const d = createDecipheriv(cipherName as CipherGCMTypes, key, nonce, { authTagLength: tagLength });
        d.setAAD(aad);
        d.setAuthTag(tag);
        const pt = Buffer.concat([d.update(ct), d.final()]);
        return stripPadding(pt);
      } catch {
        return null; // tag mismatch
      }
    },
  };
}

function createCbcHmacProtection(encr: EncrInfo, integ: IntegInfo, skE: Buffer, skA: Buffer, rng: Rng): IkeProtection {
  const key = Buffer.from(skE);
  const macKey = Buffer.from(skA);
  const cipherName = encr.cipher!;
  const hash = integ.hash!;
  const icvLength = integ.icvLength;
  const sizing = commonSizing(encr.ivLength, icvLength, encr.blockSize);

  // RFC 7296 §3.14: the ICV covers the message from the IKE header through the Pad Length, i.e. aad | IV | ciphertext.
  const mac = (aad: Buffer, ivAndCt: Buffer) => createHmac(hash, macKey).update(aad).update(ivAndCt).digest().subarray(0, icvLength);

  return {
    encr,
    integ,
    ivLength: encr.ivLength,
    icvLength,
    ...sizing,
    seal(aad: Buffer, plaintext: Buffer): Buffer {
      // RFC 7296 §3.14: the IV must be unpredictable; a fresh random block per message.
      const iv = rng(encr.ivLength);
      if (iv.length !== encr.ivLength) throw new Error(`IV source returned ${iv.length} octets, ${encr.ivLength} needed`);
      const padLength = padLengthFor(plaintext.length, encr.blockSize);
      const trailer = Buffer.alloc(padLength + 1, 0);
      trailer[padLength] = padLength;
      const c = createCipheriv(cipherName, key, iv);
      c.setAutoPadding(false);
      const ivAndCt = Buffer.concat([iv, c.update(plaintext), c.update(trailer), c.final()]);
      return Buffer.concat([ivAndCt, mac(aad, ivAndCt)]);
    },
    open(aad: Buffer, body: Buffer): Buffer | null {
      const ctLength = body.length - encr.ivLength - icvLength;
      if (ctLength < encr.blockSize || ctLength % encr.blockSize !== 0) return null;
      const ivAndCt = body.subarray(0, body.length - icvLength);
      const icv = body.subarray(body.length - icvLength);
      // Verify before decrypting; constant-time comparison.
      if (!timingSafeEqual(mac(aad, ivAndCt), icv)) return null;
      try {
        const d = createDecipheriv(cipherName, key, ivAndCt.subarray(0, encr.ivLength));
        d.setAutoPadding(false);
        const pt = Buffer.concat([d.update(ivAndCt.subarray(encr.ivLength)), d.final()]);
        return stripPadding(pt);
      } catch {
        return null;
      }
    },
  };
}

export interface SkKeysForProtection {
  skEi: Buffer;
  skEr: Buffer;
  skAi: Buffer;
  skAr: Buffer;
}

/**
 * Both directions of an IKE SA: `outbound` seals what we send, `inbound` opens what we receive.
 * `originalInitiator` is whether we are the original initiator of this IKE SA (RFC 7296 §2.14).
 */
export function createIkeSaProtections(
  suite: { encrId: number; keyBits?: number; integId?: number },
  keys: SkKeysForProtection,
  originalInitiator: boolean,
  rng?: Rng,
): { outbound: IkeProtection; inbound: IkeProtection } {
  const forDir = (encKey: Buffer, integKey: Buffer) =>
    createProtection({
      encrId: suite.encrId,
      ...(suite.keyBits !== undefined ? { keyBits: suite.keyBits } : {}),
      ...(suite.integId !== undefined ? { integId: suite.integId } : {}),
      encKey,
      ...(integKey.length ? { integKey } : {}),
      ...(rng ? { rng } : {}),
    });
  const i = forDir(keys.skEi, keys.skAi);
  const r = forDir(keys.skEr, keys.skAr);
  return originalInitiator ? { outbound: i, inbound: r } : { outbound: r, inbound: i };
}
