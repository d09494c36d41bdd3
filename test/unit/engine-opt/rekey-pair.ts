// Two peers with an established IKE SA and one Child SA, and a driver that runs rekey exchanges between
// them over real encrypted messages (seal -> bytes -> open), including IKE_FOLLOWUP_KE rounds.
import { randomBytes } from 'node:crypto';
import type { ProposalConfig } from '../../../src/ike/config.js';
import { DEFAULT_CODE_POINTS } from '../../../src/ike/config.js';
import { ExchangeType } from '../../../src/ike/codec/constants.js';
import { addressRange } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import { createPrf, deriveChildKeys, deriveIkeSaKeys, getKeMethod } from '../../../src/ike/crypto/index.js';
import { FollowupKeResponder, type FollowupKeInitiator } from '../../../src/ike/engine/followup-ke.js';
import {
  completeChildRekey,
  completeIkeRekey,
  openMessage,
  respondChildRekey,
  respondIkeRekey,
  sealMessage,
  startChildRekey,
  startIkeRekey,
  type ChildFollowupContext,
  type ChildRekeyOutcome,
  type IkeFollowupContext,
  type IkeRekeyOutcome,
  type RekeyChildSa,
  type RekeyIkeSa,
  type RekeyPolicy,
} from '../../../src/ike/engine/rekey-exchange.js';
import { keMethodsOf, parseProposals, selectProposal, proposalsToSa } from '../../../src/ike/proposal.js';

export interface Peer {
  name: string;
  ike: RekeyIkeSa;
  children: RekeyChildSa[];
  policy: RekeyPolicy;
  childFollowups: FollowupKeResponder<ChildFollowupContext>;
  ikeFollowups: FollowupKeResponder<IkeFollowupContext>;
  nextMid: number;
}

export interface PairOptions {
  ike?: string[];
  esp?: string[];
  /** KE methods recorded for the initial Child SA: undefined = initial Child SA without child-pfs-info. */
  childKeMethods?: number[] | undefined;
  childChosenFromEsp?: boolean;
  optimized?: [boolean, boolean];
  negotiated?: boolean;
  mode?: 'tunnel' | 'transport';
}

export function choose(proposals: ProposalConfig[], kind: 'ike' | 'esp') {
  const offer = proposalsToSa(proposals, kind);
  const s = selectProposal(offer, proposals, kind);
  if (!s) throw new Error('fixture proposals do not match themselves');
  return s.chosen;
}

function policy(ike: string[], esp: string[], optimizedEnabled: boolean): RekeyPolicy {
  return {
    codePoints: DEFAULT_CODE_POINTS,
    ikeProposals: parseProposals(ike, 'ike'),
    espProposals: parseProposals(esp, 'esp'),
    optimizedEnabled,
    configChanged: false,
    rng: randomBytes,
  };
}

