// Proposals: the strongSwan-style strings operators write ("aes256gcm16-prfsha384-x25519"),
// their SA payload transforms, and proposal selection (RFC 7296 §2.7, §3.3, §3.3.6; RFC 5282 §8;
// RFC 9370 §2.2 for the additional key exchange transform types 6..12).
//
// Grammar (docs/config.md has the operator's version): a proposal is a '-'-separated list of
// tokens, case-insensitive. Several tokens of the same transform type are alternatives, in the
// order of preference written. `default` alone stands for the built-in proposal of its kind.
import { ProtocolId, TransformType } from './codec/constants.js';
import type { Proposal as CodecProposal, Transform as CodecTransform } from './codec/types.js';
import type { ProposalConfig } from './config.js';
import { ENCR, INTEG, KE, PRF } from './crypto/constants.js';

/** Transform types used here (RFC 7296 §3.3.2, RFC 9370 §3.2), from the codec's registry. */
export const TRANSFORM_TYPE = {
  ENCR: TransformType.ENCR,
  PRF: TransformType.PRF,
  INTEG: TransformType.INTEG,
  KE: TransformType.KE,
  ESN: TransformType.ESN,
  ADDKE1: TransformType.ADDKE1,
  ADDKE7: TransformType.ADDKE7,
} as const;

/** SA payload Protocol IDs (RFC 7296 §3.3.1), from the codec's registry. */
export const PROTOCOL_ID = { IKE: ProtocolId.IKE, AH: ProtocolId.AH, ESP: ProtocolId.ESP } as const;

/** Number of additional key exchanges RFC 9370 allows (ADDKE1..ADDKE7). */
export const MAX_ADDKE = 7;

export type ProposalKind = 'ike' | 'esp';

/** An operator configuration error: names what was wrong and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The peer's proposal answer is not acceptable (initiator side of RFC 7296 §2.7). */
export class ProposalMismatchError extends Error {
  override name = 'ProposalMismatchError';
}

/** One transform as carried in an SA payload proposal (structurally the codec's Transform). */
export interface TransformSpec {
  type: number;
  id: number;
  /** Key Length attribute in bits (RFC 7296 §3.3.5), when present. */
  keyLength?: number;
  /** Attributes other than Key Length, as the codec keeps them. None are defined; a transform with any is never chosen. */
  attributes?: readonly unknown[];
}

/** A transform we produce: codec-shaped, never with other attributes. */
export interface BuiltTransform extends TransformSpec {
  attributes: [];
}

/** One proposal substructure as the codec carries it, without the SPI (the caller adds `spi`). */
export interface ProposalSpec {
  /** Proposal Num, 1-based. */
  num: number;
  /** Protocol ID (1 IKE, 3 ESP). */
  protocol: number;
  transforms: BuiltTransform[];
}

/** What selectProposal / checkAccepted read from a received proposal (a codec Proposal fits). */
export interface OfferedProposal {
  num: number;
  protocol?: number;
  transforms: readonly TransformSpec[];
}

/**
 * Compile-time check that the codec's Proposal can be passed in and that what we build is a codec
 * Transform: if either stops fitting, this line fails to type-check.
 */
type CodecShapesFit = CodecProposal extends OfferedProposal ? (BuiltTransform extends CodecTransform ? true : false) : false;
export const CODEC_SHAPES_FIT = true satisfies CodecShapesFit;

/** The negotiated algorithms of one SA. */
export interface ChosenAlgorithms {
  encr: { id: number; keyBits?: number };
  /** Absent for AEAD ciphers (or INTEG NONE). */
  integ?: number;
  /** IKE only. */
  prf?: number;
  /** Absent when no KE (ESP without PFS) or NONE was chosen. */
  ke?: number;
  /** ADDKE1..n: index 0 = ADDKE1; undefined = not negotiated or NONE. Trailing undefined entries are trimmed. */
  addKe: (number | undefined)[];
  /** ESP only: whether extended sequence numbers were chosen. */
  esn?: boolean;
}

export interface SelectedProposal {
  /** The Proposal Num of the offer we accepted (to be echoed in the response). */
  proposalNumber: number;
  /** Index into the configured proposal list that matched. */
  configuredIndex: number;
  chosen: ChosenAlgorithms;
  /** One transform per type present in the accepted offer, as it must appear in the response. */
  transforms: BuiltTransform[];
}

export interface SelectOptions {
  /** A non-NONE KE method must be chosen (IKE SA rekey, RFC 7296 §2.18; a connection that requires PFS). */
  requireKe?: boolean;
  /**
   * IKE_AUTH with child-pfs-info negotiated: KE/ADDKE transforms in the Child SA proposal are
   * negotiated like in CREATE_CHILD_SA (and recorded for rekeys). Selection is then the same as
   * without options; the flag exists so call sites say what they mean.
   */
  allowKeInIkeAuth?: boolean;
  /**
   * IKE_AUTH without child-pfs-info (RFC 7296 §1.2): KE and ADDKE transforms must be absent or
   * NONE; configured KE methods are ignored and never chosen.
   */
  forbidKe?: boolean;
  /** Replace the configured KE/ADDKE lists, e.g. with the methods recorded for an SA's rekeys. */
  keOverride?: { ke: number[]; addKe?: number[][] };
  /** Prefer the initiator's order of proposals (default: our configured order). */
  preferOffered?: boolean;
  /**
   * The KE method of the KE payload the initiator already sent: chosen when the matched proposal
   * offers it and we accept it, even if we list another method first, so the exchange needs no
   * INVALID_KE_PAYLOAD round trip (RFC 7296 §1.2; strongSwan and Libreswan do the same).
   */
  preferKe?: number;
}

// ---------------------------------------------------------------------------
// Token tables

interface EncrToken {
  id: number;
  keyBits?: number;
  aead: boolean;
}

