// The CREATE_CHILD_SA rekey exchanges of an established IKE SA, regular (RFC 7296 §1.3.2, §1.3.3,
// §2.8, §2.18) and optimized (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §4, §5), continued by
// IKE_FOLLOWUP_KE when additional key exchanges were negotiated (RFC 9370 §2.2.4). Pure functions over
// plain SA records: each side builds or answers the inner payloads, and the result is the new SA with
// its keys. The engine's CREATE_CHILD_SA task owns message IDs, retransmission, timers and the kernel
// actions; this module owns what goes in the messages and what comes out of them.
import type { CodePointConfig, ProposalConfig } from '../config.js';
import { ExchangeType, NotifyType, PayloadType, ProtocolId } from '../codec/constants.js';
import { findErrorNotify, findNotify, getKe, getNonce, getSa, getTsi, getTsr, kePayload, noncePayload, notify, proposal, saPayload, spi32, tsPayload } from '../codec/helpers.js';
import { encodeProtected, decodeProtected } from '../codec/protect.js';
import type { IkeHeader, Payload, TrafficSelector } from '../codec/types.js';
import {
  createIkeSaProtections,
  createPrf,
  deriveChildKeys,
  deriveRekeyedIkeSaKeys,
  getKeMethod,
  ipv6FromBytes,
  KeError,
  type IkeSaKeys,
  type KeInitiation,
} from '../crypto/index.js';
import { checkAccepted, keMethodsOf, ProposalMismatchError, proposalsToSa, selectProposal, chosenToTransforms, type ChosenAlgorithms } from '../proposal.js';
import type { ChildSaKernelSpec, KernelAction, SaKeys, TrafficSelectorSpec } from './actions.js';
import { FollowupKeInitiator, FollowupKeResponder } from './followup-ke.js';
import {
  checkOptimizedRequest,
  checkOptimizedResponse,
  classifyRequest,
  isOptimizedRefusal,
  optimizedChildRekeyRequest,
  optimizedIkeRekeyRequest,
  optimizedRekeyResponse,
} from './optimized-rekey.js';

export type Rng = (n: number) => Buffer;

/** One direction's ESP keys. */
export interface EspKeys {
  encKey: Buffer;
  integKey: Buffer;
}

/** A Child SA as the rekey exchanges see it (this side's view). */
export interface RekeyChildSa {
  /** SPI we receive with (host order), and the one we send with. */
  spiIn: number;
  spiOut: number;
  chosen: ChosenAlgorithms;
  /** KE methods recorded for rekeys: [] = no PFS; undefined = undetermined (initial Child SA without child-pfs-info). */
  keMethods: number[] | undefined;
  localTs: TrafficSelector[];
  remoteTs: TrafficSelector[];
  mode: 'tunnel' | 'transport';
  /** ESP_TFC_PADDING_NOT_SUPPORTED was exchanged when the SA was negotiated. */
  tfcPaddingNotSupported: boolean;
  /** IPComp in use (ikev2d never negotiates it; kept so inheritance is explicit). */
  ipcomp: boolean;
  keysIn: EspKeys;
  keysOut: EspKeys;
  /** How it was created (for §5.1 and logs). */
  createdBy: 'ike-auth' | 'create' | 'rekey' | 'optimized-rekey';
}

/** An IKE SA as the rekey exchanges see it. */
export interface RekeyIkeSa {
  spiI: Buffer;
  spiR: Buffer;
  /** Whether this side is the original initiator of this IKE SA (I flag, key direction). */
  originalInitiator: boolean;
  keys: IkeSaKeys;
  chosen: ChosenAlgorithms;
  /** KE methods the IKE SA was built with (KE, then ADDKE1..n). */
  keMethods: number[];
  optimizedNegotiated: boolean;
  childPfsInfoNegotiated: boolean;
}

