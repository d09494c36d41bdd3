// Key derivation: IKE SA keys (RFC 7296 §2.14, §2.18), additional key exchanges (RFC 9370 §2.2.2,
// §2.2.4), Child SA KEYMAT (RFC 7296 §2.17) and PPK mixing (RFC 8784 §3, RFC 9867).
import { espKeyLengths, ikeKeyLengths } from './algorithms.js';
import { prfPlus, type Prf } from './prf.js';

/** An IKE SPI as 8 octets (network order) or as an unsigned 64-bit bigint. */
export type Spi = Buffer | bigint;

/** An SPI as its 8 wire octets. */
export function spiBytes(spi: Spi): Buffer {
  if (Buffer.isBuffer(spi)) {
    if (spi.length !== 8) throw new Error(`IKE SPI must be 8 octets, got ${spi.length}`);
    return spi;
  }
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, spi));
  return b;
}

/** The negotiated IKE SA transforms, carried with the keys so later updates know the lengths. */
export interface IkeSuite {
  prf: Prf;
  encr: number;
  keyBits?: number;
  /** Integrity transform; undefined or 0 with AEAD. */
  integ?: number;
}

export interface IkeSaKeys extends IkeSuite {
  skeyseed: Buffer;
  skD: Buffer;
  skAi: Buffer;
  skAr: Buffer;
  skEi: Buffer;
  skEr: Buffer;
  skPi: Buffer;
  skPr: Buffer;
}

export interface IkeSaKeyInput extends IkeSuite {
  ni: Buffer;
  nr: Buffer;
  spiI: Spi;
  spiR: Spi;
}

/** {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 §2.14). */
function expandIkeKeys(suite: IkeSuite, skeyseed: Buffer, ni: Buffer, nr: Buffer, spiI: Spi, spiR: Spi): IkeSaKeys {
  const { prf } = suite;
  const { encKey, integKey } = ikeKeyLengths(suite.encr, suite.keyBits, suite.integ);
  const p = prf.keyLength;
  const total = p + 2 * integKey + 2 * encKey + 2 * p;
  const km = prfPlus(prf, skeyseed, [ni, nr, spiBytes(spiI), spiBytes(spiR)], total);
  let off = 0;
  const take = (n: number) => {
    const out = Buffer.from(km.subarray(off, off + n));
    off += n;
    return out;
  };
  return {
    prf,
    encr: suite.encr,
    ...(suite.keyBits !== undefined ? { keyBits: suite.keyBits } : {}),
    ...(suite.integ !== undefined ? { integ: suite.integ } : {}),
    skeyseed,
    skD: take(p),
    skAi: take(integKey),
    skAr: take(integKey),
    skEi: take(encKey),
    skEr: take(encKey),
    skPi: take(p),
    skPr: take(p),
  };
}

function suiteOf(s: IkeSuite): IkeSuite {
  return { prf: s.prf, encr: s.encr, ...(s.keyBits !== undefined ? { keyBits: s.keyBits } : {}), ...(s.integ !== undefined ? { integ: s.integ } : {}) };
}

/**
 * Keys of a new IKE SA from IKE_SA_INIT: SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14).
 * (PRFs with fixed-size keys such as AES-XCBC are not implemented, so the nonces are used whole.)
 */
export function deriveIkeSaKeys(input: IkeSaKeyInput & { sharedSecret: Buffer }): IkeSaKeys {
  const skeyseed = input.prf.compute(Buffer.concat([input.ni, input.nr]), input.sharedSecret);
  return expandIkeKeys(suiteOf(input), skeyseed, input.ni, input.nr, input.spiI, input.spiR);
}

/**
 * Keys of the IKE SA created by rekeying an existing one in CREATE_CHILD_SA (RFC 7296 §2.18), with the
 * RFC 9370 §2.2.4 extension for additional key exchanges done in IKE_FOLLOWUP_KE:
 *   SKEYSEED = prf_old(SK_d(old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
 *   keys     = prf+_new(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * SK(0) is the CREATE_CHILD_SA's KE secret, SK(1..n) the follow-up secrets in order; Ni/Nr are the
 * CREATE_CHILD_SA nonces and SPIi/SPIr the new IKE SA's SPIs. §2.18: "because the rekeying exchange
 * belongs to the old IKE SA, it is the old IKE SA's PRF that is used to generate SKEYSEED"; prf+ then
 * runs with the new SA's PRF.
 */
export function deriveRekeyedIkeSaKeys(
  input: IkeSaKeyInput & { oldPrf: Prf; oldSkD: Buffer; sharedSecrets: readonly Buffer[] },
): IkeSaKeys {
  const [first, ...rest] = input.sharedSecrets;
  // RFC 7296 §2.18: the KE payload is mandatory when rekeying an IKE SA.
  if (!first) throw new Error('IKE SA rekey requires a key exchange shared secret');
  const skeyseed = input.oldPrf.compute(input.oldSkD, [first, input.ni, input.nr, ...rest]);
  return expandIkeKeys(suiteOf(input), skeyseed, input.ni, input.nr, input.spiI, input.spiR);
}

/**
 * Key update after an additional key exchange in IKE_INTERMEDIATE (RFC 9370 §2.2.2):
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
 *   {SK_d(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
 * Ni, Nr and the SPIs are the IKE SA's (from IKE_SA_INIT).
 */
