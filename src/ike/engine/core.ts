// The shared core of the sans-IO IKEv2 engine (RFC 7296): the state of all IKE SAs and their Child
// SAs, the timers, counters and configuration, and the small helpers every exchange module uses
// (timers, events, sending, SPIs). The exchanges themselves live in their own modules.
import { randomBytes } from 'node:crypto';
import type { ChildConfig, ConnectionConfig, EngineConfig } from '../config.js';
import { encodeProtectedForSending, ikeMessageBudget, Reassembler } from '../codec/fragment.js';
import { createIkeSaProtections } from '../crypto/index.js';
import { ExchangeType, PayloadType } from '../codec/constants.js';
import type { IkeHeader, Payload } from '../codec/types.js';
import { ikeHeader } from '../codec/helpers.js';
import type { EngineOptions } from './api.js';
import { type ChildSaState, COOKIE_SECRET_LIFETIME_MS, hex, IKE_PORT, type IkeSaState, type InitiationAttempt, NATT_PORT, RETRY_BASE_MS, RETRY_MAX_MS, retryTimer, ZERO_SPI } from './state.js';
import type { Action, Endpoint, EngineEvent } from './actions.js';
import { AddressPools } from './virtual-ip.js';
import { type PacketSelectors } from './selectors.js';
import { FollowupKeResponder } from './followup-ke.js';
import { openMessage, type RekeyPolicy, sealMessage } from './rekey-exchange.js';
import { createChildSa } from './child-sa.js';
import { sendInitRequest } from './ike-sa-init.js';

export class EngineCore {
  config: EngineConfig;
  readonly rng: (n: number) => Buffer;
  readonly log: NonNullable<EngineOptions['log']>;
  /** Wall-clock time, only for certificate validity dates. */
  readonly wallClock: () => number;
  /** IKE SAs by our own SPI (hex). */
  readonly sas = new Map<string, IkeSaState>();
  /** Responder: half-open SAs by peer address + initiator SPI, to answer retransmitted IKE_SA_INIT. */
  readonly halfOpen = new Map<string, IkeSaState>();
  readonly timers = new Map<string, (now: number) => Action[]>();
  nextChildId = 1;
  /** Stateless COOKIE secrets (RFC 7296 §2.6): the current one and its predecessor stay valid. */
  cookieSecret: { secret: Buffer; version: number; since: number } | undefined;
  previousCookieSecret: { secret: Buffer; version: number; since: number } | undefined;
  /** The `now` of the input being processed, for continuations that run inside it. */
  lastNow = 0;
  readonly usedSpis = new Set<number>();
  /** Which outbound SPI each connection/reqid's policies point to, as last told to the kernel. */
  readonly policyOut = new Map<string, number>();
  /** Responder: the address pools virtual IPs are leased from. */
  readonly pools = new AddressPools();
  /** Initiator: virtual IPs on this host and the IKE SAs holding each. */
  readonly hostVips = new Map<string, Set<string>>();
  /**
   * Initiator: connections being established, by name: the Child SAs to ask for (the first in IKE_AUTH),
   * the triggering packet and the attempts made (`ike.keyingtries`). Forgotten once an IKE SA is up.
   */
  readonly attempts = new Map<string, InitiationAttempt>();
  /** Connections whose initiation waits for a slot under `initiateLimit`, in arrival order. */
  readonly waitingInitiations = new Set<string>();
  readonly counters = { datagramsIn: 0, datagramsOut: 0, dropped: 0, retransmits: 0, ike: 0, child: 0, optimized: 0 };

  constructor(config: EngineConfig, options: EngineOptions = {}) {
    this.config = config;
    this.rng = options.rng ?? ((n) => randomBytes(n));
    this.log = options.log ?? (() => undefined);
    this.wallClock = options.wallClock ?? (() => Date.now());
  }

