// AUTH payload computations: signed octets (RFC 7296 §2.15), shared-key MIC, IntAuth (RFC 9242 §3.3.2),
// and digital signatures with RFC 7427 (auth method 14) including Ed25519/Ed448 (RFC 8420).
import { createPrivateKey, createPublicKey, sign, verify, constants as cryptoConstants, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AUTH_METHOD, HASH_ALG } from './constants.js';
import { decodeOid, decodeSmallInteger, encodeInteger, encodeOid, encodeSequence, encodeTlv, readChildren, readTlv, TAG } from './der.js';
import type { Prf } from './prf.js';

// ---------------------------------------------------------------------------------------------
// Signed octets and PSK

/**
 * InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI [| IntAuth]
 * ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR [| IntAuth]
 * MACedIDFor* = prf(SK_p*, IDType | RESERVED | IDData) (RFC 7296 §2.15); `idPayloadBody` is the ID
 * payload without its 4-octet generic header. `realMessage` is the IKE_SA_INIT message as sent (from the
 * IKE header, without the non-ESP marker); `peerNonce` the other side's Nonce Data. IntAuth (RFC 9242
 * §3.3.2) is appended when IKE_INTERMEDIATE exchanges took place.
 */
export function signedOctets(realMessage: Buffer, peerNonce: Buffer, prf: Prf, skP: Buffer, idPayloadBody: Buffer, intAuth?: Buffer): Buffer {
  const macedId = prf.compute(skP, idPayloadBody);
  return Buffer.concat(intAuth ? [realMessage, peerNonce, macedId, intAuth] : [realMessage, peerNonce, macedId]);
}

const KEY_PAD = Buffer.from('Key Pad for IKEv2', 'ascii'); // 17 octets, no terminating NUL (RFC 7296 §2.15)

/** Shared Key Message Integrity Code: AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>). */
export function pskAuth(prf: Prf, psk: Buffer, octets: Buffer): Buffer {
  return prf.compute(prf.compute(psk, KEY_PAD), octets);
}

/** Constant-time comparison of a received PSK AUTH value with the expected one. */
export function verifyPskAuth(prf: Prf, psk: Buffer, octets: Buffer, received: Buffer): boolean {
  const expected = pskAuth(prf, psk, octets);
  return received.length === expected.length && timingSafeEqual(received, expected);
}

// ---------------------------------------------------------------------------------------------
// IntAuth (RFC 9242 §3.3.2)

const PAYLOAD_SK = 46;
const PAYLOAD_SKF = 53;
const IKE_HEADER_LENGTH = 28;

/**
 * IntAuth_A for one IKE_INTERMEDIATE message: `aad` is the message from the IKE header through the SK
 * payload header (the RFC 5282 AAD), or through the SKF header of its first fragment (RFC 7383). The
 * result is what the message would be unfragmented: SKF becomes SK (the fragment fields are dropped),
 * the IKE header Length is len(A) + len(P) and the SK payload Length 4 + len(P).
 */
export function intAuthA(aad: Buffer, innerLength: number): Buffer {
  if (aad.length < IKE_HEADER_LENGTH + 4) throw new Error('IntAuth: message shorter than IKE header plus SK header');
  let nextFieldAt = 16; // the Next Payload field that names the current payload
  let type = aad[16]!;
  let off = IKE_HEADER_LENGTH;
  for (;;) {
    if (type === PAYLOAD_SK || type === PAYLOAD_SKF) {
      const hdr = type === PAYLOAD_SK ? 4 : 8;
      if (aad.length - off !== hdr) throw new Error('IntAuth: SK/SKF header is not the last part of the associated data');
      break;
    }
    if (off + 4 > aad.length) throw new Error('IntAuth: no SK or SKF payload in the associated data');
    const len = aad.readUInt16BE(off + 2);
    if (len < 4) throw new Error('IntAuth: malformed unprotected payload');
    nextFieldAt = off;
    type = aad[off]!;
    off += len;
  }
  const a = Buffer.from(aad.subarray(0, off + 4));
  if (type === PAYLOAD_SKF) a[nextFieldAt] = PAYLOAD_SK;
  a.writeUInt32BE(a.length + innerLength, 24);
  a.writeUInt16BE(4 + innerLength, off + 2);
  return a;
}

