// Incoming datagrams (RFC 7296 §2.1, §2.2): routed to their IKE SA by SPI, decrypted and reassembled,
// matched with our outstanding requests, or answered as requests from the peer (once, with
// retransmissions of a request getting the cached response again).
import { ExchangeType, NotifyType, PayloadType } from '../codec/constants.js';
import { decodeMessage } from '../codec/decode.js';
import { notify } from '../codec/helpers.js';
import type { IkeHeader, Payload } from '../codec/types.js';
import type { Action, Endpoint } from './actions.js';
import type { EngineCore } from './core.js';
import { hex, type IkeSaState, NATT_PORT, type RequestAfter } from './state.js';
import { createChildSa, deleteChild, keysOf, onCreateChildSa, onFollowupKe } from './child-sa.js';
import { onAuthRequest } from './ike-auth.js';
import { onIntermediateRequest } from './ike-intermediate.js';
import { onInitRequest, onInitResponse } from './ike-sa-init.js';
import { onInformational } from './informational.js';
import { noteWindowSize, pump, retransmitTimer } from './requests.js';
import { dropIkeSa } from './teardown.js';

/**
 * Where the peer's authenticated messages come from (RFC 7296 §2.23). The first move to port 4500
 * is followed (RFC 3948). After that, when the peer is behind a NAT and we are not, its NAT may
 * re-map it to another port or address at any time: IKE follows every authenticated change, and the
 * Child SAs' UDP encapsulation follows a port change in place. A changed public address changes the
 * SAs' outer address, which XFRM cannot alter in place: those Child SAs are created anew.
 */
export function followPeer(core: EngineCore, now: number, ike: IkeSaState, local: Endpoint, remote: Endpoint): Action[] {
  if (local.port === NATT_PORT && ike.local.port !== NATT_PORT) {
    ike.local = { ...local };
    ike.remote = { ...remote };
    return [];
  }
  if (!ike.natRemote || ike.natLocal || ike.state !== 'established') return [];
  if (remote.address === ike.remote.address && remote.port === ike.remote.port) return [];
  const before = ike.remote;
  ike.remote = { ...remote };
  const out: Action[] = [core.event({ type: 'notice', connection: ike.conn.name, message: `the peer's NAT mapping changed from ${before.address}:${before.port} to ${remote.address}:${remote.port} (RFC 7296 §2.23)` })];
  for (const child of [...ike.children.values()]) {
    if (!child.spec.encap) continue;
    if (remote.address !== before.address) {
      out.push(...deleteChild(core, now, ike, child, 'the peer moved to another address', true), ...createChildSa(core, now, ike, child.cfg));
      continue;
    }
    child.spec = { ...child.spec, encap: { ...child.spec.encap, remotePort: remote.port } };
    out.push({ kind: 'kernel', action: { op: 'updateSaEncap', spec: child.spec, keysIn: keysOf(child.sa.keysIn), keysOut: keysOf(child.sa.keysOut) } });
  }
  return out;
}

// ------------------------------------------------------------------------------ dispatch