  initiate(now: number, connection: string, childName?: string, packet?: PacketSelectors): Action[] {
    const conn = this.config.connections.find((c) => c.name === connection);
    if (!conn) throw new Error(`unknown connection '${connection}'`);
    const remoteAddr = conn.remote.addrs.find((a) => a !== '%any');
    const localAddr = conn.local.addrs[0];
    if (!remoteAddr || !localAddr) throw new Error(`connection '${connection}' has no remote or local address to initiate to`);
    const child = (childName ? conn.children.find((c) => c.name === childName) : undefined) ?? conn.children.find((c) => c.startAction === 'start') ?? conn.children[0];
    if (childName && child?.name !== childName) throw new Error(`connection '${connection}' has no child '${childName}'`);
    const existing = [...this.sas.values()].find((s) => s.conn.name === conn.name && s.state === 'established');
    if (existing && child) {
      if ([...existing.children.values()].some((c) => c.cfg.name === child.name)) throw new Error(`child '${child.name}' of '${connection}' is already up`);
      return createChildSa(this, now, existing, child, undefined, packet);
    }
    // An IKE SA of ours for the connection is still being set up: join it instead of starting a
    // second one (which would negotiate the same Child SA twice and install its policies twice).
    const connecting = [...this.sas.values()].find((s) => s.conn.name === conn.name && s.initiator && (s.state === 'init-sent' || s.state === 'auth-sent'));
    if (connecting) {
      if (child && connecting.authChild?.cfg !== child) connecting.extraChildren.add(child);
      return [];
    }
    const pending = this.attempts.get(conn.name);
    if (pending && this.waitingInitiations.has(conn.name)) {
      // Already waiting for a slot: ask for this Child SA too when its turn comes.
      if (child && !pending.children.includes(child.name)) pending.children.push(child.name);
      return [];
    }
    // A new initiation (also one an operator or a packet asks for while a retry waits): tries start again.
    const attempt: InitiationAttempt = { children: child ? [child.name] : [], packet, tries: 1 };
    if (pending && child) for (const c of pending.children) if (!attempt.children.includes(c)) attempt.children.push(c);
    this.attempts.set(conn.name, attempt);
    return [...this.cancel(retryTimer(conn.name)), ...this.launchInitiation(now, conn, attempt)];
  }

  /** IKE SAs we are setting up as initiator (IKE_SA_INIT or IKE_AUTH outstanding). */
  initiating(): number {
    let n = 0;
    for (const s of this.sas.values()) if (s.initiator && (s.state === 'init-sent' || s.state === 'auth-sent')) n++;
    return n;
  }

  /** Start the IKE SA of an attempt now, or queue it while `initiateLimit` IKE SAs are being set up. */
  launchInitiation(now: number, conn: ConnectionConfig, attempt: InitiationAttempt): Action[] {
    const limit = this.config.initiateLimit ?? 0;
    if (limit > 0 && this.initiating() >= limit) {
      this.waitingInitiations.add(conn.name);
      return [];
    }
    const remoteAddr = conn.remote.addrs.find((a) => a !== '%any');
    const localAddr = conn.local.addrs[0];
    if (!remoteAddr || !localAddr) return [];
    const children = attempt.children.map((n) => conn.children.find((c) => c.name === n)).filter((c): c is ChildConfig => c !== undefined);
    const spiI = this.newIkeSpi();
    const ike = this.newIkeSa(conn, true, spiI, Buffer.alloc(8), { address: localAddr, port: conn.local.port ?? IKE_PORT }, { address: remoteAddr, port: conn.remote.port ?? IKE_PORT }, now);
    const [first, ...rest] = children;
    if (first) ike.authChild = { cfg: first, spiIn: 0, sent: [] };
    if (first && attempt.packet) ike.authChildPacket = attempt.packet;
    for (const c of rest) ike.extraChildren.add(c);
    this.sas.set(hex(spiI), ike);
    return sendInitRequest(this, now, ike, undefined, undefined);
  }