/**
 * One step of the IntAuth chain (RFC 9242 §3.3.2):
 *   IntAuth_i1 = prf(SK_pi1, IntAuth_i1A [| IntAuth_i1P]),  IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | IntAuth_iNA [| IntAuth_iNP])
 * and likewise for the responses with SK_pr. `skP` is the SK_pi (request) or SK_pr (response) that
 * protected this exchange (before any key update the exchange itself causes); `innerPayloads` is the
 * decrypted/plain inner payload chain P (no IV, padding or ICV) of the whole (reassembled) message.
 */
export function intAuthChunk(prf: Prf, skP: Buffer, previous: Buffer | undefined, aad: Buffer, innerPayloads: Buffer): Buffer {
  const a = intAuthA(aad, innerPayloads.length);
  return prf.compute(skP, previous ? [previous, a, innerPayloads] : [a, innerPayloads]);
}

/** IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (the first IKE_AUTH request's Message ID, 4 octets). */
export function intAuth(intAuthI: Buffer, intAuthR: Buffer, ikeAuthMessageId: number): Buffer {
  const mid = Buffer.alloc(4);
  mid.writeUInt32BE(ikeAuthMessageId >>> 0);
  return Buffer.concat([intAuthI, intAuthR, mid]);
}

// ---------------------------------------------------------------------------------------------
// RFC 7427 digital signatures

const OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
} as const;

const HASH_NAME: Record<number, { node: string; oid: string; length: number }> = {
  [HASH_ALG.SHA2_256]: { node: 'sha256', oid: OID.sha256, length: 32 },
  [HASH_ALG.SHA2_384]: { node: 'sha384', oid: OID.sha384, length: 48 },
  [HASH_ALG.SHA2_512]: { node: 'sha512', oid: OID.sha512, length: 64 },
};

export type SignatureScheme = 'ecdsa' | 'rsa-pss' | 'rsa-pkcs1' | 'ed25519' | 'ed448';

export interface SignatureAlgorithm {
  scheme: SignatureScheme;
  /** RFC 7427 hash id (5 = Identity for EdDSA). */
  hash: number;
}

/** DER AlgorithmIdentifier for a scheme/hash (RFC 7427 Appendix A forms; RSASSA-PSS per RFC 4055 with salt = hash length). */
export function algorithmIdentifier(alg: SignatureAlgorithm): Buffer {
  const nul = encodeTlv(TAG.NULL, Buffer.alloc(0));
  if (alg.scheme === 'ed25519' || alg.scheme === 'ed448') {
    if (alg.hash !== HASH_ALG.IDENTITY) throw new Error(`${alg.scheme} signs with hash Identity (5), not ${alg.hash}`);
    return encodeSequence(encodeOid(alg.scheme === 'ed25519' ? OID.ed25519 : OID.ed448));
  }
  const h = HASH_NAME[alg.hash];
  if (!h) throw new Error(`unsupported signature hash ${alg.hash} for ${alg.scheme}`);
  switch (alg.scheme) {
    case 'ecdsa': {
      const oid = { [HASH_ALG.SHA2_256]: OID.ecdsaSha256, [HASH_ALG.SHA2_384]: OID.ecdsaSha384, [HASH_ALG.SHA2_512]: OID.ecdsaSha512 }[alg.hash]!;
      return encodeSequence(encodeOid(oid));
    }
    case 'rsa-pkcs1': {
      const oid = { [HASH_ALG.SHA2_256]: OID.sha256WithRsa, [HASH_ALG.SHA2_384]: OID.sha384WithRsa, [HASH_ALG.SHA2_512]: OID.sha512WithRsa }[alg.hash]!;
      return encodeSequence(encodeOid(oid), nul);
    }
    case 'rsa-pss': {
      const hashAlg = encodeSequence(encodeOid(h.oid), nul);
      const params = encodeSequence(
        encodeTlv(0xa0, hashAlg),
        encodeTlv(0xa1, encodeSequence(encodeOid(OID.mgf1), hashAlg)),
        encodeTlv(0xa2, encodeInteger(h.length)),
      );
      return encodeSequence(encodeOid(OID.rsaPss), params);
    }
  }
}

