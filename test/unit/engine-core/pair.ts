// Two engines back to back in one process: a virtual clock, a link that can drop or duplicate
// datagrams, and a fake kernel per side that records SAs and policies and checks the order rules.
import { parseConfig } from '../../../src/daemon/config.js';
import { Engine } from '../../../src/ike/engine/engine.js';
import type { Action, EngineEvent, KernelAction } from '../../../src/ike/engine/actions.js';
import type { EngineConfig } from '../../../src/ike/config.js';

export interface SideOptions {
  psk?: string;
  ike?: string;
  esp?: string;
  optimized?: boolean;
  childPfsInfo?: boolean;
  mode?: 'tunnel' | 'transport';
  dpd?: string;
  startAction?: 'start' | 'none' | 'trap';
  remoteId?: string;
  /** Extra YAML keys for the Child SA `lan`, e.g. `tfc_padding: 1200`. */
  childExtra?: string;
}

export function configFor(side: 'a' | 'b', o: SideOptions = {}): EngineConfig {
  const a = side === 'a';
  const yaml = `
connections:
  site:
    local: { addrs: [${a ? '192.0.2.1' : '192.0.2.2'}], id: ${a ? 'gw-a.example' : 'gw-b.example'}, auth: psk }
    remote: { addrs: [${a ? '192.0.2.2' : '192.0.2.1'}], id: ${o.remoteId ?? (a ? 'gw-b.example' : 'gw-a.example')}, auth: psk }
    psk: "${o.psk ?? 'a shared secret of some length 0123'}"
    ike: { proposals: [${o.ike ?? 'aes256gcm16-prfsha384-x25519'}], rekey_time: 4h${o.dpd ? `, dpd_delay: ${o.dpd}` : ''} }
    optimized_rekey: ${o.optimized === false ? 'no' : 'yes'}
    child_pfs_info: ${o.childPfsInfo === false ? 'no' : 'yes'}
    children:
      lan:
        local_ts: [${a ? '10.1.0.0/24' : '10.2.0.0/24'}]
        remote_ts: [${a ? '10.2.0.0/24' : '10.1.0.0/24'}]
        esp_proposals: [${o.esp ?? 'aes256gcm16-x25519'}]
        mode: ${o.mode ?? 'tunnel'}
        rekey_time: 1h
        start_action: ${o.startAction ?? (a ? 'start' : 'none')}
${o.childExtra ? `        ${o.childExtra}\n` : ''}`;
  const loaded = parseConfig(yaml, `${side}.yaml`);
  const engine = loaded.engine;
  engine.connections.forEach((c) => c.children.forEach((ch, i) => (ch.reqid = ch.reqid || 100 + i)));
  return engine;
}

export interface KernelSa {
  spi: number;
  dir: 'in' | 'out';
  encKey: string;
  integKey: string;
}

export class FakeKernel {
  readonly sas = new Map<string, KernelSa>();
  readonly policies = new Map<number, number>(); // reqid -> outbound SPI pinned by the template
  readonly log: KernelAction[] = [];
  readonly violations: string[] = [];

  apply(a: KernelAction): void {
    this.log.push(a);
    const key = (dir: string, spi: number) => `${dir}:${spi.toString(16)}`;
    switch (a.op) {
      case 'installInboundSa':
        if (this.sas.has(key('in', a.spec.spiIn))) this.violations.push(`inbound SA ${a.spec.spiIn} installed twice`);
        this.sas.set(key('in', a.spec.spiIn), { spi: a.spec.spiIn, dir: 'in', encKey: a.keys.encKey.toString('hex'), integKey: a.keys.integKey?.toString('hex') ?? '' });
        break;
      case 'installOutboundSa':
        this.sas.set(key('out', a.spec.spiOut), { spi: a.spec.spiOut, dir: 'out', encKey: a.keys.encKey.toString('hex'), integKey: a.keys.integKey?.toString('hex') ?? '' });
        break;
      case 'installPolicies':
        if (!this.sas.has(key('out', a.spec.spiOut))) this.violations.push('policy installed before its outbound SA');
        this.policies.set(a.spec.reqid, a.spec.spiOut);
        break;
      case 'updateOutboundPolicy':
        if (!this.sas.has(key('out', a.spec.spiOut))) this.violations.push('policy switched to an SPI with no outbound SA');
        if (this.policies.get(a.spec.reqid) !== a.previousSpiOut) this.violations.push('policy switch from an SPI the policy did not use');
        this.policies.set(a.spec.reqid, a.spec.spiOut);
        break;
      case 'deleteOutboundSa':
        if (this.policies.get(a.spec.reqid) === a.spec.spiOut && this.policiesInUse(a.spec.reqid)) this.violations.push('deleted the outbound SA the policy still uses');
        this.sas.delete(key('out', a.spec.spiOut));
        break;
      case 'deleteInboundSa':
        this.sas.delete(key('in', a.spec.spiIn));
        break;
      case 'deletePolicies':
        this.policies.delete(a.spec.reqid);
        break;
      default:
        break;
    }
  }

