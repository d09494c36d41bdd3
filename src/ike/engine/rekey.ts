// CREATE_CHILD_SA rekeys (RFC 7296 §1.3.2, §1.3.3, §2.8): Child SAs and IKE SAs, regular and
// optimized, as initiator and responder, with the simultaneous-rekey collisions of §2.8.1 and §2.8.2.
// The message contents come from rekey-exchange.ts.
import type { PpkConfig } from '../config.js';
import { ExchangeType, NotifyType, ProtocolId } from '../codec/constants.js';
import { deletePayload, spi32 } from '../codec/helpers.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { type ChildSaState, HALF_OPEN_TIMEOUT_MS, hex, type IkeSaState } from './state.js';
import { shouldOptimizeChildRekey, shouldOptimizeIkeRekey } from './optimized-rekey.js';
import { completeChildRekey, completeIkeRekey, type PendingChildRekey, type PendingIkeRekey, redundantRekey, type RekeyChildSa, type RekeyIkeSa, rekeyKernelActions, type RekeyPolicy, startChildRekey, startIkeRekey } from './rekey-exchange.js';
import { addChild, childTimers, deleteChild, espKeylog, keysOf, notePolicy, ownerOf } from './child-sa.js';
import { armIkeTimers } from './ike-auth.js';
import { ppkNotice, ppkOffer, ppkSelected, withPpk } from './ike-intermediate.js';
import { moveVirtualIps } from './ike-vip.js';
import { request, runFollowups } from './requests.js';
import { deleteIkeSa, dropIkeSa } from './teardown.js';

// ------------------------------------------------------------------------------ rekeys

export function rekeyChildSa(core: EngineCore, now: number, ike: IkeSaState, child: ChildSaState): Action[] {
  ike = ownerOf(core, child) ?? ike; // the Child SA may have moved with an IKE SA rekey
  if (child.state !== 'installed' || ike.state !== 'established') return [];
  child.state = 'rekeying';
  const policy = core.policyFor(ike, child.cfg, child);
  const optimized = shouldOptimizeChildRekey({ negotiated: ike.sa!.optimizedNegotiated, enabled: ike.conn.optimizedRekey, keMethods: child.sa.keMethods, configChanged: child.configChanged === true, refusedOnce: child.refusedOptimized });
  return sendChildRekey(core, now, ike, child, policy, optimized, undefined);
}

