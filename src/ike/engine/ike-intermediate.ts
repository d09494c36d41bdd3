// The IKE_INTERMEDIATE exchange (RFC 9242) with its additional key exchanges (RFC 9370), and the PPK
// decisions (RFC 8784, RFC 9867) made around IKE_SA_INIT, IKE_INTERMEDIATE and IKE_AUTH.
import type { PpkConfig } from '../config.js';
import { ExchangeType, NotifyType } from '../codec/constants.js';
import { findErrorNotify, notify } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import { ppkMixedSkD } from '../crypto/index.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import type { IkeSaState, RequestAfter } from './state.js';
import { initiatorPpk9867, mixPpkIntermediate, type PpkExchangeContext, ppkIdentityKeyNotifies, responderPpk9867 } from './ppk.js';
import type { RekeyIkeSa } from './rekey-exchange.js';
import { sendAuthRequest } from './ike-auth.js';
import { request } from './requests.js';
import { dropIkeSa } from './teardown.js';

/** RFC 9867: PPK Confirmation input of this IKE SA: its PRF, nonces and SPIs (IKE_SA_INIT, or the rekey that made it). */
export function ppkContext(ike: IkeSaState): PpkExchangeContext {
  return { prf: ike.sa!.keys.prf, ni: ike.ni, nr: ike.nr, spiI: ike.spiI, spiR: ike.spiR };
}

// RFC 9867 in CREATE_CHILD_SA (docs/post-quantum.md): on an IKE SA that agreed USE_PPK_INT, every
// CREATE_CHILD_SA request offers the configured PPKs again (PPK_IDENTITY_KEY), the responder echoes the
// one it selects (PPK_IDENTITY), and that exchange derives its keys from SK_d' = prf+(PPK, SK_d). A PPK
// is never carried over from an earlier exchange: an optimized rekey negotiates it like any other
// (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §7.3). Here the PPK is opportunistic: a required PPK was
// already enforced when the IKE SA was set up, whose SK_d every later key depends on.

/** Initiator: the PPKs offered in a CREATE_CHILD_SA request, and their notifies. */
export function ppkOffer(core: EngineCore, ike: IkeSaState): { offered: PpkConfig[]; notifies: Payload[] } {
  const keys = ike.ppkMode === 'rfc9867' ? (ike.conn.ppk?.keys ?? []) : [];
  return { offered: keys, notifies: keys.length > 0 ? ppkIdentityKeyNotifies(keys, ppkContext(ike)) : [] };
}

/** Responder: the first offered PPK we have whose confirmation matches, and the N(PPK_IDENTITY) echoing it. */
export function ppkAnswer(core: EngineCore, ike: IkeSaState, request: readonly Payload[]): { ppk?: PpkConfig; reply: Payload[] } {
  if (ike.ppkMode !== 'rfc9867' || !ike.conn.ppk) return { reply: [] };
  const d = responderPpk9867(request, { ppk: { ...ike.conn.ppk, required: false } }, ppkContext(ike));
  return d.use === 'ppk' ? { ppk: d.ppk, reply: [d.response] } : { reply: [] };
}

/** Initiator: the PPK the responder selected among those we offered (none: plain SK_d). */
export function ppkSelected(response: readonly Payload[], offered: readonly PpkConfig[]): { ok: true; ppk?: PpkConfig } | { ok: false; reason: string } {
  if (offered.length === 0) return { ok: true };
  return initiatorPpk9867(response, offered, false);
}

/** The IKE SA as this exchange's key derivation sees it: SK_d replaced by SK_d' = prf+(PPK, SK_d). */
export function withPpk(sa: RekeyIkeSa, ppk: PpkConfig | undefined): RekeyIkeSa {
  return ppk ? { ...sa, keys: { ...sa.keys, skD: ppkMixedSkD(sa.keys.prf, sa.keys.skD, ppk.key) } } : sa;
}

export function ppkNotice(core: EngineCore, ike: IkeSaState, what: string, ppk: PpkConfig | undefined): Action[] {
  return ppk ? [core.event({ type: 'notice', connection: ike.conn.name, message: `PPK ${ppk.id.subarray(1).toString('utf8')} mixed into the ${what} (RFC 9867)` })] : [];
}