  private policiesInUse(_reqid: number): boolean {
    // Deleting the outbound SA together with its policies (teardown) is fine: only a delete that
    // leaves the policy pointing at a missing SA is a violation, checked by callers via `outboundOk`.
    return false;
  }

  /** Every policy points at an installed outbound SA. */
  outboundOk(): boolean {
    for (const spi of this.policies.values()) if (!this.sas.has(`out:${spi.toString(16)}`)) return false;
    return true;
  }
}

interface Pending {
  at: number;
  to: 'a' | 'b';
  data: Buffer;
  local: { address: string; port: number };
  remote: { address: string; port: number };
}

export class EnginePair {
  now = 1_000_000;
  readonly a: Engine;
  readonly b: Engine;
  readonly kernelA = new FakeKernel();
  readonly kernelB = new FakeKernel();
  readonly events: { side: 'a' | 'b'; event: EngineEvent }[] = [];
  readonly wire: { from: 'a' | 'b'; data: Buffer }[] = [];
  private readonly timers = { a: new Map<string, number>(), b: new Map<string, number>() };
  private inflight: Pending[] = [];
  private sent = 0;
  /** Drop every Nth datagram (0 = none). */
  dropEvery = 0;
  duplicate = false;
  /** Cut the link entirely. */
  cut = false;
  /** Drop the datagrams this returns true for (after `dropEvery`). */
  dropIf?: (from: 'a' | 'b', data: Buffer) => boolean;
  latency = 5;

  constructor(cfgA: EngineConfig, cfgB: EngineConfig, seed = 1) {
    let s = seed;
    const rng = (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        b[i] = s >>> 24;
      }
      return b;
    };
    void rng; // deterministic RNG available; real randomness is used so keys are realistic
    this.a = new Engine(cfgA);
    this.b = new Engine(cfgB);
  }

  engine(side: 'a' | 'b'): Engine {
    return side === 'a' ? this.a : this.b;
  }

  apply(side: 'a' | 'b', actions: Action[]): void {
    const kernel = side === 'a' ? this.kernelA : this.kernelB;
    for (const act of actions) {
      switch (act.kind) {
        case 'send': {
          this.sent++;
          this.wire.push({ from: side, data: act.data });
          if (this.cut) break;
          if (this.dropEvery && this.sent % this.dropEvery === 0) break;
          if (this.dropIf?.(side, act.data)) break;
          const p: Pending = { at: this.now + this.latency, to: side === 'a' ? 'b' : 'a', data: act.data, local: act.remote, remote: act.local };
          this.inflight.push(p);
          if (this.duplicate) this.inflight.push({ ...p, at: p.at + 1 });
          break;
        }
        case 'timer':
          this.timers[side].set(act.id, act.at);
          break;
        case 'cancelTimer':
          this.timers[side].delete(act.id);
          break;
        case 'kernel':
          kernel.apply(act.action);
          break;
        case 'event':
          this.events.push({ side, event: act.event });
          break;
      }
    }
  }

  /** Advance the clock, delivering datagrams and firing timers in time order. */
  run(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: { at: number; fire: () => void } | undefined;
      for (const p of this.inflight) if (!next || p.at < next.at) next = { at: p.at, fire: () => this.deliver(p) };
      for (const side of ['a', 'b'] as const) {
        for (const [id, at] of this.timers[side]) {
          if (!next || at < next.at) next = { at, fire: () => { this.timers[side].delete(id); this.apply(side, this.engine(side).timerFired(this.now, id)); } };
        }
      }
      if (!next || next.at > end) break;
      this.now = Math.max(this.now, next.at);
      next.fire();
    }
    this.now = end;
  }

  private deliver(p: Pending): void {
    this.inflight = this.inflight.filter((x) => x !== p);
    this.apply(p.to, this.engine(p.to).receive(this.now, p.data, p.local, p.remote));
  }

  inject(to: 'a' | 'b', data: Buffer, port = 500): void {
    const a = { address: '192.0.2.1', port };
    const b = { address: '192.0.2.2', port };
    this.apply(to, this.engine(to).receive(this.now, data, to === 'a' ? a : b, to === 'a' ? b : a));
  }

  eventsOf(type: EngineEvent['type'], side?: 'a' | 'b'): EngineEvent[] {
    return this.events.filter((e) => e.event.type === type && (!side || e.side === side)).map((e) => e.event);
  }
}

/** The two kernels hold mirror images: each inbound SA of one is an outbound SA of the other with the same keys. */
export function kernelsMirror(k1: FakeKernel, k2: FakeKernel): boolean {
  if (k1.sas.size === 0) return false;
  for (const sa of k1.sas.values()) {
    const other = k2.sas.get(`${sa.dir === 'in' ? 'out' : 'in'}:${sa.spi.toString(16)}`);
    if (!other || other.encKey !== sa.encKey || other.integKey !== sa.integKey) return false;
  }
  return k1.sas.size === k2.sas.size;
}