/** What this side is configured with for the rekeys. */
export interface RekeyPolicy {
  codePoints: CodePointConfig;
  espProposals: ProposalConfig[];
  ikeProposals: ProposalConfig[];
  optimizedEnabled: boolean;
  /** The connection was reconfigured since the SA was created (§3: regular rekeys only). */
  configChanged: boolean;
  rng: Rng;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function newEspSpi(rng: Rng, taken: (spi: number) => boolean = () => false): number {
  for (;;) {
    const v = rng(4).readUInt32BE(0);
    if (v >= 256 && !taken(v)) return v;
  }
}

function newIkeSpi(rng: Rng): Buffer {
  for (;;) {
    const b = rng(8);
    if (!b.equals(Buffer.alloc(8))) return Buffer.from(b);
  }
}

const NONCE_LENGTH = 32;

function startKe(method: number | undefined, rng: Rng): { method: number; init: KeInitiation } | undefined {
  if (method === undefined) return undefined;
  const m = getKeMethod(method);
  if (!m) throw new Error(`KE method ${method} is not implemented`);
  return { method, init: m.initiate(rng) };
}

function espKeysFor(ike: RekeyIkeSa, chosen: ChosenAlgorithms, ni: Buffer, nr: Buffer, secrets: readonly Buffer[], weInitiated: boolean): { keysIn: EspKeys; keysOut: EspKeys } {
  const km = deriveChildKeys({
    prf: ike.keys.prf,
    skD: ike.keys.skD,
    ni,
    nr,
    sharedSecrets: secrets,
    encr: chosen.encr.id,
    ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
    ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
  });
  return weInitiated ? { keysOut: km.i2r, keysIn: km.r2i } : { keysOut: km.r2i, keysIn: km.i2r };
}

/** The additional KE methods (ADDKE1..n) that follow the CREATE_CHILD_SA KE. */
function followupMethods(keMethods: readonly number[]): number[] {
  return keMethods.slice(1);
}

/**
 * RFC 7296 §2.8.1 / §2.8.2: of two colliding rekeys, the one whose exchange holds the lowest of the four
 * nonces is redundant. Returns which of the two exchanges ("a" = ours, "b" = the peer's) lost.
 */
export function redundantRekey(a: { ni: Buffer; nr: Buffer }, b: { ni: Buffer; nr: Buffer }): 'a' | 'b' {
  const minA = Buffer.compare(a.ni, a.nr) <= 0 ? a.ni : a.nr;
  const minB = Buffer.compare(b.ni, b.nr) <= 0 ? b.ni : b.nr;
  return Buffer.compare(minA, minB) < 0 ? 'a' : 'b';
}

// ---------------------------------------------------------------------------------------------
// Child SA rekey: initiator

export interface PendingChildRekey {
  optimized: boolean;
  old: RekeyChildSa;
  newSpiIn: number;
  ni: Buffer;
  ke?: { method: number; init: KeInitiation };
  /** Regular rekeys: the proposals we sent (to check the answer). */
  sent?: { num: number; protocol: number; transforms: ReturnType<typeof chosenToTransforms> }[];
}

/**
 * Build a Child SA rekey request. `optimized` must come from shouldOptimizeChildRekey (§5.1). A
 * regular rekey proposes the configured proposals; when the SA's KE methods are known, the KE payload
 * uses the first of them (avoiding an INVALID_KE_PAYLOAD round trip), else the first configured one.
 */
export function startChildRekey(
  old: RekeyChildSa,
  policy: RekeyPolicy,
  optimized: boolean,
  opts: { /** KE method asked for by INVALID_KE_PAYLOAD (regular rekeys only). */ keMethod?: number } = {},
): { request: Payload[]; pending: PendingChildRekey } {
  const newSpiIn = newEspSpi(policy.rng, (v) => v === old.spiIn);
  const ni = Buffer.from(policy.rng(NONCE_LENGTH));
  if (optimized) {
    if (old.keMethods === undefined) throw new Error('optimized rekey of a Child SA with undetermined KE methods (§5.1)');
    const ke = startKe(old.keMethods[0], policy.rng);
    const request = optimizedChildRekeyRequest(policy.codePoints, spi32(old.spiIn), spi32(newSpiIn), ni, ke ? { method: ke.method, data: ke.init.publicData } : undefined);
    return { request, pending: { optimized, old, newSpiIn, ni, ...(ke ? { ke } : {}) } };
  }
  const sent = proposalsToSa(policy.espProposals, 'esp').map((p) => ({ ...p, spi: spi32(newSpiIn) }));
  const firstConfigured = policy.espProposals[0]?.ke[0];
  // Prefer the SA's recorded method when we still offer it, so no INVALID_KE_PAYLOAD round trip is needed.
  const offered = new Set(policy.espProposals.flatMap((p) => p.ke));
  const recorded = old.keMethods?.[0];
  const wanted = opts.keMethod ?? (recorded !== undefined && offered.has(recorded) ? recorded : firstConfigured === 0 ? undefined : firstConfigured);
  const ke = startKe(wanted, policy.rng);
  const request: Payload[] = [
    notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, spi32(old.spiIn)),
    saPayload(sent.map((p) => proposal(p.num, p.protocol, p.spi, p.transforms))),
    noncePayload(ni),
  ];
  if (ke) request.push(kePayload(ke.method, ke.init.publicData));
  request.push(tsPayload(PayloadType.TSi, old.localTs), tsPayload(PayloadType.TSr, old.remoteTs));
  if (old.mode === 'transport') request.push(notify(NotifyType.USE_TRANSPORT_MODE));
  if (old.tfcPaddingNotSupported) request.push(notify(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED));
  return { request, pending: { optimized, old, newSpiIn, ni, ...(ke ? { ke } : {}), sent } };
}