  /** After an input: start waiting initiations while fewer than `initiateLimit` IKE SAs are being set up. */
  admitWaiting(now: number, out: Action[]): Action[] {
    if (this.waitingInitiations.size === 0) return out;
    const limit = this.config.initiateLimit ?? 0;
    let busy = this.initiating();
    for (const name of [...this.waitingInitiations]) {
      if (limit > 0 && busy >= limit) break;
      this.waitingInitiations.delete(name);
      const conn = this.config.connections.find((c) => c.name === name);
      const attempt = this.attempts.get(name);
      if (!conn || !attempt || this.hasIkeSaFor(name)) continue;
      out.push(...this.launchInitiation(now, conn, attempt));
      busy++;
    }
    return out;
  }

  /** An IKE SA of the connection is up or being set up (either role). */
  hasIkeSaFor(connection: string): boolean {
    for (const s of this.sas.values()) if (s.conn.name === connection && s.state !== 'deleting' && s.state !== 'rekeyed' && !s.reauthOf) return true;
    return false;
  }

  /** Stop retrying or queueing a connection's initiation (it came up, or the operator or a reload ended it). */
  forgetAttempt(connection: string): Action[] {
    this.attempts.delete(connection);
    this.waitingInitiations.delete(connection);
    return this.cancel(retryTimer(connection));
  }

  /**
   * Our IKE_SA_INIT or IKE_AUTH went unanswered: try again after a jittered, doubling delay until
   * `ike.keyingtries` attempts were made (0 = forever). The jitter spreads many connections that
   * failed together (a peer that was down) over time.
   */
  retryInitiation(now: number, conn: ConnectionConfig, reason: string): Action[] {
    const attempt = this.attempts.get(conn.name);
    if (!attempt || this.config.connections.find((c) => c.name === conn.name) !== conn) return [];
    const limit = conn.ike.keyingtries ?? 1;
    if (limit !== 0 && attempt.tries >= limit) {
      this.attempts.delete(conn.name);
      return [this.event({ type: 'error', connection: conn.name, message: `giving up establishing the connection after ${attempt.tries} attempt${attempt.tries === 1 ? '' : 's'} (ike.keyingtries ${limit}): ${reason}` })];
    }
    const base = Math.min(RETRY_BASE_MS * 2 ** (attempt.tries - 1), RETRY_MAX_MS);
    const delay = Math.round(base * (1 + this.rng(2).readUInt16BE(0) / 0xffff));
    attempt.tries++;
    return [
      this.event({ type: 'notice', connection: conn.name, message: `${reason}; attempt ${attempt.tries}${limit ? ` of ${limit}` : ''} in ${(delay / 1000).toFixed(1)} s` }),
      this.arm(retryTimer(conn.name), now + delay, (t) => this.retryNow(t, conn.name)),
    ];
  }

  retryNow(now: number, name: string): Action[] {
    const conn = this.config.connections.find((c) => c.name === name);
    const attempt = this.attempts.get(name);
    if (!conn || !attempt || conn.passive) return this.forgetAttempt(name);
    if (this.hasIkeSaFor(name)) return this.forgetAttempt(name);
    return this.launchInitiation(now, conn, attempt);
  }

