// Reauthentication of IKE SAs (RFC 7296 §2.8.3): a new IKE SA set up from scratch with fresh
// authentication, the Child SAs re-created under it make-before-break, then the old IKE SA deleted.
import type { ChildConfig } from '../config.js';
import { ExchangeType, ProtocolId } from '../codec/constants.js';
import { deletePayload } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { type ChildSaState, type IkeSaState, REAUTH_MARGIN_MS, REAUTH_TWIN_MARGIN_MS, type ReauthChild, TWIN_WINDOW_MS } from './state.js';
import { reauthSelectors } from './selectors.js';
import { sealMessage } from './rekey-exchange.js';
import { createChildSa, notePolicy } from './child-sa.js';
import { onAuthResponse } from './ike-auth.js';
import { sendInitRequest } from './ike-sa-init.js';
import { rekeyIkeSa } from './rekey.js';
import { deleteIkeSa } from './teardown.js';

/**
 * Both peers initiated the connection at once and both IKE SAs came up, each with the same Child
 * SAs. As for simultaneous rekeys (RFC 7296 §2.8.2), the IKE SA whose IKE_SA_INIT holds the lowest
 * of the four nonces is redundant; both peers compare the same nonces. It is deleted by the
 * initiator of the survivor: only that peer knows the survivor is complete on both ends (it has the
 * answer to its IKE_AUTH), so it can move its traffic there before the Delete. Twins are two IKE
 * SAs of the connection made by IKE_SA_INIT, one initiated by each peer, that came up within
 * TWIN_WINDOW_MS of each other; one made by a rekey, or one replaced hours later by a
 * reauthentication, is no twin.
 */
/**
 * Whether `fresh` is our reauthentication of `old`: no twins. (The peer's reauthentication of an IKE SA
 * established within TWIN_WINDOW_MS looks like a twin to us and is settled as one by the nonces.)
 */
export function reauthenticates(fresh: IkeSaState, old: IkeSaState): boolean {
  return fresh.reauthOf?.old === old || old.reauthBy === fresh;
}

// ------------------------------------------------------------------------------ reauthentication

/** The latest a reauthentication may start: a margin before the hard lifetime, so that it can finish in time. */
export function latestReauth(now: number, ike: IkeSaState): number {
  if (ike.expiresAt === 0) return Number.MAX_SAFE_INTEGER;
  return ike.expiresAt - Math.min(REAUTH_MARGIN_MS, Math.max(0, ike.expiresAt - now) / 10);
}

/** reauth_time minus a jitter of up to rand_time (as for rekeys), never after the hard lifetime; 0 when no time is left. */
export function nextReauthAt(core: EngineCore, now: number, ike: IkeSaState): number {
  const c = ike.conn.ike;
  const at = Math.min(core.jittered(now, c.reauthTime, c.lifetime.randTime), latestReauth(now, ike));
  return at - now >= 1000 ? at : 0;
}

export function armReauth(core: EngineCore, ike: IkeSaState): Action {
  return core.arm(`ike:${ike.id}:reauth`, ike.reauthAt, (t) => {
    try {
      return startReauth(core, t, ike);
    } catch (e) {
      return [core.event({ type: 'error', connection: ike.conn.name, message: `reauthentication of IKE SA ${ike.id} not started: ${(e as Error).message}` })];
    }
  });
}

/**
 * RFC 7296 §2.8.3: a brand-new IKE SA (IKE_SA_INIT + IKE_AUTH, fresh authentication, no INITIAL_CONTACT)
 * that re-creates every Child SA of `old` with the same selectors and reqids (the first in IKE_AUTH,
 * the others with CREATE_CHILD_SA). The old IKE SA stays in use until all of them are installed.
 */