const ENCR_TOKENS = new Map<string, EncrToken>();
for (const bits of [128, 192, 256]) {
  ENCR_TOKENS.set(`aes${bits}`, { id: ENCR.AES_CBC, keyBits: bits, aead: false });
  for (const [icv, id] of [
    [16, ENCR.AES_GCM_16],
    [12, ENCR.AES_GCM_12],
    [8, ENCR.AES_GCM_8],
  ] as const) {
    ENCR_TOKENS.set(`aes${bits}gcm${icv}`, { id, keyBits: bits, aead: true });
  }
}
ENCR_TOKENS.set('chacha20poly1305', { id: ENCR.CHACHA20_POLY1305, aead: true });

/** Aliases accepted on input, mapped to the canonical token. */
const ALIASES = new Map<string, string>([
  ['aes', 'aes128'],
  ['aes128gcm', 'aes128gcm16'],
  ['aes192gcm', 'aes192gcm16'],
  ['aes256gcm', 'aes256gcm16'],
  ['aes128gcm128', 'aes128gcm16'],
  ['aes192gcm128', 'aes192gcm16'],
  ['aes256gcm128', 'aes256gcm16'],
  ['aes128gcm96', 'aes128gcm12'],
  ['aes192gcm96', 'aes192gcm12'],
  ['aes256gcm96', 'aes256gcm12'],
  ['aes128gcm64', 'aes128gcm8'],
  ['aes192gcm64', 'aes192gcm8'],
  ['aes256gcm64', 'aes256gcm8'],
  ['sha', 'sha1'],
  ['sha2_256', 'sha256'],
  ['sha2_384', 'sha384'],
  ['sha2_512', 'sha512'],
  ['prfsha', 'prfsha1'],
  ['curve25519', 'x25519'],
  ['curve448', 'x448'],
]);

const INTEG_TOKENS = new Map<string, number>([
  ['sha1', INTEG.HMAC_SHA1_96],
  ['sha256', INTEG.HMAC_SHA2_256_128],
  ['sha384', INTEG.HMAC_SHA2_384_192],
  ['sha512', INTEG.HMAC_SHA2_512_256],
]);

const PRF_TOKENS = new Map<string, number>([
  ['prfsha1', PRF.HMAC_SHA1],
  ['prfsha256', PRF.HMAC_SHA2_256],
  ['prfsha384', PRF.HMAC_SHA2_384],
  ['prfsha512', PRF.HMAC_SHA2_512],
]);

/** The PRF an integrity token implies for IKE when no prf token is written (strongSwan does the same). */
const PRF_FOR_INTEG = new Map<number, number>([
  [INTEG.HMAC_SHA1_96, PRF.HMAC_SHA1],
  [INTEG.HMAC_SHA2_256_128, PRF.HMAC_SHA2_256],
  [INTEG.HMAC_SHA2_384_192, PRF.HMAC_SHA2_384],
  [INTEG.HMAC_SHA2_512_256, PRF.HMAC_SHA2_512],
]);

const KE_TOKENS = new Map<string, number>([
  ['ecp256', KE.ECP_256],
  ['ecp384', KE.ECP_384],
  ['ecp521', KE.ECP_521],
  ['x25519', KE.CURVE25519],
  ['x448', KE.CURVE448],
  ['mlkem512', KE.ML_KEM_512],
  ['mlkem768', KE.ML_KEM_768],
  ['mlkem1024', KE.ML_KEM_1024],
  ['modp2048', KE.MODP_2048],
  ['modp3072', KE.MODP_3072],
  ['modp4096', KE.MODP_4096],
]);

/** Recognised but not implemented: named in the error so the operator knows why. */
const UNSUPPORTED_TOKENS = new Map<string, string>([
  ['modp768', 'this MODP group is not supported (use modp2048/3072/4096, x25519, ecp256/384/521 or mlkem*)'],
  ['modp1024', 'this MODP group is not supported (use modp2048/3072/4096, x25519, ecp256/384/521 or mlkem*)'],
  ['modp1536', 'this MODP group is not supported (use modp2048/3072/4096, x25519, ecp256/384/521 or mlkem*)'],
  ['modp6144', 'this MODP group is not supported (use modp2048/3072/4096, x25519, ecp256/384/521 or mlkem*)'],
  ['modp8192', 'this MODP group is not supported (use modp2048/3072/4096, x25519, ecp256/384/521 or mlkem*)'],
  ['3des', '3DES is not supported (use aes*gcm16, aes* or chacha20poly1305)'],
  ['des', 'DES is not supported (use aes*gcm16, aes* or chacha20poly1305)'],
  ['md5', 'MD5 is not supported (use sha256, sha384 or sha512)'],
  ['prfmd5', 'MD5 is not supported (use prfsha256, prfsha384 or prfsha512)'],
  ['null', 'the NULL cipher is not supported'],
  ['aesxcbc', 'AES-XCBC is not supported (use sha256, sha384 or sha512)'],
  ['prfaesxcbc', 'AES-XCBC is not supported (use prfsha256, prfsha384 or prfsha512)'],
  ['aescmac', 'AES-CMAC is not supported (use sha256, sha384 or sha512)'],
  ['prfaescmac', 'AES-CMAC is not supported (use prfsha256, prfsha384 or prfsha512)'],
]);

const EXPECTED_IKE =
  'a cipher (aes128|aes192|aes256|aes128gcm16|aes256gcm16|...|chacha20poly1305), an integrity algorithm (sha256|sha384|sha512), a PRF (prfsha256|prfsha384|prfsha512), a key exchange (x25519|x448|ecp256|ecp384|ecp521|modp2048|modp3072|modp4096|mlkem512|mlkem768|mlkem1024) or keN_<method> (N = 1..7)';
const EXPECTED_ESP =
  'a cipher (aes128|aes192|aes256|aes128gcm16|aes256gcm16|...|chacha20poly1305), an integrity algorithm (sha256|sha384|sha512), a key exchange for PFS (x25519|x448|ecp256|ecp384|ecp521|modp2048|modp3072|modp4096|mlkem512|mlkem768|mlkem1024), keN_<method> (N = 1..7), esn or noesn';