function hashIdFromOid(oid: string): number | undefined {
  for (const [id, h] of Object.entries(HASH_NAME)) if (h.oid === oid) return Number(id);
  return undefined;
}

interface ParsedAlgorithm extends SignatureAlgorithm {
  /** RSASSA-PSS salt length. */
  saltLength?: number;
}

/** Parse an AlgorithmIdentifier from AUTH data; throws with a reason for unknown or inconsistent ones. */
export function parseAlgorithmIdentifier(der: Buffer): ParsedAlgorithm {
  const top = readTlv(der);
  if (top.tag !== TAG.SEQUENCE || top.next !== der.length) throw new Error('AlgorithmIdentifier is not a single DER SEQUENCE');
  const [oidNode, params, ...extra] = readChildren(top.content);
  if (!oidNode || oidNode.tag !== TAG.OID || extra.length) throw new Error('malformed AlgorithmIdentifier');
  const oid = decodeOid(oidNode.content);
  const noParams = () => {
    // RFC 5758 / RFC 8410: ECDSA and EdDSA identifiers have absent parameters.
    if (params) throw new Error(`AlgorithmIdentifier ${oid} must not have parameters`);
  };
  const nullOrAbsent = () => {
    if (params && !(params.tag === TAG.NULL && params.content.length === 0)) throw new Error(`AlgorithmIdentifier ${oid} has unexpected parameters`);
  };
  switch (oid) {
    case OID.ecdsaSha256:
      noParams();
      return { scheme: 'ecdsa', hash: HASH_ALG.SHA2_256 };
    case OID.ecdsaSha384:
      noParams();
      return { scheme: 'ecdsa', hash: HASH_ALG.SHA2_384 };
    case OID.ecdsaSha512:
      noParams();
      return { scheme: 'ecdsa', hash: HASH_ALG.SHA2_512 };
    case OID.ed25519:
      noParams();
      return { scheme: 'ed25519', hash: HASH_ALG.IDENTITY };
    case OID.ed448:
      noParams();
      return { scheme: 'ed448', hash: HASH_ALG.IDENTITY };
    case OID.sha256WithRsa:
      nullOrAbsent();
      return { scheme: 'rsa-pkcs1', hash: HASH_ALG.SHA2_256 };
    case OID.sha384WithRsa:
      nullOrAbsent();
      return { scheme: 'rsa-pkcs1', hash: HASH_ALG.SHA2_384 };
    case OID.sha512WithRsa:
      nullOrAbsent();
      return { scheme: 'rsa-pkcs1', hash: HASH_ALG.SHA2_512 };
    case OID.rsaPss:
      return { scheme: 'rsa-pss', ...parsePssParams(params) };
    default:
      throw new Error(`unsupported signature algorithm OID ${oid}`);
  }
}

/** RSASSA-PSS-params (RFC 4055 §3.1). Defaults (SHA-1) are refused: RFC 7427 peers send explicit SHA-2. */
function parsePssParams(params: { tag: number; content: Buffer } | undefined): { hash: number; saltLength: number } {
  if (!params || params.tag !== TAG.SEQUENCE) throw new Error('RSASSA-PSS AlgorithmIdentifier without parameters (SHA-1 defaults are not accepted)');
  let hash: number | undefined;
  let mgfHash: number | undefined;
  let saltLength = 20;
  for (const f of readChildren(params.content)) {
    const inner = readTlv(f.content);
    if (inner.next !== f.content.length) throw new Error('malformed RSASSA-PSS parameters');
    if (f.tag === 0xa0) {
      const [h] = readChildren(inner.content);
      hash = h && h.tag === TAG.OID ? hashIdFromOid(decodeOid(h.content)) : undefined;
      if (hash === undefined) throw new Error('RSASSA-PSS: unsupported hash algorithm');
    } else if (f.tag === 0xa1) {
      const [m, mp] = readChildren(inner.content);
      if (!m || m.tag !== TAG.OID || decodeOid(m.content) !== OID.mgf1 || !mp) throw new Error('RSASSA-PSS: only MGF1 is supported');
      const [mh] = readChildren(mp.content);
      mgfHash = mh && mh.tag === TAG.OID ? hashIdFromOid(decodeOid(mh.content)) : undefined;
      if (mgfHash === undefined) throw new Error('RSASSA-PSS: unsupported MGF1 hash');
    } else if (f.tag === 0xa2) {
      if (inner.tag !== TAG.INTEGER) throw new Error('RSASSA-PSS: salt length is not an INTEGER');
      saltLength = decodeSmallInteger(inner.content);
    } else if (f.tag === 0xa3) {
      if (inner.tag !== TAG.INTEGER || decodeSmallInteger(inner.content) !== 1) throw new Error('RSASSA-PSS: trailer field must be 1');
    } else throw new Error('malformed RSASSA-PSS parameters');
  }
  if (hash === undefined) throw new Error('RSASSA-PSS: SHA-1 default hash is not accepted');
  if (mgfHash !== hash) throw new Error('RSASSA-PSS: MGF1 hash differs from the message hash');
  return { hash, saltLength };
}