export function startReauth(core: EngineCore, now: number, old: IkeSaState): Action[] {
  if (core.sas.get(old.id) !== old || old.state !== 'established' || old.reauthBy) return [];
  if (old.vip?.assignedTo === 'peer') {
    // RFC 7296 §2.19: only an initiator asks for a virtual IP; ours would leave the peer without its address.
    old.reauthAt = 0;
    const out: Action[] = [core.event({ type: 'error', connection: old.conn.name, message: `IKE SA ${old.id} not reauthenticated: it holds a virtual IP leased to the peer, so only the peer can reauthenticate it (set reauth_time there)` })];
    // Rekeyed instead, so that it does not run into its hard lifetime.
    if (old.conn.ike.lifetime.rekeyTime > 0 && !core.timers.has(`ike:${old.id}:rekey`)) {
      old.rekeyAt = Math.max(old.rekeyAt, core.retryAt(now));
      out.push(core.arm(`ike:${old.id}:rekey`, old.rekeyAt, (t) => (old.state === 'established' && !old.reauthBy ? rekeyIkeSa(core, t, old) : [])));
    }
    return out;
  }
  // The original responder's new IKE SA, up within TWIN_WINDOW_MS of the old one, would look to the
  // peer like the twin of a simultaneous start (settled by the nonces): wait until that window is over.
  const earliest = old.establishedAt + TWIN_WINDOW_MS + REAUTH_TWIN_MARGIN_MS;
  if (!old.initiator && !old.fromRekey && now < earliest) {
    old.reauthAt = earliest;
    return [
      core.event({ type: 'notice', connection: old.conn.name, message: `reauthentication of IKE SA ${old.id} deferred by ${Math.ceil((earliest - now) / 1000)} s: it came up too recently to be told from a simultaneous start` }),
      armReauth(core, old),
    ];
  }
  const children: ReauthChild[] = [...old.children.values()]
    .filter((c) => c.state !== 'rekeyed' && c.state !== 'deleting')
    .map((c) => ({ cfg: c.cfg, localTs: c.sa.localTs, remoteTs: c.sa.remoteTs, requested: false }));
  const spiI = core.newIkeSpi();
  const fresh = core.newIkeSa(old.conn, true, spiI, Buffer.alloc(8), old.local, old.remote, now);
  fresh.reauthOf = { old, children };
  const first = children[0];
  if (first) {
    first.requested = true;
    fresh.authChild = { cfg: first.cfg, spiIn: 0, sent: [] };
  }
  old.reauthBy = fresh;
  core.sas.set(fresh.id, fresh);
  return [
    ...core.cancel(`ike:${old.id}:reauth`),
    // The reauthentication replaces the IKE SA: no rekey of it meanwhile.
    ...core.cancel(`ike:${old.id}:rekey`),
    core.event({ type: 'notice', connection: old.conn.name, message: `reauthenticating IKE SA ${old.id} as ${fresh.id} with ${children.length} Child SA(s) (RFC 7296 §2.8.3)` }),
    ...sendInitRequest(core, now, fresh, undefined, undefined),
  ];
}

/** IKE_AUTH answered for a reauthentication: the other Child SAs follow in CREATE_CHILD_SA exchanges. */
export function onReauthAuthResponse(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): Action[] {
  const out = onAuthResponse(core, now, ike, payloads);
  const r = ike.reauthOf;
  if (!r || ike.state !== 'established') return out;
  const first = r.children[0];
  if (first && first.outcome === undefined) first.outcome = 'refused in IKE_AUTH';
  for (const rc of r.children) {
    if (rc.requested) continue;
    rc.requested = true;
    out.push(...createChildSa(core, now, ike, rc.cfg, undefined, undefined, false, reauthSelectors(rc)));
  }
  out.push(...settleReauth(core, now, ike));
  return out;
}

/** One Child SA of a reauthentication was re-created (true) or not (why). */
export function reauthChildSettled(core: EngineCore, now: number, ike: IkeSaState, cfg: ChildConfig, outcome: true | string): Action[] {
  const rc = ike.reauthOf?.children.find((c) => c.requested && c.outcome === undefined && c.cfg === cfg);
  if (!rc) return [];
  rc.outcome = outcome;
  return settleReauth(core, now, ike);
}