export type ChildRekeyOutcome =
  | { kind: 'done'; child: RekeyChildSa; ni: Buffer; nr: Buffer }
  /** Additional key exchanges follow: run `followup` (IKE_FOLLOWUP_KE), then call finishChildFollowup. */
  | { kind: 'followup'; followup: FollowupKeInitiator; finish: (secrets: Buffer[]) => ChildRekeyOutcome }
  /** §3: the peer refused our optimized request; start a regular rekey of the same SA now. */
  | { kind: 'fallback'; reason: string }
  /** INVALID_KE_PAYLOAD to a regular request: retry with this method. */
  | { kind: 'retry-ke'; method: number }
  | { kind: 'failed'; reason: string; notify?: number; deleteIkeSa?: boolean };

/** Initiator: process the CREATE_CHILD_SA response. */
export function completeChildRekey(ike: RekeyIkeSa, pending: PendingChildRekey, response: readonly Payload[], policy: RekeyPolicy): ChildRekeyOutcome {
  const err = findErrorNotify(response);
  if (pending.optimized && isOptimizedRefusal(response)) return { kind: 'fallback', reason: `peer answered ${err?.notifyType ?? 'an error'}` };
  if (err) {
    if (err.notifyType === NotifyType.INVALID_KE_PAYLOAD && err.data.length === 2) return { kind: 'retry-ke', method: err.data.readUInt16BE(0) };
    return { kind: 'failed', reason: `peer answered error notify ${err.notifyType}`, notify: err.notifyType };
  }
  const old = pending.old;
  let chosen: ChosenAlgorithms;
  let spiOut: number;
  let nr: Buffer;
  let keData: Buffer | undefined;
  let mode = old.mode;
  let tfc = old.tfcPaddingNotSupported;
  let localTs = old.localTs;
  let remoteTs = old.remoteTs;
  if (pending.optimized) {
    const shape = checkOptimizedResponse(response, policy.codePoints, 4, pending.ke?.method);
    if (!shape.ok) return { kind: 'failed', reason: shape.reason };
    chosen = old.chosen; // §5: every algorithm inherited
    spiOut = shape.newSpi.readUInt32BE(0);
    nr = shape.nonce;
    keData = shape.ke?.data;
  } else {
    const sa = getSa(response);
    const nonce = getNonce(response);
    if (!sa || !nonce) return { kind: 'failed', reason: 'response lacks SA or Nonce' };
    try {
      chosen = checkAccepted(pending.sent ?? [], sa.proposals, 'esp');
    } catch (e) {
      if (e instanceof ProposalMismatchError) return { kind: 'failed', reason: e.message };
      throw e;
    }
    const p = sa.proposals[0]!;
    if (p.spi.length !== 4) return { kind: 'failed', reason: `responder SPI of ${p.spi.length} octets` };
    spiOut = p.spi.readUInt32BE(0);
    nr = nonce.data;
    const ke = getKe(response);
    if ((chosen.ke !== undefined) !== (pending.ke !== undefined)) return { kind: 'failed', reason: 'KE method chosen does not match the KE payload sent' };
    if (chosen.ke !== undefined) {
      if (!ke || ke.group !== chosen.ke || pending.ke?.method !== chosen.ke) return { kind: 'failed', reason: 'KE payload missing or of another method' };
      keData = ke.data;
    }
    mode = old.mode === 'transport' && findNotify(response, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
    tfc = old.tfcPaddingNotSupported || findNotify(response, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined;
    const tsi = getTsi(response);
    const tsr = getTsr(response);
    if (!tsi || !tsr) return { kind: 'failed', reason: 'response lacks TS payloads' };
    localTs = tsi.selectors;
    remoteTs = tsr.selectors;
  }
  const first: Buffer[] = [];
  if (pending.ke) {
    if (!keData) return { kind: 'failed', reason: 'no KE payload in the response' };
    try {
      first.push(pending.ke.init.finish(keData));
    } catch (e) {
      if (e instanceof KeError) return { kind: 'failed', reason: e.message, deleteIkeSa: true };
      throw e;
    }
  }
  const keMethods = keMethodsOf(chosen);
  const finish = (secrets: Buffer[]): ChildRekeyOutcome => {
    const keys = espKeysFor(ike, chosen, pending.ni, nr, secrets, true);
    const child: RekeyChildSa = {
      spiIn: pending.newSpiIn,
      spiOut,
      chosen,
      keMethods,
      localTs,
      remoteTs,
      mode,
      tfcPaddingNotSupported: tfc,
      ipcomp: old.ipcomp,
      ...keys,
      createdBy: pending.optimized ? 'optimized-rekey' : 'rekey',
    };
    return { kind: 'done', child, ni: pending.ni, nr };
  };
  const more = followupMethods(keMethods);
  if (more.length === 0) {
    if (findNotify(response, NotifyType.ADDITIONAL_KEY_EXCHANGE)) return { kind: 'failed', reason: 'ADDITIONAL_KEY_EXCHANGE without negotiated additional key exchanges' };
    return finish(first);
  }
  const followup = new FollowupKeInitiator(more, first, policy.rng);
  const started = followup.start(response);
  if (!started.ok) return { kind: 'failed', reason: started.reason };
  return { kind: 'followup', followup, finish };
}

// ---------------------------------------------------------------------------------------------
// Child SA rekey: responder

export type ChildRekeyAnswer =
  | { kind: 'done'; response: Payload[]; old: RekeyChildSa; child: RekeyChildSa; ni: Buffer; nr: Buffer }
  /** The response is sent; the new SA is finished by IKE_FOLLOWUP_KE (see the FollowupKeResponder). */
  | { kind: 'followup'; response: Payload[]; old: RekeyChildSa }
  | { kind: 'refused'; response: Payload[]; reason: string; notify: number; old?: RekeyChildSa };

/** What the responder remembers while IKE_FOLLOWUP_KE runs. */
export interface ChildFollowupContext {
  finish: (secrets: Buffer[]) => RekeyChildSa;
  old: RekeyChildSa;
  ni: Buffer;
  nr: Buffer;
}

const refuse = (n: number, reason: string, data: Buffer = Buffer.alloc(0), old?: RekeyChildSa): ChildRekeyAnswer => ({
  kind: 'refused',
  response: [notify(n, data)],
  reason,
  notify: n,
  ...(old ? { old } : {}),
});

/**
 * Responder: answer a CREATE_CHILD_SA that rekeys a Child SA (REKEY_SA present). `findChild` looks the
 * SA up by the SPI in REKEY_SA, which is our outbound SPI (RFC 7296 §3.10.1: the SPI the initiator
 * expects inbound). Regular requests are always processed (§3 of the draft); optimized ones are
 * checked against the inherited state and refused with NO_PROPOSAL_CHOSEN when they cannot be honoured.
 */
export function respondChildRekey(
  ike: RekeyIkeSa,
  request: readonly Payload[],
  findChild: (spiOut: number) => RekeyChildSa | undefined,
  policy: RekeyPolicy,
  followups: FollowupKeResponder<ChildFollowupContext>,
  now: number,
): ChildRekeyAnswer {
  const shape = classifyRequest(request, policy.codePoints);
  if (shape.kind === 'invalid') return refuse(NotifyType.INVALID_SYNTAX, shape.reason);
  if (shape.kind === 'ike') return refuse(NotifyType.INVALID_SYNTAX, 'not a Child SA rekey');
  const rekeySa = findNotify(request, NotifyType.REKEY_SA);
  if (!rekeySa || rekeySa.spi.length !== 4) return refuse(NotifyType.INVALID_SYNTAX, 'REKEY_SA missing or malformed');
  const old = findChild(rekeySa.spi.readUInt32BE(0));
  // RFC 7296 §2.25: the SA may be gone already (e.g. a collision with a delete).
  if (!old) return { kind: 'refused', response: [notify(NotifyType.CHILD_SA_NOT_FOUND, Buffer.alloc(0), ProtocolId.ESP, Buffer.from(rekeySa.spi))], reason: 'no such Child SA', notify: NotifyType.CHILD_SA_NOT_FOUND };
  const nr = Buffer.from(policy.rng(NONCE_LENGTH));
  const newSpiIn = newEspSpi(policy.rng, (v) => v === old.spiIn);

  let chosen: ChosenAlgorithms;
  let spiOut: number;
  let ni: Buffer;
  let keIn: { method: number; data: Buffer } | undefined;
  let mode = old.mode;
  let tfc = old.tfcPaddingNotSupported;
  let localTs = old.localTs;
  let remoteTs = old.remoteTs;
  let responseHead: Payload[];
  let keReply: Buffer | undefined;
  let sharedSecret: Buffer | undefined;
  const respondKe = (method: number, data: Buffer): ChildRekeyAnswer | undefined => {
    const m = getKeMethod(method);
    if (!m) return refuse(NotifyType.NO_PROPOSAL_CHOSEN, `KE method ${method} not implemented`, undefined, old);
    try {
      const r = m.respond(data, policy.rng);
      keReply = r.publicData;
      sharedSecret = r.sharedSecret;
    } catch (e) {
      if (e instanceof KeError) return refuse(NotifyType.INVALID_SYNTAX, e.message, undefined, old);
      throw e;
    }
    return undefined;
  };

  if (shape.kind === 'child') {
    const verdict = checkOptimizedRequest(shape, {
      negotiated: ike.optimizedNegotiated,
      enabled: policy.optimizedEnabled,
      keMethods: old.keMethods,
      configChanged: policy.configChanged,
    });
    if (!verdict.ok) return refuse(verdict.notify, verdict.reason, undefined, old);
    chosen = old.chosen;
    spiOut = shape.newSpi.readUInt32BE(0);
    ni = shape.nonce;
    keIn = shape.ke;
    if (keIn) {
      const bad = respondKe(keIn.method, keIn.data);
      if (bad) return bad;
    }
    responseHead = optimizedRekeyResponse(policy.codePoints, spi32(newSpiIn), nr, keReply && keIn ? { method: keIn.method, data: keReply } : undefined);
  } else {
    const sa = getSa(request);
    const nonce = getNonce(request);
    const tsi = getTsi(request);
    const tsr = getTsr(request);
    if (!sa || !nonce || !tsi || !tsr) return refuse(NotifyType.INVALID_SYNTAX, 'regular rekey lacks SA, Nonce or TS payloads', undefined, old);
    const kp = getKe(request);
    const selected = selectProposal(sa.proposals, policy.espProposals, 'esp', kp ? { preferKe: kp.group } : {});
    if (!selected) return refuse(NotifyType.NO_PROPOSAL_CHOSEN, 'no acceptable proposal', undefined, old);
    chosen = selected.chosen;
    const offered = sa.proposals.find((p) => p.num === selected.proposalNumber)!;
    if (offered.spi.length !== 4) return refuse(NotifyType.INVALID_SYNTAX, 'proposal SPI is not 4 octets', undefined, old);
    spiOut = offered.spi.readUInt32BE(0);
    ni = nonce.data;
    if (chosen.ke !== undefined) {
      if (!kp || kp.group !== chosen.ke) {
        const d = Buffer.alloc(2);
        d.writeUInt16BE(chosen.ke);
        return refuse(NotifyType.INVALID_KE_PAYLOAD, `KE payload must use method ${chosen.ke}`, d, old);
      }
      keIn = { method: kp.group, data: kp.data };
      const bad = respondKe(kp.group, kp.data);
      if (bad) return bad;
    }
    // RFC 7296 §2.8: a rekey SHOULD NOT change the traffic selectors; we answer with our side's, as created.
    localTs = old.localTs;
    remoteTs = old.remoteTs;
    mode = old.mode === 'transport' && findNotify(request, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
    tfc = old.tfcPaddingNotSupported || findNotify(request, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined;
    responseHead = [saPayload([proposal(selected.proposalNumber, ProtocolId.ESP, spi32(newSpiIn), selected.transforms)]), noncePayload(nr)];
    if (keReply && keIn) responseHead.push(kePayload(keIn.method, keReply));
    // TSi/TSr are from the initiator's point of view: TSi = the peer's (our remote), TSr = ours.
    responseHead.push(tsPayload(PayloadType.TSi, remoteTs), tsPayload(PayloadType.TSr, localTs));
    if (mode === 'transport') responseHead.push(notify(NotifyType.USE_TRANSPORT_MODE));
    if (old.tfcPaddingNotSupported) responseHead.push(notify(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED));
  }
  const keMethods = keMethodsOf(chosen);
  const finish = (secrets: Buffer[]): RekeyChildSa => ({
    spiIn: newSpiIn,
    spiOut,
    chosen,
    keMethods,
    localTs,
    remoteTs,
    mode,
    tfcPaddingNotSupported: tfc,
    ipcomp: old.ipcomp,
    ...espKeysFor(ike, chosen, ni, nr, secrets, false),
    createdBy: shape.kind === 'child' ? 'optimized-rekey' : 'rekey',
  });
  const first = sharedSecret ? [sharedSecret] : [];
  const link = followups.begin(now, followupMethods(keMethods), first, { finish, old, ni, nr });
  if (link) return { kind: 'followup', response: [...responseHead, link], old };
  return { kind: 'done', response: responseHead, old, child: finish(first), ni, nr };
}

// ---------------------------------------------------------------------------------------------
// IKE SA rekey

export interface PendingIkeRekey {
  optimized: boolean;
  newSpi: Buffer;
  ni: Buffer;
  ke: { method: number; init: KeInitiation };
  sent?: { num: number; protocol: number; transforms: ReturnType<typeof chosenToTransforms> }[];
}

/** Build an IKE SA rekey request (§4 optimized: N(OPTIMIZED_REKEY), Ni, KEi; regular: SA, Ni, KEi). */
export function startIkeRekey(ike: RekeyIkeSa, policy: RekeyPolicy, optimized: boolean, keMethod?: number): { request: Payload[]; pending: PendingIkeRekey } {
  const newSpi = newIkeSpi(policy.rng);
  const ni = Buffer.from(policy.rng(NONCE_LENGTH));
  // Regular: the method the responder asked for (INVALID_KE_PAYLOAD), else the current one if still
  // configured, else the first configured (the configuration may have changed since).
  const configured = policy.ikeProposals.flatMap((p) => p.ke);
  const current = ike.keMethods[0] !== undefined && configured.includes(ike.keMethods[0]) ? ike.keMethods[0] : undefined;
  const method = optimized ? ike.keMethods[0] : (keMethod ?? current ?? configured[0] ?? ike.keMethods[0]);
  const ke = startKe(method, policy.rng);
  if (!ke) throw new Error('IKE SA rekey needs a KE method (RFC 7296 §2.18)');
  if (optimized) {
    return { request: optimizedIkeRekeyRequest(policy.codePoints, newSpi, ni, { method: ke.method, data: ke.init.publicData }), pending: { optimized, newSpi, ni, ke } };
  }
  const sent = proposalsToSa(policy.ikeProposals, 'ike').map((p) => ({ ...p, spi: newSpi }));
  const request: Payload[] = [saPayload(sent.map((p) => proposal(p.num, p.protocol, p.spi, p.transforms))), noncePayload(ni), kePayload(ke.method, ke.init.publicData)];
  return { request, pending: { optimized, newSpi, ni, ke, sent } };
}

export type IkeRekeyOutcome =
  | { kind: 'done'; ike: RekeyIkeSa; ni: Buffer; nr: Buffer }
  | { kind: 'followup'; followup: FollowupKeInitiator; finish: (secrets: Buffer[]) => IkeRekeyOutcome }
  | { kind: 'fallback'; reason: string }
  | { kind: 'retry-ke'; method: number }
  | { kind: 'failed'; reason: string; notify?: number; deleteIkeSa?: boolean };

function rekeyedIke(old: RekeyIkeSa, chosen: ChosenAlgorithms, spiI: Buffer, spiR: Buffer, ni: Buffer, nr: Buffer, secrets: Buffer[], weInitiated: boolean): RekeyIkeSa {
  if (chosen.prf === undefined) throw new Error('IKE SA without PRF');
  const keys = deriveRekeyedIkeSaKeys({
    prf: createPrf(chosen.prf),
    encr: chosen.encr.id,
    ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
    ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
    ni,
    nr,
    spiI,
    spiR,
    oldPrf: old.keys.prf,
    oldSkD: old.keys.skD,
    sharedSecrets: secrets,
  });
  // RFC 7296 §2.18: the peer that initiated the rekey is the original initiator of the new IKE SA.
  // Notify-negotiated properties (optimized rekeys, child-pfs-info) carry over.
  return {
    spiI,
    spiR,
    originalInitiator: weInitiated,
    keys,
    chosen,
    keMethods: keMethodsOf(chosen),
    optimizedNegotiated: old.optimizedNegotiated,
    childPfsInfoNegotiated: old.childPfsInfoNegotiated,
  };
}

/** Initiator: process the IKE SA rekey response. */
export function completeIkeRekey(old: RekeyIkeSa, pending: PendingIkeRekey, response: readonly Payload[], policy: RekeyPolicy): IkeRekeyOutcome {
  const err = findErrorNotify(response);
  if (pending.optimized && isOptimizedRefusal(response)) return { kind: 'fallback', reason: `peer answered ${err?.notifyType ?? 'an error'}` };
  if (err) {
    if (err.notifyType === NotifyType.INVALID_KE_PAYLOAD && err.data.length === 2) return { kind: 'retry-ke', method: err.data.readUInt16BE(0) };
    return { kind: 'failed', reason: `peer answered error notify ${err.notifyType}`, notify: err.notifyType };
  }
  let chosen: ChosenAlgorithms;
  let spiR: Buffer;
  let nr: Buffer;
  let keData: Buffer;
  if (pending.optimized) {
    const shape = checkOptimizedResponse(response, policy.codePoints, 8, pending.ke.method);
    if (!shape.ok) return { kind: 'failed', reason: shape.reason };
    chosen = old.chosen;
    spiR = shape.newSpi;
    nr = shape.nonce;
    keData = shape.ke!.data;
  } else {
    const sa = getSa(response);
    const nonce = getNonce(response);
    const ke = getKe(response);
    if (!sa || !nonce || !ke) return { kind: 'failed', reason: 'response lacks SA, Nonce or KE' };
    try {
      chosen = checkAccepted(pending.sent ?? [], sa.proposals, 'ike');
    } catch (e) {
      if (e instanceof ProposalMismatchError) return { kind: 'failed', reason: e.message };
      throw e;
    }
    if (chosen.ke !== pending.ke.method || ke.group !== pending.ke.method) return { kind: 'failed', reason: 'responder chose another KE method than the KE payload sent' };
    const p = sa.proposals[0]!;
    if (p.spi.length !== 8) return { kind: 'failed', reason: `responder IKE SPI of ${p.spi.length} octets` };
    spiR = Buffer.from(p.spi);
    nr = nonce.data;
    keData = ke.data;
  }
  let first: Buffer;
  try {
    first = pending.ke.init.finish(keData);
  } catch (e) {
    if (e instanceof KeError) return { kind: 'failed', reason: e.message, deleteIkeSa: true };
    throw e;
  }
  const finish = (secrets: Buffer[]): IkeRekeyOutcome => ({ kind: 'done', ike: rekeyedIke(old, chosen, pending.newSpi, spiR, pending.ni, nr, secrets, true), ni: pending.ni, nr });
  const more = followupMethods(keMethodsOf(chosen));
  if (more.length === 0) return finish([first]);
  const followup = new FollowupKeInitiator(more, [first], policy.rng);
  const started = followup.start(response);
  if (!started.ok) return { kind: 'failed', reason: started.reason };
  return { kind: 'followup', followup, finish };
}

export interface IkeFollowupContext {
  finish: (secrets: Buffer[]) => RekeyIkeSa;
  ni: Buffer;
  nr: Buffer;
}

export type IkeRekeyAnswer =
  | { kind: 'done'; response: Payload[]; ike: RekeyIkeSa; ni: Buffer; nr: Buffer }
  | { kind: 'followup'; response: Payload[] }
  | { kind: 'refused'; response: Payload[]; reason: string; notify: number };

/** Responder: answer an IKE SA rekey (no REKEY_SA; SA with protocol IKE, or OPTIMIZED_REKEY). */
export function respondIkeRekey(old: RekeyIkeSa, request: readonly Payload[], policy: RekeyPolicy, followups: FollowupKeResponder<IkeFollowupContext>, now: number): IkeRekeyAnswer {
  const r = (n: number, reason: string, data: Buffer = Buffer.alloc(0)): IkeRekeyAnswer => ({ kind: 'refused', response: [notify(n, data)], reason, notify: n });
  const shape = classifyRequest(request, policy.codePoints);
  if (shape.kind === 'invalid') return r(NotifyType.INVALID_SYNTAX, shape.reason);
  if (shape.kind === 'child') return r(NotifyType.INVALID_SYNTAX, 'not an IKE SA rekey');
  const nr = Buffer.from(policy.rng(NONCE_LENGTH));
  const newSpiR = newIkeSpi(policy.rng);
  let chosen: ChosenAlgorithms;
  let spiI: Buffer;
  let ni: Buffer;
  let ke: { method: number; data: Buffer } | undefined;
  let head: (reply: Buffer) => Payload[];
  if (shape.kind === 'ike') {
    const verdict = checkOptimizedRequest(shape, { negotiated: old.optimizedNegotiated, enabled: policy.optimizedEnabled, keMethods: old.keMethods, configChanged: policy.configChanged });
    if (!verdict.ok) return r(verdict.notify, verdict.reason);
    chosen = old.chosen;
    spiI = shape.newSpi;
    ni = shape.nonce;
    ke = shape.ke;
    head = (reply) => optimizedRekeyResponse(policy.codePoints, newSpiR, nr, { method: ke!.method, data: reply });
  } else {
    const sa = getSa(request);
    const nonce = getNonce(request);
    const kp = getKe(request);
    if (!sa || !nonce) return r(NotifyType.INVALID_SYNTAX, 'IKE SA rekey lacks SA or Nonce');
    const selected = selectProposal(sa.proposals, policy.ikeProposals, 'ike', { requireKe: true, ...(kp ? { preferKe: kp.group } : {}) });
    if (!selected) return r(NotifyType.NO_PROPOSAL_CHOSEN, 'no acceptable IKE proposal');
    chosen = selected.chosen;
    if (!kp || kp.group !== chosen.ke) {
      const d = Buffer.alloc(2);
      d.writeUInt16BE(chosen.ke!);
      return r(NotifyType.INVALID_KE_PAYLOAD, `KE payload must use method ${chosen.ke}`, d);
    }
    const offered = sa.proposals.find((p) => p.num === selected.proposalNumber)!;
    if (offered.spi.length !== 8) return r(NotifyType.INVALID_SYNTAX, 'IKE rekey proposal SPI is not 8 octets');
    spiI = Buffer.from(offered.spi);
    ni = nonce.data;
    ke = { method: kp.group, data: kp.data };
    head = (reply) => [saPayload([proposal(selected.proposalNumber, ProtocolId.IKE, newSpiR, selected.transforms)]), noncePayload(nr), kePayload(ke!.method, reply)];
  }
  if (!ke) return r(NotifyType.INVALID_SYNTAX, 'IKE SA rekey without KE payload (RFC 7296 §2.18)');
  const m = getKeMethod(ke.method);
  if (!m) return r(NotifyType.NO_PROPOSAL_CHOSEN, `KE method ${ke.method} not implemented`);
  let answer;
  try {
    answer = m.respond(ke.data, policy.rng);
  } catch (e) {
    if (e instanceof KeError) return r(NotifyType.INVALID_SYNTAX, e.message);
    throw e;
  }
  const response = head(answer.publicData);
  const finish = (secrets: Buffer[]) => rekeyedIke(old, chosen, spiI, newSpiR, ni, nr, secrets, false);
  const link = followups.begin(now, followupMethods(keMethodsOf(chosen)), [answer.sharedSecret], { finish, ni, nr });
  if (link) return { kind: 'followup', response: [...response, link] };
  return { kind: 'done', response, ike: finish([answer.sharedSecret]), ni, nr };
}

// ---------------------------------------------------------------------------------------------
// On the wire

/** Seal inner payloads into an encrypted message of `ike` (RFC 7296 §3.14). */
export function sealMessage(ike: RekeyIkeSa, exchangeType: ExchangeType, messageId: number, isResponse: boolean, payloads: readonly Payload[], rng?: Rng): Buffer {
  const { outbound } = createIkeSaProtections(
    { encrId: ike.keys.encr, ...(ike.keys.keyBits !== undefined ? { keyBits: ike.keys.keyBits } : {}), ...(ike.keys.integ ? { integId: ike.keys.integ } : {}) },
    ike.keys,
    ike.originalInitiator,
    rng,
  );
  const header: IkeHeader = {
    spiI: ike.spiI,
    spiR: ike.spiR,
    nextPayload: 0,
    majorVersion: 2,
    minorVersion: 0,
    exchangeType,
    flags: { initiator: ike.originalInitiator, response: isResponse, version: false },
    messageId,
    length: 0,
  };
  return encodeProtected(header, payloads, outbound);
}

/** Open an encrypted message of `ike`; throws with the codec's reason when it does not verify or parse. */
export function openMessage(ike: RekeyIkeSa, data: Buffer): { header: IkeHeader; payloads: Payload[] } {
  const { inbound } = createIkeSaProtections(
    { encrId: ike.keys.encr, ...(ike.keys.keyBits !== undefined ? { keyBits: ike.keys.keyBits } : {}), ...(ike.keys.integ ? { integId: ike.keys.integ } : {}) },
    ike.keys,
    ike.originalInitiator,
  );
  const r = decodeProtected(data, inbound);
  if (!r.ok) throw new Error(`cannot open message: ${r.error.reason}`);
  return { header: r.message.header, payloads: r.message.payloads };
}

// ---------------------------------------------------------------------------------------------
// Kernel side: an optimized rekey installs exactly what a regular one does (make-before-break)

function tsSpec(ts: TrafficSelector): TrafficSelectorSpec | undefined {
  if ('opaque' in ts) return undefined; // e.g. SECLABEL: not an address range, nothing for XFRM selectors
  const text = (b: Buffer) => (b.length === 4 ? [...b].join('.') : ipv6FromBytes(b));
  return { protocol: ts.ipProtocol, startPort: ts.startPort, endPort: ts.endPort, startAddress: text(ts.startAddr), endAddress: text(ts.endAddr) };
}

/** The fields of a kernel spec that come from the connection and this host, not from the negotiation. */
export type KernelSpecBase = Omit<ChildSaKernelSpec, 'childId' | 'mode' | 'localTs' | 'remoteTs' | 'encr' | 'integ' | 'esn' | 'spiIn' | 'spiOut'>;

/** The XFRM-agnostic spec of a Child SA (architecture.md, actions.ts). */
export function kernelSpecOf(base: KernelSpecBase, childId: number, child: RekeyChildSa): ChildSaKernelSpec {
  const { tfcPad, ...rest } = base;
  return {
    ...rest,
    // RFC 7296 §3.10.1: a peer that sent ESP_TFC_PADDING_NOT_SUPPORTED gets no TFC padding; a rekeyed
    // (also optimized) SA inherits that property.
    ...(tfcPad && !child.tfcPaddingNotSupported ? { tfcPad } : {}),
    childId,
    mode: child.mode,
    localTs: child.localTs.map(tsSpec).filter((t): t is TrafficSelectorSpec => t !== undefined),
    remoteTs: child.remoteTs.map(tsSpec).filter((t): t is TrafficSelectorSpec => t !== undefined),
    encr: { id: child.chosen.encr.id, keyBits: child.chosen.encr.keyBits ?? 0 },
    ...(child.chosen.integ !== undefined && child.chosen.integ !== 0 ? { integ: { id: child.chosen.integ } } : {}),
    esn: child.chosen.esn ?? false,
    spiIn: child.spiIn,
    spiOut: child.spiOut,
  };
}

const saKeys = (k: EspKeys): SaKeys => (k.integKey.length > 0 ? { encKey: k.encKey, integKey: k.integKey } : { encKey: k.encKey });

/**
 * The make-before-break sequence for a finished rekey, the same whether it was regular or optimized:
 * installInboundSa(new) -> installOutboundSa(new) -> updateOutboundPolicy(new SPI) -> deleteOutboundSa(old);
 * `later` (deleteInboundSa(old)) runs when the grace timer fires, so packets still in flight on the
 * old SA are accepted (zero loss across the rekey).
 */
export function rekeyKernelActions(oldSpec: ChildSaKernelSpec, newSpec: ChildSaKernelSpec, child: RekeyChildSa): { now: KernelAction[]; later: KernelAction[] } {
  return {
    now: [
      { op: 'installInboundSa', spec: newSpec, keys: saKeys(child.keysIn) },
      { op: 'installOutboundSa', spec: newSpec, keys: saKeys(child.keysOut) },
      { op: 'updateOutboundPolicy', spec: newSpec, previousSpiOut: oldSpec.spiOut },
      { op: 'deleteOutboundSa', spec: oldSpec },
    ],
    later: [{ op: 'deleteInboundSa', spec: oldSpec }],
  };
}