/** Ciphers of the default ESP proposal, also used by ESP proposals that name no cipher. */
const DEFAULT_ESP_CIPHERS = ['aes256gcm16', 'aes128gcm16', 'chacha20poly1305'] as const;

/** The built-in proposals `default` stands for. */
export const DEFAULT_PROPOSAL_TEXT: Record<ProposalKind, string> = {
  ike: 'aes256gcm16-aes128gcm16-chacha20poly1305-prfsha384-prfsha256-prfsha512-x25519-ecp256-ecp384-x448-ecp521',
  esp: 'aes256gcm16-aes128gcm16-chacha20poly1305-noesn',
};

// ---------------------------------------------------------------------------
// Parsing

function fail(text: string, message: string): never {
  throw new ConfigError(`${message} in proposal '${text}'`);
}

/**
 * Parse one proposal string. Throws ConfigError naming the offending token.
 *
 * IKE: needs a cipher, a key exchange method and a PRF. With CBC ciphers an integrity token is
 * required; when no prf token is written, each integrity token implies the PRF of the same hash
 * (aes128-sha256-ecp256 = AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256). With AEAD
 * ciphers there is no integrity transform (RFC 5282 §8); a sha* token is then read as the PRF
 * (aes256gcm16-sha384-x25519 = AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519), as strongSwan does.
 *
 * ESP: CBC needs an integrity token; AEAD with an integrity token is an error. A proposal naming
 * neither cipher nor integrity ("mlkem768", "x25519-ke1_mlkem768", "esn") gets the default AEAD
 * ciphers. A KE method means PFS. ESN defaults to noesn.
 */
export function parseProposal(text: string, kind: ProposalKind): ProposalConfig {
  if (kind !== 'ike' && kind !== 'esp') throw new ConfigError(`unknown proposal kind '${String(kind)}'`);
  const written = text.trim();
  if (written === '') throw new ConfigError(`empty ${kind === 'ike' ? 'IKE' : 'ESP'} proposal`);
  if (written.toLowerCase() === 'default') {
    return { ...parseTokens(DEFAULT_PROPOSAL_TEXT[kind], kind), text: written };
  }
  return parseTokens(written, kind);
}

/** Parse a list of proposal strings (proposal numbers 1..n in this order). */
export function parseProposals(texts: readonly string[], kind: ProposalKind): ProposalConfig[] {
  if (texts.length === 0) throw new ConfigError(`at least one ${kind === 'ike' ? 'IKE' : 'ESP'} proposal is required`);
  return texts.map((t) => parseProposal(t, kind));
}

function parseTokens(text: string, kind: ProposalKind): ProposalConfig {
  const encr: EncrToken[] = [];
  const integ: number[] = [];
  const prf: number[] = [];
  const ke: number[] = [];
  const addKe: number[][] = [];
  const esn: number[] = [];
  const pushUnique = <T>(list: T[], value: T, same: (a: T) => boolean): void => {
    if (!list.some(same)) list.push(value);
  };

  for (const raw of text.split('-')) {
    if (raw === '') fail(text, `empty algorithm name (stray '-')`);
    const lower = raw.toLowerCase();
    const token = ALIASES.get(lower) ?? lower;

    const unsupported = UNSUPPORTED_TOKENS.get(token);
    if (unsupported) fail(text, `unsupported algorithm '${raw}': ${unsupported}`);

    const e = ENCR_TOKENS.get(token);
    if (e) {
      pushUnique(encr, e, (x) => x.id === e.id && x.keyBits === e.keyBits);
      continue;
    }
    const i = INTEG_TOKENS.get(token);
    if (i !== undefined) {
      pushUnique(integ, i, (x) => x === i);
      continue;
    }
    const p = PRF_TOKENS.get(token);
    if (p !== undefined) {
      if (kind === 'esp') fail(text, `'${raw}' is a PRF, which ESP proposals do not have`);
      pushUnique(prf, p, (x) => x === p);
      continue;
    }
    const k = KE_TOKENS.get(token);
    if (k !== undefined) {
      pushUnique(ke, k, (x) => x === k);
      continue;
    }
    const addMatch = /^ke(\d+)_(.*)$/.exec(token);
    if (addMatch) {
      const n = Number(addMatch[1]);
      if (!(n >= 1 && n <= MAX_ADDKE) || addMatch[1]!.startsWith('0')) {
        fail(text, `invalid additional key exchange '${raw}': expected ke1_ .. ke7_ (RFC 9370 allows 7)`);
      }
      const methodToken = ALIASES.get(addMatch[2]!) ?? addMatch[2]!;
      let method: number | undefined;
      if (methodToken === 'none') method = KE.NONE;
      else method = KE_TOKENS.get(methodToken);
      if (method === undefined) {
        const why = UNSUPPORTED_TOKENS.get(methodToken);
        if (why) fail(text, `unsupported algorithm '${raw}': ${why}`);
        fail(
          text,
          `unknown key exchange method '${addMatch[2]}' in '${raw}': expected none, x25519, x448, ecp256, ecp384, ecp521, modp2048, modp3072, modp4096, mlkem512, mlkem768 or mlkem1024`,
        );
      }
      while (addKe.length < n) addKe.push([]);
      const slot = addKe[n - 1]!;
      pushUnique(slot, method, (x) => x === method);
      continue;
    }
    if (token === 'esn' || token === 'noesn') {
      if (kind === 'ike') fail(text, `'${raw}' (extended sequence numbers) applies to ESP proposals only`);
      const v = token === 'esn' ? 1 : 0;
      pushUnique(esn, v, (x) => x === v);
      continue;
    }
    if (token === 'none') {
      fail(text, `'none' is not a key exchange method; omit the key exchange for no PFS, or write keN_none to make an additional key exchange optional`);
    }
    if (token === 'default') fail(text, `'default' must be the whole proposal, not one of its algorithms`);
    fail(text, `unknown algorithm '${raw}': expected ${kind === 'ike' ? EXPECTED_IKE : EXPECTED_ESP}`);
  }

  if (encr.length === 0 && kind === 'esp' && integ.length === 0) {
    // An ESP proposal that only names key exchanges / ESN ("mlkem768", "x25519-ke1_mlkem768")
    // keeps the default AEAD ciphers.
    for (const name of DEFAULT_ESP_CIPHERS) encr.push(ENCR_TOKENS.get(name)!);
  }
  if (encr.length === 0) fail(text, `no encryption algorithm (expected e.g. aes256gcm16, aes256 or chacha20poly1305)`);
  const aead = encr.filter((x) => x.aead);
  if (aead.length > 0 && aead.length < encr.length) {
    // RFC 5282 §8: combined-mode and non-combined ciphers go in separate proposals.
    fail(
      text,
      `cannot mix AEAD (${aead.map(formatEncr).join(', ')}) and non-AEAD (${encr.filter((x) => !x.aead).map(formatEncr).join(', ')}) ciphers in one proposal; write them as separate proposals`,
    );
  }
  const isAead = aead.length > 0;

  if (kind === 'ike') {
    if (!isAead && integ.length === 0) fail(text, `no integrity algorithm: non-AEAD ciphers need sha256, sha384 or sha512`);
    if (prf.length === 0) {
      for (const i of integ) {
        const implied = PRF_FOR_INTEG.get(i)!;
        if (!prf.includes(implied)) prf.push(implied);
      }
    }
    if (prf.length === 0) {
      fail(text, `no PRF: an AEAD IKE proposal needs a prf token (e.g. prfsha256, prfsha384) or a sha* token to imply it`);
    }
    if (isAead) integ.length = 0;
    if (ke.length === 0) fail(text, `no key exchange method: IKE proposals need one (e.g. x25519, ecp256)`);
  } else {
    if (isAead && integ.length > 0) {
      fail(text, `AEAD cipher ${formatEncr(aead[0]!)} already authenticates; remove the integrity algorithm '${INTEG_NAMES.get(integ[0]!)}'`);
    }
    if (!isAead && integ.length === 0) fail(text, `no integrity algorithm: non-AEAD ciphers need sha256, sha384 or sha512`);
    if (esn.length === 0) esn.push(0);
  }

  // A mandatory round whose only method is already taken by the KE or an earlier mandatory
  // round can never be negotiated (RFC 9370 §2.2.1: every round uses a different method).
  const forced = new Set<number>(ke.length === 1 ? ke : []);
  addKe.forEach((slot, idx) => {
    if (slot.length === 0 || slot.includes(KE.NONE)) return;
    if (slot.every((m) => forced.has(m))) {
      fail(text, `ke${idx + 1}_${formatKe(slot[0]!)} repeats a key exchange method that an earlier round always uses; every key exchange must use a different method`);
    }
    if (slot.length === 1) forced.add(slot[0]!);
  });

  const usedAddKe = addKe.some((s) => s.length > 0);
  if (usedAddKe && ke.length === 0) {
    fail(text, `additional key exchanges (keN_...) need a key exchange method as well (e.g. x25519-ke1_mlkem768)`);
  }

  return {
    text,
    encr: encr.map((x) => (x.keyBits === undefined ? { id: x.id } : { id: x.id, keyBits: x.keyBits })),
    integ,
    prf: kind === 'ike' ? prf : [],
    ke,
    addKe,
    esn: kind === 'esp' ? esn : [],
  };
}