  /**
   * `close_action` of Child SAs the peer deleted, or lost with their IKE SA when the peer deleted it
   * or stopped answering: `start` negotiates them again (in the IKE SA if it is still up, else in a
   * new one), `trap` tells the daemon to put their trap policies back.
   */
  closeActions(now: number, ike: IkeSaState, closed: readonly ChildConfig[]): Action[] {
    const out: Action[] = [];
    const restart: string[] = [];
    for (const cfg of new Set(closed)) {
      if (cfg.closeAction === 'trap') out.push(this.event({ type: 'trap-again', connection: ike.conn.name, child: cfg.name }));
      else if (cfg.closeAction === 'start' && !restart.includes(cfg.name)) restart.push(cfg.name);
    }
    if (restart.length === 0 || ike.conn.passive || this.config.connections.find((c) => c.name === ike.conn.name) !== ike.conn) return out;
    if (this.sas.get(ike.id) === ike && ike.state === 'established') {
      // Only Child SAs went: negotiate them again in this IKE SA once the peer's request is answered.
      out.push(this.arm(`ike:${ike.id}:restart-children`, now, (t) => {
        if (this.sas.get(ike.id) !== ike || ike.state !== 'established') return [];
        const up = new Set([...ike.children.values()].map((c) => c.cfg.name));
        const acts: Action[] = [];
        for (const name of restart) {
          const cfg = ike.conn.children.find((c) => c.name === name);
          if (cfg && !up.has(name)) acts.push(...createChildSa(this, t, ike, cfg));
        }
        return acts;
      }));
      return out;
    }
    if (!ike.conn.remote.addrs.some((a) => a !== '%any')) return out;
    out.push(this.event({ type: 'notice', connection: ike.conn.name, message: `close_action start: establishing ${restart.join(', ')} again` }));
    this.attempts.set(ike.conn.name, { children: restart, tries: 1 });
    out.push(this.arm(retryTimer(ike.conn.name), now, (t) => this.retryNow(t, ike.conn.name)));
    return out;
  }

  // ------------------------------------------------------------------------------ helpers

  rotateCookieSecret(now: number): void {
    if (this.cookieSecret && now - this.cookieSecret.since < COOKIE_SECRET_LIFETIME_MS) return;
    this.previousCookieSecret = this.cookieSecret;
    this.cookieSecret = { secret: Buffer.from(this.rng(32)), version: ((this.cookieSecret?.version ?? 0) + 1) >>> 0, since: now };
  }

  newIkeSpi(): Buffer {
    for (;;) {
      const b = Buffer.from(this.rng(8));
      if (!b.equals(ZERO_SPI) && !this.sas.has(hex(b))) return b;
    }
  }

  newEspSpi(): number {
    for (;;) {
      const v = this.rng(4).readUInt32BE(0);
      if (v >= 0x100 && !this.usedSpis.has(v)) {
        this.usedSpis.add(v);
        return v;
      }
    }
  }

  newIkeSa(conn: ConnectionConfig, initiator: boolean, spiI: Buffer, spiR: Buffer, local: Endpoint, remote: Endpoint, now: number): IkeSaState {
    return {
      id: hex(initiator ? spiI : spiR),
      conn,
      initiator,
      createdAt: now,
      state: initiator ? 'init-sent' : 'init-received',
      spiI,
      spiR,
      local: { ...local },
      remote: { ...remote },
      natLocal: false,
      natRemote: false,
      ni: Buffer.alloc(0),
      nr: Buffer.alloc(0),
      childPfsInfo: false,
      nextRequestId: 0,
      expectedRequestId: 0,
      extraChildren: new Set(),
      inflight: new Map(),
      peerWindow: 1,
      responses: new Map(),
      queue: [],
      children: new Map(),
      lastActivity: now,
      establishedAt: 0,
      rekeyAt: 0,
      expiresAt: 0,
      reauthAt: 0,
      authenticatedAt: 0,
      refusedOptimizedIke: false,
      ppkMode: 'none',
      fragmentation: false,
      reassembler: new Reassembler(),
      peerHashes: [],
      followupsChild: new FollowupKeResponder(this.rng),
      followupsIke: new FollowupKeResponder(this.rng),
      followupsNewChild: new FollowupKeResponder(this.rng),
    };
  }

  send(ike: IkeSaState, data: Buffer): Action {
    this.counters.datagramsOut++;
    return { kind: 'send', local: { ...ike.local }, remote: { ...ike.remote }, data };
  }

  arm(id: string, at: number, handler: (now: number) => Action[]): Action {
    this.timers.set(id, handler);
    return { kind: 'timer', id, at };
  }

  cancel(id: string): Action[] {
    if (!this.timers.delete(id)) return [];
    return [{ kind: 'cancelTimer', id }];
  }

