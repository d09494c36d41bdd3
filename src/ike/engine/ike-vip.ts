// Virtual IPs of IKE SAs (RFC 7296 §2.19, configuration payloads): leased to the peer from our pools
// or assigned to us by the peer, the selectors that follow from them, and their hand-over on rekeys.
import { isIPv4 } from 'node:net';
import type { ConnectionConfig } from '../config.js';
import { NotifyType } from '../codec/constants.js';
import type { AddressRangeSelector, Payload, TrafficSelector } from '../codec/types.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { hex, type IkeSaState } from './state.js';
import { narrow } from './selectors.js';
import { hostSelector, parseVipReply, parseVipRequest, vipReplyPayload } from './virtual-ip.js';

// ------------------------------------------------------------------------------ virtual IPs

/** Our side's selectors of a Child SA: inside the virtual IPs the peer assigned us, if any (RFC 7296 §2.19). */
export function ourTs(ike: IkeSaState, selectors: readonly TrafficSelector[]): TrafficSelector[] {
  return ike.vip?.assignedTo === 'us' ? narrow(selectors, ike.vip.addresses.map(hostSelector)) : [...selectors];
}

/** The peer's selectors of a Child SA: narrowed to the virtual IPs leased to it, if any (RFC 7296 §2.19). */
export function peerTs(ike: IkeSaState, selectors: AddressRangeSelector[]): AddressRangeSelector[] {
  return ike.vip?.assignedTo === 'peer' ? narrow(selectors, ike.vip.addresses.map(hostSelector)) : selectors;
}

/**
 * Responder, IKE_AUTH: answer a CP(CFG_REQUEST) from the connection's pools (RFC 7296 §2.19). A
 * connection without pools ignores the CP payload. With pools, a request without CP is answered
 * FAILED_CP_REQUIRED and an exhausted pool INTERNAL_ADDRESS_FAILURE (§3.10.1); the IKE SA stands,
 * no Child SA is created.
 */
export function leaseVirtualIps(core: EngineCore, ike: IkeSaState, conn: ConnectionConfig, payloads: Payload[], peerId: { type: number; data: Buffer }): { reply?: Payload; refuse?: number; actions: Action[] } {
  const pools = conn.vips?.pool ?? [];
  if (pools.length === 0) return { actions: [] };
  const request = parseVipRequest(payloads);
  if (!request || request.addresses.length === 0) {
    return { refuse: NotifyType.FAILED_CP_REQUIRED, actions: [core.event({ type: 'error', connection: conn.name, message: 'the peer asked for no virtual IP but the connection hands them out: FAILED_CP_REQUIRED, no Child SA' })] };
  }
  const got = core.pools.lease(pools, request, `${peerId.type}:${hex(peerId.data)}`, ike.id);
  if (got.addresses.length === 0) {
    return { refuse: NotifyType.INTERNAL_ADDRESS_FAILURE, actions: [core.event({ type: 'error', connection: conn.name, message: `no virtual IP left to lease for ${got.missing.join(', ')}: INTERNAL_ADDRESS_FAILURE, no Child SA` })] };
  }
  const families = new Set(got.addresses.map((a) => isIPv4(a)));
  const dns = (conn.vips?.dns ?? []).filter((d) => families.has(isIPv4(d)));
  ike.vip = { addresses: got.addresses, dns, assignedTo: 'peer' };
  const actions = got.addresses.map((address) => core.event({ type: 'virtual-ip', ikeSaId: ike.id, connection: conn.name, address, dns, assignedTo: 'peer' }));
  if (got.missing.length > 0) actions.push(core.event({ type: 'error', connection: conn.name, message: `no virtual IP left to lease for ${got.missing.join(', ')}` }));
  return { reply: vipReplyPayload(got.addresses, dns), actions };
}

/**
 * Initiator, IKE_AUTH response: the virtual IPs the responder assigned. We asked because we need
 * one: without any, the IKE SA is deleted (§2.19 lets the initiator tear it down and retry later).
 */
export function takeVirtualIps(core: EngineCore, ike: IkeSaState, payloads: Payload[], errorNotify: number | undefined): { ok: true; actions: Action[] } | { ok: false; reason: string } {
  const reply = parseVipReply(payloads);
  for (const why of reply?.ignored ?? []) core.log('warn', { connection: ike.conn.name }, `CFG_REPLY: ignored ${why}`);
  if (!reply || reply.addresses.length === 0) {
    const why =
      errorNotify === NotifyType.INTERNAL_ADDRESS_FAILURE
        ? 'the responder has no address to assign (INTERNAL_ADDRESS_FAILURE)'
        : errorNotify === NotifyType.FAILED_CP_REQUIRED
          ? 'the responder refused the configuration request (FAILED_CP_REQUIRED)'
          : reply
            ? 'its CFG_REPLY holds no address'
            : 'no CP(CFG_REPLY) in the IKE_AUTH response';
    return { ok: false, reason: `a virtual IP is required but none was assigned: ${why}` };
  }
  ike.vip = { addresses: reply.addresses, dns: reply.dns, assignedTo: 'us' };
  const actions: Action[] = [];
  for (const address of reply.addresses) {
    let holders = core.hostVips.get(address);
    if (!holders) {
      holders = new Set();
      core.hostVips.set(address, holders);
      actions.push({ kind: 'kernel', action: { op: 'addVirtualIp', vip: { connection: ike.conn.name, ikeSaId: ike.id, address, prefixLength: isIPv4(address) ? 32 : 128 } } });
    }
    holders.add(ike.id);
    actions.push(core.event({ type: 'virtual-ip', ikeSaId: ike.id, connection: ike.conn.name, address, dns: reply.dns, assignedTo: 'us' }));
  }
  return { ok: true, actions };
}

/** An IKE SA rekey: the virtual IPs (and pool leases) go with the Child SAs to the new IKE SA. */
export function moveVirtualIps(core: EngineCore, old: IkeSaState, fresh: IkeSaState): void {
  const vip = old.vip;
  if (!vip) return;
  fresh.vip = vip;
  old.vip = undefined;
  if (vip.assignedTo === 'peer') core.pools.transfer(old.id, fresh.id);
  else {
    for (const a of vip.addresses) {
      const holders = core.hostVips.get(a);
      if (holders?.delete(old.id)) holders.add(fresh.id);
    }
  }
}

/** The IKE SA is gone: leases go back to the pool; our virtual IPs leave the host when no IKE SA holds them. */
export function releaseVirtualIps(core: EngineCore, ike: IkeSaState): Action[] {
  const vip = ike.vip;
  if (!vip) return [];
  ike.vip = undefined;
  if (vip.assignedTo === 'peer') {
    core.pools.release(ike.id);
    return [];
  }
  const out: Action[] = [];
  for (const address of vip.addresses) {
    const holders = core.hostVips.get(address);
    if (!holders?.delete(ike.id) || holders.size > 0) continue;
    core.hostVips.delete(address);
    out.push({ kind: 'kernel', action: { op: 'removeVirtualIp', vip: { connection: ike.conn.name, ikeSaId: ike.id, address, prefixLength: isIPv4(address) ? 32 : 128 } } });
  }
  return out;
}
