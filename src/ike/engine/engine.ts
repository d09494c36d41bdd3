// The sans-IO IKEv2 engine (RFC 7296): IKE SAs and their Child SAs as explicit state, driven by
// datagrams, timers, kernel events and operator commands, each with the caller's `now` (ms). Every
// input returns the ordered actions (datagrams, timers, kernel actions, events) to carry out.
//
// Exchanges: IKE_SA_INIT (NAT detection, INVALID_KE_PAYLOAD retry, child-pfs-info support notify),
// IKE_AUTH with PSK and the initial Child SA (proposal selection, TS narrowing, transport mode,
// optimized-rekey support notify), INFORMATIONAL (Delete, liveness), CREATE_CHILD_SA rekeys of Child
// and IKE SAs, regular and optimized (the message contents come from rekey-exchange.ts).
// Each IKE SA has a window of one request in each direction (RFC 7296 §2.3), retransmits with
// exponential back-off, and answers a retransmitted request from its cached response.
//
// Engine holds the public API (api.ts) over EngineCore (core.ts: the shared state and small helpers);
// each exchange lives in its own module, whose functions take the core as first argument:
//   dispatch.ts          received datagrams routed to the responses and requests they are
//   requests.ts          the request window and retransmission
//   ike-sa-init.ts       IKE_SA_INIT
//   ike-intermediate.ts  IKE_INTERMEDIATE and the PPK decisions
//   ike-auth.ts          IKE_AUTH and the established IKE SA
//   child-sa.ts          CREATE_CHILD_SA for new Child SAs, their kernel state, kernel events
//   rekey.ts             Child and IKE SA rekeys and their collisions
//   reauth.ts            reauthentication
//   informational.ts     INFORMATIONAL (the peer's Delete, DPD)
//   ike-vip.ts           virtual IPs of IKE SAs
//   initiation.ts        initiations, their retries and limit, close_action
//   teardown.ts          deleting and dropping IKE SAs
//   state.ts             the state of IKE and Child SAs, constants
//   selectors.ts         traffic selectors
import { connectionIdentity, type EngineConfig } from '../config.js';
import { ExchangeType, ProtocolId } from '../codec/constants.js';
import { deletePayload } from '../codec/helpers.js';
import { suiteName } from '../proposal.js';
import type { Action, Endpoint, KernelEventInput } from './actions.js';
import type { EngineStats, IkeEngine, IkeSaSnapshot } from './api.js';
import { EngineCore } from './core.js';
import { hex, retryTimer } from './state.js';
import { type PacketSelectors, tsText } from './selectors.js';
import { shouldOptimizeChildRekey } from './optimized-rekey.js';
import { sealMessage } from './rekey-exchange.js';
import { onKernelEvent } from './child-sa.js';
import { dispatch } from './dispatch.js';
import { admitWaiting, forgetAttempt, initiate } from './initiation.js';
import { startReauth } from './reauth.js';
import { rekeyChildSa, rekeyIkeSa } from './rekey.js';
import { deleteIkeSa, dropIkeSa } from './teardown.js';

export { selectorOf } from './selectors.js';

// ---------------------------------------------------------------------------------------------

export class Engine extends EngineCore implements IkeEngine {

  // ------------------------------------------------------------------------------ inputs

  receive(now: number, data: Buffer, local: Endpoint, remote: Endpoint): Action[] {
    this.counters.datagramsIn++;
    try {
      return admitWaiting(this, now, dispatch(this, now, data, local, remote));
    } catch (e) {
      this.counters.dropped++;
      this.log('warn', { error: (e as Error).message, remote: `${remote.address}:${remote.port}` }, 'dropped a datagram that could not be processed');
      return [];
    }
  }

  timerFired(now: number, id: string): Action[] {
    const handler = this.timers.get(id);
    if (!handler) return [];
    this.timers.delete(id);
    try {
      return admitWaiting(this, now, handler(now));
    } catch (e) {
      this.log('error', { timer: id, error: (e as Error).message }, 'timer handler failed');
      return [];
    }
  }

  kernelEvent(now: number, ev: KernelEventInput): Action[] {
    return admitWaiting(this, now, onKernelEvent(this, now, ev));
  }

  initiate(now: number, connection: string, childName?: string, packet?: PacketSelectors): Action[] {
    return initiate(this, now, connection, childName, packet);
  }

