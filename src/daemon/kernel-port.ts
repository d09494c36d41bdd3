// The daemon's side of the kernel: carries out KernelActions through src/kernel,
// installs trap policies, keeps the Child SAs it installed (for counters and for
// teardown) and records what it owns in a state file, so that a later start can
// find and remove what a crashed run left behind.
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP, isIPv6 } from 'node:net';
import type { ChildSaKernelSpec, KernelAction, KernelEventInput, TrafficSelectorSpec, VirtualIpSpec } from '../ike/engine/actions.js';
import type { ChildConfig, ConnectionConfig, TrafficSelectorConfig } from '../ike/config.js';
import { addressToBigInt, bigIntToAddress, parsePrefix, rangeToPrefixes } from '../kernel/address.js';
import type { SourceRoutes } from '../kernel/virtual-ip.js';

/** What the daemon needs of the kernel layer (src/kernel), so tests can use a fake. */
export interface KernelOps {
  apply(action: KernelAction): Promise<KernelEventInput | undefined>;
  installPolicies(spec: ChildSaKernelSpec): Promise<void>;
  deletePolicies(spec: ChildSaKernelSpec): Promise<void>;
  counters(spec: ChildSaKernelSpec): Promise<Extract<KernelEventInput, { type: 'counters' }>>;
  /** Remove every SA and policy carrying one of these reqids; returns the counts. */
  flushReqids(reqids: number[]): Promise<{ sas: number; policies: number }>;
  /** Routes that give the host's own traffic into a tunnel its virtual IP as source (RFC 7296 §2.19). */
  installSourceRoutes?(r: SourceRoutes): Promise<void>;
  removeSourceRoutes?(r: SourceRoutes): Promise<void>;
  close(): void;
}

export interface StateFile {
  pid: number;
  startedAt: string;
  /** Every reqid this run may have used (configured children, traps). */
  reqids: number[];
  /** Child SAs installed (childId -> connection/child, SPIs), for operators reading it. */
  children: { childId: number; connection: string; child: string; reqid: number; spiIn: string; spiOut: string }[];
  /** Virtual IPs this run put on the host (RFC 7296 §2.19). */
  virtualIps?: VirtualIpSpec[];
}

export function readStateFile(path: string): StateFile | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as StateFile;
    if (!Array.isArray(v.reqids) || !v.reqids.every((r) => Number.isInteger(r) && r > 0)) return undefined;
    if (v.virtualIps !== undefined) {
      const ok = Array.isArray(v.virtualIps) && v.virtualIps.every((x) => x && typeof x.address === 'string' && isIP(x.address) !== 0 && Number.isInteger(x.prefixLength));
      if (!ok) delete v.virtualIps;
    }
    return v;
  } catch {
    return undefined;
  }
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** A CIDR / single address / "a-b" range of the configuration as a kernel traffic selector. */
export function tsConfigToSpec(ts: TrafficSelectorConfig): TrafficSelectorSpec {
  let startAddress: string;
  let endAddress: string;
  const dash = ts.cidr.indexOf('-');
  if (dash > 0) {
    startAddress = ts.cidr.slice(0, dash).trim();
    endAddress = ts.cidr.slice(dash + 1).trim();
  } else {
    const p = parsePrefix(ts.cidr, 'traffic selector');
    const bits = p.version === 4 ? 32 : 128;
    const base = addressToBigInt(p.address);
    const hostBits = BigInt(bits - p.prefix);
    const start = (base >> hostBits) << hostBits;
    const end = start | ((1n << hostBits) - 1n);
    startAddress = bigIntToAddress(start, p.version);
    endAddress = bigIntToAddress(end, p.version);
  }
  return { protocol: ts.protocol, startPort: ts.startPort, endPort: ts.endPort, startAddress, endAddress };
}

/**
 * The kernel spec of a trap for a child: policies whose out template names the
 * reqid but no SPI, so matching traffic raises an ACQUIRE.
 */
export function trapSpecFor(conn: ConnectionConfig, child: ChildConfig): ChildSaKernelSpec | undefined {
  const local = conn.local.addrs.find((a) => a !== '%any');
  const remote = conn.remote.addrs.find((a) => a !== '%any' && isIPv6(a) === (local ? isIPv6(local) : false));
  if (!local || !remote) return undefined;
  return {
    childId: 0,
    connection: conn.name,
    child: child.name,
    reqid: child.reqid,
    mode: child.mode,
    protocol: 'esp',
    local,
    remote,
    localTs: child.localTs.map(tsConfigToSpec),
    remoteTs: child.remoteTs.map(tsConfigToSpec),
    encr: { id: 20, keyBits: 256 },
    esn: false,
    replayWindow: child.replayWindow,
    softBytes: 0,
    hardBytes: 0,
    softPackets: 0,
    hardPackets: 0,
    hardSeconds: 0,
    ifId: child.ifId,
    mark: child.mark,
    spiIn: 0,
    spiOut: 0,
  };
}