/** Every Child SA re-created (or given up): only now is the old IKE SA deleted (make-before-break). */
export function settleReauth(core: EngineCore, now: number, fresh: IkeSaState): Action[] {
  const r = fresh.reauthOf;
  if (!r || r.children.some((c) => c.outcome === undefined)) return [];
  fresh.reauthOf = undefined;
  const old = r.old;
  if (old.reauthBy === fresh) old.reauthBy = undefined;
  const failed = r.children.filter((c) => c.outcome !== true);
  const out: Action[] = [core.event({ type: 'notice', connection: fresh.conn.name, message: `IKE SA ${old.id} reauthenticated as ${fresh.id}: ${r.children.length - failed.length} of ${r.children.length} Child SA(s) moved` })];
  if (failed.length > 0) {
    out.push(core.event({ type: 'error', connection: fresh.conn.name, message: `reauthentication of IKE SA ${old.id}: Child SA(s) ${failed.map((c) => `'${c.cfg.name}' (${String(c.outcome)})`).join(', ')} not re-created, closed with the old IKE SA` }));
  }
  if (core.sas.get(old.id) === old) out.push(...deleteIkeSa(core, now, old, 'reauthenticated', true));
  return out;
}

/** The reauthentication's new IKE SA failed: the old one keeps running and tries again a reauth interval later. */
export function reauthFailed(core: EngineCore, now: number, fresh: IkeSaState, reason: string, kind?: 'auth'): Action[] {
  const old = fresh.reauthOf!.old;
  fresh.reauthOf = undefined;
  if (old.reauthBy !== fresh) return [];
  old.reauthBy = undefined;
  const alive = core.sas.get(old.id) === old && old.state === 'established';
  const out: Action[] = [core.event({ type: 'error', connection: old.conn.name, message: `reauthentication of IKE SA ${old.id} failed: ${reason}${alive ? '; it stays in use until its hard lifetime' : ''}` })];
  if (alive && old.conn.ike.reauthTime > 0 && !old.conn.passive) {
    old.reauthAt = nextReauthAt(core, now, old);
    if (old.reauthAt > 0) out.push(armReauth(core, old));
  } else if (alive && old.conn.ike.lifetime.rekeyTime > 0) {
    // An operator's reauthentication without reauth_time: the IKE SA goes back to being rekeyed.
    old.rekeyAt = Math.max(old.rekeyAt, core.retryAt(now));
    out.push(core.arm(`ike:${old.id}:rekey`, old.rekeyAt, (t) => (old.state === 'established' && !old.reauthBy ? rekeyIkeSa(core, t, old) : [])));
  }
  if (alive && kind === 'auth' && fresh.sa) {
    // The peer may hold the new IKE SA as established (we rejected its authentication after it
    // accepted ours): one Delete without waiting for the answer, so that it forgets it and its
    // Child SAs instead of switching to them when the old IKE SA goes.
    out.push(core.send(fresh, sealMessage(fresh.sa, ExchangeType.INFORMATIONAL, fresh.nextRequestId++, false, [deletePayload(ProtocolId.IKE)], core.rng)));
  }
  return out;
}

/**
 * The Child SA (and its IKE SA) that a new Child SA of `ike` replaces by reauthentication: the same
 * connection and reqid under an older IKE SA. Initiator: the IKE SA being reauthenticated. Responder:
 * an IKE SA already up before this one began (so not the twin of a simultaneous initiation).
 */
export function reauthReplaces(core: EngineCore, ike: IkeSaState, child: ChildSaState): { owner: IkeSaState; child: ChildSaState } | undefined {
  const live = (c: ChildSaState) => c !== child && c.cfg.reqid === child.cfg.reqid && (c.state === 'installed' || c.state === 'rekeying');
  if (ike.reauthOf) {
    for (const s of [ike.reauthOf.old, ...core.sas.values()]) {
      if (s === ike || s.conn.name !== ike.conn.name) continue;
      const c = [...s.children.values()].find(live);
      if (c) return { owner: s, child: c };
    }
    return undefined;
  }
  if (ike.initiator) return undefined;
  const claimed = new Set([...ike.children.values()].map((c) => c.reauthSwitch));
  for (const s of core.sas.values()) {
    // Authenticated before this IKE SA began (an IKE SA rekey keeps that time): not the twin of a simultaneous initiation.
    if (s === ike || s.conn.name !== ike.conn.name || s.state !== 'established' || s.authenticatedAt === 0 || s.authenticatedAt > ike.createdAt || s.remote.address !== ike.remote.address) continue;
    const c = [...s.children.values()].find((x) => live(x) && !claimed.has(x));
    if (c) return { owner: s, child: c };
  }
  return undefined;
}

