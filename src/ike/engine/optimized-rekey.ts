// Optimized rekeys (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt-07, with the -05 changes): the
// CREATE_CHILD_SA of a rekey carries N(OPTIMIZED_REKEY, new SPI) instead of the SA payload (IKE SA) or
// the SA and TS payloads (Child SA); everything but keys and identifiers is inherited from the SA
// being rekeyed. This module holds the wire rules (building and checking the messages) and the
// decisions (when to optimize, what a responder must refuse); the exchange tasks of the engine call it.
import type { CodePointConfig } from '../config.js';
import { NotifyType, PayloadType, ProtocolId } from '../codec/constants.js';
import { countPayloads, findNotifies, findNotify, getKe, getNonce, kePayload, noncePayload, notify } from '../codec/helpers.js';
import type { NotifyPayload, Payload } from '../codec/types.js';

/** §5: notifies that would change properties of the Child SA; never sent in, and refused in, an optimized rekey. */
export const PROPERTY_CHANGING_NOTIFIES: readonly number[] = [
  NotifyType.USE_TRANSPORT_MODE,
  NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED,
  NotifyType.ROHC_SUPPORTED,
  NotifyType.USE_AGGFRAG,
];

/** IKE SPIs are 8 octets (§6: OPTIMIZED_REKEY data for an IKE SA rekey). */
export const IKE_SPI_SIZE = 8;

/** N(OPTIMIZED_REKEY_SUPPORTED): Protocol ID 0, SPI Size 0, no data (§6). */
export function optimizedRekeySupportedNotify(cp: CodePointConfig): NotifyPayload {
  return notify(cp.optimizedRekeySupported);
}

/** N(OPTIMIZED_REKEY, new SPI): Protocol ID 0, SPI Size 0, the SPI in the Notification Data (§6). */
export function optimizedRekeyNotify(cp: CodePointConfig, newSpi: Buffer): NotifyPayload {
  if (newSpi.length !== IKE_SPI_SIZE && newSpi.length !== 4) {
    throw new Error(`OPTIMIZED_REKEY SPI must be 8 (IKE) or 4 (ESP/AH) octets, got ${newSpi.length}`);
  }
  return notify(cp.optimizedRekey, Buffer.from(newSpi));
}

