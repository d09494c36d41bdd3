// Teardown of IKE SAs (RFC 7296 §1.4.1): deleting one with an INFORMATIONAL Delete to the peer, or
// dropping it and everything under it without a word.
import { ExchangeType, ProtocolId } from '../codec/constants.js';
import { deletePayload } from '../codec/helpers.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import type { IkeSaState } from './state.js';
import { removeChildKernel } from './child-sa.js';
import { releaseVirtualIps } from './ike-vip.js';
import { handOverReauthenticated, reauthFailed, retiredInboundGrace } from './reauth.js';
import { abandonRequests, request } from './requests.js';

// ------------------------------------------------------------------------------ teardown

export function deleteIkeSa(core: EngineCore, now: number, ike: IkeSaState, reason: string, tellPeer: boolean): Action[] {
  if (!tellPeer || !ike.sa || ike.state !== 'established') return dropIkeSa(core, now, ike, reason);
  ike.state = 'deleting';
  const out: Action[] = [...handOverReauthenticated(core, ike)];
  for (const c of [...ike.children.values()]) {
    ike.children.delete(c.childId);
    out.push(...removeChildKernel(core, c, true), core.event({ type: 'child-down', connection: ike.conn.name, child: c.cfg.name, spiIn: c.sa.spiIn, spiOut: c.sa.spiOut, reason }));
  }
  ike.queue = [];
  out.push(...abandonRequests(core, ike));
  out.push(...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t) => dropIkeSa(core, t, ike, reason), false, true));
  return out;
}

/** Forget an IKE SA and everything under it, without telling the peer. */
export function dropIkeSa(core: EngineCore, _now: number, ike: IkeSaState, reason: string, kind?: 'auth', quiet = false): Action[] {
  const out: Action[] = [...handOverReauthenticated(core, ike), ...retiredInboundGrace(core, _now, ike)];
  if (ike.reauthOf) out.push(...reauthFailed(core, _now, ike, reason, kind));
  for (const c of [...ike.children.values()]) {
    ike.children.delete(c.childId);
    out.push(...removeChildKernel(core, c, true), core.event({ type: 'child-down', connection: ike.conn.name, child: c.cfg.name, spiIn: c.sa.spiIn, spiOut: c.sa.spiOut, reason }));
  }
  out.push(...releaseVirtualIps(core, ike));
  for (const suffix of ['rekey', 'dpd', 'half-open', 'followup', 'reauth', 'expire']) out.push(...core.cancel(`ike:${ike.id}:${suffix}`));
  out.push(...abandonRequests(core, ike));
  for (const pending of ike.followupsNewChild.clear()) core.usedSpis.delete(pending.spiIn);
  if (core.sas.get(ike.id) === ike) core.sas.delete(ike.id);
  for (const [k, v] of core.halfOpen) if (v === ike) core.halfOpen.delete(k);
  ike.queue = [];
  void kind;
  if (!quiet || ike.state !== 'rekeyed') out.push(core.event({ type: 'ike-down', ikeSaId: ike.id, connection: ike.conn.name, reason }));
  ike.state = 'deleting';
  return out;
}
