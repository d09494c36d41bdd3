// Post-quantum preshared keys: negotiation and selection for RFC 8784 (PPK in IKE_AUTH) and RFC 9867
// (PPK in IKE_INTERMEDIATE). The key mixing itself is crypto's applyPpk / applyPpkIntermediate.
// With RFC 9867 the engine also offers PPKs in every CREATE_CHILD_SA (mixed as SK_d' = prf+(PPK, SK_d)),
// negotiated afresh each time, so an optimized rekey never silently reuses one
// (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §7.3; docs/post-quantum.md).
import type { ConnectionConfig, PpkConfig } from '../config.js';
import { NotifyType } from '../codec/constants.js';
import { findNotifies, findNotify, notify } from '../codec/helpers.js';
import type { NotifyPayload, Payload } from '../codec/types.js';
import { applyPpk, applyPpkIntermediate, getKeMethod, ppkConfirmation, type IkeSaKeys, type Prf, type Spi } from '../crypto/index.js';

/** PPK Confirmation length (RFC 9867). */
export const PPK_CONFIRMATION_LENGTH = 8;

export type PpkMode = 'none' | 'rfc8784' | 'rfc9867';

/** IKE_SA_INIT request notifies: USE_PPK_INT (needs IKE_INTERMEDIATE) and USE_PPK when PPKs are configured. */
export function ppkInitNotifies(conn: Pick<ConnectionConfig, 'ppk'>, intermediate: boolean): NotifyPayload[] {
  if (!conn.ppk || conn.ppk.keys.length === 0) return [];
  const out: NotifyPayload[] = [];
  if (intermediate) out.push(notify(NotifyType.USE_PPK_INT));
  out.push(notify(NotifyType.USE_PPK));
  return out;
}

/** RFC 9867 is offered/accepted when the connection has PPKs and does not restrict itself to RFC 8784. */
export function wantsPpkIntermediate(conn: Pick<ConnectionConfig, 'ppk'>): boolean {
  return !!conn.ppk && conn.ppk.keys.length > 0 && conn.ppk.rfc9867 !== false;
}

/**
 * Responder: which PPK variant to answer with in IKE_SA_INIT. RFC 9867 is preferred when both are
 * possible (it protects the initial IKE SA too); it needs IKE_INTERMEDIATE on both sides.
 */
export function responderPpkMode(request: readonly Payload[], conn: Pick<ConnectionConfig, 'ppk'>, intermediateAgreed: boolean): PpkMode {
  if (!conn.ppk || conn.ppk.keys.length === 0) return 'none';
  if (intermediateAgreed && findNotify(request, NotifyType.USE_PPK_INT)) return 'rfc9867';
  if (findNotify(request, NotifyType.USE_PPK)) return 'rfc8784';
  return 'none';
}

export function responderPpkNotify(mode: PpkMode): NotifyPayload | undefined {
  return mode === 'rfc9867' ? notify(NotifyType.USE_PPK_INT) : mode === 'rfc8784' ? notify(NotifyType.USE_PPK) : undefined;
}

/** Initiator: the variant the responder agreed to (its IKE_SA_INIT response), given what we sent. */
export function initiatorPpkMode(response: readonly Payload[], sentInt: boolean, sentPpk: boolean, intermediateAgreed: boolean): PpkMode {
  if (sentInt && intermediateAgreed && findNotify(response, NotifyType.USE_PPK_INT)) return 'rfc9867';
  if (sentPpk && findNotify(response, NotifyType.USE_PPK)) return 'rfc8784';
  return 'none';
}

/** PPK_ID octets are `type | id`; the type octet must be 1 (opaque), 2 (fixed) or private use, the id non-empty. */
export function validPpkId(id: Buffer): boolean {
  return id.length >= 2 && (id[0] === 1 || id[0] === 2 || id[0]! >= 128);
}

function findPpk(keys: readonly PpkConfig[], id: Buffer): PpkConfig | undefined {
  return keys.find((k) => k.id.equals(id));
}

// ---------------------------------------------------------------------------------------------
// RFC 8784

/** IKE_AUTH request notifies: N(PPK_IDENTITY, PPK_ID) and, when the PPK is optional, N(NO_PPK_AUTH, AUTH'). */
export function ppkAuthRequestNotifies(ppk: PpkConfig, required: boolean, noPpkAuthData?: Buffer): NotifyPayload[] {
  const out = [notify(NotifyType.PPK_IDENTITY, Buffer.from(ppk.id))];
  if (!required) {
    if (!noPpkAuthData) throw new Error('NO_PPK_AUTH data is needed when the PPK is optional');
    out.push(notify(NotifyType.NO_PPK_AUTH, noPpkAuthData));
  }
  return out;
}

export type Ppk8784Decision =
  /** Verify AUTH with the PPK-mixed keys and answer with an empty N(PPK_IDENTITY). */
  | { use: 'ppk'; ppk: PpkConfig; keys: IkeSaKeys; response: NotifyPayload }
  /** Verify the NO_PPK_AUTH data with the unmixed keys; no PPK_IDENTITY in the response. */
  | { use: 'no-ppk'; noPpkAuth: Buffer; keys: IkeSaKeys }
  /** The peer sent no PPK notifies: ordinary RFC 7296 AUTH (allowed only when we do not require a PPK). */
  | { use: 'none'; keys: IkeSaKeys }
  | { use: 'fail'; notify: NotifyType.AUTHENTICATION_FAILED; reason: string };

