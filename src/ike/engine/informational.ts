// The INFORMATIONAL exchange (RFC 7296 §1.4): the peer's Delete of IKE and Child SAs, its notifies,
// and liveness checks (dead peer detection, §2.4) of our own.
import type { ChildConfig } from '../config.js';
import { ExchangeType, PayloadType, ProtocolId } from '../codec/constants.js';
import { deletePayload, spi32 } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import type { IkeSaState, RequestAfter } from './state.js';
import { childTimers, notePolicy, removeChildKernel } from './child-sa.js';
import { closeActions } from './initiation.js';
import { adoptPeerIkeRekey, childHolder } from './rekey.js';
import { request } from './requests.js';
import { dropIkeSa } from './teardown.js';

export function armDpd(core: EngineCore, now: number, ike: IkeSaState): Action {
  const delay = ike.conn.ike.dpdDelay * 1000;
  return core.arm(`ike:${ike.id}:dpd`, now + delay, (t) => {
    if (!core.sas.has(ike.id) || ike.state !== 'established') return [];
    const out: Action[] = [];
    if (t - ike.lastActivity >= delay && ike.inflight.size === 0) {
      // Liveness check: an empty INFORMATIONAL request (RFC 7296 §1.4); no answer -> retransmission gives up.
      out.push(...request(core, t, ike, ExchangeType.INFORMATIONAL, () => [], () => []));
    }
    out.push(armDpd(core, t, ike));
    return out;
  });
}

export function onInformational(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): { response: Payload[]; after: RequestAfter } {
  const deletes = payloads.filter((p) => p.type === PayloadType.DELETE);
  if (deletes.some((d) => d.type === PayloadType.DELETE && d.protocol === ProtocolId.IKE)) {
    if (ike.ikeRekeyCollision && ike.state === 'established') {
      // RFC 7296 §2.8.2: the peer's rekey (answered while ours was in flight) survived and the peer
      // deletes the old IKE SA: the Child SAs move to its new IKE SA; our own exchange is abandoned.
      const out = adoptPeerIkeRekey(core, now, ike, "the peer deleted the IKE SA after its rekey won a collision; moving the Child SAs to its new IKE SA");
      ike.ikeRekeyInFlight = false;
      return { response: [], after: { after: [...out, ...dropIkeSa(core, now, ike, 'rekeyed', undefined, true)] } };
    }
    // RFC 7296 §1.4.1: answer with an empty INFORMATIONAL, then the IKE SA and its children are gone.
    const lost = ike.state === 'established' ? [...ike.children.values()].map((c) => c.cfg) : [];
    return { response: [], after: { after: [...dropIkeSa(core, now, ike, 'deleted by the peer', undefined, true), ...closeActions(core, now, ike, lost)] } };
  }
  const response: Payload[] = [];
  const after: Action[] = [];
  const closed: ChildConfig[] = [];
  ike = childHolder(ike);
  for (const d of deletes) {
    if (d.type !== PayloadType.DELETE || d.protocol !== ProtocolId.ESP) continue;
    const ours: Buffer[] = [];
    for (const spi of d.spis) {
      const spiOut = spi.readUInt32BE(0);
      const child = [...ike.children.values()].find((c) => c.sa.spiOut === spiOut);
      const pendingSwitch = [...ike.children.values()].find((c) => c.pendingSwitch?.replaced.sa.spiOut === spiOut);
      if (pendingSwitch) {
        // Responder of a rekey: the initiator deleted the old SA, so it already sends on the new one.
        // Switch our outbound now and keep the old inbound for the grace period (make-before-break).
        const old = pendingSwitch.pendingSwitch!.replaced;
        pendingSwitch.pendingSwitch = undefined;
        ours.push(spi32(old.sa.spiIn));
        after.push(
          { kind: 'kernel', action: { op: 'updateOutboundPolicy', spec: notePolicy(core, pendingSwitch.spec), previousSpiOut: old.sa.spiOut } },
          { kind: 'kernel', action: { op: 'deleteOutboundSa', spec: old.spec } },
          core.arm(`child:${old.childId}:delete-grace`, now + core.config.rekeyGraceTime * 1000, () => {
            core.usedSpis.delete(old.sa.spiIn);
            return [{ kind: 'kernel', action: { op: 'deleteInboundSa', spec: old.spec } }];
          }),
        );
        continue;
      }
      if (child?.pendingSwitch) {
        // RFC 7296 §2.8.1: the peer deletes the SA its own rekey made, redundant after a collision
        // (its rekey of our SA met ours). The SA it was to replace stays in use, with our rekey of it
        // still in flight; only the redundant SA goes, never the per-reqid policies.
        const replaced = child.pendingSwitch.replaced;
        ours.push(spi32(child.sa.spiIn));
        ike.children.delete(child.childId);
        replaced.replacedBy = undefined;
        if (!replaced.supersededBy) {
          ike.children.set(replaced.childId, replaced);
          replaced.state = child.pendingSwitch.replacedState === 'rekeying' ? 'rekeying' : 'installed';
        }
        core.usedSpis.delete(child.sa.spiIn);
        after.push(
          ...core.cancel(`child:${child.childId}:rekey`),
          ...core.cancel(`child:${child.childId}:expire`),
          { kind: 'kernel', action: { op: 'deleteInboundSa', spec: child.spec } },
          { kind: 'kernel', action: { op: 'deleteOutboundSa', spec: child.spec } },
          ...(!replaced.supersededBy && replaced.state === 'installed' ? childTimers(core, replaced) : []),
        );
        continue;
      }
      if (child) {
        ours.push(spi32(child.sa.spiIn));
        ike.children.delete(child.childId);
        after.push(...removeChildKernel(core, child, true), core.event({ type: 'child-down', connection: ike.conn.name, child: child.cfg.name, spiIn: child.sa.spiIn, spiOut: child.sa.spiOut, reason: 'deleted by the peer' }));
        closed.push(child.cfg);
      }
    }
    if (ours.length) response.push(deletePayload(ProtocolId.ESP, ours));
  }
  after.push(...closeActions(core, now, ike, closed));
  return { response, after: { after } };
}