export function makePair(o: PairOptions = {}): { a: Peer; b: Peer } {
  const ikeText = o.ike ?? ['aes256gcm16-prfsha256-x25519'];
  const espText = o.esp ?? ['aes256gcm16-x25519'];
  const pa = policy(ikeText, espText, o.optimized?.[0] ?? true);
  const pb = policy(ikeText, espText, o.optimized?.[1] ?? true);
  const ikeChosen = choose(pa.ikeProposals, 'ike');
  const ke = getKeMethod(ikeChosen.ke!)!;
  const i = ke.initiate();
  const r = ke.respond(i.publicData);
  const ni = randomBytes(32);
  const nr = randomBytes(32);
  const spiI = randomBytes(8);
  const spiR = randomBytes(8);
  const keys = deriveIkeSaKeys({
    prf: createPrf(ikeChosen.prf!),
    encr: ikeChosen.encr.id,
    ...(ikeChosen.encr.keyBits !== undefined ? { keyBits: ikeChosen.encr.keyBits } : {}),
    ...(ikeChosen.integ !== undefined ? { integ: ikeChosen.integ } : {}),
    ni,
    nr,
    spiI,
    spiR,
    sharedSecret: i.finish(r.publicData),
  });
  const negotiated = o.negotiated ?? true;
  const ikeSa = (originalInitiator: boolean): RekeyIkeSa => ({
    spiI,
    spiR,
    originalInitiator,
    keys,
    chosen: ikeChosen,
    keMethods: keMethodsOf(ikeChosen),
    optimizedNegotiated: negotiated,
    childPfsInfoNegotiated: o.childKeMethods !== undefined,
  });
  const espChosen = choose(pa.espProposals, 'esp');
  // The IKE_AUTH Child SA never has a KE method in its keys; what matters is what was recorded.
  const chosen = o.childKeMethods === undefined ? { ...espChosen, ke: undefined, addKe: [] } : espChosen;
  const km = deriveChildKeys({ prf: keys.prf, skD: keys.skD, ni, nr, sharedSecrets: [], encr: chosen.encr.id, ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}), ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}) });
  const spiA = randomBytes(4).readUInt32BE(0) | 0x1000;
  const spiB = randomBytes(4).readUInt32BE(0) | 0x1000;
  const netA = [addressRange(Buffer.from([10, 1, 0, 0]), Buffer.from([10, 1, 255, 255]))];
  const netB = [addressRange(Buffer.from([10, 2, 0, 0]), Buffer.from([10, 2, 255, 255]))];
  const common = {
    chosen,
    keMethods: o.childKeMethods === undefined ? undefined : [...o.childKeMethods],
    mode: o.mode ?? 'tunnel',
    tfcPaddingNotSupported: false,
    ipcomp: false,
    createdBy: 'ike-auth' as const,
  };
  const childA: RekeyChildSa = { ...common, spiIn: spiA >>> 0, spiOut: spiB >>> 0, localTs: netA, remoteTs: netB, keysOut: km.i2r, keysIn: km.r2i };
  const childB: RekeyChildSa = { ...common, keMethods: common.keMethods ? [...common.keMethods] : undefined, spiIn: spiB >>> 0, spiOut: spiA >>> 0, localTs: netB, remoteTs: netA, keysOut: km.r2i, keysIn: km.i2r };
  const mk = (name: string, ike: RekeyIkeSa, child: RekeyChildSa, pol: RekeyPolicy): Peer => ({
    name,
    ike,
    children: [child],
    policy: pol,
    childFollowups: new FollowupKeResponder(randomBytes),
    ikeFollowups: new FollowupKeResponder(randomBytes),
    nextMid: 2,
  });
  return { a: mk('a', ikeSa(true), childA, pa), b: mk('b', ikeSa(false), childB, pb) };
}

export interface WireLog {
  exchanges: { type: ExchangeType; request: number; response: number }[];
  requests: Payload[][];
  responses: Payload[][];
}

export function newLog(): WireLog {
  return { exchanges: [], requests: [], responses: [] };
}

/** One request/response between the peers: encrypted, sent as bytes, decrypted on the other side. */
function exchange(from: Peer, to: Peer, type: ExchangeType, request: Payload[], answer: (payloads: Payload[]) => Payload[], log: WireLog): Payload[] {
  const mid = from.nextMid++;
  const reqBytes = sealMessage(from.ike, type, mid, false, request);
  const opened = openMessage(to.ike, reqBytes);
  if (opened.header.messageId !== mid || opened.header.exchangeType !== type) throw new Error('header mangled');
  log.requests.push(opened.payloads);
  const response = answer(opened.payloads);
  const resBytes = sealMessage(to.ike, type, mid, true, response);
  const back = openMessage(from.ike, resBytes);
  log.responses.push(back.payloads);
  log.exchanges.push({ type, request: reqBytes.length, response: resBytes.length });
  return back.payloads;
}

export type ChildRekeyRun =
  | { ok: true; optimized: boolean; fellBack: boolean; initiatorChild: RekeyChildSa; responderChild: RekeyChildSa; oldInitiator: RekeyChildSa; oldResponder: RekeyChildSa; ni: Buffer; nr: Buffer; log: WireLog }
  | { ok: false; reason: string; log: WireLog };

/**
 * Rekey `child` (of `from`) with the peer: optimized or regular as asked; on a refusal of an optimized
 * request, a regular rekey of the same SA at once (§3). Installs the new SA on both sides.
 */