const STATE_FILE_CHILDREN_DELAY_MS = 1000;

/** Tracks the Child SAs installed through it and keeps the state file current. */
export class KernelState {
  readonly children = new Map<number, ChildSaKernelSpec>();
  /** Virtual IPs put on this host (address/prefix -> spec), removed at teardown. */
  readonly virtualIps = new Map<string, VirtualIpSpec>();
  /** Source routes of Child SAs whose local selector is a virtual IP, by connection/reqid. */
  readonly sourceRoutes = new Map<string, SourceRoutes[]>();
  private readonly reqids = new Set<number>();
  private readonly startedAt = new Date().toISOString();
  private saveTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ops: KernelOps,
    private readonly stateFile: string | undefined,
    /** Problems that do not fail the action (source routes), for the log. */
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** Removes what a crashed earlier run recorded in the state file. */
  async cleanStale(): Promise<{ sas: number; policies: number; reqids: number[]; virtualIps?: string[] } | undefined> {
    if (!this.stateFile) return undefined;
    const old = readStateFile(this.stateFile);
    if (!old) return undefined;
    const vips = old.virtualIps ?? [];
    for (const vip of vips) await this.ops.apply({ op: 'removeVirtualIp', vip });
    if (old.reqids.length === 0 && vips.length === 0) return undefined;
    const r = old.reqids.length > 0 ? await this.ops.flushReqids(old.reqids) : { sas: 0, policies: 0 };
    return { ...r, reqids: old.reqids, ...(vips.length > 0 ? { virtualIps: vips.map((v) => `${v.address}/${v.prefixLength}`) } : {}) };
  }

  /** Reqids this run owns (configured ones); written before anything is installed. */
  own(reqids: Iterable<number>): void {
    for (const r of reqids) this.reqids.add(r);
    this.save();
  }

  async apply(action: KernelAction): Promise<KernelEventInput | undefined> {
    const result = await this.ops.apply(action);
    const failed = result?.type === 'action-failed';
    if (action.op === 'addVirtualIp' || action.op === 'removeVirtualIp') {
      const key = `${action.vip.address}/${action.vip.prefixLength}`;
      if (action.op === 'addVirtualIp' && !failed) this.virtualIps.set(key, action.vip);
      if (action.op === 'removeVirtualIp') this.virtualIps.delete(key);
      this.save();
      return result;
    }
    const s = action.spec;
    if (!failed) {
      if (action.op === 'installInboundSa' || action.op === 'installOutboundSa' || action.op === 'installPolicies') {
        this.children.set(s.childId, s);
        if (!this.reqids.has(s.reqid)) {
          this.reqids.add(s.reqid);
          this.save();
        } else this.saveSoon();
      } else if (action.op === 'deleteInboundSa') {
        // the inbound SA goes last (after the grace time of a rekey)
        this.children.delete(s.childId);
        this.saveSoon();
      } else if (action.op === 'updateOutboundPolicy' || action.op === 'updateSaEncap') {
        this.children.set(s.childId, s);
        this.saveSoon();
      }
      if (action.op === 'installPolicies') await this.routeFromVirtualIp(s);
    }
    if (action.op === 'deletePolicies') await this.unrouteFromVirtualIp(s);
    return result;
  }

  /**
   * A Child SA whose local selectors are our virtual IPs: route its remote selectors out toward the
   * peer with the virtual IP as source, or the host's own traffic would leave from its physical
   * address, match no policy and not enter the tunnel.
   */
  private async routeFromVirtualIp(spec: ChildSaKernelSpec): Promise<void> {
    if (!this.ops.installSourceRoutes || spec.localTs.length === 0) return;
    const vips = new Set([...this.virtualIps.values()].map((v) => v.address));
    if (!spec.localTs.every((t) => t.startAddress === t.endAddress && vips.has(t.startAddress))) return;
    const routes: SourceRoutes[] = [];
    for (const vip of new Set(spec.localTs.map((t) => t.startAddress))) {
      const destinations = spec.remoteTs
        .filter((t) => isIP(t.startAddress) === isIP(vip))
        .flatMap((t) => rangeToPrefixes(t.startAddress, t.endAddress).map((p) => `${p.address}/${p.prefix}`));
      if (destinations.length > 0) routes.push({ vip, peer: spec.remote, destinations });
    }
    const key = `${spec.connection}/${spec.reqid}`;
    const done: SourceRoutes[] = [];
    for (const r of routes) {
      try {
        await this.ops.installSourceRoutes(r);
        done.push(r);
      } catch (e) {
        this.warn(`${key}: ${(e as Error).message}; traffic from this host into the tunnel needs its virtual IP as source address`);
      }
    }
    if (done.length > 0) this.sourceRoutes.set(key, done);
  }