export function sendChildRekey(core: EngineCore, now: number, ike: IkeSaState, child: ChildSaState, policy: RekeyPolicy, optimized: boolean, keMethod: number | undefined): Action[] {
  let pending: PendingChildRekey | undefined;
  let offered: PpkConfig[] = [];
  return request(
    core,
    now,
    ike,
    ExchangeType.CREATE_CHILD_SA,
    () => {
      const started = startChildRekey(child.sa, policy, optimized, keMethod !== undefined ? { keMethod } : {});
      pending = started.pending;
      const ppk = ppkOffer(core, ike);
      offered = ppk.offered;
      return [...started.request, ...ppk.notifies];
    },
    (t, _h, resp) => {
      const sel = ppkSelected(resp, offered);
      if (!sel.ok) {
        child.state = 'installed';
        return deleteIkeSa(core, t, ike, `Child SA rekey: ${sel.reason}`, true);
      }
      const outcome = completeChildRekey(withPpk(ike.sa!, sel.ppk), pending!, resp, policy);
      const note = outcome.kind === 'done' || outcome.kind === 'followup' ? ppkNotice(core, ike, `rekeyed Child SA ${child.cfg.name}`, sel.ppk) : [];
      return [...note, ...((): Action[] => {
      switch (outcome.kind) {
        case 'done':
          return finishChildRekeyAsInitiator(core, t, ike, child, outcome.child, pending!.optimized, { ni: outcome.ni, nr: outcome.nr });
        case 'fallback':
          // §3: the peer could not honour the optimized request; a regular rekey of the same SA, now.
          child.refusedOptimized = true;
          return [core.event({ type: 'notice', connection: ike.conn.name, message: `optimized Child SA rekey refused (${outcome.reason}); falling back to a regular rekey` }), ...sendChildRekey(core, t, ike, child, policy, false, undefined)];
        case 'retry-ke':
          return sendChildRekey(core, t, ike, child, policy, false, outcome.method);
        case 'followup':
          return runFollowups(core, t, ike, outcome.followup, () => {
            const done = outcome.finish(outcome.followup.secrets);
            if (done.kind !== 'done') {
              child.state = 'installed';
              return [core.event({ type: 'error', connection: ike.conn.name, message: `Child SA rekey failed after IKE_FOLLOWUP_KE: ${done.kind}` })];
            }
            return finishChildRekeyAsInitiator(core, core.lastNow, ike, child, done.child, pending!.optimized, { ni: done.ni, nr: done.nr });
          }, (reason, fatal) => {
            child.state = 'installed';
            const out: Action[] = [core.event({ type: 'error', connection: ike.conn.name, message: `Child SA rekey failed in IKE_FOLLOWUP_KE: ${reason}` })];
            if (fatal) out.push(...deleteIkeSa(core, core.lastNow, ike, reason, true));
            return out;
          });
        case 'failed': {
          if (outcome.notify === NotifyType.CHILD_SA_NOT_FOUND && (child.state === 'rekeyed' || ownerOf(core, child) === undefined)) {
            // The peer's own rekey of this SA completed meanwhile (we answered it): ours is moot.
            return [core.event({ type: 'notice', connection: ike.conn.name, message: `Child SA ${child.cfg.name} was rekeyed by the peer while our rekey of it was in flight; ours is dropped` })];
          }
          child.state = 'installed';
          if (outcome.notify === NotifyType.CHILD_SA_NOT_FOUND) return deleteChild(core, t, ike, child, 'peer does not know the Child SA', false);
          const out: Action[] = [core.event({ type: 'error', connection: ike.conn.name, message: `Child SA rekey failed: ${outcome.reason}` })];
          if (outcome.deleteIkeSa) out.push(...deleteIkeSa(core, t, ike, outcome.reason, true));
          else if (outcome.notify === NotifyType.TEMPORARY_FAILURE) {
            out.push(core.arm(`child:${child.childId}:rekey`, core.retryAt(t), (t2) => rekeyChildSa(core, t2, ike, child)));
          }
          return out;
        }
      }
      })()];
    },
  );
}

export function finishChildRekeyAsInitiator(core: EngineCore, now: number, ike: IkeSaState, old: ChildSaState, sa: RekeyChildSa, optimized: boolean, nonces: { ni: Buffer; nr: Buffer }): Action[] {
  // The peer may have rekeyed the IKE SA while this exchange was in flight: finish where the Child SAs are.
  ike = childHolder(ike);
  if (ike.reauthRetired?.includes(old)) {
    // A reauthentication moved this Child SA to the new IKE SA meanwhile: the rekeyed SA is not needed.
    core.usedSpis.delete(sa.spiIn);
    return [
      core.event({ type: 'notice', connection: ike.conn.name, message: `Child SA ${old.cfg.name} rekeyed while its IKE SA was reauthenticated: deleting the rekeyed SA` }),
      ...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.ESP, [spi32(sa.spiIn)])], () => []),
    ];
  }
  // RFC 7296 §2.8.1: the peer rekeyed the same SA meanwhile. The exchange holding the lowest nonce
  // made a redundant SA, which its initiator deletes; both peers reach the same verdict.
  // The rival is the SA of the peer's rekey we answered: still waiting for its switch, or, when loss
  // reordered the exchanges, already switched to by the peer's Delete of the old SA.
  const rival = [...ike.children.values()].find((c) => c.pendingSwitch?.replaced === old) ?? old.replacedBy;
  if (rival?.nonces && redundantRekey(nonces, rival.nonces) === 'a') {
    core.usedSpis.delete(sa.spiIn);
    return [
      core.event({ type: 'notice', connection: ike.conn.name, message: `simultaneous rekey of Child SA ${old.cfg.name}: ours is redundant, deleting it (RFC 7296 §2.8.1)` }),
      ...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.ESP, [spi32(sa.spiIn)])], () => []),
    ];
  }
  const fresh = addChild(core, now, ike, old.cfg, sa);
  fresh.nonces = nonces;
  old.supersededBy = fresh;
  core.usedSpis.add(sa.spiIn);
  const actions = rekeyKernelActions(old.spec, notePolicy(core, fresh.spec), sa);
  ike.children.delete(old.childId);
  old.state = 'rekeyed';
  core.counters.child++;
  if (optimized) core.counters.optimized++;
  const out: Action[] = [
    ...core.cancel(`child:${old.childId}:rekey`),
    ...core.cancel(`child:${old.childId}:expire`),
    ...actions.now.map((a): Action => ({ kind: 'kernel', action: a })),
    core.event({ type: 'child-rekeyed', connection: ike.conn.name, child: old.cfg.name, oldSpiIn: old.sa.spiIn, newSpiIn: sa.spiIn, optimized }),
    ...espKeylog(core, fresh),
    ...childTimers(core, fresh),
  ];
  // The peer keeps sending on the old SA until our Delete of it reaches it, so the old inbound SA
  // stays until the Delete is answered plus the grace period for packets still in flight. Until then
  // a timer bounded by the whole retransmission sequence guards against a leak if it never is.
  const graceId = `child:${old.childId}:delete-grace`;
  const removeOldInbound = () => {
    core.usedSpis.delete(old.sa.spiIn);
    return actions.later.map((a): Action => ({ kind: 'kernel', action: a }));
  };
  const grace = core.config.rekeyGraceTime * 1000;
  out.push(core.arm(graceId, now + requestLifetime(ike) + grace, removeOldInbound));
  out.push(...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.ESP, [spi32(old.sa.spiIn)])], (t) => (core.timers.has(graceId) ? [core.arm(graceId, t + grace, removeOldInbound)] : [])));
  return out;
}