// ---------------------------------------------------------------------------
// Formatting and names

const INTEG_NAMES = new Map<number, string>([...INTEG_TOKENS].map(([name, id]) => [id, name]));
const PRF_NAMES = new Map<number, string>([...PRF_TOKENS].map(([name, id]) => [id, name]));
const KE_NAMES = new Map<number, string>([...KE_TOKENS].map(([name, id]) => [id, name]));

function formatEncr(e: { id: number; keyBits?: number }): string {
  for (const [name, t] of ENCR_TOKENS) {
    if (t.id === e.id && t.keyBits === e.keyBits) return name;
  }
  return `encr${e.id}${e.keyBits !== undefined ? `_${e.keyBits}` : ''}`;
}

function formatKe(id: number): string {
  if (id === KE.NONE) return 'none';
  return KE_NAMES.get(id) ?? `ke${id}`;
}

/** The canonical string of a proposal: ciphers, integrity, PRFs, KE, keN_..., ESN (ESP, omitted when only noesn). */
export function formatProposal(p: ProposalConfig): string {
  const parts: string[] = [];
  for (const e of p.encr) parts.push(formatEncr(e));
  for (const i of p.integ) parts.push(INTEG_NAMES.get(i) ?? `integ${i}`);
  for (const f of p.prf) parts.push(PRF_NAMES.get(f) ?? `prf${f}`);
  for (const k of p.ke) parts.push(formatKe(k));
  p.addKe.forEach((slot, idx) => {
    for (const k of slot) parts.push(`ke${idx + 1}_${formatKe(k)}`);
  });
  if (!(p.esn.length === 1 && p.esn[0] === 0)) {
    for (const e of p.esn) parts.push(e === 1 ? 'esn' : 'noesn');
  }
  return parts.join('-');
}