function toPrivateKey(key: string | Buffer | KeyObject): KeyObject {
  if (typeof key === 'string' || Buffer.isBuffer(key)) return createPrivateKey(key);
  if (key.type !== 'private') throw new Error('a private key is required for signing');
  return key;
}

function toPublicKey(key: string | Buffer | KeyObject): KeyObject {
  if (typeof key === 'string' || Buffer.isBuffer(key)) return createPublicKey(key);
  return key.type === 'private' ? createPublicKey(key) : key;
}

const EC_CURVE_HASH: Record<string, number> = {
  prime256v1: HASH_ALG.SHA2_256,
  secp384r1: HASH_ALG.SHA2_384,
  secp521r1: HASH_ALG.SHA2_512,
};

/** The signature scheme a key signs with ('rsa' keys default to RSASSA-PSS unless `rsaScheme` says otherwise). */
export function keySignatureScheme(key: KeyObject, rsaScheme: 'rsa-pss' | 'rsa-pkcs1' = 'rsa-pss'): SignatureScheme {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return 'ecdsa';
    case 'ed25519':
      return 'ed25519';
    case 'ed448':
      return 'ed448';
    case 'rsa':
      return rsaScheme;
    case 'rsa-pss':
      return 'rsa-pss';
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'} for IKEv2 signatures`);
  }
}

/** Hash ids we announce in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4, RFC 8420 §2). */
export const SUPPORTED_SIGNATURE_HASHES: readonly number[] = [HASH_ALG.SHA2_256, HASH_ALG.SHA2_384, HASH_ALG.SHA2_512, HASH_ALG.IDENTITY];

/** Notify data of SIGNATURE_HASH_ALGORITHMS: a list of 2-octet hash ids. */
export function encodeSignatureHashAlgorithms(ids: readonly number[] = SUPPORTED_SIGNATURE_HASHES): Buffer {
  const b = Buffer.alloc(ids.length * 2);
  ids.forEach((id, i) => b.writeUInt16BE(id, i * 2));
  return b;
}

/** Parse SIGNATURE_HASH_ALGORITHMS notify data; null if its length is odd. Unknown ids are kept. */
export function parseSignatureHashAlgorithms(data: Buffer): number[] | null {
  if (data.length % 2 !== 0) return null;
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(data.readUInt16BE(i));
  return out;
}

/**
 * The hash to sign with for `key`, given the hashes the peer announced: EdDSA needs Identity (5);
 * ECDSA prefers the curve's matching hash; RSA prefers SHA2-256. Undefined if nothing fits.
 */
export function selectSignatureHash(key: string | Buffer | KeyObject, peerHashes: readonly number[]): number | undefined {
  const k = typeof key === 'string' || Buffer.isBuffer(key) ? toPrivateKeyOrPublic(key) : key;
  const scheme = keySignatureScheme(k);
  if (scheme === 'ed25519' || scheme === 'ed448') return peerHashes.includes(HASH_ALG.IDENTITY) ? HASH_ALG.IDENTITY : undefined;
  const preferred: number[] = [HASH_ALG.SHA2_256, HASH_ALG.SHA2_384, HASH_ALG.SHA2_512];
  if (scheme === 'ecdsa') {
    const curveHash = EC_CURVE_HASH[k.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curveHash !== undefined) preferred.unshift(curveHash);
  }
  return preferred.find((h) => peerHashes.includes(h));
}

