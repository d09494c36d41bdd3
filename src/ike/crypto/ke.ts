// Key exchange methods (Transform Type 4) behind one KEM-shaped interface:
// the initiator of an exchange sends `publicData` and later `finish`es with the peer's data; the
// responder answers in one step. For DH the two sides are symmetric; for ML-KEM the initiator sends
// the encapsulation key and the responder the ciphertext (draft-ietf-ipsecme-ikev2-mlkem §2.1).
import { createDiffieHellman, createDiffieHellmanGroup, createECDH, createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { KE, NOTIFY_INVALID_SYNTAX } from './constants.js';
import type { Rng } from './protection.js';

// Backend per method, chosen by measurement (scripts/bench/ke.mjs, node 20.20, 2-core VM; CPU us for
// key generation + shared secret on one handshake side, node:crypto vs @noble):
//   ECP_256  146 vs 3069   ECP_384 1948 vs 6701   ECP_521 4444 vs 13243     -> node:crypto
//   X25519    91 vs 1628   X448     346 vs 4492                              -> node:crypto
//   ML-KEM-512/768/1024 (only @noble/post-quantum on node 20): initiator (keygen+decaps) 842/1070/1624,
//   responder (encaps) 349/527/755.
//   MODP 2048/3072/4096 (node:crypto only): 746/1695/3825.

export type KeErrorReason =
  /** Key Exchange Data of the wrong length for the method (ML-KEM: FIPS 203 §7.2/§7.3 type check). */
  | 'invalid-length'
  /** ECP point not on the curve, or MODP value outside 1 < y < p-1 (RFC 6989). */
  | 'invalid-public-value'
  /** X25519/X448 result is all zero: the peer sent a low-order point (RFC 8031 §2.3). */
  | 'zero-shared-secret'
  /** ML-KEM encapsulation key fails the FIPS 203 §7.2 modulus check. */
  | 'invalid-encapsulation-key';

/**
 * The peer's Key Exchange Data was unacceptable.
 * - `stage: 'respond'`: found by the responder of the exchange; answer with `notify` (INVALID_SYNTAX,
 *   draft-ietf-ipsecme-ikev2-mlkem §2.2 for ML-KEM; the same code for malformed DH values).
 * - `stage: 'finish'`: found by the initiator in the response; the SA creation fails and no error
 *   notify is sent (ML-KEM draft §2.2; RFC 7296 §2.21). In CREATE_CHILD_SA / IKE_FOLLOWUP_KE the
 *   ML-KEM draft requires deleting the IKE SA (engine policy).
 */
export class KeError extends Error {
  readonly notify: number | undefined;
  constructor(
    readonly method: number,
    readonly reason: KeErrorReason,
    readonly stage: 'respond' | 'finish',
    message: string,
  ) {
    super(message);
    this.name = 'KeError';
    this.notify = stage === 'respond' ? NOTIFY_INVALID_SYNTAX : undefined;
  }
}

export interface KeInitiation {
  /** Key Exchange Data for our KE payload. */
  publicData: Buffer;
  /** Shared secret from the peer's Key Exchange Data; throws KeError (stage 'finish') if it is unacceptable. */
  finish(peerData: Buffer): Buffer;
}

export interface KeResponse {
  publicData: Buffer;
  sharedSecret: Buffer;
}

export interface KeMethod {
  /** Transform Type 4 id (also the KE payload's Key Exchange Method Num). */
  readonly id: number;
  readonly name: string;
  readonly kind: 'modp' | 'ecdh' | 'mlkem';
  /** Whether this method resists a quantum adversary (ML-KEM). */
  readonly postQuantum: boolean;
  /** Octets of the initiator's / responder's Key Exchange Data. */
  readonly initiatorDataLength: number;
  readonly responderDataLength: number;
  readonly sharedSecretLength: number;
  /** Fresh ephemeral key pair (RFC 7296 §2.12 / ML-KEM draft §3: never reused). `rng` defaults to crypto.randomBytes. */
  initiate(rng?: Rng): KeInitiation;
  /** Answer the peer's Key Exchange Data; throws KeError (stage 'respond') if it is unacceptable. */
  respond(peerData: Buffer, rng?: Rng): KeResponse;
}

function checkLength(method: number, name: string, data: Buffer, expected: number, stage: 'respond' | 'finish'): void {
  if (data.length !== expected) {
    throw new KeError(method, 'invalid-length', stage, `${name}: Key Exchange Data is ${data.length} octets, expected ${expected}`);
  }
}

// ---------------------------------------------------------------------------------------------
// MODP groups (RFC 3526): Key Exchange Data and g^ir big-endian, left-padded to the modulus length
// (RFC 7296 §3.4, §2.14). Peer values must satisfy 1 < y < p-1 (RFC 6989 §2.2; the RFC 3526 primes are
// safe primes, so that range check is the whole test). It is checked here: OpenSSL's own check lets some
// values >= p through.

interface ModpDef {
  id: number;
  name: string;
  group: 'modp14' | 'modp15' | 'modp16';
  /** Private exponent octets: at least twice the group's security strength (NIST SP 800-56A). */
  exponentLength: number;
}

function leftPad(b: Buffer, length: number): Buffer {
  if (b.length === length) return b;
  const out = Buffer.alloc(length);
  b.copy(out, length - b.length);
  return out;
}

function modpMethod(def: ModpDef): KeMethod {
  const { id, name } = def;
  const group = createDiffieHellmanGroup(def.group);
  const prime = group.getPrime();
  const generator = group.getGenerator();
  const length = prime.length;
  const pMinus1 = BigInt('0x' + prime.toString('hex')) - 1n;

  const newKey = (rng: Rng) => {
    const dh = createDiffieHellman(prime, generator);
    for (let attempt = 0; attempt < 64; attempt++) {
      const priv = rng(def.exponentLength);
      if (priv.length !== def.exponentLength) throw new Error(`${name}: random source returned ${priv.length} octets`);
      if (priv.every((b) => b === 0)) continue;
      dh.setPrivateKey(priv);
      dh.generateKeys(); // computes g^x from the private value just set
      return dh;
    }
    throw new Error(`${name}: random source produced no valid private key`);
  };
  const shared = (dh: ReturnType<typeof createDiffieHellman>, peer: Buffer, stage: 'respond' | 'finish') => {
    checkLength(id, name, peer, length, stage);
    const y = BigInt('0x' + peer.toString('hex'));
    if (y <= 1n || y >= pMinus1) throw new KeError(id, 'invalid-public-value', stage, `${name}: peer's public value is not in 1 < y < p-1`);
    try {
      return leftPad(dh.computeSecret(peer), length);
    } catch {
      throw new KeError(id, 'invalid-public-value', stage, `${name}: peer's public value is not in 1 < y < p-1`);
    }
  };
  return {
    id,
    name,
    kind: 'modp',
    postQuantum: false,
    initiatorDataLength: length,
    responderDataLength: length,
    sharedSecretLength: length,
    initiate(rng: Rng = randomBytes): KeInitiation {
      const dh = newKey(rng);
      return { publicData: leftPad(dh.getPublicKey(), length), finish: (peer) => shared(dh, peer, 'finish') };
    },
    respond(peerData: Buffer, rng: Rng = randomBytes): KeResponse {
      checkLength(id, name, peerData, length, 'respond');
      const dh = newKey(rng);
      return { publicData: leftPad(dh.getPublicKey(), length), sharedSecret: shared(dh, peerData, 'respond') };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ECP groups (RFC 5903): Key Exchange Data = x | y, fixed length, no 0x04 prefix; shared = x.
// node:crypto ECDH (OpenSSL) is several times faster than @noble/curves here (scripts/bench/ke.mjs),
// and its computeSecret rejects points that are not on the curve (RFC 6989 §2.3).

interface EcpDef {
  id: number;
  name: string;
  curve: string;
  fieldLength: number;
  /** Mask for the first octet of a drawn private key so it has the order's bit length. */
  topMask: number;
}

function ecpMethod(def: EcpDef): KeMethod {
  const { id, name, curve, fieldLength } = def;
  const publicLength = 2 * fieldLength;

  const newKey = (rng: Rng) => {
    const ecdh = createECDH(curve);
    // Rejection sampling: draw field-length octets until they form a scalar in [1, n-1]. A caller-supplied
    // rng that returns a fixed private key therefore reproduces published vectors.
    for (let attempt = 0; attempt < 64; attempt++) {
      const priv = Buffer.from(rng(fieldLength));
      if (priv.length !== fieldLength) throw new Error(`${name}: random source returned ${priv.length} octets`);
      priv[0] = priv[0]! & def.topMask;
      try {
        ecdh.setPrivateKey(priv);
        return ecdh;
      } catch {
        // zero or >= group order: draw again
      }
    }
    throw new Error(`${name}: random source produced no valid private key`);
  };

  const publicOf = (ecdh: ReturnType<typeof createECDH>) => ecdh.getPublicKey().subarray(1); // strip 0x04

  const shared = (ecdh: ReturnType<typeof createECDH>, peer: Buffer, stage: 'respond' | 'finish') => {
    checkLength(id, name, peer, publicLength, stage);
    try {
      return ecdh.computeSecret(Buffer.concat([Buffer.from([0x04]), peer]));
    } catch {
      throw new KeError(id, 'invalid-public-value', stage, `${name}: peer's public value is not a point on the curve`);
    }
  };

  return {
    id,
    name,
    kind: 'ecdh',
    postQuantum: false,
    initiatorDataLength: publicLength,
    responderDataLength: publicLength,
    sharedSecretLength: fieldLength,
    initiate(rng: Rng = randomBytes): KeInitiation {
      const ecdh = newKey(rng);
      return { publicData: publicOf(ecdh), finish: (peer) => shared(ecdh, peer, 'finish') };
    },
    respond(peerData: Buffer, rng: Rng = randomBytes): KeResponse {
      // Check the peer's value before spending a key generation on it.
      checkLength(id, name, peerData, publicLength, 'respond');
      const ecdh = newKey(rng);
      return { publicData: publicOf(ecdh), sharedSecret: shared(ecdh, peerData, 'respond') };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Curve25519 / Curve448 (RFC 8031): 32/56-octet u-coordinates, shared = X25519/X448 output.
// node:crypto (OpenSSL) is several times faster than @noble/curves for these (scripts/bench/ke.mjs).
// Raw keys enter node through JWK (RFC 8037 OKP): importing them that way costs ~10-50 us against
// ~100-360 us for the equivalent SPKI/PKCS#8 DER import.

interface MontgomeryDef {
  id: number;
  name: string;
  length: number;
  crv: 'X25519' | 'X448';
  pkcs8Prefix: Buffer;
}

function montgomeryMethod(def: MontgomeryDef): KeMethod {
  const { id, name, length } = def;
  const newKey = (rng: Rng) => {
    const priv = rng(length);
    if (priv.length !== length) throw new Error(`${name}: random source returned ${priv.length} octets`);
    // clamping happens inside X25519/X448 (RFC 7748 §5)
    let privateKey: KeyObject;
    try {
      // node derives the public value from d; the JWK "x" member must be a string but is not used.
      privateKey = createPrivateKey({ key: { kty: 'OKP', crv: def.crv, d: priv.toString('base64url'), x: '' }, format: 'jwk' });
    } catch {
      privateKey = createPrivateKey({ key: Buffer.concat([def.pkcs8Prefix, priv]), format: 'der', type: 'pkcs8' });
    }
    const x = privateKey.export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new Error(`${name}: could not derive the public value`);
    return { privateKey, publicData: Buffer.from(x, 'base64url') };
  };
  const shared = (privateKey: KeyObject, peer: Buffer, stage: 'respond' | 'finish'): Buffer => {
    checkLength(id, name, peer, length, stage);
    const zero = () => new KeError(id, 'zero-shared-secret', stage, `${name}: shared secret is all zero (low-order public value)`);
    let out: Buffer;
    try {
      const publicKey = createPublicKey({ key: { kty: 'OKP', crv: def.crv, x: peer.toString('base64url') }, format: 'jwk' });
      out = diffieHellman({ privateKey, publicKey });
    } catch {
      // OpenSSL refuses to return the all-zero result of a low-order point.
      throw zero();
    }
    // RFC 8031 §2.3: MUST check for the all-zero value and abort.
    if (out.every((b) => b === 0)) throw zero();
    return out;
  };
  return {
    id,
    name,
    kind: 'ecdh',
    postQuantum: false,
    initiatorDataLength: length,
    responderDataLength: length,
    sharedSecretLength: length,
    initiate(rng: Rng = randomBytes): KeInitiation {
      const k = newKey(rng);
      return { publicData: k.publicData, finish: (peer) => shared(k.privateKey, peer, 'finish') };
    },
    respond(peerData: Buffer, rng: Rng = randomBytes): KeResponse {
      checkLength(id, name, peerData, length, 'respond');
      const k = newKey(rng);
      return { publicData: k.publicData, sharedSecret: shared(k.privateKey, peerData, 'respond') };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ML-KEM (FIPS 203, draft-ietf-ipsecme-ikev2-mlkem): initiator KeyGen -> ek, responder Encaps(ek) -> ct,
// initiator Decaps(dk, ct). The shared secret is the 32-octet K used as is.

interface MlKemImpl {
  keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array, msg: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

function mlKemMethod(id: number, name: string, ekLength: number, ctLength: number, impl: MlKemImpl): KeMethod {
  return {
    id,
    name,
    kind: 'mlkem',
    postQuantum: true,
    initiatorDataLength: ekLength,
    responderDataLength: ctLength,
    sharedSecretLength: 32,
    initiate(rng: Rng = randomBytes): KeInitiation {
      // FIPS 203 ML-KEM.KeyGen: d | z, 64 octets of fresh randomness (never shared with the (EC)DH seed).
      const seed = rng(64);
      if (seed.length !== 64) throw new Error(`${name}: random source returned ${seed.length} octets`);
      const { publicKey, secretKey } = impl.keygen(new Uint8Array(seed));
      return {
        publicData: Buffer.from(publicKey),
        finish(peerData: Buffer): Buffer {
          // FIPS 203 §7.3 ciphertext type check; decapsulation itself uses implicit rejection.
          checkLength(id, name, peerData, ctLength, 'finish');
          return Buffer.from(impl.decapsulate(new Uint8Array(peerData), secretKey));
        },
      };
    },
    respond(peerData: Buffer, rng: Rng = randomBytes): KeResponse {
      // FIPS 203 §7.2: type (length) check, then the modulus check on ek.
      checkLength(id, name, peerData, ekLength, 'respond');
      const m = rng(32);
      if (m.length !== 32) throw new Error(`${name}: random source returned ${m.length} octets`);
      let res: { cipherText: Uint8Array; sharedSecret: Uint8Array };
      try {
        res = impl.encapsulate(new Uint8Array(peerData), new Uint8Array(m));
      } catch {
        throw new KeError(id, 'invalid-encapsulation-key', 'respond', `${name}: encapsulation key fails the FIPS 203 modulus check`);
      }
      return { publicData: Buffer.from(res.cipherText), sharedSecret: Buffer.from(res.sharedSecret) };
    },
  };
}

const METHODS: ReadonlyMap<number, KeMethod> = new Map<number, KeMethod>(
  [
    modpMethod({ id: KE.MODP_2048, name: 'MODP_2048', group: 'modp14', exponentLength: 48 }),
    modpMethod({ id: KE.MODP_3072, name: 'MODP_3072', group: 'modp15', exponentLength: 48 }),
    modpMethod({ id: KE.MODP_4096, name: 'MODP_4096', group: 'modp16', exponentLength: 64 }),
    ecpMethod({ id: KE.ECP_256, name: 'ECP_256', curve: 'prime256v1', fieldLength: 32, topMask: 0xff }),
    ecpMethod({ id: KE.ECP_384, name: 'ECP_384', curve: 'secp384r1', fieldLength: 48, topMask: 0xff }),
    ecpMethod({ id: KE.ECP_521, name: 'ECP_521', curve: 'secp521r1', fieldLength: 66, topMask: 0x01 }),
    montgomeryMethod({
      id: KE.CURVE25519,
      name: 'CURVE25519',
      length: 32,
      crv: 'X25519',
      pkcs8Prefix: Buffer.from('302e020100300506032b656e04220420', 'hex'),
    }),
    montgomeryMethod({
      id: KE.CURVE448,
      name: 'CURVE448',
      length: 56,
      crv: 'X448',
      pkcs8Prefix: Buffer.from('3046020100300506032b656f043a0438', 'hex'),
    }),
    mlKemMethod(KE.ML_KEM_512, 'ML_KEM_512', 800, 768, ml_kem512),
    mlKemMethod(KE.ML_KEM_768, 'ML_KEM_768', 1184, 1088, ml_kem768),
    mlKemMethod(KE.ML_KEM_1024, 'ML_KEM_1024', 1568, 1568, ml_kem1024),
  ].map((m) => [m.id, m]),
);

/** The KE method for a Transform Type 4 id, or undefined if not implemented (0 = NONE is not a method). */
export function getKeMethod(id: number): KeMethod | undefined {
  return METHODS.get(id);
}

/** Ids of every implemented KE method, ascending. */
export function supportedKeMethods(): number[] {
  return [...METHODS.keys()].sort((a, b) => a - b);
}