const ENCR_SUITE_NAMES = new Map<number, string>([
  [ENCR.AES_CBC, 'AES_CBC'],
  [ENCR.AES_GCM_8, 'AES_GCM_8'],
  [ENCR.AES_GCM_12, 'AES_GCM_12'],
  [ENCR.AES_GCM_16, 'AES_GCM_16'],
  [ENCR.CHACHA20_POLY1305, 'CHACHA20_POLY1305'],
]);
const INTEG_SUITE_NAMES = new Map<number, string>([
  [INTEG.HMAC_SHA1_96, 'HMAC_SHA1_96'],
  [INTEG.HMAC_SHA2_256_128, 'HMAC_SHA2_256_128'],
  [INTEG.HMAC_SHA2_384_192, 'HMAC_SHA2_384_192'],
  [INTEG.HMAC_SHA2_512_256, 'HMAC_SHA2_512_256'],
]);
const PRF_SUITE_NAMES = new Map<number, string>([
  [PRF.HMAC_SHA1, 'PRF_HMAC_SHA1'],
  [PRF.HMAC_SHA2_256, 'PRF_HMAC_SHA2_256'],
  [PRF.HMAC_SHA2_384, 'PRF_HMAC_SHA2_384'],
  [PRF.HMAC_SHA2_512, 'PRF_HMAC_SHA2_512'],
]);
const KE_SUITE_NAMES = new Map<number, string>([
  [KE.ECP_256, 'ECP_256'],
  [KE.ECP_384, 'ECP_384'],
  [KE.ECP_521, 'ECP_521'],
  [KE.CURVE25519, 'X25519'],
  [KE.CURVE448, 'X448'],
  [KE.ML_KEM_512, 'ML-KEM-512'],
  [KE.ML_KEM_768, 'ML-KEM-768'],
  [KE.ML_KEM_1024, 'ML-KEM-1024'],
  [KE.MODP_2048, 'MODP_2048'],
  [KE.MODP_3072, 'MODP_3072'],
  [KE.MODP_4096, 'MODP_4096'],
]);

/** Human name of a KE method id for logs ("X25519", "ML-KEM-768", "KE_99" when unknown). */
export function keMethodName(id: number): string {
  if (id === KE.NONE) return 'NONE';
  return KE_SUITE_NAMES.get(id) ?? `KE_${id}`;
}

/**
 * Log name of a negotiated suite: "AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519+ML-KEM-768" (IKE),
 * "AES_CBC_128/HMAC_SHA2_256_128/ESN=no/ECP_256" (ESP; the KE part only with PFS).
 */
export function suiteName(chosen: ChosenAlgorithms): string {
  const parts: string[] = [];
  const encrName = ENCR_SUITE_NAMES.get(chosen.encr.id) ?? `ENCR_${chosen.encr.id}`;
  parts.push(chosen.encr.keyBits !== undefined ? `${encrName}_${chosen.encr.keyBits}` : encrName);
  if (chosen.integ !== undefined) parts.push(INTEG_SUITE_NAMES.get(chosen.integ) ?? `INTEG_${chosen.integ}`);
  if (chosen.prf !== undefined) parts.push(PRF_SUITE_NAMES.get(chosen.prf) ?? `PRF_${chosen.prf}`);
  if (chosen.esn !== undefined) parts.push(`ESN=${chosen.esn ? 'yes' : 'no'}`);
  const kes: string[] = [];
  if (chosen.ke !== undefined) kes.push(keMethodName(chosen.ke));
  for (const a of chosen.addKe) if (a !== undefined) kes.push(keMethodName(a));
  if (kes.length > 0) parts.push(kes.join('+'));
  return parts.join('/');
}

/** The KE methods an SA was built with, in round order (KE first, then ADDKE1..7; NONE rounds left out). */
export function keMethodsOf(chosen: ChosenAlgorithms): number[] {
  const out: number[] = [];
  if (chosen.ke !== undefined) out.push(chosen.ke);
  for (const a of chosen.addKe) if (a !== undefined) out.push(a);
  return out;
}

function transformName(t: TransformSpec): string {
  const withBits = (name: string) => (t.keyLength !== undefined ? `${name}_${t.keyLength}` : name);
  switch (t.type) {
    case TRANSFORM_TYPE.ENCR:
      return withBits(ENCR_SUITE_NAMES.get(t.id) ?? `ENCR_${t.id}`);
    case TRANSFORM_TYPE.PRF:
      return withBits(PRF_SUITE_NAMES.get(t.id) ?? `PRF_${t.id}`);
    case TRANSFORM_TYPE.INTEG:
      return withBits(t.id === 0 ? 'INTEG_NONE' : (INTEG_SUITE_NAMES.get(t.id) ?? `INTEG_${t.id}`));
    case TRANSFORM_TYPE.KE:
      return keMethodName(t.id);
    case TRANSFORM_TYPE.ESN:
      return t.id === 1 ? 'ESN' : t.id === 0 ? 'NO_ESN' : `ESN_${t.id}`;
    default:
      if (t.type >= TRANSFORM_TYPE.ADDKE1 && t.type <= TRANSFORM_TYPE.ADDKE7) return `KE${t.type - TRANSFORM_TYPE.ADDKE1 + 1}_${keMethodName(t.id)}`;
      return `TRANSFORM_${t.type}_${t.id}`;
  }
}

/**
 * A received or sent proposal for logs, strongSwan-style:
 * "#1 AES_GCM_16_256/AES_GCM_16_128/PRF_HMAC_SHA2_384/X25519/KE1_ML-KEM-768/KE1_NONE".
 * Unknown ids stay visible as numbers; nothing in it is secret.
 */
export function describeProposal(p: OfferedProposal): string {
  return `#${p.num} ${p.transforms.map(transformName).join('/')}`;
}

// ---------------------------------------------------------------------------
// Proposal -> SA payload transforms

function tf(type: number, id: number, keyLength?: number): BuiltTransform {
  return keyLength === undefined ? { type, id, attributes: [] } : { type, id, keyLength, attributes: [] };
}

export interface TransformOptions {
  /** Leave out KE and ADDKE transforms (IKE_AUTH Child SA proposals without child-pfs-info, RFC 7296 §1.2). */
  omitKe?: boolean;
}

/**
 * The transforms of one configured proposal, ordered ENCR, PRF, INTEG, KE, ESN, ADDKE1..7 and
 * within a type in the operator's order of preference. AES carries the Key Length attribute
 * (RFC 7296 §3.3.5); ChaCha20-Poly1305 must not (RFC 7634 §2).
 */