  event(event: EngineEvent): Action {
    return { kind: 'event', event };
  }

  /** What a rekey of the IKE SA (no `child`) or of `child` may use; `configChanged` forbids an optimized one. */
  policyFor(ike: IkeSaState, cfg?: ChildConfig, child?: ChildSaState): RekeyPolicy {
    return {
      codePoints: this.config.codePoints,
      espProposals: cfg?.espProposals ?? ike.conn.children[0]?.espProposals ?? [],
      ikeProposals: ike.conn.ike.proposals,
      optimizedEnabled: ike.conn.optimizedRekey,
      configChanged: cfg ? child?.configChanged === true : ike.configChanged === true,
      rng: this.rng,
    };
  }

  jittered(now: number, rekeyTime: number, randTime: number): number {
    const jitter = randTime > 0 ? (this.rng(4).readUInt32BE(0) / 0xffffffff) * randTime : 0;
    return now + Math.max(1, rekeyTime - jitter) * 1000;
  }

  /** When to try again after TEMPORARY_FAILURE: not at once, 2 to 6 s later (randomized against lockstep). */
  retryAt(now: number): number {
    return now + 2000 + (this.rng(2).readUInt16BE(0) / 0xffff) * 4000;
  }

  findChildBySpi(spi: number): [IkeSaState, ChildSaState] | undefined {
    for (const ike of this.sas.values()) for (const c of ike.children.values()) if (c.sa.spiIn === spi || c.sa.spiOut === spi) return [ike, c];
    return undefined;
  }

  protections(ike: IkeSaState) {
    const k = ike.sa!.keys;
    return createIkeSaProtections({ encrId: k.encr, ...(k.keyBits !== undefined ? { keyBits: k.keyBits } : {}), ...(k.integ ? { integId: k.integ } : {}) }, k, ike.sa!.originalInitiator, this.rng);
  }

  /**
   * Protect a message (RFC 7296 §3.14); above the configured size, and when both peers support it,
   * as RFC 7383 fragments. IKE_INTERMEDIATE is fragmented too (RFC 9242 §3.4: it is protected with the
   * current keys); its IntAuth is computed as if it were whole (IntAuthChain.addMessage, §3.3.2).
   */
  seal(ike: IkeSaState, exchange: ExchangeType, messageId: number, isResponse: boolean, payloads: Payload[]): Buffer[] {
    if (!ike.fragmentation) return [sealMessage(ike.sa!, exchange, messageId, isResponse, payloads, this.rng)];
    const header = ikeHeader({ spiI: ike.sa!.spiI, spiR: ike.sa!.spiR, exchangeType: exchange, messageId, originalInitiator: ike.sa!.originalInitiator, response: isResponse });
    const maxMessage = ikeMessageBudget(ike.conn.ike.fragmentSize, { ipv6: ike.remote.address.includes(':'), nonEspMarker: ike.local.port === NATT_PORT });
    return encodeProtectedForSending(header, payloads, this.protections(ike).outbound, { fragmentation: true, maxMessage });
  }

  /** Verify and decrypt a message, reassembling RFC 7383 fragments; undefined while incomplete or when it does not verify. */
  open(now: number, ike: IkeSaState, data: Buffer, decoded: { payloads: Payload[] }): { header: IkeHeader; payloads: Payload[] } | undefined {
    if (decoded.payloads.at(-1)?.type === PayloadType.SKF) {
      if (!ike.fragmentation) {
        this.counters.dropped++;
        return undefined;
      }
      const r = ike.reassembler.add(now, data, this.protections(ike).inbound);
      if (r.status === 'complete') return { header: r.message.header, payloads: r.message.payloads };
      if (r.status !== 'incomplete') this.counters.dropped++;
      return undefined;
    }
    try {
      return openMessage(ike.sa!, data);
    } catch {
      this.counters.dropped++;
      return undefined;
    }
  }
}