  private async unrouteFromVirtualIp(spec: ChildSaKernelSpec): Promise<void> {
    const key = `${spec.connection}/${spec.reqid}`;
    const routes = this.sourceRoutes.get(key);
    if (!routes) return;
    this.sourceRoutes.delete(key);
    for (const r of routes) {
      try {
        await this.ops.removeSourceRoutes?.(r);
      } catch (e) {
        this.warn(`${key}: ${(e as Error).message}`);
      }
    }
  }

  async installTrap(spec: ChildSaKernelSpec): Promise<void> {
    this.reqids.add(spec.reqid);
    this.save();
    await this.ops.installPolicies(spec);
  }

  async removeTrap(spec: ChildSaKernelSpec): Promise<void> {
    await this.ops.deletePolicies(spec);
  }

  counters(spec: ChildSaKernelSpec) {
    return this.ops.counters(spec);
  }

  /** Removes everything this run owns in the kernel and the state file. */
  async teardown(): Promise<{ sas: number; policies: number }> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const r = this.reqids.size ? await this.ops.flushReqids([...this.reqids]) : { sas: 0, policies: 0 };
    this.children.clear();
    for (const [key, routes] of [...this.sourceRoutes]) {
      this.sourceRoutes.delete(key);
      for (const route of routes) await this.ops.removeSourceRoutes?.(route).catch((e: Error) => this.warn(`${key}: ${e.message}`));
    }
    for (const vip of [...this.virtualIps.values()]) await this.ops.apply({ op: 'removeVirtualIp', vip });
    this.virtualIps.clear();
    if (this.stateFile) {
      try {
        unlinkSync(this.stateFile);
      } catch {
        /* never written */
      }
    }
    return r;
  }

  /**
   * The Child SA list is for operators reading the file; what a restart needs to clean up (reqids,
   * virtual IPs) is written at once. So the list is written at most once a second: rewriting it
   * whole on every install would cost O(N) per Child SA with thousands of tunnels.
   */
  private saveSoon(): void {
    if (!this.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.save(), STATE_FILE_CHILDREN_DELAY_MS);
    this.saveTimer.unref?.();
  }

  private save(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.stateFile) return;
    const state: StateFile = {
      pid: process.pid,
      startedAt: this.startedAt,
      reqids: [...this.reqids].sort((a, b) => a - b),
      children: [...this.children.values()].map((c) => ({
        childId: c.childId, connection: c.connection, child: c.child, reqid: c.reqid, spiIn: hex8(c.spiIn), spiOut: hex8(c.spiOut),
      })),
      ...(this.virtualIps.size > 0 ? { virtualIps: [...this.virtualIps.values()] } : {}),
    };
    mkdirSync(dirname(this.stateFile), { recursive: true, mode: 0o700 });
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, this.stateFile);
  }
}

/** KernelOps over the real XFRM client (loaded lazily: the addon is only needed when running). */
export async function openKernel(): Promise<{ ops: KernelOps; onEvent(cb: (ev: KernelEventInput | { type: 'overflow' }) => void): void }> {
  const k = await import('../kernel/index.js');
  const client = k.XfrmClient.open();
  const ops: KernelOps = {
    apply: (a) => k.applyKernelAction(client, a),
    installPolicies: (s) => k.installPolicies(client, s),
    deletePolicies: (s) => k.deletePolicies(client, s),
    counters: (s) => k.queryCounters(client, s),
    installSourceRoutes: (r) => k.installSourceRoutes(r),
    removeSourceRoutes: (r) => k.removeSourceRoutes(r),
    flushReqids: (reqids) => k.flushOwned(client, { reqids }),
    close: () => client.close(),
  };
  return {
    ops,
    onEvent(cb) {
      client.subscribe(['acquire', 'expire']);
      client.on('event', (ev) => {
        if (ev.type === 'acquire') {
          const src = ev.selector.src.split('/')[0]!;
          const dst = ev.selector.dst.split('/')[0]!;
          const one = (a: string, port: number | undefined): TrafficSelectorSpec => ({
            protocol: ev.selector.proto ?? 0, startPort: port ?? 0, endPort: port ? port : 65535, startAddress: a, endAddress: a,
          });
          cb({ type: 'acquire', reqid: ev.reqid, local: ev.src, remote: ev.dst, selector: { src: one(src, ev.selector.sport), dst: one(dst, ev.selector.dport) } });
        } else if (ev.type === 'expire') {
          cb({ type: 'expire', spi: ev.sa.spi, destination: ev.sa.dst, hard: ev.hard });
        } else if (ev.type === 'overflow') {
          cb({ type: 'overflow' });
        }
      });
    },
  };
}