  /**
   * Reauthenticate an IKE SA (RFC 7296 §2.8.3): a new IKE SA from scratch with fresh authentication,
   * its Child SAs re-created under it make-before-break, then the old IKE SA deleted.
   */
  reauthenticate(now: number, ikeSaId: string): Action[] {
    const ike = this.sas.get(ikeSaId);
    if (!ike || ike.state !== 'established') throw new Error(`no established IKE SA '${ikeSaId}'`);
    if (ike.conn.passive) throw new Error(`connection '${ike.conn.name}' is passive: it never initiates, so it does not reauthenticate`);
    if (ike.reauthBy) throw new Error(`IKE SA '${ikeSaId}' is already being reauthenticated (new IKE SA ${ike.reauthBy.id})`);
    if (ike.vip?.assignedTo === 'peer') throw new Error(`IKE SA '${ikeSaId}' holds a virtual IP leased to the peer: only the peer, which asks for it in IKE_AUTH, can reauthenticate it`);
    return startReauth(this, now, ike);
  }

  rekeyIke(now: number, ikeSaId: string): Action[] {
    const ike = this.sas.get(ikeSaId);
    if (!ike || ike.state !== 'established') throw new Error(`no established IKE SA '${ikeSaId}'`);
    return rekeyIkeSa(this, now, ike);
  }

  rekeyChild(now: number, childId: number): Action[] {
    for (const ike of this.sas.values()) {
      const child = ike.children.get(childId);
      if (child && ike.state === 'established') return rekeyChildSa(this, now, ike, child);
    }
    throw new Error(`no installed Child SA with id ${childId}`);
  }

  terminate(now: number, target: { ikeSaId?: string; connection?: string }): Action[] {
    const victims = [...this.sas.values()].filter((s) => (target.ikeSaId ? s.id === target.ikeSaId : s.conn.name === target.connection) && s.state !== 'deleting');
    const out: Action[] = [];
    if (target.connection && this.attempts.has(target.connection)) {
      // The operator ends the connection: no further attempts to establish it.
      out.push(...forgetAttempt(this, target.connection), this.event({ type: 'notice', connection: target.connection, message: 'terminated by the operator: no further attempts to establish the connection' }));
    }
    if (victims.length === 0 && out.length === 0) throw new Error(target.ikeSaId ? `no IKE SA '${target.ikeSaId}'` : `no IKE SA of connection '${target.connection}'`);
    for (const ike of victims) out.push(...deleteIkeSa(this, now, ike, 'terminated by the operator', true));
    return out;
  }

  reload(now: number, config: EngineConfig): Action[] {
    const old = new Map(this.config.connections.map((c) => [c.name, JSON.stringify(c, bufferReplacer)]));
    const oldIdentity = new Map(this.config.connections.map((c) => [c.name, connectionIdentity(c)]));
    this.config = config;
    const out: Action[] = [];
    const softlyChanged = new Set<string>();
    const ppkRotated = new Set<string>();
    for (const ike of [...this.sas.values()]) {
      const fresh = config.connections.find((c) => c.name === ike.conn.name);
      if (fresh && JSON.stringify(fresh, bufferReplacer) === old.get(ike.conn.name)) continue;
      if (fresh && JSON.stringify({ ...fresh, ppk: fresh.ppk && { ...fresh.ppk, keys: [] } }, bufferReplacer) === JSON.stringify({ ...ike.conn, ppk: ike.conn.ppk && { ...ike.conn.ppk, keys: [] } }, bufferReplacer)) {
        // Only the PPK values changed (rotation): nothing negotiated is affected, so optimized rekeys stay
        // allowed; RFC 9867 offers the new PPKs in the next CREATE_CHILD_SA.
        ike.conn = fresh;
        for (const c of ike.children.values()) c.cfg = fresh.children.find((f) => f.name === c.cfg.name) ?? c.cfg;
        ppkRotated.add(fresh.name);
        continue;
      }
      if (fresh && connectionIdentity(fresh) === oldIdentity.get(ike.conn.name) && (ike.state === 'established' || ike.state === 'rekeyed')) {
        // Only proposals, lifetimes or timers changed: the SAs stay, the new settings apply from their
        // next rekey, which must then be a regular one (optimized rekeys inherit the old algorithms, draft §3).
        softlyChanged.add(fresh.name);
        ike.conn = fresh;
        ike.configChanged = true;
        for (const c of ike.children.values()) {
          c.cfg = fresh.children.find((f) => f.name === c.cfg.name) ?? c.cfg;
          c.configChanged = true;
        }
        continue;
      }
      out.push(...deleteIkeSa(this, now, ike, fresh ? 'configuration changed' : 'connection removed', true));
    }
    for (const name of [...this.attempts.keys()]) {
      const fresh = config.connections.find((c) => c.name === name);
      if (!fresh || fresh.passive || JSON.stringify(fresh, bufferReplacer) !== old.get(name)) out.push(...forgetAttempt(this, name));
    }
    for (const name of ppkRotated) out.push(this.event({ type: 'notice', connection: name, message: 'configuration reloaded: new PPKs, offered from the next CREATE_CHILD_SA (RFC 9867) or authentication (RFC 8784)' }));
    for (const name of softlyChanged) out.push(this.event({ type: 'notice', connection: name, message: 'configuration reloaded: new proposals and lifetimes apply from the next rekey, which is a regular one' }));
    for (const c of config.connections) {
      const before = old.get(c.name);
      if ((before === undefined || before !== JSON.stringify(c, bufferReplacer)) && !softlyChanged.has(c.name) && !ppkRotated.has(c.name) && !c.passive && c.children.some((ch) => ch.startAction === 'start')) {
        out.push(...initiate(this, now, c.name));
      }
    }
    return out;
  }