export function proposalToTransforms(p: ProposalConfig, kind: ProposalKind, opts: TransformOptions = {}): BuiltTransform[] {
  const out: BuiltTransform[] = [];
  for (const e of p.encr) out.push(tf(TRANSFORM_TYPE.ENCR, e.id, e.keyBits));
  if (kind === 'ike') for (const f of p.prf) out.push(tf(TRANSFORM_TYPE.PRF, f));
  for (const i of p.integ) out.push(tf(TRANSFORM_TYPE.INTEG, i));
  if (!opts.omitKe) for (const k of p.ke) out.push(tf(TRANSFORM_TYPE.KE, k));
  if (kind === 'esp') for (const e of p.esn.length > 0 ? p.esn : [0]) out.push(tf(TRANSFORM_TYPE.ESN, e));
  if (!opts.omitKe) {
    p.addKe.forEach((slot, idx) => {
      for (const k of slot) out.push(tf(TRANSFORM_TYPE.ADDKE1 + idx, k));
    });
  }
  return out;
}

/** Configured proposals as SA payload proposals numbered 1..n (RFC 7296 §3.3.1). */
export function proposalsToSa(ps: readonly ProposalConfig[], kind: ProposalKind, opts: TransformOptions = {}): ProposalSpec[] {
  const protocolId = kind === 'ike' ? PROTOCOL_ID.IKE : PROTOCOL_ID.ESP;
  // RFC 9370 §2.2.1 with RFC 7296 §3.3.6: a peer that does not know transform types 6-12 rejects
  // every proposal carrying them. Where all of a proposal's additional key exchanges are optional
  // (keN_..-none), the same proposal without them follows last, so such a peer can still agree;
  // mandatory ones get no such fallback (no silent classic-only SA).
  const fallbacks = ps
    .filter((p) => p.addKe.length > 0 && p.addKe.every((slot) => slot.includes(0)))
    .map((p) => ({ ...p, addKe: [] }))
    .filter((f) => !ps.some((p) => p.addKe.length === 0 && sameAlgorithms(p, f)));
  return [...ps, ...fallbacks].map((p, i) => ({ num: i + 1, protocol: protocolId, transforms: proposalToTransforms(p, kind, opts) }));
}

function sameAlgorithms(a: ProposalConfig, b: ProposalConfig): boolean {
  const key = (p: ProposalConfig) => JSON.stringify([p.encr, p.integ, p.prf, p.ke, p.addKe, p.esn]);
  return key(a) === key(b);
}

/**
 * The transforms of an SA's negotiated suite, one per type, e.g. to propose exactly the current
 * algorithms again when rekeying (RFC 7296 §2.8 lets a rekey change them; keeping them avoids a
 * surprise). ESP always carries its ESN transform.
 */
export function chosenToTransforms(chosen: ChosenAlgorithms, kind: ProposalKind): BuiltTransform[] {
  const out: BuiltTransform[] = [tf(TRANSFORM_TYPE.ENCR, chosen.encr.id, chosen.encr.keyBits)];
  if (kind === 'ike' && chosen.prf !== undefined) out.push(tf(TRANSFORM_TYPE.PRF, chosen.prf));
  if (chosen.integ !== undefined) out.push(tf(TRANSFORM_TYPE.INTEG, chosen.integ));
  if (chosen.ke !== undefined) out.push(tf(TRANSFORM_TYPE.KE, chosen.ke));
  if (kind === 'esp') out.push(tf(TRANSFORM_TYPE.ESN, chosen.esn ? 1 : 0));
  chosen.addKe.forEach((a, idx) => {
    if (a !== undefined) out.push(tf(TRANSFORM_TYPE.ADDKE1 + idx, a));
  });
  return out;
}

/** A copy of a proposal with its KE methods replaced (e.g. the methods recorded for an SA's rekeys). */
export function withKeMethods(p: ProposalConfig, ke: number[], addKe: number[][] = []): ProposalConfig {
  return { ...p, ke: [...ke], addKe: addKe.map((s) => [...s]) };
}

// ---------------------------------------------------------------------------
// Selection (responder, RFC 7296 §2.7 and §3.3.6)

const AEAD_IDS = new Set<number>([
  ENCR.AES_GCM_8,
  ENCR.AES_GCM_12,
  ENCR.AES_GCM_16,
  ENCR.AES_CCM_8,
  ENCR.AES_CCM_12,
  ENCR.AES_CCM_16,
  ENCR.CHACHA20_POLY1305,
  ENCR.NULL_AUTH_AES_GMAC,
]);

/** Whether an ENCR transform id is a combined-mode (AEAD) cipher. */
export function isAeadEncr(id: number): boolean {
  return AEAD_IDS.has(id);
}

function isKnownType(type: number): boolean {
  return type >= TRANSFORM_TYPE.ENCR && type <= TRANSFORM_TYPE.ADDKE7;
}

/** Attributes other than Key Length are not defined for any transform we know (RFC 7296 §3.3.5). */
function hasUnknownAttributes(t: TransformSpec): boolean {
  return t.attributes !== undefined && t.attributes.length > 0;
}

function groupByType(transforms: readonly TransformSpec[]): Map<number, TransformSpec[]> {
  const m = new Map<number, TransformSpec[]>();
  for (const t of transforms) {
    let list = m.get(t.type);
    if (!list) m.set(t.type, (list = []));
    list.push(t);
  }
  return m;
}

/** What we accept for one transform type: an ordered list and whether "absent or NONE" is fine. */
interface Acceptable {
  ids: { id: number; keyBits?: number }[];
  /** The type may be missing from the offer, or offered as NONE (id 0). */
  noneOk: boolean;
}

