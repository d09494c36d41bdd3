// The request window of an IKE SA (RFC 7296 §2.3): requests queued until the peer's window has room,
// retransmitted with exponential back-off (§2.1) until answered or given up, and chains of
// IKE_FOLLOWUP_KE requests (RFC 9370).
import type { ConnectionConfig } from '../config.js';
import { ExchangeType, NotifyType } from '../codec/constants.js';
import { findNotify, notify } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { type IkeSaState, MAX_PEER_WINDOW, type Outstanding } from './state.js';
import { FollowupKeInitiator } from './followup-ke.js';
import { closeActions, retryInitiation } from './initiation.js';
import { dropIkeSa } from './teardown.js';

/** Queue a request; it is sent when the window (size 1) is free. */
/**
 * Drive IKE_FOLLOWUP_KE exchanges (RFC 9370 §2.2.4) until every additional key exchange is done.
 * They go ahead of anything else queued: the SA they finish is half-built until then.
 */
export function runFollowups(
  core: EngineCore,
  now: number,
  ike: IkeSaState,
  followup: FollowupKeInitiator,
  onDone: () => Action[],
  onFail: (reason: string, fatal: boolean) => Action[],
): Action[] {
  return request(core, now, ike, ExchangeType.IKE_FOLLOWUP_KE, () => followup.nextRequest(), (t, _h, resp) => {
    core.lastNow = t;
    const r = followup.handleResponse(resp);
    if (!r.ok) return onFail(r.reason, 'deleteIkeSa' in r && r.deleteIkeSa === true);
    return r.done ? onDone() : runFollowups(core, t, ike, followup, onDone, onFail);
  }, true);
}

/**
 * Queue a request. It leaves when the peer's window has room (RFC 7296 §2.3); an `exclusive` one
 * (IKE SA rekey and its follow-ups, IKE SA delete, the initial exchanges) waits until nothing else
 * is outstanding and holds everything back until answered, so no Child SA exchange straddles the
 * switch to another IKE SA.
 */
export function request(core: EngineCore, now: number, ike: IkeSaState, exchange: ExchangeType, build: () => Payload[], onResponse: Outstanding['onResponse'], front = false, exclusive = false): Action[] {
  core.lastNow = now;
  const initial = exchange === ExchangeType.IKE_AUTH || exchange === ExchangeType.IKE_INTERMEDIATE || exchange === ExchangeType.IKE_FOLLOWUP_KE;
  const item = {
    exclusive: exclusive || initial,
    start: (t: number): Action[] => {
      if (!ike.sa) return [];
      const payloads = build();
      const messageId = ike.nextRequestId++;
      const datagrams = core.seal(ike, exchange, messageId, false, payloads);
      const o: Outstanding = { messageId, datagrams, tries: 0, sentAt: t, exchange, onResponse, payloads, exclusive: item.exclusive };
      ike.inflight.set(messageId, o);
      return [...datagrams.map((d) => core.send(ike, d)), armRetransmit(core, t, ike, o)];
    },
  };
  ike.queue[front ? 'unshift' : 'push'](item);
  return pump(core, now, ike);
}

/** Send queued requests while the window has room: fewer than peerWindow outstanding, IDs within lowest + window. */
export function pump(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  const out: Action[] = [];
  while (ike.queue.length > 0 && core.sas.get(ike.id) === ike) {
    const next = ike.queue[0]!;
    const outstanding = [...ike.inflight.values()];
    if (outstanding.some((o) => o.exclusive)) break;
    if (next.exclusive ? outstanding.length > 0 : ike.ikeRekeyInFlight) break;
    const lowest = outstanding.length ? Math.min(...outstanding.map((o) => o.messageId)) : ike.nextRequestId;
    if (outstanding.length >= ike.peerWindow || ike.nextRequestId >= lowest + ike.peerWindow) break;
    ike.queue.shift();
    out.push(...next.start(now));
  }
  return out;
}

/** RFC 7296 §2.3: SET_WINDOW_SIZE tells the peer how many of its requests we take at once (sent when above 1). */
export function windowSizeNotify(conn: ConnectionConfig): Payload[] {
  if (conn.ike.windowSize <= 1) return [];
  const data = Buffer.alloc(4);
  data.writeUInt32BE(conn.ike.windowSize);
  return [notify(NotifyType.SET_WINDOW_SIZE, data)];
}

/** The peer's SET_WINDOW_SIZE: how many of our requests it takes at once (§2.3). A malformed one is ignored. */
export function noteWindowSize(ike: IkeSaState, payloads: readonly Payload[]): void {
  const n = findNotify(payloads, NotifyType.SET_WINDOW_SIZE);
  if (!n || n.data.length !== 4) return;
  const size = n.data.readUInt32BE(0);
  // Bounded so a hostile value cannot make us keep unbounded state; 0 is meaningless.
  if (size >= 1) ike.peerWindow = Math.min(size, MAX_PEER_WINDOW);
}

export function retransmitTimer(ike: IkeSaState, messageId: number): string {
  return `ike:${ike.id}:retransmit:${messageId}`;
}

/** Forget every outstanding request of an IKE SA and its retransmission timers. */
export function abandonRequests(core: EngineCore, ike: IkeSaState): Action[] {
  const out: Action[] = [];
  for (const id of ike.inflight.keys()) out.push(...core.cancel(retransmitTimer(ike, id)));
  ike.inflight.clear();
  return out;
}

export function armRetransmit(core: EngineCore, now: number, ike: IkeSaState, o: Outstanding): Action {
  const r = ike.conn.ike.retransmit;
  let delay = r.timeout * Math.pow(r.base, o.tries) * 1000;
  const limit = ike.conn.ike.dpdTimeout * 1000;
  if (limit > 0) delay = Math.max(1, Math.min(delay, o.sentAt + limit - now));
  return core.arm(retransmitTimer(ike, o.messageId), now + delay, (t) => retransmit(core, t, ike, o));
}

export function retransmit(core: EngineCore, now: number, ike: IkeSaState, o: Outstanding): Action[] {
  if (ike.inflight.get(o.messageId) !== o || !core.sas.has(ike.id)) return [];
  o.tries++;
  const limit = ike.conn.ike.dpdTimeout * 1000;
  if (o.tries > ike.conn.ike.retransmit.tries || (limit > 0 && now - o.sentAt >= limit)) {
    const reason = `peer did not answer after ${o.tries} transmissions`;
    const connecting = ike.initiator && !ike.reauthOf && (ike.state === 'init-sent' || ike.state === 'auth-sent');
    const lost = ike.state === 'established' ? [...ike.children.values()].map((c) => c.cfg) : [];
    const out = dropIkeSa(core, now, ike, reason);
    if (connecting) return [...out, ...retryInitiation(core, now, ike.conn, reason)];
    return [...out, ...closeActions(core, now, ike, lost)];
  }
  core.counters.retransmits++;
  return [...o.datagrams.map((d) => core.send(ike, d)), armRetransmit(core, now, ike, o)];
}
