// Two IKEv2 engines back to back in one process, over a LossyLink and a VirtualClock, each with a
// strict fake kernel that records SAs and policies and reports every ordering rule it sees broken.
// Independent of the engine's own test harness on purpose: different checks catch different bugs.
import { createHash } from 'node:crypto';
import { parseConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/ike/engine/engine.js';
import type { Action, Endpoint, EngineEvent, KernelAction } from '../../src/ike/engine/actions.js';
import type { EngineConfig } from '../../src/ike/config.js';
import { LossyLink, type Host, type LinkOptions } from './lossy-link.js';
import { VirtualClock } from './virtual-clock.js';

export const ADDR = { a: '192.0.2.1', b: '192.0.2.2' } as const;

export interface PeerOptions {
  psk?: string;
  ike?: string;
  esp?: string;
  mode?: 'tunnel' | 'transport';
  optimized?: boolean;
  childPfsInfo?: boolean;
  dpd?: string;
  ikeRekey?: string;
  childRekey?: string;
  startAction?: 'start' | 'none' | 'trap';
  remoteAddrs?: string;
  localTs?: string[];
  remoteTs?: string[];
  forceEncap?: boolean;
  retransmit?: { timeout: string; base: number; tries: number };
  grace?: string;
  extraChild?: boolean;
  keyingtries?: number;
  closeAction?: 'none' | 'trap' | 'start';
  initiateLimit?: number;
}

/** A configuration for host `side` of the pair (a: 192.0.2.1 / 10.1.0.0/24, b: 192.0.2.2 / 10.2.0.0/24). */
export function peerConfig(side: Host, o: PeerOptions = {}): EngineConfig {
  const a = side === 'a';
  const me = a ? 'a' : 'b';
  const peer = a ? 'b' : 'a';
  const lts = o.localTs ?? [a ? '10.1.0.0/24' : '10.2.0.0/24'];
  const rts = o.remoteTs ?? [a ? '10.2.0.0/24' : '10.1.0.0/24'];
  const retr = o.retransmit ? `, retransmit: { timeout: ${o.retransmit.timeout}, base: ${o.retransmit.base}, tries: ${o.retransmit.tries} }` : '';
  const yaml = `
${o.grace || o.initiateLimit !== undefined ? `daemon: { ${[o.grace ? `rekey_grace_time: ${o.grace}` : '', o.initiateLimit !== undefined ? `initiate_limit: ${o.initiateLimit}` : ''].filter(Boolean).join(', ')} }` : ''}
connections:
  site:
    local: { addrs: [${ADDR[me]}], id: gw-${me}.example, auth: psk }
    remote: { addrs: ["${o.remoteAddrs ?? ADDR[peer]}"], id: gw-${peer}.example, auth: psk }
    psk: "${o.psk ?? 'correct horse battery staple 0123456789'}"
    ike: { proposals: [${o.ike ?? 'aes256gcm16-prfsha384-x25519'}], rekey_time: ${o.ikeRekey ?? '4h'}${o.dpd ? `, dpd_delay: ${o.dpd}` : ''}${o.forceEncap ? ', force_encap: yes' : ''}${o.keyingtries !== undefined ? `, keyingtries: ${o.keyingtries}` : ''}${retr} }
    optimized_rekey: ${o.optimized === false ? 'no' : 'yes'}
    child_pfs_info: ${o.childPfsInfo === false ? 'no' : 'yes'}
    children:
      lan:
        local_ts: [${lts.join(', ')}]
        remote_ts: [${rts.join(', ')}]
        esp_proposals: [${o.esp ?? 'aes256gcm16-x25519'}]
        mode: ${o.mode ?? 'tunnel'}
        rekey_time: ${o.childRekey ?? '1h'}
        start_action: ${o.startAction ?? (a ? 'start' : 'none')}
        close_action: ${o.closeAction ?? 'none'}
${o.extraChild ? `      dmz:
        local_ts: [${a ? '10.11.0.0/24' : '10.12.0.0/24'}]
        remote_ts: [${a ? '10.12.0.0/24' : '10.11.0.0/24'}]
        esp_proposals: [aes128gcm16-ecp256]
        start_action: none
` : ''}`;
  const cfg = parseConfig(yaml, `${side}.yaml`).engine;
  // The daemon hands out reqids for children configured with 0; do the same here.
  cfg.connections.forEach((c) => c.children.forEach((ch, i) => (ch.reqid = ch.reqid || 100 + i)));
  return cfg;
}

interface InstalledSa {
  spi: number;
  encKey: string;
  integKey: string;
  encap?: { localPort: number; remotePort: number };
  local: string;
  remote: string;
}

/**
 * Records the kernel state one host would have. Rules checked on every action:
 *  - no SA or policy set installed twice, nothing deleted that is not there;
 *  - policies are installed only once both SAs of the Child SA exist;
 *  - a policy is only re-pointed to an installed outbound SA, from the SPI it used;
 *  - at the end of every batch of actions, every policy points at an installed outbound SA.
 */
export class StrictKernel {
  readonly inbound = new Map<number, InstalledSa>();
  readonly outbound = new Map<number, InstalledSa>();
  readonly policies = new Map<string, number>(); // connection/reqid -> outbound SPI
  /** Virtual IPs on the host: address/prefix -> connection. */
  readonly virtualIps = new Map<string, string>();
  readonly log: KernelAction[] = [];
  readonly violations: string[] = [];

  private static policyKey(spec: { connection: string; reqid: number }): string {
    return `${spec.connection}/${spec.reqid}`;
  }

  apply(a: KernelAction): void {
    this.log.push(a);
    if (a.op === 'addVirtualIp' || a.op === 'removeVirtualIp') {
      const key = `${a.vip.address}/${a.vip.prefixLength}`;
      if (a.op === 'removeVirtualIp') {
        if (!this.virtualIps.delete(key)) this.violations.push(`removed missing virtual IP ${key}`);
      } else if (this.virtualIps.has(key)) this.violations.push(`virtual IP ${key} added twice`);
      else this.virtualIps.set(key, a.vip.connection);
      return;
    }
    const s = a.spec;
    const key = StrictKernel.policyKey(s);
    const rec = (spi: number, keys: { encKey: Buffer; integKey?: Buffer }): InstalledSa => ({
      spi,
      encKey: keys.encKey.toString('hex'),
      integKey: keys.integKey?.toString('hex') ?? '',
      ...(s.encap ? { encap: { ...s.encap } } : {}),
      local: s.local,
      remote: s.remote,
    });
    switch (a.op) {
      case 'installInboundSa':
        if (s.spiIn === 0) this.violations.push('inbound SA with SPI 0');
        if (this.inbound.has(s.spiIn)) this.violations.push(`inbound SA ${hex(s.spiIn)} installed twice`);
        this.inbound.set(s.spiIn, rec(s.spiIn, a.keys));
        break;
      case 'installOutboundSa':
        if (this.outbound.has(s.spiOut)) this.violations.push(`outbound SA ${hex(s.spiOut)} installed twice`);
        this.outbound.set(s.spiOut, rec(s.spiOut, a.keys));
        break;
      case 'installPolicies':
        if (!this.outbound.has(s.spiOut)) this.violations.push(`policies of ${key} installed before outbound SA ${hex(s.spiOut)}`);
        if (!this.inbound.has(s.spiIn)) this.violations.push(`policies of ${key} installed before inbound SA ${hex(s.spiIn)}`);
        if (this.policies.has(key)) this.violations.push(`policies of ${key} installed twice`);
        this.policies.set(key, s.spiOut);
        break;
      case 'updateOutboundPolicy':
        if (!this.outbound.has(s.spiOut)) this.violations.push(`policy of ${key} re-pointed to missing outbound SA ${hex(s.spiOut)}`);
        if (this.policies.get(key) !== a.previousSpiOut) this.violations.push(`policy of ${key} re-pointed from ${hex(a.previousSpiOut)} but it used ${hex(this.policies.get(key) ?? 0)}`);
        this.policies.set(key, s.spiOut);
        break;
      case 'updateSaEncap': {
        const i = this.inbound.get(s.spiIn);
        const o = this.outbound.get(s.spiOut);
        if (!i || !o) this.violations.push(`encapsulation of missing SAs ${hex(s.spiIn)}/${hex(s.spiOut)} updated`);
        if (i && o && (i.encKey !== a.keysIn.encKey.toString('hex') || o.encKey !== a.keysOut.encKey.toString('hex'))) this.violations.push(`encapsulation update of ${hex(s.spiIn)} changed its keys`);
        if (i) this.inbound.set(s.spiIn, { ...i, ...(s.encap ? { encap: { ...s.encap } } : {}) });
        if (o) this.outbound.set(s.spiOut, { ...o, ...(s.encap ? { encap: { ...s.encap } } : {}) });
        break;
      }
      case 'deleteOutboundSa':
        if (!this.outbound.delete(s.spiOut)) this.violations.push(`deleted missing outbound SA ${hex(s.spiOut)}`);
        break;
      case 'deleteInboundSa':
        if (!this.inbound.delete(s.spiIn)) this.violations.push(`deleted missing inbound SA ${hex(s.spiIn)}`);
        break;
      case 'deletePolicies':
        if (!this.policies.delete(key)) this.violations.push(`deleted missing policies of ${key}`);
        break;
      case 'queryCounters':
        break;
    }
  }

  /** End of a batch: no policy may be left pointing at a missing outbound SA. */
  endBatch(): void {
    for (const [key, spi] of this.policies) if (!this.outbound.has(spi)) this.violations.push(`policy of ${key} left pointing at missing outbound SA ${hex(spi)}`);
  }

  get empty(): boolean {
    return this.inbound.size === 0 && this.outbound.size === 0 && this.policies.size === 0 && this.virtualIps.size === 0;
  }
}

/** A deterministic byte source (SHA-256 in counter mode) for reproducible test runs only. */
export function seededRng(seed: number): (n: number) => Buffer {
  let counter = 0;
  return (n: number) => {
    const out: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.push(block);
      have += block.length;
    }
    return Buffer.concat(out).subarray(0, n);
  };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export interface WireRecord {
  at: number;
  from: Host;
  local: Endpoint;
  remote: Endpoint;
  data: Buffer;
}

export class EnginePairHarness {
  readonly clock = new VirtualClock();
  readonly link: LossyLink;
  readonly engines: Record<Host, Engine>;
  readonly kernels: Record<Host, StrictKernel> = { a: new StrictKernel(), b: new StrictKernel() };
  readonly events: { host: Host; at: number; event: EngineEvent }[] = [];
  readonly wire: WireRecord[] = [];
  /** Zero-loss rules across the two kernels (checked after every batch when on):
   *  a policy is only re-pointed to an SPI the peer already has inbound, and an inbound SA is never
   *  deleted while the peer's policy still sends with it (outside a teardown batch). */
  zeroLossChecks = true;
  readonly lossViolations: string[] = [];
  /** Exceptions thrown by the engines (inputs must never throw). */
  readonly thrown: string[] = [];

  /** `seed` makes the engines' random choices (SPIs, nonces, rekey jitter) reproducible; 0 = crypto randomness. */
  constructor(cfgA: EngineConfig, cfgB: EngineConfig, link: LinkOptions = {}, seed = link.seed ?? 1) {
    this.link = new LossyLink(link);
    this.link.privateAddresses = { a: ADDR.a, b: ADDR.b };
    const opts = (n: number) => (seed ? { rng: seededRng(seed * 2 + n) } : {});
    this.engines = { a: new Engine(cfgA, opts(0)), b: new Engine(cfgB, opts(1)) };
  }

  get now(): number {
    return this.clock.now;
  }

  peer(h: Host): Host {
    return h === 'a' ? 'b' : 'a';
  }

  /** Run one engine call and carry out its actions in order. */
  call(host: Host, fn: (e: Engine, now: number) => Action[]): Action[] {
    let actions: Action[];
    try {
      actions = fn(this.engines[host], this.clock.now);
    } catch (e) {
      this.thrown.push(`${host}: ${(e as Error).message}`);
      throw e;
    }
    this.apply(host, actions);
    return actions;
  }

  apply(host: Host, actions: Action[]): void {
    const kernel = this.kernels[host];
    const peerKernel = this.kernels[this.peer(host)];
    const teardown = actions.some((x) => x.kind === 'kernel' && x.action.op === 'deletePolicies');
    for (const act of actions) {
      switch (act.kind) {
        case 'send':
          this.wire.push({ at: this.clock.now, from: host, local: act.local, remote: act.remote, data: act.data });
          this.link.send(this.clock.now, host, act.local, act.remote, act.data);
          break;
        case 'timer':
          this.clock.arm(host, act.id, act.at);
          break;
        case 'cancelTimer':
          this.clock.cancel(host, act.id);
          break;
        case 'kernel': {
          const k = act.action;
          if (this.zeroLossChecks && k.op === 'updateOutboundPolicy' && !peerKernel.inbound.has(k.spec.spiOut)) {
            this.lossViolations.push(`${host} switched to outbound SPI ${hex(k.spec.spiOut)} before the peer installed it inbound`);
          }
          if (this.zeroLossChecks && !teardown && k.op === 'deleteInboundSa' && [...peerKernel.policies.values()].includes(k.spec.spiIn)) {
            this.lossViolations.push(`${host} deleted inbound SPI ${hex(k.spec.spiIn)} while the peer still sends with it`);
          }
          kernel.apply(k);
          break;
        }
        case 'event':
          this.events.push({ host, at: this.clock.now, event: act.event });
          break;
      }
    }
    kernel.endBatch();
  }

  /** Advance virtual time by `ms`, delivering datagrams and firing timers in time order. */
  run(ms: number): void {
    const end = this.clock.now + ms;
    for (;;) {
      const t = this.clock.next();
      const d = this.link.nextAt();
      if ((t === undefined || t.at > end) && (d === undefined || d > end)) break;
      if (d !== undefined && (t === undefined || d <= t.at)) {
        this.clock.advanceTo(d);
        const p = this.link.pop(this.clock.now)!;
        this.call(p.to, (e, now) => e.receive(now, p.data, p.local, p.remote));
      } else if (t) {
        this.clock.take(t);
        this.clock.advanceTo(t.at);
        this.call(t.owner as Host, (e, now) => e.timerFired(now, t.id));
      }
    }
    this.clock.advanceTo(end);
  }

  /** Deliver a datagram straight to `to` as if from the usual peer endpoint (or a given one). */
  inject(to: Host, data: Buffer, from?: Endpoint, port = 500): Action[] {
    const local = { address: ADDR[to], port };
    const remote = from ?? { address: ADDR[this.peer(to)], port };
    return this.call(to, (e, now) => e.receive(now, data, local, remote));
  }

  eventsOf<T extends EngineEvent['type']>(type: T, host?: Host): Extract<EngineEvent, { type: T }>[] {
    return this.events.filter((e) => e.event.type === type && (!host || e.host === host)).map((e) => e.event as Extract<EngineEvent, { type: T }>);
  }

  establish(ms = 5_000): void {
    this.call('a', (e, now) => e.initiate(now, 'site'));
    this.run(ms);
  }

  allViolations(): string[] {
    return [...this.kernels.a.violations.map((v) => `a: ${v}`), ...this.kernels.b.violations.map((v) => `b: ${v}`), ...this.lossViolations];
  }
}

/** Each inbound SA of one kernel is the outbound SA of the other, with the same keys, and vice versa. */
export function mirrored(k1: StrictKernel, k2: StrictKernel): string[] {
  const problems: string[] = [];
  const cmp = (x: Map<number, InstalledSa>, y: Map<number, InstalledSa>, what: string) => {
    for (const [spi, sa] of x) {
      const o = y.get(spi);
      if (!o) problems.push(`${what} ${hex(spi)} has no counterpart`);
      else if (o.encKey !== sa.encKey || o.integKey !== sa.integKey) problems.push(`${what} ${hex(spi)} keys differ`);
    }
  };
  cmp(k1.inbound, k2.outbound, 'inbound of first');
  cmp(k2.inbound, k1.outbound, 'inbound of second');
  return problems;
}