/** The longest a request of this IKE SA can stay unanswered before its retransmissions give up. */
export function requestLifetime(ike: IkeSaState): number {
  const r = ike.conn.ike.retransmit;
  let total = 0;
  for (let i = 0; i <= r.tries; i++) total += r.timeout * Math.pow(r.base, i) * 1000;
  const limit = ike.conn.ike.dpdTimeout * 1000;
  return limit > 0 ? Math.min(total, limit) : total;
}

export function rekeyIkeSa(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  if (ike.state !== 'established') return [];
  const policy = core.policyFor(ike);
  const optimized = shouldOptimizeIkeRekey({ negotiated: ike.sa!.optimizedNegotiated, enabled: ike.conn.optimizedRekey, configChanged: ike.configChanged === true, refusedOnce: ike.refusedOptimizedIke });
  return sendIkeRekey(core, now, ike, policy, optimized);
}

export function sendIkeRekey(core: EngineCore, now: number, ike: IkeSaState, policy: RekeyPolicy, optimized: boolean, keMethod?: number): Action[] {
  let pending: PendingIkeRekey | undefined;
  let offered: PpkConfig[] = [];
  return request(
    core,
    now,
    ike,
    ExchangeType.CREATE_CHILD_SA,
    () => {
      const started = startIkeRekey(ike.sa!, policy, optimized, keMethod);
      pending = started.pending;
      ike.ikeRekeyInFlight = true;
      const ppk = ppkOffer(core, ike);
      offered = ppk.offered;
      return [...started.request, ...ppk.notifies];
    },
    (t, _h, resp) => {
      ike.ikeRekeyInFlight = false;
      const sel = ppkSelected(resp, offered);
      if (!sel.ok) return deleteIkeSa(core, t, ike, `IKE SA rekey: ${sel.reason}`, true);
      const outcome = completeIkeRekey(withPpk(ike.sa!, sel.ppk), pending!, resp, policy);
      const note = outcome.kind === 'done' || outcome.kind === 'followup' ? ppkNotice(core, ike, 'rekeyed IKE SA', sel.ppk) : [];
      return [...note, ...((): Action[] => {
      if (outcome.kind === 'done' && ike.ikeRekeyCollision) return resolveIkeRekeyCollision(core, t, ike, outcome.ike, outcome.ni, outcome.nr, pending!.optimized);
      if (outcome.kind !== 'done' && outcome.kind !== 'followup' && ike.ikeRekeyCollision) {
        // Ours failed (e.g. the peer had already switched and answered TEMPORARY_FAILURE), theirs
        // succeeded: the peer's new IKE SA is the only one, so the Child SAs move there (§2.8.2).
        return adoptPeerIkeRekey(core, t, ike, `our IKE SA rekey failed (${outcome.kind === 'failed' ? outcome.reason : outcome.kind}), the peer's succeeded`);
      }
      switch (outcome.kind) {
        case 'done': {
          const out = adoptRekeyedIkeSa(core, t, ike, outcome.ike, outcome.ni, outcome.nr, pending!.optimized);
          // The old IKE SA is closed by its rekey initiator (RFC 7296 §2.18).
          ike.state = 'deleting';
          out.push(...request(core, t, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t2) => dropIkeSa(core, t2, ike, 'rekeyed', undefined, true), false, true));
          return out;
        }
        case 'fallback':
          ike.refusedOptimizedIke = true;
          return sendIkeRekey(core, t, ike, policy, false);
        case 'followup':
          ike.ikeRekeyInFlight = true;
          return runFollowups(core, t, ike, outcome.followup, () => {
            ike.ikeRekeyInFlight = false;
            const done = outcome.finish(outcome.followup.secrets);
            if (done.kind !== 'done') return [core.event({ type: 'error', connection: ike.conn.name, message: `IKE SA rekey failed after IKE_FOLLOWUP_KE: ${done.kind}` })];
            const out = adoptRekeyedIkeSa(core, core.lastNow, ike, done.ike, done.ni, done.nr, pending!.optimized);
            ike.state = 'deleting';
            out.push(...request(core, core.lastNow, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t2) => dropIkeSa(core, t2, ike, 'rekeyed', undefined, true), false, true));
            return out;
          }, (reason, fatal) => {
            ike.ikeRekeyInFlight = false;
            return [
              core.event({ type: 'error', connection: ike.conn.name, message: `IKE SA rekey failed in IKE_FOLLOWUP_KE: ${reason}` }),
              ...(fatal ? deleteIkeSa(core, core.lastNow, ike, reason, true) : []),
            ];
          });
        case 'retry-ke':
        case 'failed': {
          // RFC 7296 §1.2/§2.7: INVALID_KE_PAYLOAD names the method the responder wants; try it once.
          if (outcome.kind === 'retry-ke' && keMethod === undefined && outcome.method !== pending!.ke.method && ike.state === 'established') return sendIkeRekey(core, t, ike, policy, false, outcome.method);
          const out: Action[] = [core.event({ type: 'error', connection: ike.conn.name, message: `IKE SA rekey failed: ${outcome.kind === 'failed' ? outcome.reason : outcome.kind}` })];
          // RFC 7296 §2.25: TEMPORARY_FAILURE (e.g. the peer is busy with a Child SA) -> retry a little later.
          if (outcome.kind === 'failed' && outcome.notify === NotifyType.TEMPORARY_FAILURE && ike.state === 'established') {
            ike.rekeyAt = core.retryAt(t);
            out.push(core.arm(`ike:${ike.id}:rekey`, ike.rekeyAt, (t2) => rekeyIkeSa(core, t2, ike)));
          }
          return out;
        }
      }
      })()];
    },
    false,
    true, // exclusive: no Child SA exchange may straddle the switch to the new IKE SA
  );
}