/** One IKE_INTERMEDIATE exchange per additional key exchange (RFC 9242, RFC 9370 §2.2.2). */
export function sendIntermediate(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  const im = ike.intermediate!;
  const init = im.initiator!;
  // RFC 9867 §3.1: the PPK notifies ride on the last IKE_INTERMEDIATE exchange: the one with the last
  // additional key exchange, or a dedicated one when there is none.
  const withKe = !init.done;
  const ppkRound = ike.ppkRoundPending === true && init.methods.length - init.secrets.length <= 1;
  const offered = ppkRound ? (ike.conn.ppk?.keys ?? []) : [];
  const out = request(core, now, ike, ExchangeType.IKE_INTERMEDIATE, () => [
    ...(withKe ? init.nextRequest() : []),
    ...(ppkRound ? ppkIdentityKeyNotifies(offered, ppkContext(ike)) : []),
  ], (t, _h, resp, datagram) => {
    const sa = ike.sa!;
    // IntAuth covers each message with the SK_p that protected it, before this exchange's key update.
    im.chain.addMessage(sa.keys.prf, sa.keys.skPr, datagram, resp, true);
    const err = findErrorNotify(resp);
    if (err?.notifyType === NotifyType.AUTHENTICATION_FAILED && ppkRound) {
      const reason = 'the responder refused the IKE SA in the PPK exchange (AUTHENTICATION_FAILED): it requires a PPK and has none of ours (RFC 9867)';
      return [core.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(core, t, ike, reason, 'auth')];
    }
    const step = withKe ? init.handleResponse(resp) : { ok: true as const, keys: sa.keys, done: true };
    if (!step.ok) return dropIkeSa(core, t, ike, `IKE_INTERMEDIATE failed: ${step.reason}`);
    sa.keys = step.keys;
    if (ppkRound) {
      ike.ppkRoundPending = false;
      const chosenPpk = initiatorPpk9867(resp, offered, ike.conn.ppk?.required ?? false);
      if (!chosenPpk.ok) {
        const reason = `RFC 9867 PPK exchange failed: ${chosenPpk.reason}`;
        return [core.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(core, t, ike, reason, 'auth')];
      }
      // RFC 9867 §3.1: the selected PPK updates all seven keys, from the next exchange (IKE_AUTH) on.
      if (chosenPpk.ppk) {
        ike.ppkUsed = chosenPpk.ppk;
        sa.keys = mixPpkIntermediate(sa.keys, chosenPpk.ppk, ppkContext(ike));
      }
    }
    if (!step.done) return sendIntermediate(core, t, ike);
    ike.intAuth = im.chain.value(ike.nextRequestId);
    return sendAuthRequest(core, t, ike);
  });
  const o = ike.inflight.get(ike.nextRequestId - 1);
  if (o && o.exchange === ExchangeType.IKE_INTERMEDIATE && o.payloads) im.chain.addMessage(ike.sa!.keys.prf, ike.sa!.keys.skPi, o.datagrams[0]!, o.payloads, false);
  return out;
}

export function onIntermediateRequest(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[], datagram: Buffer): { response: Payload[]; after: RequestAfter } {
  const im = ike.intermediate;
  if (ike.initiator || ike.state !== 'init-received' || !im?.responder) return { response: [notify(NotifyType.INVALID_SYNTAX)], after: {} };
  const sa = ike.sa!;
  const prf = sa.keys.prf;
  const skPi = sa.keys.skPi;
  const skPr = sa.keys.skPr;
  im.chain.addMessage(prf, skPi, datagram, payloads, false);
  const r = im.responder.handleRequest(payloads);
  if (!r.ok) return { response: [notify(r.notify ?? NotifyType.INVALID_SYNTAX)], after: { after: dropIkeSa(core, now, ike, `IKE_INTERMEDIATE refused: ${r.reason}`) } };
  const response = [...r.response];
  let ppk: PpkConfig | undefined;
  if (ike.ppkRoundPending && r.done) {
    // RFC 9867 §3.1: the exchange completing the additional key exchanges (or a dedicated one) carries
    // the initiator's PPK_IDENTITY_KEY list; we select the first PPK we have whose confirmation matches.
    ike.ppkRoundPending = false;
    const d = responderPpk9867(payloads, ike.conn, ppkContext(ike));
    if (d.use === 'fail') {
      const reason = `RFC 9867 PPK exchange: ${d.reason}`;
      return { response: [notify(d.notify)], after: { after: [core.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(core, now, ike, reason, 'auth')] } };
    }
    if (d.use === 'ppk') {
      ppk = d.ppk;
      ike.ppkUsed = d.ppk;
      response.push(d.response);
    }
  }
  // The response is protected with the keys in force; the update applies from the next exchange.
  return {
    response,
    after: {
      sealed: (out) => {
        im.chain.addMessage(prf, skPr, out, response, true);
        sa.keys = ppk ? mixPpkIntermediate(r.keys, ppk, ppkContext(ike)) : r.keys;
      },
    },
  };
}