/** Whether a message (IKE_AUTH request or response) announces support (§3). */
export function announcesOptimizedRekey(payloads: readonly Payload[], cp: CodePointConfig): boolean {
  return findNotify(payloads, cp.optimizedRekeySupported) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Building requests and responses

export interface OptimizedKe {
  method: number;
  data: Buffer;
}

/** §4: HDR, SK{N(OPTIMIZED_REKEY, new SPIi), Ni, KEi}. KE is mandatory for an IKE SA rekey (RFC 7296 §2.18). */
export function optimizedIkeRekeyRequest(cp: CodePointConfig, newSpiI: Buffer, nonce: Buffer, ke: OptimizedKe): Payload[] {
  if (newSpiI.length !== IKE_SPI_SIZE) throw new Error(`new IKE SPI must be 8 octets, got ${newSpiI.length}`);
  return [optimizedRekeyNotify(cp, newSpiI), noncePayload(nonce), kePayload(ke.method, ke.data)];
}

/**
 * §5: HDR, SK{N(REKEY_SA, old SPI), N(OPTIMIZED_REKEY, new SPIi), Ni, [KEi]}. No SA, no TS, and none
 * of the property-changing notifies. (IPCOMP_SUPPORTED would go here; ikev2d does not negotiate IPComp.)
 */
export function optimizedChildRekeyRequest(
  cp: CodePointConfig,
  oldSpi: Buffer,
  newSpiI: Buffer,
  nonce: Buffer,
  ke?: OptimizedKe,
  protocol: number = ProtocolId.ESP,
): Payload[] {
  if (oldSpi.length !== 4 || newSpiI.length !== 4) throw new Error('Child SA SPIs must be 4 octets');
  const out: Payload[] = [notify(NotifyType.REKEY_SA, Buffer.alloc(0), protocol, Buffer.from(oldSpi)), optimizedRekeyNotify(cp, newSpiI), noncePayload(nonce)];
  if (ke) out.push(kePayload(ke.method, ke.data));
  return out;
}

/** Response to an optimized request: N(OPTIMIZED_REKEY, new SPIr), Nr, [KEr] (§4, §5). */
export function optimizedRekeyResponse(cp: CodePointConfig, newSpiR: Buffer, nonce: Buffer, ke?: OptimizedKe): Payload[] {
  const out: Payload[] = [optimizedRekeyNotify(cp, newSpiR), noncePayload(nonce)];
  if (ke) out.push(kePayload(ke.method, ke.data));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Classifying a received CREATE_CHILD_SA request

export type OptimizedRequestShape =
  /** No OPTIMIZED_REKEY notify: a regular CREATE_CHILD_SA, handled as RFC 7296 says. */
  | { kind: 'regular' }
  | { kind: 'ike'; newSpi: Buffer; nonce: Buffer; ke?: OptimizedKe }
  | { kind: 'child'; protocol: number; oldSpi: Buffer; newSpi: Buffer; nonce: Buffer; ke?: OptimizedKe; forbiddenNotifies: number[] }
  /** Malformed: answer INVALID_SYNTAX (decision 1 in docs/optimized-rekeys.md). */
  | { kind: 'invalid'; reason: string };

function checkShape(n: NotifyPayload): string | undefined {
  if (n.protocol !== ProtocolId.NONE) return `OPTIMIZED_REKEY with Protocol ID ${n.protocol} (must be 0)`;
  if (n.spi.length !== 0) return `OPTIMIZED_REKEY with SPI Size ${n.spi.length} (must be 0)`;
  return undefined;
}

/**
 * Tell what a CREATE_CHILD_SA request is. REKEY_SA present → Child SA rekey, absent → IKE SA rekey
 * (the draft leaves this implicit; the data lengths of §6 only fit this reading).
 */
export function classifyRequest(payloads: readonly Payload[], cp: CodePointConfig): OptimizedRequestShape {
  const opt = findNotifies(payloads, cp.optimizedRekey);
  if (opt.length === 0) return { kind: 'regular' };
  if (opt.length > 1) return { kind: 'invalid', reason: `${opt.length} OPTIMIZED_REKEY notifies (at most one allowed)` };
  const n = opt[0]!;
  const bad = checkShape(n);
  if (bad) return { kind: 'invalid', reason: bad };
  if (countPayloads(payloads, PayloadType.SA) > 0) return { kind: 'invalid', reason: 'SA payload together with OPTIMIZED_REKEY' };
  const nonce = getNonce(payloads);
  if (!nonce) return { kind: 'invalid', reason: 'optimized rekey request without a Nonce payload' };
  if (countPayloads(payloads, PayloadType.KE) > 1) return { kind: 'invalid', reason: 'more than one KE payload' };
  const kp = getKe(payloads);
  const ke = kp ? { method: kp.group, data: kp.data } : undefined;
  const rekeySa = findNotifies(payloads, NotifyType.REKEY_SA);
  if (rekeySa.length > 1) return { kind: 'invalid', reason: `${rekeySa.length} REKEY_SA notifies` };
  if (rekeySa.length === 0) {
    if (n.data.length !== IKE_SPI_SIZE) return { kind: 'invalid', reason: `OPTIMIZED_REKEY for an IKE SA carries ${n.data.length} octets (must be 8)` };
    if (countPayloads(payloads, PayloadType.TSi) + countPayloads(payloads, PayloadType.TSr) > 0) {
      return { kind: 'invalid', reason: 'TS payloads in an optimized IKE SA rekey' };
    }
    if (n.data.equals(Buffer.alloc(IKE_SPI_SIZE))) return { kind: 'invalid', reason: 'OPTIMIZED_REKEY with a zero IKE SPI' };
    return { kind: 'ike', newSpi: Buffer.from(n.data), nonce: nonce.data, ...(ke ? { ke } : {}) };
  }
  const r = rekeySa[0]!;
  if (r.protocol !== ProtocolId.ESP && r.protocol !== ProtocolId.AH) return { kind: 'invalid', reason: `REKEY_SA with Protocol ID ${r.protocol}` };
  if (r.spi.length !== 4) return { kind: 'invalid', reason: `REKEY_SA with SPI Size ${r.spi.length}` };
  if (n.data.length !== r.spi.length) {
    return { kind: 'invalid', reason: `OPTIMIZED_REKEY for a Child SA carries ${n.data.length} octets (REKEY_SA SPI Size is ${r.spi.length})` };
  }
  if (countPayloads(payloads, PayloadType.TSi) + countPayloads(payloads, PayloadType.TSr) > 0) {
    return { kind: 'invalid', reason: 'TS payloads in an optimized Child SA rekey' };
  }
  if (n.data.readUInt32BE(0) < 256) return { kind: 'invalid', reason: `OPTIMIZED_REKEY with reserved SPI ${n.data.readUInt32BE(0)}` };
  const forbiddenNotifies = PROPERTY_CHANGING_NOTIFIES.filter((t) => findNotify(payloads, t) !== undefined);
  return { kind: 'child', protocol: r.protocol, oldSpi: Buffer.from(r.spi), newSpi: Buffer.from(n.data), nonce: nonce.data, ...(ke ? { ke } : {}), forbiddenNotifies };
}

// ---------------------------------------------------------------------------------------------
// Responder decisions

/** What the responder knows about the SA a request wants to rekey. */
export interface RekeyTarget {
  /** Both IKE_AUTH messages carried OPTIMIZED_REKEY_SUPPORTED (inherited over IKE SA rekeys). */
  negotiated: boolean;
  /** This side's connection still enables optimized rekeys. */
  enabled: boolean;
  /**
   * KE methods recorded for the SA, in round order (KE, then ADDKE1..n); [] = no PFS;
   * undefined = undetermined (initial Child SA without child-pfs-info, §5.1).
   */
  keMethods: readonly number[] | undefined;
  /** The connection's configuration changed since the SA was created (§3: regular rekey required). */
  configChanged: boolean;
}

export type OptimizedVerdict = { ok: true } | { ok: false; notify: NotifyType; reason: string };

const refuse = (reason: string): OptimizedVerdict => ({ ok: false, notify: NotifyType.NO_PROPOSAL_CHOSEN, reason });

/**
 * Whether the responder can honour an optimized rekey of `target` (§3: otherwise NO_PROPOSAL_CHOSEN,
 * and the initiator falls back to a regular rekey). The CREATE_CHILD_SA KE must be the first recorded
 * method; the others follow in IKE_FOLLOWUP_KE (§7.1).
 */
export function checkOptimizedRequest(
  shape: Extract<OptimizedRequestShape, { kind: 'ike' | 'child' }>,
  target: RekeyTarget,
): OptimizedVerdict {
  if (!target.negotiated) return refuse('optimized rekeys were not negotiated on this IKE SA');
  if (!target.enabled) return refuse('optimized rekeys are disabled for this connection');
  if (target.configChanged) return refuse('the connection was reconfigured; a regular rekey is required');
  if (shape.kind === 'child' && shape.forbiddenNotifies.length > 0) {
    return refuse(`property-changing notifies in an optimized rekey: ${shape.forbiddenNotifies.join(', ')}`);
  }
  if (target.keMethods === undefined) return refuse('KE methods of this Child SA were never negotiated (initial Child SA, §5.1)');
  const first = target.keMethods[0];
  if (first === undefined) {
    if (shape.kind === 'ike') return refuse('IKE SA without a recorded KE method');
    if (shape.ke) return refuse(`KE payload (method ${shape.ke.method}) for a Child SA negotiated without PFS`);
    return { ok: true };
  }
  if (!shape.ke) return refuse(`no KE payload, but the SA being rekeyed uses KE method ${first}`);
  if (shape.ke.method !== first) return refuse(`KE method ${shape.ke.method} differs from the inherited method ${first}`);
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Initiator decisions

export interface ChildRekeyPlanInput {
  /** OPTIMIZED_REKEY_SUPPORTED exchanged on the IKE SA. */
  negotiated: boolean;
  /** The connection enables optimized rekeys. */
  enabled: boolean;
  /** KE methods recorded with the Child SA; undefined = undetermined (initial Child SA without child-pfs-info). */
  keMethods: readonly number[] | undefined;
  configChanged: boolean;
  /** The peer already refused an optimized rekey of this very SA (fall back, do not loop). */
  refusedOnce: boolean;
}

/**
 * §5.1 and §3: whether the next rekey of a Child SA is optimized. With the extension negotiated an
 * optimized rekey SHOULD be used; it cannot be when the KE methods are undetermined (initial Child SA
 * without child-pfs-info: its first rekey MUST be regular), after a configuration change, or right
 * after the peer refused one.
 */
export function shouldOptimizeChildRekey(i: ChildRekeyPlanInput): boolean {
  return i.negotiated && i.enabled && i.keMethods !== undefined && !i.configChanged && !i.refusedOnce;
}

/** The IKE SA counterpart: an IKE SA always has a KE method (RFC 7296 §2.18). */
export function shouldOptimizeIkeRekey(i: Omit<ChildRekeyPlanInput, 'keMethods'>): boolean {
  return i.negotiated && i.enabled && !i.configChanged && !i.refusedOnce;
}

/** Whether the answer to our optimized request means "do a regular rekey now" (§3, decision 5). */
export function isOptimizedRefusal(payloads: readonly Payload[]): boolean {
  return findNotify(payloads, NotifyType.NO_PROPOSAL_CHOSEN) !== undefined || findNotify(payloads, NotifyType.INVALID_KE_PAYLOAD) !== undefined;
}

export type OptimizedResponseShape =
  | { ok: true; newSpi: Buffer; nonce: Buffer; ke?: OptimizedKe }
  | { ok: false; reason: string };

/**
 * Initiator: check the answer to our optimized request. It must carry N(OPTIMIZED_REKEY) with an SPI
 * of the expected size, a nonce, no SA or TS payload, and a KE of the inherited method exactly when
 * we sent one.
 */
export function checkOptimizedResponse(payloads: readonly Payload[], cp: CodePointConfig, spiSize: 4 | 8, sentKeMethod: number | undefined): OptimizedResponseShape {
  const opt = findNotifies(payloads, cp.optimizedRekey);
  if (opt.length !== 1) return { ok: false, reason: `response carries ${opt.length} OPTIMIZED_REKEY notifies (exactly one expected)` };
  const n = opt[0]!;
  const bad = checkShape(n);
  if (bad) return { ok: false, reason: bad };
  if (n.data.length !== spiSize) return { ok: false, reason: `OPTIMIZED_REKEY carries ${n.data.length} octets (expected ${spiSize})` };
  if (countPayloads(payloads, PayloadType.SA) > 0) return { ok: false, reason: 'SA payload in the response to an optimized rekey' };
  if (countPayloads(payloads, PayloadType.TSi) + countPayloads(payloads, PayloadType.TSr) > 0) {
    return { ok: false, reason: 'TS payloads in the response to an optimized rekey' };
  }
  const nonce = getNonce(payloads);
  if (!nonce) return { ok: false, reason: 'response without a Nonce payload' };
  const kp = getKe(payloads);
  if (sentKeMethod === undefined && kp) return { ok: false, reason: 'KE payload in the response, but none was sent' };
  if (sentKeMethod !== undefined) {
    if (!kp) return { ok: false, reason: 'no KE payload in the response' };
    if (kp.group !== sentKeMethod) return { ok: false, reason: `response KE method ${kp.group} differs from ${sentKeMethod}` };
  }
  if (spiSize === 4 && n.data.readUInt32BE(0) < 256) return { ok: false, reason: `reserved SPI ${n.data.readUInt32BE(0)}` };
  if (spiSize === 8 && n.data.equals(Buffer.alloc(8))) return { ok: false, reason: 'zero IKE SPI' };
  return { ok: true, newSpi: Buffer.from(n.data), nonce: nonce.data, ...(kp ? { ke: { method: kp.group, data: kp.data } } : {}) };
}

/**
 * Responder, IKE_AUTH (§3): answer N(OPTIMIZED_REKEY_SUPPORTED) in the (last) response only when the
 * (first) request carried it and this connection enables the extension. The result is also whether
 * the extension is negotiated on this IKE SA.
 */
export function answerOptimizedRekeySupported(requestPayloads: readonly Payload[], cp: CodePointConfig, enabled: boolean): boolean {
  return enabled && announcesOptimizedRekey(requestPayloads, cp);
}

/** Initiator, IKE_AUTH: negotiated when we sent the notify and the response carries it too. */
export function optimizedRekeyNegotiated(sentByUs: boolean, responsePayloads: readonly Payload[], cp: CodePointConfig): boolean {
  return sentByUs && announcesOptimizedRekey(responsePayloads, cp);
}