function acceptableFor(
  p: ProposalConfig,
  kind: ProposalKind,
  opts: SelectOptions,
  configuredAead: boolean,
): Map<number, Acceptable> {
  const m = new Map<number, Acceptable>();
  const plain = (ids: number[]) => ids.filter((x) => x !== 0).map((id) => ({ id }));
  m.set(TRANSFORM_TYPE.ENCR, { ids: p.encr, noneOk: false });
  if (kind === 'ike') m.set(TRANSFORM_TYPE.PRF, { ids: plain(p.prf), noneOk: false });
  // RFC 5282 §8 / RFC 7296 §3.3.3: with an AEAD cipher INTEG is absent or NONE.
  m.set(TRANSFORM_TYPE.INTEG, configuredAead || p.integ.length === 0 ? { ids: [], noneOk: true } : { ids: plain(p.integ), noneOk: false });

  let ke = p.ke;
  let addKe = p.addKe;
  if (opts.keOverride) {
    ke = opts.keOverride.ke;
    addKe = opts.keOverride.addKe ?? [];
  }
  if (opts.forbidKe) {
    ke = [];
    addKe = [];
  }
  const keIds = plain(ke);
  m.set(TRANSFORM_TYPE.KE, { ids: keIds, noneOk: !opts.requireKe && (keIds.length === 0 || ke.includes(0)) });
  for (let n = 0; n < MAX_ADDKE; n++) {
    const slot = addKe[n] ?? [];
    m.set(TRANSFORM_TYPE.ADDKE1 + n, { ids: plain(slot), noneOk: slot.length === 0 || slot.includes(0) });
  }
  if (kind === 'esp') {
    m.set(TRANSFORM_TYPE.ESN, { ids: (p.esn.length > 0 ? p.esn : [0]).map((id) => ({ id })), noneOk: false });
  }
  return m;
}

function matchProposal(
  offered: OfferedProposal,
  configured: ProposalConfig,
  kind: ProposalKind,
  opts: SelectOptions,
): { chosen: ChosenAlgorithms; transforms: BuiltTransform[] } | null {
  // A transform with attributes we do not understand cannot be chosen; the type still counts as present.
  const byType = groupByType(offered.transforms);
  for (const [type, list] of byType) byType.set(type, list.filter((t) => !hasUnknownAttributes(t)));
  // §3.3.6: a proposal with a transform type we do not understand is unacceptable.
  for (const type of byType.keys()) if (!isKnownType(type)) return null;
  if (kind === 'ike' && byType.has(TRANSFORM_TYPE.ESN)) return null;
  if (kind === 'esp' && byType.has(TRANSFORM_TYPE.PRF)) return null;

  const offeredEncr = byType.get(TRANSFORM_TYPE.ENCR);
  if (!offeredEncr) return null; // mandatory for IKE and ESP
  const acceptable = acceptableFor(configured, kind, opts, configured.encr.some((e) => isAeadEncr(e.id)));

  const picks = new Map<number, TransformSpec>();
  /** Per KE type present in the offer (KE, ADDKE1..7): candidates in our order of preference. */
  const keCandidates: { type: number; options: TransformSpec[] }[] = [];
  for (const [type, acc] of acceptable) {
    const offeredOfType = byType.get(type);
    const isKeType = type === TRANSFORM_TYPE.KE || type >= TRANSFORM_TYPE.ADDKE1;
    if (!offeredOfType) {
      // ESP without an ESN transform: read as "no ESN" (RFC 7296 makes ESN mandatory; be lenient).
      if (type === TRANSFORM_TYPE.ESN && acc.ids.some((x) => x.id === 0)) continue;
      if (acc.noneOk) continue;
      return null;
    }
    const options: TransformSpec[] = [];
    if (type === TRANSFORM_TYPE.KE && opts.preferKe !== undefined && acc.ids.some((x) => x.id === opts.preferKe)) {
      const preferred = offeredOfType.find((t) => t.id === opts.preferKe && t.keyLength === undefined);
      if (preferred) options.push(preferred);
    }
    for (const want of acc.ids) {
      const t = offeredOfType.find((o) => o.id === want.id && o.keyLength === want.keyBits);
      if (t && !options.includes(t)) options.push(t);
    }
    if (acc.noneOk) {
      const none = offeredOfType.find((t) => t.id === 0 && t.keyLength === undefined);
      if (none) options.push(none);
    }
    if (options.length === 0) return null;
    if (isKeType) keCandidates.push({ type, options });
    else picks.set(type, options[0]!);
  }

  // RFC 9370 §2.2.1: the KE and every additional key exchange use different methods. Search the
  // rounds in ascending order, each trying our preferences first, and backtrack when a later
  // round would be left without a free method (a greedy pass can miss a valid assignment).
  // The options come from our own configuration, so the search is small; the step budget only
  // guards against a pathological configuration.
  const used = new Set<number>();
  let budget = 10_000;
  const assign = (i: number): boolean => {
    if (i === keCandidates.length) return true;
    if (--budget < 0) return false;
    const { type, options } = keCandidates[i]!;
    for (const t of options) {
      if (t.id !== 0 && used.has(t.id)) continue;
      if (t.id !== 0) used.add(t.id);
      picks.set(type, t);
      if (assign(i + 1)) return true;
      if (t.id !== 0) used.delete(t.id);
      picks.delete(type);
    }
    return false;
  };
  if (!assign(0)) return null;

  const encr = picks.get(TRANSFORM_TYPE.ENCR)!;
  const integ = picks.get(TRANSFORM_TYPE.INTEG);
  if (!isAeadEncr(encr.id) && (integ === undefined || integ.id === 0)) return null;

  const transforms = [...picks.values()].sort((a, b) => a.type - b.type).map((t) => tf(t.type, t.id, t.keyLength));
  return { chosen: chosenFrom(picks, kind), transforms };
}

function chosenFrom(picks: Map<number, TransformSpec>, kind: ProposalKind): ChosenAlgorithms {
  const encr = picks.get(TRANSFORM_TYPE.ENCR)!;
  const chosen: ChosenAlgorithms = {
    encr: encr.keyLength !== undefined ? { id: encr.id, keyBits: encr.keyLength } : { id: encr.id },
    addKe: [],
  };
  const nonNone = (t: TransformSpec | undefined) => (t && t.id !== 0 ? t.id : undefined);
  const integ = nonNone(picks.get(TRANSFORM_TYPE.INTEG));
  if (integ !== undefined) chosen.integ = integ;
  const prf = nonNone(picks.get(TRANSFORM_TYPE.PRF));
  if (prf !== undefined) chosen.prf = prf;
  const ke = nonNone(picks.get(TRANSFORM_TYPE.KE));
  if (ke !== undefined) chosen.ke = ke;
  for (let n = 0; n < MAX_ADDKE; n++) chosen.addKe.push(nonNone(picks.get(TRANSFORM_TYPE.ADDKE1 + n)));
  while (chosen.addKe.length > 0 && chosen.addKe[chosen.addKe.length - 1] === undefined) chosen.addKe.pop();
  if (kind === 'esp') chosen.esn = picks.get(TRANSFORM_TYPE.ESN)?.id === 1;
  return chosen;
}