/**
 * RFC 7296 §2.8.2: both exchanges of a simultaneous IKE SA rekey completed. The one holding the lowest
 * of the four nonces made a redundant IKE SA, which its initiator deletes; the Child SAs move to the
 * other one, and the initiator of the surviving SA deletes the old IKE SA. Both peers compare the
 * same four nonces, so both reach the same verdict.
 */
export function resolveIkeRekeyCollision(core: EngineCore, now: number, old: IkeSaState, ours: RekeyIkeSa, ni: Buffer, nr: Buffer, optimized: boolean): Action[] {
  const theirs = old.ikeRekeyCollision!;
  old.ikeRekeyCollision = undefined;
  if (redundantRekey({ ni, nr }, theirs) === 'a') {
    // Ours is redundant: bring it up only to delete it, adopt the peer's, and let the peer delete the old SA.
    const redundant = createRekeyedIkeSa(core, now, old, ours, ni, nr);
    redundant.state = 'rekeyed';
    const out = adoptPeerIkeRekey(core, now, old, 'simultaneous IKE SA rekey: ours holds the lowest nonce and is redundant, deleting it (RFC 7296 §2.8.2)', theirs);
    out.push(...request(core, now, redundant, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t2) => dropIkeSa(core, t2, redundant, 'redundant', undefined, true), false, true));
    return out;
  }
  // Theirs is redundant: the peer deletes it; ours takes the Child SAs and we delete the old IKE SA.
  theirs.fresh.state = 'rekeyed';
  const out: Action[] = [
    core.event({ type: 'notice', connection: old.conn.name, message: "simultaneous IKE SA rekey: the peer's holds the lowest nonce and is redundant, keeping ours (RFC 7296 §2.8.2)" }),
    forgetUnlessDeleted(core, theirs.fresh),
    ...adoptRekeyedIkeSa(core, now, old, ours, ni, nr, optimized),
  ];
  old.state = 'deleting';
  out.push(...request(core, now, old, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t2) => dropIkeSa(core, t2, old, 'rekeyed', undefined, true), false, true));
  return out;
}