export function rekeyChild(
  from: Peer,
  to: Peer,
  child: RekeyChildSa,
  optimized: boolean,
  opts: { tamper?: (request: Payload[]) => Payload[]; log?: WireLog; install?: boolean; keMethod?: number } = {},
): ChildRekeyRun {
  const log = opts.log ?? newLog();
  const { request, pending } = startChildRekey(child, from.policy, optimized, opts.keMethod !== undefined ? { keMethod: opts.keMethod } : {});
  let responderResult: { child: RekeyChildSa; old: RekeyChildSa } | undefined;
  const response = exchange(from, to, ExchangeType.CREATE_CHILD_SA, opts.tamper ? opts.tamper(request) : request, (payloads) => {
    const ans = respondChildRekey(to.ike, payloads, (spi) => to.children.find((c) => c.spiOut === spi), to.policy, to.childFollowups, 0);
    if (ans.kind === 'done') responderResult = { child: ans.child, old: ans.old };
    return ans.response;
  }, log);
  let outcome: ChildRekeyOutcome = completeChildRekey(from.ike, pending, response, from.policy);
  if (outcome.kind === 'fallback') {
    const again = rekeyChild(from, to, child, false, { log, ...(opts.install === false ? { install: false } : {}) });
    return again.ok ? { ...again, fellBack: true } : again;
  }
  if (outcome.kind === 'retry-ke' && opts.keMethod === undefined) {
    return rekeyChild(from, to, child, false, { log, keMethod: outcome.method, ...(opts.install === false ? { install: false } : {}) });
  }
  while (outcome.kind === 'followup') {
    const f: FollowupKeInitiator = outcome.followup;
    const fin: (secrets: Buffer[]) => ChildRekeyOutcome = outcome.finish;
    while (!f.done) {
      const res = exchange(from, to, ExchangeType.IKE_FOLLOWUP_KE, f.nextRequest(), (payloads) => {
        const r = to.childFollowups.handleRequest(0, payloads);
        if (!r.ok) return [{ type: 41, critical: false, protocol: 0, spi: Buffer.alloc(0), notifyType: r.notify, data: Buffer.alloc(0) } as Payload];
        if (r.done) responderResult = { child: r.context.finish(r.secrets), old: r.context.old };
        return r.response;
      }, log);
      const step = f.handleResponse(res);
      if (!step.ok) return { ok: false, reason: step.reason, log };
    }
    outcome = fin(f.secrets);
  }
  if (outcome.kind !== 'done') return { ok: false, reason: outcome.kind === 'failed' ? outcome.reason : outcome.kind, log };
  if (!responderResult) return { ok: false, reason: 'responder did not finish', log };
  if (opts.install !== false) {
    from.children = [...from.children.filter((c) => c !== child), outcome.child];
    to.children = [...to.children.filter((c) => c !== responderResult!.old), responderResult.child];
  }
  return {
    ok: true,
    optimized,
    fellBack: false,
    initiatorChild: outcome.child,
    responderChild: responderResult.child,
    oldInitiator: child,
    oldResponder: responderResult.old,
    ni: outcome.ni,
    nr: outcome.nr,
    log,
  };
}

export type IkeRekeyRun =
  | { ok: true; fellBack: boolean; initiatorIke: RekeyIkeSa; responderIke: RekeyIkeSa; log: WireLog }
  | { ok: false; reason: string; log: WireLog };

export function rekeyIke(from: Peer, to: Peer, optimized: boolean, opts: { log?: WireLog } = {}): IkeRekeyRun {
  const log = opts.log ?? newLog();
  const { request, pending } = startIkeRekey(from.ike, from.policy, optimized);
  let responderIke: RekeyIkeSa | undefined;
  const response = exchange(from, to, ExchangeType.CREATE_CHILD_SA, request, (payloads) => {
    const ans = respondIkeRekey(to.ike, payloads, to.policy, to.ikeFollowups, 0);
    if (ans.kind === 'done') responderIke = ans.ike;
    return ans.response;
  }, log);
  let outcome: IkeRekeyOutcome = completeIkeRekey(from.ike, pending, response, from.policy);
  if (outcome.kind === 'fallback') {
    const again = rekeyIke(from, to, false, { log });
    return again.ok ? { ...again, fellBack: true } : again;
  }
  while (outcome.kind === 'followup') {
    const f: FollowupKeInitiator = outcome.followup;
    const fin: (secrets: Buffer[]) => IkeRekeyOutcome = outcome.finish;
    while (!f.done) {
      const res = exchange(from, to, ExchangeType.IKE_FOLLOWUP_KE, f.nextRequest(), (payloads) => {
        const r = to.ikeFollowups.handleRequest(0, payloads);
        if (!r.ok) throw new Error(r.reason);
        if (r.done) responderIke = r.context.finish(r.secrets);
        return r.response;
      }, log);
      const step = f.handleResponse(res);
      if (!step.ok) return { ok: false, reason: step.reason, log };
    }
    outcome = fin(f.secrets);
  }
  if (outcome.kind !== 'done') return { ok: false, reason: outcome.kind === 'failed' ? outcome.reason : outcome.kind, log };
  if (!responderIke) return { ok: false, reason: 'responder did not finish', log };
  from.ike = outcome.ike;
  to.ike = responderIke;
  from.nextMid = 0;
  to.nextMid = 0;
  return { ok: true, fellBack: false, initiatorIke: outcome.ike, responderIke, log };
}