/**
 * Responder: choose one offered proposal and one transform of each type it contains
 * (RFC 7296 §2.7, §3.3.6). Preference: our configured proposals in order, and within a type our
 * configured order of algorithms; for each configured proposal the offers are tried in the
 * initiator's order (opts.preferOffered swaps the outer loop). Transforms with unknown ids are
 * ignored; a proposal with an unknown transform type or without a mandatory one is skipped; key
 * lengths must match exactly. KE/ADDKE NONE is chosen only when the type is optional for us
 * (RFC 9370 §2.2: keN_none). Returns null when nothing is acceptable (NO_PROPOSAL_CHOSEN).
 */
export function selectProposal(
  offered: readonly OfferedProposal[],
  configured: readonly ProposalConfig[],
  kind: ProposalKind,
  opts: SelectOptions = {},
): SelectedProposal | null {
  const wantProtocol = kind === 'ike' ? PROTOCOL_ID.IKE : PROTOCOL_ID.ESP;
  const offers = offered.filter((o) => o.protocol === undefined || o.protocol === wantProtocol);
  const tryPair = (o: OfferedProposal, ci: number): SelectedProposal | null => {
    const m = matchProposal(o, configured[ci]!, kind, opts);
    if (!m) return null;
    if (opts.requireKe && m.chosen.ke === undefined) return null;
    return { proposalNumber: o.num, configuredIndex: ci, chosen: m.chosen, transforms: m.transforms };
  };
  if (opts.preferOffered) {
    for (const o of offers) {
      for (let ci = 0; ci < configured.length; ci++) {
        const r = tryPair(o, ci);
        if (r) return r;
      }
    }
  } else {
    for (let ci = 0; ci < configured.length; ci++) {
      for (const o of offers) {
        const r = tryPair(o, ci);
        if (r) return r;
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------
// Initiator: validate the responder's answer

/**
 * Initiator: check that the responder's SA payload holds exactly one proposal whose number is one
 * we sent, with exactly one transform of each type we offered in that proposal, each of which we
 * offered (id and key length), and nothing else (RFC 7296 §2.7: "the responder MUST accept a
 * single proposal or reject them all"). A type we offered with NONE among its ids may be left out.
 * Returns the chosen algorithms; throws ProposalMismatchError otherwise.
 */
export function checkAccepted(
  sent: readonly OfferedProposal[],
  received: readonly OfferedProposal[],
  kind?: ProposalKind,
): ChosenAlgorithms {
  if (received.length !== 1) {
    throw new ProposalMismatchError(`responder returned ${received.length} proposals; exactly one is required`);
  }
  const answer = received[0]!;
  const ours = sent.find((p) => p.num === answer.num);
  if (!ours) throw new ProposalMismatchError(`responder chose proposal #${answer.num}, which was not offered`);
  if (answer.protocol !== undefined && ours.protocol !== undefined && answer.protocol !== ours.protocol) {
    throw new ProposalMismatchError(`responder changed the protocol of proposal #${answer.num} from ${ours.protocol} to ${answer.protocol}`);
  }
  const effectiveKind: ProposalKind =
    kind ?? (ours.protocol === PROTOCOL_ID.IKE || ours.transforms.some((t) => t.type === TRANSFORM_TYPE.PRF) ? 'ike' : 'esp');

  const offeredByType = groupByType(ours.transforms);
  const answerByType = groupByType(answer.transforms);
  const picks = new Map<number, TransformSpec>();
  for (const [type, list] of answerByType) {
    if (list.length !== 1) {
      throw new ProposalMismatchError(`responder returned ${list.length} transforms of type ${type}; exactly one is required`);
    }
    const t = list[0]!;
    if (hasUnknownAttributes(t)) throw new ProposalMismatchError(`responder returned transform type ${type} id ${t.id} with attributes we did not send`);
    const offeredOfType = offeredByType.get(type);
    if (!offeredOfType) throw new ProposalMismatchError(`responder returned transform type ${type}, which we did not offer`);
    if (!offeredOfType.some((o) => o.id === t.id && o.keyLength === t.keyLength)) {
      throw new ProposalMismatchError(
        `responder chose transform type ${type} id ${t.id}${t.keyLength !== undefined ? ` (${t.keyLength} bits)` : ''}, which we did not offer`,
      );
    }
    picks.set(type, t);
  }
  for (const [type, list] of offeredByType) {
    if (answerByType.has(type)) continue;
    if (list.some((o) => o.id === 0)) continue;
    throw new ProposalMismatchError(`responder left out transform type ${type}, which we offered`);
  }
  const keSeen = new Set<number>();
  for (const [type, t] of picks) {
    if ((type === TRANSFORM_TYPE.KE || type >= TRANSFORM_TYPE.ADDKE1) && t.id !== 0) {
      if (keSeen.has(t.id)) throw new ProposalMismatchError(`responder chose ${keMethodName(t.id)} for more than one key exchange (RFC 9370 §2.2.1)`);
      keSeen.add(t.id);
    }
  }
  const encr = picks.get(TRANSFORM_TYPE.ENCR);
  if (!encr) throw new ProposalMismatchError('responder chose no encryption algorithm');
  const integ = picks.get(TRANSFORM_TYPE.INTEG);
  if (!isAeadEncr(encr.id) && (!integ || integ.id === 0)) {
    throw new ProposalMismatchError('responder chose a non-AEAD cipher without an integrity algorithm');
  }
  if (effectiveKind === 'ike' && !picks.get(TRANSFORM_TYPE.PRF)) throw new ProposalMismatchError('responder chose no PRF');
  return chosenFrom(picks, effectiveKind);
}