/**
 * Initiator of a reauthentication: the new Child SA's inbound and outbound SAs are installed; one
 * UPDPOLICY moves the per-reqid outbound policy to it and the old outbound SA goes. The old inbound
 * SA stays until the old IKE SA is gone plus the grace period (the peer switches on its Delete).
 */
export function retireForReauth(core: EngineCore, owner: IkeSaState, found: ChildSaState, fresh: ChildSaState): Action[] {
  // A rekey of it we answered but whose switch has not come: the policy still uses the SA it was to
  // replace; the rekeyed SA never carried traffic and goes with the old IKE SA.
  const old = found.pendingSwitch?.replaced ?? found;
  if (found.pendingSwitch) found.pendingSwitch = undefined;
  else owner.children.delete(found.childId);
  old.state = 'rekeyed';
  (owner.reauthRetired ??= []).push(old);
  return [
    ...core.cancel(`child:${old.childId}:rekey`),
    ...core.cancel(`child:${old.childId}:expire`),
    { kind: 'kernel', action: { op: 'updateOutboundPolicy', spec: notePolicy(core, fresh.spec), previousSpiOut: old.sa.spiOut } },
    { kind: 'kernel', action: { op: 'deleteOutboundSa', spec: old.spec } },
    core.event({ type: 'child-rekeyed', connection: owner.conn.name, child: old.cfg.name, oldSpiIn: old.sa.spiIn, newSpiIn: fresh.sa.spiIn, optimized: false }),
  ];
}

/** Inbound SAs of Child SAs moved away by a reauthentication: deleted a grace period after their IKE SA. */
export function retiredInboundGrace(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  const retired = ike.reauthRetired ?? [];
  ike.reauthRetired = undefined;
  return retired.map((c) =>
    core.arm(`child:${c.childId}:delete-grace`, now + core.config.rekeyGraceTime * 1000, () => {
      core.usedSpis.delete(c.sa.spiIn);
      return [{ kind: 'kernel', action: { op: 'deleteInboundSa', spec: c.spec } }];
    }),
  );
}

/**
 * Responder of a reauthentication: the old IKE SA goes (its initiator deleted it once every new Child
 * SA was installed, so the peer already sends on them): the outbound policies move to the new Child
 * SAs, the old outbound SAs go, the old inbound SAs stay for the grace period.
 */
export function handOverReauthenticated(core: EngineCore, old: IkeSaState): Action[] {
  const out: Action[] = [];
  for (const s of core.sas.values()) {
    if (s === old || s.state !== 'established' || s.conn.name !== old.conn.name) continue;
    for (const fresh of s.children.values()) {
      if (!fresh.reauthSwitch) continue;
      // The SA it replaces, or the one that replaced it by a Child SA rekey meanwhile (policies are per reqid).
      const x = old.children.get(fresh.reauthSwitch.childId) === fresh.reauthSwitch ? fresh.reauthSwitch : [...old.children.values()].find((c) => c.cfg.reqid === fresh.cfg.reqid && (c.state === 'installed' || c.state === 'rekeying'));
      if (!x) continue;
      fresh.reauthSwitch = undefined;
      // A rekey of it we answered but whose switch never came: the policy still uses the SA it was to replace;
      // the unused rekeyed SA goes with the old IKE SA.
      const current = x.pendingSwitch?.replaced ?? x;
      if (x.pendingSwitch) x.pendingSwitch = undefined;
      else old.children.delete(x.childId);
      current.state = 'rekeyed';
      out.push(
        ...core.cancel(`child:${current.childId}:rekey`),
        ...core.cancel(`child:${current.childId}:expire`),
        { kind: 'kernel', action: { op: 'updateOutboundPolicy', spec: notePolicy(core, fresh.spec), previousSpiOut: current.sa.spiOut } },
        { kind: 'kernel', action: { op: 'deleteOutboundSa', spec: current.spec } },
        core.event({ type: 'child-rekeyed', connection: old.conn.name, child: current.cfg.name, oldSpiIn: current.sa.spiIn, newSpiIn: fresh.sa.spiIn, optimized: false }),
      );
      (old.reauthRetired ??= []).push(current);
    }
  }
  return out;
}