export function dispatch(core: EngineCore, now: number, data: Buffer, local: Endpoint, remote: Endpoint): Action[] {
  const decoded = decodeMessage(data);
  if (!decoded.ok) {
    core.counters.dropped++;
    return [];
  }
  const { header } = decoded.message;
  if (header.exchangeType === ExchangeType.IKE_SA_INIT && !header.flags.response) {
    return onInitRequest(core, now, data, decoded.message.payloads, header, local, remote);
  }
  // Our SPI is the one of the side we are: the sender's I flag says which side that is.
  const ours = header.flags.initiator ? header.spiR : header.spiI;
  const ike = core.sas.get(hex(ours));
  if (!ike || (!header.flags.initiator) !== ike.initiator) {
    core.counters.dropped++;
    return [];
  }
  if (header.exchangeType === ExchangeType.IKE_SA_INIT) {
    return ike.state === 'init-sent' ? onInitResponse(core, now, ike, data, decoded.message.payloads, header) : [];
  }
  if (!ike.sa) {
    core.counters.dropped++;
    return [];
  }
  if (header.flags.response) {
    // Responses are matched strictly to an outstanding request (RFC 7296 §2.2).
    const o = ike.inflight.get(header.messageId);
    if (!o) {
      core.counters.dropped++;
      return [];
    }
    const opened = core.open(now, ike, data, decoded.message);
    if (!opened) return [];
    ike.inflight.delete(header.messageId);
    ike.lastActivity = now;
    noteWindowSize(ike, opened.payloads);
    const out = [...core.cancel(retransmitTimer(ike, o.messageId)), ...followPeer(core, now, ike, local, remote), ...o.onResponse(now, opened.header, opened.payloads, data)];
    if (core.sas.has(ike.id)) out.push(...pump(core, now, ike));
    return out;
  }
  // A request from the peer.
  const cached = ike.responses.get(header.messageId);
  if (cached) {
    // RFC 7296 §2.1: a retransmitted request is answered with the same response, not processed again;
    // for a fragmented request only its first fragment triggers that (RFC 7383 §2.6.1).
    const skf = decoded.message.payloads.at(-1);
    if (skf?.type === PayloadType.SKF && skf.fragmentNumber !== 1) return [];
    return cached.map((d) => core.send(ike, d));
  }
  // RFC 7296 §2.3: requests are taken within our window above the lowest unanswered message ID.
  const window = ike.state === 'established' ? ike.conn.ike.windowSize : 1;
  if (header.messageId < ike.expectedRequestId || header.messageId >= ike.expectedRequestId + window) {
    core.counters.dropped++;
    return [];
  }
  const opened = core.open(now, ike, data, decoded.message);
  if (!opened) return [];
  const followed = followPeer(core, now, ike, local, remote);
  ike.lastActivity = now;
  noteWindowSize(ike, opened.payloads);
  const { response, after } = onRequest(core, now, ike, opened.header, opened.payloads, data);
  const out: Action[] = [...followed];
  const reply = (payloads: Payload[]) => {
    const datagrams = core.seal(ike, header.exchangeType, header.messageId, true, payloads);
    ike.responses.set(header.messageId, datagrams);
    while (ike.responses.has(ike.expectedRequestId)) ike.expectedRequestId++;
    // Keep the responses a retransmission can still ask for: the window below the lowest unanswered ID.
    const keep = Math.max(1, ike.conn.ike.windowSize);
    for (const id of ike.responses.keys()) if (id < ike.expectedRequestId - keep) ike.responses.delete(id);
    after.sealed?.(datagrams[0]!);
    return datagrams.map((d) => core.send(ike, d));
  };
  out.push(...(after.before ?? []), ...reply(response), ...(after.after ?? []));
  return out;
}

// ------------------------------------------------------------------------------ requests

export function onRequest(core: EngineCore, now: number, ike: IkeSaState, header: IkeHeader, payloads: Payload[], datagram: Buffer): { response: Payload[]; after: RequestAfter } {
  switch (header.exchangeType) {
    case ExchangeType.IKE_AUTH:
      if (ike.initiator || ike.state !== 'init-received') return { response: [notify(NotifyType.INVALID_SYNTAX)], after: {} };
      if (ike.intermediate && (!ike.intermediate.responder?.done || ike.ppkRoundPending)) {
        return { response: [notify(NotifyType.INVALID_SYNTAX)], after: { after: dropIkeSa(core, now, ike, 'IKE_AUTH before the negotiated IKE_INTERMEDIATE key exchanges') } };
      }
      ike.intAuth = ike.intermediate?.chain.value(header.messageId);
      return onAuthRequest(core, now, ike, payloads);
    case ExchangeType.IKE_INTERMEDIATE:
      return onIntermediateRequest(core, now, ike, payloads, datagram);
    case ExchangeType.INFORMATIONAL:
      return onInformational(core, now, ike, payloads);
    case ExchangeType.CREATE_CHILD_SA:
      if (ike.state !== 'established') return { response: [notify(NotifyType.TEMPORARY_FAILURE)], after: {} };
      return onCreateChildSa(core, now, ike, payloads);
    case ExchangeType.IKE_FOLLOWUP_KE:
      if (ike.state !== 'established') return { response: [notify(NotifyType.STATE_NOT_FOUND)], after: {} };
      return onFollowupKe(core, now, ike, payloads);
    default:
      return { response: [notify(NotifyType.INVALID_SYNTAX)], after: {} };
  }
}