/** The peer's new IKE SA (answered in a collision) survives: it takes the Child SAs; the peer deletes the old one. */
export function adoptPeerIkeRekey(core: EngineCore, now: number, old: IkeSaState, why: string, collision = old.ikeRekeyCollision): Action[] {
  old.ikeRekeyCollision = undefined;
  const fresh = collision!.fresh;
  moveChildren(core, old, fresh);
  fresh.establishedAt = now;
  core.counters.ike++;
  if (collision!.optimized) core.counters.optimized++;
  return [
    core.event({ type: 'notice', connection: old.conn.name, message: why }),
    ...core.cancel(`ike:${old.id}:rekey`),
    ...core.cancel(`ike:${old.id}:dpd`),
    core.event({ type: 'ike-rekeyed', oldIkeSaId: old.id, newIkeSaId: fresh.id, connection: old.conn.name, optimized: collision!.optimized }),
    ...armIkeTimers(core, now, fresh, old.reauthAt),
    // The peer, initiator of the surviving SA, deletes the old one; should it never do so, forget it.
    forgetUnlessDeleted(core, old),
  ];
}

/** A replaced IKE SA the peer is expected to delete: dropped silently if it has not after a while. */
export function forgetUnlessDeleted(core: EngineCore, ike: IkeSaState): Action {
  return core.arm(`ike:${ike.id}:half-open`, core.lastNow + HALF_OPEN_TIMEOUT_MS, (t) => (core.sas.get(ike.id) === ike ? dropIkeSa(core, t, ike, 'replaced', undefined, true) : []));
}

/** A new IKE SA made by a rekey of `old`, inheriting its negotiated properties, without Child SAs yet. */
export function createRekeyedIkeSa(core: EngineCore, now: number, old: IkeSaState, sa: RekeyIkeSa, ni: Buffer, nr: Buffer): IkeSaState {
  const fresh = core.newIkeSa(old.conn, sa.originalInitiator, sa.spiI, sa.spiR, old.local, old.remote, now);
  fresh.sa = sa;
  fresh.ni = ni;
  fresh.nr = nr;
  fresh.state = 'established';
  fresh.establishedAt = now;
  fresh.natLocal = old.natLocal;
  fresh.natRemote = old.natRemote;
  fresh.childPfsInfo = old.childPfsInfo;
  fresh.fragmentation = old.fragmentation;
  fresh.peerHashes = old.peerHashes;
  fresh.authenticatedAt = old.authenticatedAt;
  // RFC 9867: USE_PPK_INT, agreed at setup, holds for the IKE SA's successors; each of their
  // CREATE_CHILD_SA exchanges negotiates its own PPK.
  fresh.ppkMode = old.ppkMode;
  fresh.id = hex(sa.originalInitiator ? sa.spiI : sa.spiR);
  fresh.fromRekey = true;
  core.sas.set(fresh.id, fresh);
  return fresh;
}

