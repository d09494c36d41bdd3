// ikev2d's I/O shell: configuration, UDP sockets, timers, the kernel, the control
// socket and logging around the sans-IO engine. Every engine input (datagram, timer,
// kernel event, operator command) goes through one ActionQueue, so the engine's
// actions are carried out in the order it produced them.
import type { Logger } from 'pino';
import type { Action, EngineEvent, KernelEventInput } from '../ike/engine/actions.js';
import type { IkeEngine, EngineOptions } from '../ike/engine/api.js';
import type { ConnectionConfig, EngineConfig } from '../ike/config.js';
import { loadConfigFile, type LoadedConfig } from './config.js';
import { ActionQueue } from './applier.js';
import { TimerTable, realScheduler, type Scheduler } from './timers.js';
import { UdpTransport, expandListen, type SocketOptions } from './transport.js';
import { ControlServer, type Command } from './control.js';
import { KeylogWriter } from './keylog.js';
import { KernelState, trapSpecFor, type KernelOps } from './kernel-port.js';
import { spiHex, type ListedIkeSa } from './format.js';

export type EngineFactory = (config: EngineConfig, options: EngineOptions) => IkeEngine | Promise<IkeEngine>;

/** The protocol engine (src/ike/engine/engine.ts), loaded when the daemon starts. */
export const defaultEngineFactory: EngineFactory = async (config, options) => {
  const modPath = '../ike/engine/engine.js';
  const mod = (await import(modPath)) as { Engine: new (c: EngineConfig, o: EngineOptions) => IkeEngine };
  return new mod.Engine(config, options);
};

export interface DaemonOptions {
  configPath: string;
  log: Logger;
  /** Overrides the configuration's keylog_file. */
  keylogFile?: string;
  engineFactory?: EngineFactory;
  /** Kernel access; default: the XFRM client of the process's network namespace. */
  kernel?: { ops: KernelOps; onEvent?(cb: (ev: KernelEventInput | { type: 'overflow' }) => void): void };
  sockets?: SocketOptions;
  scheduler?: Scheduler;
  /** Load configuration without reading a file (tests). */
  loadConfig?: (path: string) => LoadedConfig;
  /** Seconds between NAT keepalives (RFC 3948 §2.3; default 20). */
  keepaliveInterval?: number;
}

/** Children configured with reqid 0 get stable reqids from reqidBase, by connection/child name. */
export class ReqidAllocator {
  private readonly byName = new Map<string, number>();
  private next: number;

  constructor(base: number) {
    this.next = base;
  }

  assign(config: EngineConfig): EngineConfig {
    const explicit = new Set(config.connections.flatMap((c) => c.children.map((ch) => ch.reqid)).filter((r) => r !== 0));
    const taken = new Set([...explicit, ...this.byName.values()]);
    return {
      ...config,
      connections: config.connections.map((c) => ({
        ...c,
        children: c.children.map((ch) => {
          if (ch.reqid !== 0) return ch;
          const key = `${c.name}/${ch.name}`;
          let r = this.byName.get(key);
          if (r === undefined || explicit.has(r)) {
            while (taken.has(this.next)) this.next++;
            r = this.next++;
            taken.add(r);
            this.byName.set(key, r);
          }
          return { ...ch, reqid: r };
        }),
      })),
    };
  }
}