function toPrivateKeyOrPublic(key: string | Buffer): KeyObject {
  try {
    return createPrivateKey(key);
  } catch {
    return createPublicKey(key);
  }
}

/**
 * RFC 7427 §3 AUTH data for auth method 14: ASN.1 Length (1 octet) | AlgorithmIdentifier | Signature Value.
 * ECDSA signatures are DER Ecdsa-Sig-Value; EdDSA signs the octets directly (RFC 8420, hash id 5);
 * RSA uses RSASSA-PSS (salt = hash length, MGF1 with the same hash) unless `rsaScheme` is 'rsa-pkcs1'.
 */
export function signAuth(privateKey: string | Buffer | KeyObject, octets: Buffer, hashId: number, opts: { rsaScheme?: 'rsa-pss' | 'rsa-pkcs1' } = {}): Buffer {
  const key = toPrivateKey(privateKey);
  const scheme = keySignatureScheme(key, opts.rsaScheme);
  const alg: SignatureAlgorithm = { scheme, hash: hashId };
  const algId = algorithmIdentifier(alg);
  if (algId.length > 255) throw new Error('AlgorithmIdentifier longer than 255 octets');
  let signature: Buffer;
  if (scheme === 'ed25519' || scheme === 'ed448') {
    signature = sign(null, octets, key);
  } else {
    const h = HASH_NAME[hashId]!;
    if (scheme === 'ecdsa') signature = sign(h.node, octets, { key, dsaEncoding: 'der' });
    else if (scheme === 'rsa-pss') signature = sign(h.node, octets, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: h.length });
    else signature = sign(h.node, octets, { key, padding: cryptoConstants.RSA_PKCS1_PADDING });
  }
  return Buffer.concat([Buffer.from([algId.length]), algId, signature]);
}

export type VerifyAuthResult = { ok: true; algorithm: SignatureAlgorithm } | { ok: false; reason: string };

/**
 * Verify RFC 7427 AUTH data against the signed octets with the peer's public key (from its certificate).
 * Refuses: malformed data, unknown algorithms, an algorithm that does not fit the key type, a hash not in
 * `acceptedHashes` (what we announced, if given), and bad signatures.
 */
export function verifyAuth(
  publicKey: string | Buffer | KeyObject,
  authData: Buffer,
  octets: Buffer,
  opts: { acceptedHashes?: readonly number[] } = {},
): VerifyAuthResult {
  if (authData.length < 2) return { ok: false, reason: 'AUTH data too short' };
  const algLen = authData[0]!;
  if (algLen === 0 || 1 + algLen >= authData.length) return { ok: false, reason: 'AUTH data: AlgorithmIdentifier length exceeds the data' };
  let alg: ParsedAlgorithm;
  try {
    alg = parseAlgorithmIdentifier(authData.subarray(1, 1 + algLen));
  } catch (e) {
    return { ok: false, reason: `AUTH data: ${(e as Error).message}` };
  }
  const signature = authData.subarray(1 + algLen);
  let key: KeyObject;
  try {
    key = toPublicKey(publicKey);
  } catch (e) {
    return { ok: false, reason: `public key: ${(e as Error).message}` };
  }
  const keyType = key.asymmetricKeyType;
  const fits =
    (alg.scheme === 'ecdsa' && keyType === 'ec') ||
    (alg.scheme === 'ed25519' && keyType === 'ed25519') ||
    (alg.scheme === 'ed448' && keyType === 'ed448') ||
    (alg.scheme === 'rsa-pkcs1' && keyType === 'rsa') ||
    (alg.scheme === 'rsa-pss' && (keyType === 'rsa' || keyType === 'rsa-pss'));
  if (!fits) return { ok: false, reason: `signature algorithm ${alg.scheme} does not match the ${keyType ?? 'unknown'} public key` };
  if (opts.acceptedHashes && !opts.acceptedHashes.includes(alg.hash)) {
    return { ok: false, reason: `signature hash ${alg.hash} was not announced in SIGNATURE_HASH_ALGORITHMS` };
  }
  let good: boolean;
  try {
    if (alg.scheme === 'ed25519' || alg.scheme === 'ed448') good = verify(null, octets, key, signature);
    else {
      const h = HASH_NAME[alg.hash]!;
      if (alg.scheme === 'ecdsa') good = verify(h.node, octets, { key, dsaEncoding: 'der' }, signature);
      else if (alg.scheme === 'rsa-pss') {
        // The salt length is whatever the signer declared in its parameters (RFC 4055 §3.1).
        good = verify(h.node, octets, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? h.length }, signature);
      } else good = verify(h.node, octets, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
    }
  } catch (e) {
    return { ok: false, reason: `signature check failed: ${(e as Error).message}` };
  }
  return good ? { ok: true, algorithm: { scheme: alg.scheme, hash: alg.hash } } : { ok: false, reason: 'signature does not verify' };
}