/** Responder, RFC 8784 §3: decide from the IKE_AUTH request (keys are the unmixed SK_*'). */
export function responderPpk8784(request: readonly Payload[], conn: Pick<ConnectionConfig, 'ppk'>, prf: Prf, keys: IkeSaKeys): Ppk8784Decision {
  const required = conn.ppk?.required ?? false;
  const ids = findNotifies(request, NotifyType.PPK_IDENTITY);
  const noPpk = findNotify(request, NotifyType.NO_PPK_AUTH);
  if (ids.length === 0) {
    if (required) return { use: 'fail', notify: NotifyType.AUTHENTICATION_FAILED, reason: 'PPK required but the peer sent no PPK_IDENTITY' };
    return { use: 'none', keys };
  }
  for (const n of ids) {
    const ppk = conn.ppk && validPpkId(n.data) ? findPpk(conn.ppk.keys, n.data) : undefined;
    if (ppk) return { use: 'ppk', ppk, keys: applyPpk(prf, keys, ppk.key), response: notify(NotifyType.PPK_IDENTITY) };
  }
  if (required) return { use: 'fail', notify: NotifyType.AUTHENTICATION_FAILED, reason: 'PPK required but none of the peer\'s PPK_IDs is known' };
  if (!noPpk) return { use: 'fail', notify: NotifyType.AUTHENTICATION_FAILED, reason: 'unknown PPK_ID and no NO_PPK_AUTH to fall back to' };
  return { use: 'no-ppk', noPpkAuth: noPpk.data, keys };
}

/** Initiator, RFC 8784 §3: was the PPK used? (an empty PPK_IDENTITY in the IKE_AUTH response) */
export function initiatorPpk8784Used(response: readonly Payload[], required: boolean): { ok: true; used: boolean } | { ok: false; reason: string } {
  const used = findNotify(response, NotifyType.PPK_IDENTITY) !== undefined;
  if (!used && required) return { ok: false, reason: 'PPK required but the responder did not confirm it' };
  return { ok: true, used };
}

// ---------------------------------------------------------------------------------------------
// RFC 9867 (IKE_INTERMEDIATE)

export interface PpkExchangeContext {
  prf: Prf;
  ni: Buffer;
  nr: Buffer;
  spiI: Spi;
  spiR: Spi;
}

/** Initiator: one N(PPK_IDENTITY_KEY, PPK_ID | confirmation) per PPK we are willing to use, in our order. */
export function ppkIdentityKeyNotifies(keys: readonly PpkConfig[], ctx: PpkExchangeContext): NotifyPayload[] {
  return keys.map((k) => notify(NotifyType.PPK_IDENTITY_KEY, Buffer.concat([k.id, ppkConfirmation(ctx.prf, k.key, ctx.ni, ctx.nr, ctx.spiI, ctx.spiR)])));
}

export type Ppk9867Decision =
  | { use: 'ppk'; ppk: PpkConfig; response: NotifyPayload }
  | { use: 'none' }
  | { use: 'fail'; notify: NotifyType.AUTHENTICATION_FAILED; reason: string };

/** Responder: the first offered PPK that we know and whose confirmation matches. */
export function responderPpk9867(request: readonly Payload[], conn: Pick<ConnectionConfig, 'ppk'>, ctx: PpkExchangeContext): Ppk9867Decision {
  const required = conn.ppk?.required ?? false;
  for (const n of findNotifies(request, NotifyType.PPK_IDENTITY_KEY)) {
    if (n.data.length < 2 + PPK_CONFIRMATION_LENGTH) continue;
    const id = n.data.subarray(0, n.data.length - PPK_CONFIRMATION_LENGTH);
    const conf = n.data.subarray(n.data.length - PPK_CONFIRMATION_LENGTH);
    if (!validPpkId(id)) continue;
    const ppk = conn.ppk ? findPpk(conn.ppk.keys, id) : undefined;
    if (!ppk) continue;
    if (!ppkConfirmation(ctx.prf, ppk.key, ctx.ni, ctx.nr, ctx.spiI, ctx.spiR).equals(conf)) continue;
    return { use: 'ppk', ppk, response: notify(NotifyType.PPK_IDENTITY, Buffer.from(ppk.id)) };
  }
  if (required) return { use: 'fail', notify: NotifyType.AUTHENTICATION_FAILED, reason: 'PPK required but no offered PPK matched' };
  return { use: 'none' };
}

/** Initiator: the PPK the responder selected (N(PPK_IDENTITY, id) in the response), checked against what we offered. */
export function initiatorPpk9867(response: readonly Payload[], offered: readonly PpkConfig[], required: boolean): { ok: true; ppk?: PpkConfig } | { ok: false; reason: string } {
  const n = findNotify(response, NotifyType.PPK_IDENTITY);
  if (!n) return required ? { ok: false, reason: 'PPK required but the responder selected none' } : { ok: true };
  const ppk = findPpk(offered, n.data);
  if (!ppk) return { ok: false, reason: 'responder selected a PPK_ID we did not offer' };
  return { ok: true, ppk };
}

/** Both sides after the PPK exchange: all seven keys recomputed (RFC 9867). */
export function mixPpkIntermediate(keys: IkeSaKeys, ppk: PpkConfig, ctx: PpkExchangeContext): IkeSaKeys {
  return applyPpkIntermediate(keys, ppk.key, ctx.ni, ctx.nr, ctx.spiI, ctx.spiR);
}

// ---------------------------------------------------------------------------------------------
// require_pq

/**
 * A connection with `requirePq` must end with at least one post-quantum KE (ML-KEM) or a mixed PPK;
 * anything else is torn down, never kept as a classic-only SA.
 */
export function pqSatisfied(keMethodsUsed: readonly number[], ppkUsed: boolean): boolean {
  return ppkUsed || keMethodsUsed.some((m) => getKeMethod(m)?.postQuantum === true);
}