export function moveChildren(core: EngineCore, old: IkeSaState, fresh: IkeSaState): void {
  moveVirtualIps(core, old, fresh);
  for (const [id, c] of old.children) fresh.children.set(id, c);
  old.children.clear();
  old.state = 'rekeyed';
  old.successor = fresh;
  // A reauthentication under way follows the Child SAs: it replaces the rekeyed IKE SA.
  const reauth = old.reauthBy;
  if (reauth?.reauthOf?.old === old) {
    reauth.reauthOf.old = fresh;
    fresh.reauthBy = reauth;
    old.reauthBy = undefined;
  }
}

/**
 * The IKE SA that holds the Child SAs of `ike` now. A Child SA exchange that began on an IKE SA
 * since rekeyed (a Delete still on its way, a response arriving late) acts on the Child SAs where
 * they moved.
 */
export function childHolder(ike: IkeSaState): IkeSaState {
  let holder = ike;
  while (holder.state === 'rekeyed' && holder.successor) holder = holder.successor;
  return holder;
}

/** Whether our IKE SA rekey would be finished by IKE_FOLLOWUP_KE exchanges (RFC 9370 additional key exchanges). */
export function ikeRekeyNeedsFollowups(ike: IkeSaState): boolean {
  return ike.sa!.keMethods.length > 1 || ike.conn.ike.proposals.some((p) => p.addKe.some((k) => k.some((m) => m !== 0)));
}

/** Move the Child SAs to the new IKE SA created by a rekey; message IDs restart at 0 (§2.18). */
export function adoptRekeyedIkeSa(core: EngineCore, now: number, old: IkeSaState, sa: RekeyIkeSa, ni: Buffer, nr: Buffer, optimized: boolean): Action[] {
  const fresh = createRekeyedIkeSa(core, now, old, sa, ni, nr);
  moveChildren(core, old, fresh);
  core.counters.ike++;
  if (optimized) core.counters.optimized++;
  return [
    ...core.cancel(`ike:${old.id}:rekey`),
    ...core.cancel(`ike:${old.id}:dpd`),
    core.event({ type: 'ike-rekeyed', oldIkeSaId: old.id, newIkeSaId: fresh.id, connection: old.conn.name, optimized }),
    ...armIkeTimers(core, now, fresh, old.reauthAt),
  ];
}

/** Responder side of a finished Child SA rekey: new inbound and outbound SAs, the switch waits for the old SA's Delete. */
export function acceptChildRekeyAsResponder(core: EngineCore, now: number, ike: IkeSaState, target: ChildSaState, sa: RekeyChildSa, nonces: { ni: Buffer; nr: Buffer }): { before: Action[]; after: Action[] } {
  const fresh = addChild(core, now, ike, target.cfg, sa);
  fresh.nonces = nonces;
  fresh.pendingSwitch = { replaced: target, replacedState: target.state };
  target.replacedBy = fresh;
  ike.children.delete(target.childId);
  target.state = 'rekeyed';
  core.counters.child++;
  const optimized = sa.createdBy === 'optimized-rekey';
  if (optimized) core.counters.optimized++;
  return {
    before: [
      ...core.cancel(`child:${target.childId}:rekey`),
      ...core.cancel(`child:${target.childId}:expire`),
      // New inbound before the response; new outbound installed but unused until the old SA's Delete.
      { kind: 'kernel', action: { op: 'installInboundSa', spec: fresh.spec, keys: keysOf(sa.keysIn) } },
      { kind: 'kernel', action: { op: 'installOutboundSa', spec: fresh.spec, keys: keysOf(sa.keysOut) } },
    ],
    after: [
      core.event({ type: 'child-rekeyed', connection: ike.conn.name, child: target.cfg.name, oldSpiIn: target.sa.spiIn, newSpiIn: sa.spiIn, optimized }),
      ...espKeylog(core, fresh),
      ...childTimers(core, fresh),
    ],
  };
}