// ---------------------------------------------------------------------------------------------
// Pre-RFC 7427 signature methods, for peers that do not send SIGNATURE_HASH_ALGORITHMS.

const LEGACY_ECDSA: Record<number, { curve: string; hash: string }> = {
  [AUTH_METHOD.ECDSA_SHA256_P256]: { curve: 'prime256v1', hash: 'sha256' },
  [AUTH_METHOD.ECDSA_SHA384_P384]: { curve: 'secp384r1', hash: 'sha384' },
  [AUTH_METHOD.ECDSA_SHA512_P521]: { curve: 'secp521r1', hash: 'sha512' },
};

function legacyCheckKey(method: number, key: KeyObject): string | undefined {
  if (method === AUTH_METHOD.RSA_SIG) return key.asymmetricKeyType === 'rsa' ? undefined : `auth method 1 needs an RSA key, not ${key.asymmetricKeyType}`;
  const def = LEGACY_ECDSA[method];
  if (!def) return `unsupported auth method ${method}`;
  // RFC 4754 §3: the method fixes both the curve and the hash.
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== def.curve) return `auth method ${method} needs an ECDSA ${def.curve} key`;
  return undefined;
}

/**
 * AUTH data for auth methods 1 (RSA, RSASSA-PKCS1-v1_5 with SHA-1, RFC 7296 §3.8) and 9/10/11
 * (ECDSA with SHA-256/384/512 on P-256/384/521, signature r | s of fixed length, RFC 4754 §3, §7).
 */
export function signLegacyAuth(method: number, privateKey: string | Buffer | KeyObject, octets: Buffer): Buffer {
  const key = toPrivateKey(privateKey);
  const problem = legacyCheckKey(method, key);
  if (problem) throw new Error(problem);
  if (method === AUTH_METHOD.RSA_SIG) return sign('sha1', octets, { key, padding: cryptoConstants.RSA_PKCS1_PADDING });
  return sign(LEGACY_ECDSA[method]!.hash, octets, { key, dsaEncoding: 'ieee-p1363' });
}

/** Verify AUTH data of auth method 1, 9, 10 or 11 (see signLegacyAuth). Never throws on input. */
export function verifyLegacyAuth(method: number, publicKey: string | Buffer | KeyObject, authData: Buffer, octets: Buffer): { ok: true } | { ok: false; reason: string } {
  let key: KeyObject;
  try {
    key = toPublicKey(publicKey);
  } catch (e) {
    return { ok: false, reason: `public key: ${(e as Error).message}` };
  }
  const problem = legacyCheckKey(method, key);
  if (problem) return { ok: false, reason: problem };
  try {
    const good =
      method === AUTH_METHOD.RSA_SIG
        ? verify('sha1', octets, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, authData)
        : verify(LEGACY_ECDSA[method]!.hash, octets, { key, dsaEncoding: 'ieee-p1363' }, authData);
    return good ? { ok: true } : { ok: false, reason: 'signature does not verify' };
  } catch (e) {
    return { ok: false, reason: `signature check failed: ${(e as Error).message}` };
  }
}