export function updateIkeSaKeys(prev: IkeSaKeys, sharedSecret: Buffer, ni: Buffer, nr: Buffer, spiI: Spi, spiR: Spi): IkeSaKeys {
  const skeyseed = prev.prf.compute(prev.skD, [sharedSecret, ni, nr]);
  return expandIkeKeys(suiteOf(prev), skeyseed, ni, nr, spiI, spiR);
}

export interface ChildDirectionKeys {
  /** Encryption key including the salt for AEAD/CTR ciphers (empty for ENCR_NULL). */
  encKey: Buffer;
  /** Integrity key (empty with AEAD). */
  integKey: Buffer;
}

export interface ChildSaKeys {
  /** Keys for traffic from the initiator of the exchange that created the Child SA to the responder. */
  i2r: ChildDirectionKeys;
  r2i: ChildDirectionKeys;
}

/**
 * Child SA KEYMAT (RFC 7296 §2.17, RFC 9370 §2.2.4):
 *   KEYMAT = prf+(SK_d, Ni | Nr)                                  (no PFS: sharedSecrets empty)
 *   KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))    (PFS, optionally with additional KEs)
 * taken as ENCR_i | INTEG_i | ENCR_r | INTEG_r, where "i" is the initiator of the creating exchange.
 * For the IKE_AUTH Child SA, Ni/Nr are the IKE_SA_INIT nonces and SK_d the final (post-ADDKE/PPK) SK_d.
 */
export function deriveChildKeys(input: {
  prf: Prf;
  skD: Buffer;
  ni: Buffer;
  nr: Buffer;
  sharedSecrets: readonly Buffer[];
  encr: number;
  keyBits?: number;
  integ?: number;
}): ChildSaKeys {
  const { encKey, integKey } = espKeyLengths(input.encr, input.keyBits, input.integ);
  const [first, ...rest] = input.sharedSecrets;
  const seed = first ? [first, input.ni, input.nr, ...rest] : [input.ni, input.nr];
  const km = prfPlus(input.prf, input.skD, seed, 2 * (encKey + integKey));
  let off = 0;
  const take = (n: number) => {
    const out = Buffer.from(km.subarray(off, off + n));
    off += n;
    return out;
  };
  const i2r = { encKey: take(encKey), integKey: take(integKey) };
  const r2i = { encKey: take(encKey), integKey: take(integKey) };
  return { i2r, r2i };
}

// ---------------------------------------------------------------------------------------------
// PPK (RFC 8784, RFC 9867)

/**
 * RFC 8784 §3: once the PPK is known, SK_d = prf+(PPK, SK_d'), SK_pi = prf+(PPK, SK_pi'),
 * SK_pr = prf+(PPK, SK_pr'), each as long as its input; SK_e* and SK_a* stay unchanged.
 * The input keys (SK_*') remain the ones for NO_PPK_AUTH.
 */
export function applyPpk(prf: Prf, keys: IkeSaKeys, ppk: Buffer): IkeSaKeys {
  if (ppk.length === 0) throw new Error('PPK must not be empty');
  return {
    ...keys,
    skD: prfPlus(prf, ppk, keys.skD, keys.skD.length),
    skPi: prfPlus(prf, ppk, keys.skPi, keys.skPi.length),
    skPr: prfPlus(prf, ppk, keys.skPr, keys.skPr.length),
  };
}

/**
 * RFC 9867 PPK Confirmation carried in PPK_IDENTITY_KEY: the first 8 octets of
 * prf(PPK, Ni | Nr | SPIi | SPIr). (Structure confirmed against libreswan's implementation; the RFC
 * body text was not available.)
 */
export function ppkConfirmation(prf: Prf, ppk: Buffer, ni: Buffer, nr: Buffer, spiI: Spi, spiR: Spi): Buffer {
  return prf.compute(ppk, [ni, nr, spiBytes(spiI), spiBytes(spiR)]).subarray(0, 8);
}

/**
 * RFC 9867 PPK in IKE_INTERMEDIATE: after the exchange that selected the PPK, all seven keys are recomputed:
 *   SKEYSEED' = prf+(PPK, SK_d)   (PRF key length; SK_d = the current one, after any ADDKE update)
 *   {SK_d | ... | SK_pr} = prf+(SKEYSEED', Ni | Nr | SPIi | SPIr)
 * (Confirmed against libreswan; the RFC's name for the intermediate value is UNCONFIRMED.)
 */
export function applyPpkIntermediate(keys: IkeSaKeys, ppk: Buffer, ni: Buffer, nr: Buffer, spiI: Spi, spiR: Spi): IkeSaKeys {
  if (ppk.length === 0) throw new Error('PPK must not be empty');
  const skeyseed = prfPlus(keys.prf, ppk, keys.skD, keys.prf.keyLength);
  return expandIkeKeys(suiteOf(keys), skeyseed, ni, nr, spiI, spiR);
}

/**
 * RFC 9867 PPK in CREATE_CHILD_SA: SK_d' = prf+(PPK, SK_d), which then replaces SK_d in that exchange's
 * Child KEYMAT or rekeyed-IKE SKEYSEED. UNCONFIRMED: written from ppk.md's recollection of the draft;
 * the RFC body (§3.2/§3.3) was not available. The engine uses it for RFC 9867 CREATE_CHILD_SA exchanges
 * (docs/post-quantum.md records the decision).
 */
export function ppkMixedSkD(prf: Prf, skD: Buffer, ppk: Buffer): Buffer {
  if (ppk.length === 0) throw new Error('PPK must not be empty');
  return prfPlus(prf, ppk, skD, skD.length);
}