export class Daemon {
  private engine!: IkeEngine;
  private config!: LoadedConfig;
  private engineConfig!: EngineConfig;
  private reqids!: ReqidAllocator;
  private queue!: ActionQueue;
  private timers!: TimerTable;
  private transport!: UdpTransport;
  private control: ControlServer | undefined;
  private kernel!: KernelState;
  private kernelOps!: KernelOps;
  private keylog: KeylogWriter | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private readonly traps = new Map<string, ReturnType<typeof trapSpecFor> & object>();
  private readonly log: Logger;
  private readonly sched: Scheduler;
  private readonly startedAt: number;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log;
    this.sched = opts.scheduler ?? realScheduler;
    this.startedAt = this.sched.now();
  }

  private now(): number {
    return this.sched.now();
  }

  get controlPath(): string {
    return this.config.daemon.controlSocket;
  }

  async start(): Promise<void> {
    const load = this.opts.loadConfig ?? ((p: string) => loadConfigFile(p));
    this.config = load(this.opts.configPath);
    for (const w of this.config.warnings) this.log.warn({ config: this.config.file }, w);
    this.reqids = new ReqidAllocator(this.config.daemon.reqidBase);
    this.engineConfig = this.reqids.assign(this.config.engine);

    const kernel = this.opts.kernel ?? (await (await import('./kernel-port.js')).openKernel());
    this.kernelOps = kernel.ops;
    this.kernel = new KernelState(kernel.ops, this.config.daemon.stateFile, (message) => this.log.warn(message));
    const stale = await this.kernel.cleanStale();
    if (stale) this.log.warn({ stateFile: this.config.daemon.stateFile, ...stale }, 'removed kernel state left by an earlier run');
    this.kernel.own(this.configuredReqids(this.engineConfig));

    const keylogFile = this.opts.keylogFile ?? this.config.daemon.keylogFile;
    if (keylogFile) {
      this.keylog = new KeylogWriter(keylogFile);
      this.log.warn({ keylog: keylogFile, esp: this.keylog.espFile }, 'writing IKE and ESP keys for Wireshark: debugging only');
    }

    this.engine = await (this.opts.engineFactory ?? defaultEngineFactory)(this.engineConfig, {
      log: (level, obj, msg) => this.log[level](obj, msg),
    });

    this.timers = new TimerTable((id, now) => void this.queue.submit(() => this.engine.timerFired(now, id)), this.sched);
    this.queue = new ActionQueue({
      send: (local, remote, data) => this.transport.send(local, remote, data),
      armTimer: (id, at) => this.timers.arm(id, at),
      cancelTimer: (id) => this.timers.cancel(id),
      kernel: (a) => this.kernel.apply(a),
      event: (e) => this.onEngineEvent(e),
      feedback: (ev) => this.engine.kernelEvent(this.now(), ev),
      error: (err, what) => this.log.error({ err }, `${what} failed`),
    });

    this.transport = new UdpTransport(
      {
        port: this.config.daemon.port,
        nattPort: this.config.daemon.nattPort,
        ...(this.opts.sockets ? { sockets: this.opts.sockets } : {}),
        onError: (err, where) => this.log.warn({ err: err.message }, `${where}: ${err.message}`),
      },
      (data, local, remote) => void this.queue.submit(() => this.engine.receive(this.now(), data, local, remote)),
    );
    const wanted = expandListen(this.config.daemon.listen);
    const bound = await this.transport.bind(wanted);
    if (bound.length === 0) throw new Error(`could not bind UDP ${this.config.daemon.port}/${this.config.daemon.nattPort} on any of: ${wanted.join(', ') || '(no addresses)'}`);
    this.log.info({ addresses: bound, port: this.config.daemon.port, nattPort: this.config.daemon.nattPort }, 'listening');

    kernel.onEvent?.((ev) => {
      if (ev.type === 'overflow') {
        this.log.warn('kernel event notifications were dropped (netlink overflow)');
        return;
      }
      this.log.debug({ kernelEvent: ev.type, ...('spi' in ev ? { spi: spiHex(ev.spi) } : {}), ...('reqid' in ev ? { reqid: ev.reqid } : {}) }, 'kernel event');
      void this.queue.submit(() => this.engine.kernelEvent(this.now(), ev));
    });

    this.control = new ControlServer(this.config.daemon.controlSocket, (cmd, args) => this.command(cmd, args));
    await this.control.listen();

    await this.installTraps(this.engineConfig.connections);
    for (const c of this.engineConfig.connections) {
      if (!c.passive && c.children.some((ch) => ch.startAction === 'start')) {
        this.log.info({ connection: c.name }, 'initiating (start_action start)');
        void this.queue.submit(() => this.engine.initiate(this.now(), c.name));
      }
    }
    const every = (this.opts.keepaliveInterval ?? 20) * 1000;
    this.keepaliveTimer = setInterval(() => this.sendKeepalives(), every);
    this.keepaliveTimer.unref();
    this.log.info({ config: this.config.file, control: this.config.daemon.controlSocket, connections: this.engineConfig.connections.map((c) => c.name) }, 'ikev2d started');
  }

  private configuredReqids(cfg: EngineConfig): number[] {
    return cfg.connections.flatMap((c) => c.children.map((ch) => ch.reqid));
  }

  private async installTraps(conns: readonly ConnectionConfig[]): Promise<void> {
    for (const c of conns) {
      for (const ch of c.children) {
        if (ch.startAction !== 'trap') continue;
        const spec = trapSpecFor(c, ch);
        if (!spec) {
          this.log.warn({ connection: c.name, child: ch.name }, 'start_action trap needs a concrete local and remote address; no trap installed');
          continue;
        }
        try {
          await this.kernel.installTrap(spec);
          this.traps.set(`${c.name}/${ch.name}`, spec);
          this.log.info({ connection: c.name, child: ch.name, reqid: ch.reqid }, 'trap policies installed');
        } catch (e) {
          this.log.error({ connection: c.name, child: ch.name, err: (e as Error).message }, 'installing trap policies failed');
        }
      }
    }
  }

  private async removeTraps(names: string[]): Promise<void> {
    for (const n of names) {
      const spec = this.traps.get(n);
      if (!spec) continue;
      this.traps.delete(n);
      await this.kernel.removeTrap(spec).catch((e: Error) => this.log.warn({ trap: n, err: e.message }, 'removing trap policies failed'));
    }
  }

  /** NAT keepalives from our NAT-T socket while we are behind a NAT. */
  private sendKeepalives(): void {
    if (this.stopping) return;
    for (const sa of this.engine.listSas(this.now())) {
      if (sa.state !== 'established' && sa.state !== 'rekeying') continue;
      if (!sa.natDetected.local || sa.local.port !== this.config.daemon.nattPort) continue;
      try {
        this.transport.sendKeepalive(sa.local, sa.remote);
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'keepalive not sent');
      }
    }
  }

  private onEngineEvent(e: EngineEvent): void {
    if (e.type === 'keylog-ike' || e.type === 'keylog-esp') {
      this.keylog?.write(e);
      return; // keys are never logged
    }
    const { type, ...rest } = e;
    const fields: Record<string, unknown> = { event: type, ...rest };
    for (const k of ['spiIn', 'spiOut', 'oldSpiIn', 'newSpiIn'] as const) {
      if (typeof fields[k] === 'number') fields[k] = spiHex(fields[k] as number);
    }
    switch (e.type) {
      case 'ike-up': this.log.info(fields, `IKE SA ${e.ikeSaId} established (${e.suite})`); break;
      case 'ike-rekeyed': this.log.info(fields, `IKE SA ${e.oldIkeSaId} rekeyed to ${e.newIkeSaId}${e.optimized ? ' (optimized)' : ''}`); break;
      case 'ike-down': this.log.info(fields, `IKE SA ${e.ikeSaId} deleted: ${e.reason}`); break;
      case 'child-up': this.log.info(fields, `Child SA ${e.child} installed, SPIs ${spiHex(e.spiIn)}_i ${spiHex(e.spiOut)}_o (${e.suite})`); break;
      case 'child-rekeyed': this.log.info(fields, `Child SA ${e.child} rekeyed ${spiHex(e.oldSpiIn)}_i -> ${spiHex(e.newSpiIn)}_i${e.optimized ? ' (optimized)' : ''}`); break;
      case 'child-down':
        this.log.info(fields, `Child SA ${e.child} deleted, SPIs ${spiHex(e.spiIn)}_i ${spiHex(e.spiOut)}_o: ${e.reason}`);
        this.reinstallTrap(e.connection, e.child);
        break;
      case 'auth-failed': this.log.warn(fields, `authentication failed: ${e.reason}`); break;
      case 'virtual-ip':
        this.log.info(fields, e.assignedTo === 'us' ? `virtual IP ${e.address} assigned by the peer${e.dns.length ? `, DNS ${e.dns.join(' ')}` : ''}` : `virtual IP ${e.address} leased to the peer`);
        break;
      case 'error': this.log.error(fields, e.message); break;
      case 'notice': this.log.info(fields, e.message); break;
      case 'trap-again': this.trapAfterClose(e.connection, e.child); break;
    }
  }

  /** close_action trap: the Child SA was closed by the peer or lost with it; its trap policies take over again. */
  private trapAfterClose(connection: string, child: string): void {
    const key = `${connection}/${child}`;
    if (!this.traps.has(key)) {
      const c = this.engineConfig.connections.find((x) => x.name === connection);
      const ch = c?.children.find((x) => x.name === child);
      const spec = c && ch ? trapSpecFor(c, ch) : undefined;
      if (!spec) {
        this.log.warn({ connection, child }, 'close_action trap needs a concrete local and remote address; no trap installed');
        return;
      }
      this.traps.set(key, spec);
    }
    this.log.info({ connection, child }, 'close_action trap: trap policies installed again');
    this.reinstallTrap(connection, child);
  }

  /** The Child SA's policies replaced its trap's; when it goes, the trap comes back. */
  private reinstallTrap(connection: string, child: string): void {
    if (this.stopping) return;
    const spec = this.traps.get(`${connection}/${child}`);
    if (!spec) return;
    void this.queue.submit(() => {
      // a rekeyed successor still holds the policies: the trap would replace them
      const live = [...this.kernel.children.values()].some((c) => c.connection === connection && c.child === child && c.spiOut !== 0);
      if (live) return [];
      this.kernel.installTrap(spec).catch((err: Error) => this.log.warn({ connection, child, err: err.message }, 're-installing trap failed'));
      return [];
    });
  }

  // ------------------------------------------------------------ control ---

  private connectionNamed(name: unknown): ConnectionConfig {
    if (typeof name !== 'string' || !name) throw new Error('a connection name is required');
    const c = this.engineConfig.connections.find((x) => x.name === name);
    if (!c) throw new Error(`unknown connection '${name}' (configured: ${this.engineConfig.connections.map((x) => x.name).join(', ') || 'none'})`);
    return c;
  }

  /** Runs an operator command through the queue; resolves with its result when its actions are done. */
  private async run<T>(fn: () => { actions: Action[]; result: T }): Promise<T> {
    let result!: T;
    let error: unknown;
    await this.queue.submit(() => {
      try {
        const r = fn();
        result = r.result;
        return r.actions;
      } catch (e) {
        error = e;
        return [];
      }
    });
    if (error) throw error;
    return result;
  }

  async command(cmd: Command, args: Record<string, unknown>): Promise<unknown> {
    if (this.stopping) throw new Error('ikev2d is shutting down');
    switch (cmd) {
      case 'list-sas':
        return this.listSas();
      case 'stats':
      {
        // process memory (bytes): what the daemon costs per SA, for capacity planning; with
        // args.gc and node --expose-gc, after a full collection (benchmarks want live memory only)
        const gc = (globalThis as { gc?: () => void }).gc;
        if (args.gc === true && typeof gc === 'function') gc();
        const m = process.memoryUsage();
        const memory = { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
        return { ...this.engine.stats(), uptimeSeconds: Math.round((this.now() - this.startedAt) / 1000), memory };
      }
      case 'initiate': {
        const c = this.connectionNamed(args.connection);
        const child = args.child;
        if (child !== undefined && (typeof child !== 'string' || !c.children.some((x) => x.name === child))) {
          throw new Error(`connection '${c.name}' has no child '${String(child)}' (children: ${c.children.map((x) => x.name).join(', ')})`);
        }
        return this.run(() => ({ actions: this.engine.initiate(this.now(), c.name, child as string | undefined), result: { initiated: c.name, ...(child ? { child } : {}) } }));
      }
      case 'rekey': {
        const kind = args.kind;
        const id = args.id;
        if (kind === 'ike') {
          const sa = this.engine.listSas(this.now()).find((s) => s.ikeSaId === String(id));
          if (!sa) throw new Error(`no such IKE SA '${String(id)}'`);
          if (args.reauth === true) return this.run(() => ({ actions: this.engine.reauthenticate(this.now(), sa.ikeSaId), result: { reauthenticating: 'ike', id: sa.ikeSaId } }));
          return this.run(() => ({ actions: this.engine.rekeyIke(this.now(), sa.ikeSaId), result: { rekeying: 'ike', id: sa.ikeSaId } }));
        }
        if (kind === 'child') {
          const n = typeof id === 'number' ? id : Number(String(id).replace(/^.*#/, ''));
          const found = Number.isInteger(n) && this.engine.listSas(this.now()).some((s) => s.children.some((c) => c.childId === n));
          if (!found) throw new Error(`no such Child SA '${String(id)}'`);
          return this.run(() => ({ actions: this.engine.rekeyChild(this.now(), n), result: { rekeying: 'child', id: n } }));
        }
        throw new Error(`rekey: kind must be 'ike' or 'child', got ${JSON.stringify(kind)}`);
      }
      case 'terminate': {
        const target = args.target;
        if (typeof target !== 'string' || !target) throw new Error('terminate: a connection name or IKE SA id is required');
        if (this.engineConfig.connections.some((c) => c.name === target)) {
          return this.run(() => ({ actions: this.engine.terminate(this.now(), { connection: target }), result: { terminated: target } }));
        }
        if (this.engine.listSas(this.now()).some((s) => s.ikeSaId === target)) {
          return this.run(() => ({ actions: this.engine.terminate(this.now(), { ikeSaId: target }), result: { terminated: target } }));
        }
        throw new Error(`terminate: no connection or IKE SA named '${target}'`);
      }
      case 'reload':
        return this.reload();
    }
  }

  async listSas(): Promise<ListedIkeSa[]> {
    const now = this.now();
    const sas = this.engine.listSas(now);
    const rel = (at: number) => (at > 0 && Number.isFinite(at) ? Math.max(0, Math.round((at - now) / 1000)) : null);
    // Every Child SA's counters asked for at once (the addon keeps them in flight on its netlink
    // socket): with thousands of Child SAs, one round trip after another would take seconds.
    const countersOf = async (childId: number) => {
      const spec = this.kernel.children.get(childId);
      if (!spec) return undefined;
      try {
        const k = await this.kernel.counters(spec);
        return { bytesIn: k.bytesIn, bytesOut: k.bytesOut, packetsIn: k.packetsIn, packetsOut: k.packetsOut };
      } catch {
        return undefined; // SA gone meanwhile
      }
    };
    return Promise.all(
      sas.map(async (s) => {
        const children = await Promise.all(
          s.children.map(async (c) => {
            const counters = await countersOf(c.childId);
            return { ...c, ...(counters ? { counters } : {}), rekeyInSeconds: rel(c.rekeyAt) };
          }),
        );
        return { ...s, rekeyInSeconds: rel(s.rekeyAt), ...(s.reauthAt ? { reauthInSeconds: rel(s.reauthAt) } : {}), children };
      }),
    );
  }

  /** SIGHUP / ctl reload: a broken file is rejected whole and the running configuration stays. */
  async reload(): Promise<{ added: string[]; removed: string[]; changed: string[]; updated: string[]; unchanged: string[] }> {
    const load = this.opts.loadConfig ?? ((p: string) => loadConfigFile(p));
    let next: LoadedConfig;
    try {
      next = load(this.opts.configPath);
    } catch (e) {
      this.log.error({ config: this.opts.configPath }, `reload rejected, running configuration kept:\n${(e as Error).message}`);
      throw new Error(`reload rejected, running configuration kept: ${(e as Error).message}`);
    }
    for (const w of next.warnings) this.log.warn({ config: next.file }, w);
    const { diffConfigs } = await import('./config.js');
    const nextEngine = this.reqids.assign(next.engine);
    const diff = diffConfigs(this.engineConfig, nextEngine);
    const names = (l: { name: string }[]) => l.map((c) => c.name);
    const gone = [...diff.removed, ...diff.changed];
    await this.removeTraps(gone.flatMap((c) => c.children.map((ch) => `${c.name}/${ch.name}`)));
    this.kernel.own(this.configuredReqids(nextEngine));
    await this.run(() => ({ actions: this.engine.reload(this.now(), nextEngine), result: undefined }));
    this.engineConfig = nextEngine;
    this.config = { ...next, engine: nextEngine };
    await this.installTraps([...diff.added, ...diff.changed]);
    for (const c of [...diff.added, ...diff.changed]) {
      if (!c.passive && c.children.some((ch) => ch.startAction === 'start')) void this.queue.submit(() => this.engine.initiate(this.now(), c.name));
    }
    const result = { added: names(diff.added), removed: names(diff.removed), changed: names(diff.changed), updated: names(diff.updated), unchanged: names(diff.unchanged) };
    this.log.info(result, 'configuration reloaded');
    return result;
  }

  /** SIGTERM: Deletes to every peer, kernel state removed, sockets closed. */
  shutdown(graceMs = 3000): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('shutting down');
      clearInterval(this.keepaliveTimer);
      await this.control?.close();
      if (this.engine && this.queue) {
        const done = this.queue.submit(() => this.engine.shutdown(this.now()));
        // The Deletes are sent; answers are not awaited beyond the grace time.
        await Promise.race([done, new Promise((r) => setTimeout(r, graceMs).unref())]);
        this.queue.close();
      }
      this.timers?.cancelAll();
      if (this.kernel) {
        try {
          const r = await this.kernel.teardown();
          this.log.info(r, 'kernel state removed');
        } catch (e) {
          this.log.error({ err: (e as Error).message }, 'removing kernel state failed');
        }
      }
      // let the Deletes leave before the sockets close
      await new Promise((r) => setTimeout(r, 50));
      this.transport?.close();
      this.kernelOps?.close();
      this.log.info('ikev2d stopped');
    })();
    return this.stopping;
  }
}