  shutdown(now: number): Action[] {
    const out: Action[] = [];
    for (const name of [...this.attempts.keys()]) out.push(...forgetAttempt(this, name));
    // Every peer's Delete first, then the kernel state: with thousands of IKE SAs the removals take a
    // while, and a peer whose Delete waited behind them might not get it before the daemon exits.
    for (const ike of this.sas.values()) {
      if (ike.sa && (ike.state === 'established' || ike.state === 'rekeyed')) {
        // One Delete without waiting for the answer: we are going away (RFC 7296 §1.4.1).
        const mid = ike.nextRequestId++;
        out.push(this.send(ike, sealMessage(ike.sa, ExchangeType.INFORMATIONAL, mid, false, [deletePayload(ProtocolId.IKE)], this.rng)));
      }
    }
    for (const ike of [...this.sas.values()]) out.push(...dropIkeSa(this, now, ike, 'daemon shutdown'));
    return out;
  }

  listSas(_now: number): IkeSaSnapshot[] {
    return [...this.sas.values()].map((ike) => ({
      ikeSaId: ike.id,
      connection: ike.conn.name,
      state: ike.state === 'established' ? 'established' : ike.state === 'rekeyed' ? 'rekeyed' : ike.state === 'deleting' ? 'deleting' : 'connecting',
      initiator: ike.initiator,
      spiI: hex(ike.spiI),
      spiR: hex(ike.spiR),
      local: ike.local,
      remote: ike.remote,
      localId: ike.conn.local.id.value,
      remoteId: ike.conn.remote.id.value,
      suite: ike.sa ? suiteName(ike.sa.chosen) : '',
      natDetected: { local: ike.natLocal, remote: ike.natRemote },
      optimizedRekeyNegotiated: ike.sa?.optimizedNegotiated ?? false,
      childPfsInfoNegotiated: ike.childPfsInfo,
      rekeyAt: ike.rekeyAt,
      reauthAt: ike.reauthAt,
      establishedAt: ike.establishedAt,
      ...(ike.vip ? { virtualIps: [...ike.vip.addresses] } : {}),
      children: [...ike.children.values()].map((c) => ({
        childId: c.childId,
        name: c.cfg.name,
        state: c.state,
        mode: c.sa.mode,
        spiIn: c.sa.spiIn,
        spiOut: c.sa.spiOut,
        suite: suiteName(c.sa.chosen),
        localTs: c.sa.localTs.map(tsText),
        remoteTs: c.sa.remoteTs.map(tsText),
        rekeyAt: c.rekeyAt,
        expiresAt: c.expiresAt,
        optimizedRekeyReady: shouldOptimizeChildRekey({ negotiated: ike.sa?.optimizedNegotiated ?? false, enabled: ike.conn.optimizedRekey, keMethods: c.sa.keMethods, configChanged: c.configChanged === true, refusedOnce: c.refusedOptimized }),
        ...(c.sa.keMethods !== undefined ? { keMethods: c.sa.keMethods } : {}),
      })),
    }));
  }

  stats(): EngineStats {
    let childSas = 0;
    let halfOpen = 0;
    for (const s of this.sas.values()) {
      childSas += s.children.size;
      if (s.state === 'init-received') halfOpen++;
    }
    return {
      ikeSas: this.sas.size,
      halfOpen,
      childSas,
      datagramsIn: this.counters.datagramsIn,
      datagramsOut: this.counters.datagramsOut,
      dropped: this.counters.dropped,
      retransmits: this.counters.retransmits,
      rekeys: { ike: this.counters.ike, child: this.counters.child, optimized: this.counters.optimized },
      initiations: { waiting: this.waitingInitiations.size, retrying: [...this.attempts.keys()].filter((n) => this.timers.has(retryTimer(n))).length },
    };
  }
}


function bufferReplacer(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `buf:${(v as { data: number[] }).data.length}:${Buffer.from((v as { data: number[] }).data).toString('base64')}`;
  return v;
}
