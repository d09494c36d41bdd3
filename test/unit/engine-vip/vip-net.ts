// Configurations and a small many-host network for virtual IP tests (RFC 7296 §2.19): one responder
// with address pools and several road-warrior initiators, each engine with a StrictKernel.
import { parseConfig } from '../../../src/daemon/config.js';
import { Engine } from '../../../src/ike/engine/engine.js';
import type { Action, Endpoint, EngineEvent } from '../../../src/ike/engine/actions.js';
import type { EngineConfig } from '../../../src/ike/config.js';
import { seededRng, StrictKernel } from '../../helpers/engine-pair.js';

export const PSK = 'virtual addresses for road warriors 0123';

export interface VipSide {
  addr: string;
  id: string;
  peerAddr: string;
  peerId: string;
  /** Initiator: local.vips. */
  vips?: string[];
  /** Responder: pools and dns. */
  pools?: string[];
  dns?: string[];
  localTs?: string[];
  remoteTs?: string[];
  start?: boolean;
  optimized?: boolean;
  /** A second child, started on demand. */
  extraChild?: { localTs?: string[]; remoteTs: string[] };
  ikeRekey?: string;
}

/** One connection "site" (YAML through the daemon's loader, so its defaults apply). */
export function vipConfig(o: VipSide): EngineConfig {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const yaml = `
connections:
  site:
    local: { addrs: [${o.addr}], id: ${o.id}, auth: psk${o.vips ? `, vips: ${list(o.vips)}` : ''} }
    remote: { addrs: ["${o.peerAddr}"], id: ${o.peerId}, auth: psk }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], rekey_time: ${o.ikeRekey ?? '4h'} }
    optimized_rekey: ${o.optimized === false ? 'no' : 'yes'}
${o.pools ? `    pools: ${list(o.pools)}\n` : ''}${o.dns ? `    dns: ${list(o.dns)}\n` : ''}    children:
      lan:
${o.localTs ? `        local_ts: ${list(o.localTs)}\n` : ''}${o.remoteTs ? `        remote_ts: ${list(o.remoteTs)}\n` : ''}        esp_proposals: [aes256gcm16-x25519]
        rekey_time: 1h
        start_action: ${o.start ? 'start' : 'none'}
${o.extraChild ? `      dmz:
${o.extraChild.localTs ? `        local_ts: ${list(o.extraChild.localTs)}\n` : ''}        remote_ts: ${list(o.extraChild.remoteTs)}
        esp_proposals: [aes128gcm16]
        start_action: none
` : ''}`;
  const cfg = parseConfig(yaml, `${o.id}.yaml`).engine;
  cfg.connections.forEach((c) => c.children.forEach((ch, i) => (ch.reqid = ch.reqid || 100 + i)));
  return cfg;
}

interface Host {
  name: string;
  addr: string;
  engine: Engine;
  kernel: StrictKernel;
}

/** Hosts on one segment: datagrams go to the host owning the destination address after `latency` ms. */
export class VipNet {
  now = 1_000_000;
  latency = 5;
  readonly hosts = new Map<string, Host>();
  readonly events: { host: string; event: EngineEvent }[] = [];
  private queue: { at: number; to: string; data: Buffer; local: Endpoint; remote: Endpoint }[] = [];
  private timers: { host: string; id: string; at: number }[] = [];
  private seed = 1;

  add(name: string, addr: string, cfg: EngineConfig): Host {
    const h: Host = { name, addr, engine: new Engine(cfg, { rng: seededRng(this.seed++ * 7919) }), kernel: new StrictKernel() };
    this.hosts.set(name, h);
    return h;
  }

  host(name: string): Host {
    return this.hosts.get(name)!;
  }

  call(name: string, fn: (e: Engine, now: number) => Action[]): void {
    this.apply(name, fn(this.host(name).engine, this.now));
  }

  private apply(name: string, actions: Action[]): void {
    const h = this.host(name);
    for (const a of actions) {
      switch (a.kind) {
        case 'send': {
          const to = [...this.hosts.values()].find((x) => x.addr === a.remote.address);
          if (to) this.queue.push({ at: this.now + this.latency, to: to.name, data: a.data, local: a.remote, remote: a.local });
          break;
        }
        case 'timer':
          this.timers = this.timers.filter((t) => !(t.host === name && t.id === a.id));
          this.timers.push({ host: name, id: a.id, at: a.at });
          break;
        case 'cancelTimer':
          this.timers = this.timers.filter((t) => !(t.host === name && t.id === a.id));
          break;
        case 'kernel':
          h.kernel.apply(a.action);
          break;
        case 'event':
          this.events.push({ host: name, event: a.event });
          break;
      }
    }
    h.kernel.endBatch();
  }

  run(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const d = this.queue.reduce<(typeof this.queue)[number] | undefined>((m, x) => (!m || x.at < m.at ? x : m), undefined);
      const t = this.timers.reduce<(typeof this.timers)[number] | undefined>((m, x) => (!m || x.at < m.at ? x : m), undefined);
      const next = d && (!t || d.at <= t.at) ? d.at : t?.at;
      if (next === undefined || next > end) break;
      this.now = Math.max(this.now, next);
      if (d && d.at === next) {
        this.queue.splice(this.queue.indexOf(d), 1);
        this.call(d.to, (e, now) => e.receive(now, d.data, d.local, d.remote));
      } else if (t) {
        this.timers.splice(this.timers.indexOf(t), 1);
        this.call(t.host, (e, now) => e.timerFired(now, t.id));
      }
    }
    this.now = end;
  }

  eventsOf<T extends EngineEvent['type']>(type: T, host?: string): Extract<EngineEvent, { type: T }>[] {
    return this.events.filter((e) => e.event.type === type && (!host || e.host === host)).map((e) => e.event as Extract<EngineEvent, { type: T }>);
  }

  violations(): string[] {
    return [...this.hosts.values()].flatMap((h) => h.kernel.violations.map((v) => `${h.name}: ${v}`));
  }
}

/** A gateway handing out virtual IPs to several road warriors (one connection per identity, remote %any). */
export function gatewayConfig(o: { addr: string; id: string; peers: string[]; pools?: string[]; dns?: string[]; localTs: string[]; remoteTs?: string[]; optimized?: boolean }): EngineConfig {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const conns = o.peers
    .map(
      (peer) => `
  rw-${peer.split('.')[0]}:
    local: { addrs: [${o.addr}], id: ${o.id}, auth: psk }
    remote: { addrs: ["%any"], id: ${peer}, auth: psk }
    psk: "${PSK}"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], rekey_time: 4h }
    optimized_rekey: ${o.optimized === false ? 'no' : 'yes'}
    passive: yes
${o.pools ? `    pools: ${list(o.pools)}\n` : ''}${o.dns ? `    dns: ${list(o.dns)}\n` : ''}    children:
      lan:
        local_ts: ${list(o.localTs)}
${o.remoteTs ? `        remote_ts: ${list(o.remoteTs)}\n` : ''}        esp_proposals: [aes256gcm16-x25519, aes128gcm16]
        rekey_time: 1h`,
    )
    .join('');
  const cfg = parseConfig(`connections:${conns}\n`, `${o.id}.yaml`).engine;
  let reqid = 200;
  cfg.connections.forEach((c) => c.children.forEach((ch) => (ch.reqid = ch.reqid || reqid++)));
  return cfg;
}
