// The shared core of the sans-IO IKEv2 engine (RFC 7296): the state of all IKE SAs and their Child
// SAs, the timers, counters and configuration, and the small helpers every exchange module uses
// (timers, events, sending, SPIs). The exchanges themselves live in their own modules.
import { randomBytes } from 'node:crypto';
import type { ChildConfig, ConnectionConfig, EngineConfig } from '../config.js';
import { encodeProtectedForSending, ikeMessageBudget, Reassembler } from '../codec/fragment.js';
import { cookieSecretVersion, createIkeSaProtections, createPrf, deriveIkeSaKeys, encodeSignatureHashAlgorithms, getKeMethod, KeError, makeCookie, natDetectionHash, verifyCookie } from '../crypto/index.js';
import { ExchangeType, NotifyType, PayloadType, ProtocolId } from '../codec/constants.js';
import type { IkeHeader, Payload } from '../codec/types.js';
import { findErrorNotify, findNotify, getKe, getNonce, getSa, ikeHeader, kePayload, noncePayload, notify, proposal, saPayload } from '../codec/helpers.js';
import { decodeMessage } from '../codec/decode.js';
import { checkAccepted, type ChosenAlgorithms, keMethodsOf, ProposalMismatchError, proposalsToSa, selectProposal } from '../proposal.js';
import { encodeMessage } from '../codec/encode.js';
import type { EngineOptions } from './api.js';
import { type ChildSaState, COOKIE_SECRET_LIFETIME_MS, HALF_OPEN_TIMEOUT_MS, hex, IKE_PORT, type IkeSaState, type InitiationAttempt, MAX_PEER_WINDOW, NATT_PORT, NONCE_LENGTH, type Outstanding, type RequestAfter, RETRY_BASE_MS, RETRY_MAX_MS, retryTimer, ZERO_SPI } from './state.js';
import type { Action, Endpoint, EngineEvent } from './actions.js';
import { AddressPools } from './virtual-ip.js';
import { type PacketSelectors } from './selectors.js';
import { FollowupKeInitiator, FollowupKeResponder } from './followup-ke.js';
import { openMessage, type RekeyPolicy, sealMessage } from './rekey-exchange.js';
import { initiatorPpkMode, ppkInitNotifies, responderPpkMode, responderPpkNotify, wantsPpkIntermediate } from './ppk.js';
import { announcesIntermediate, IntAuthChain, IntermediateKeInitiator, IntermediateKeResponder, intermediateRounds, intermediateSupportedNotify } from './intermediate.js';
import { announcesChildPfsInfo, answerChildPfsInfo } from './child-pfs-info.js';
import { dropIkeSa } from './teardown.js';
import { onInformational } from './informational.js';
import { createChildSa, deleteChild, keysOf, onCreateChildSa, onFollowupKe } from './child-sa.js';
import { onAuthRequest, sendAuthRequest, signatureHashes } from './ike-auth.js';
import { onIntermediateRequest, sendIntermediate } from './ike-intermediate.js';

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
    return this.sendInitRequest(now, ike, undefined, undefined);
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

  /** Queue a request; it is sent when the window (size 1) is free. */
  /**
   * Drive IKE_FOLLOWUP_KE exchanges (RFC 9370 §2.2.4) until every additional key exchange is done.
   * They go ahead of anything else queued: the SA they finish is half-built until then.
   */
  runFollowups(
    now: number,
    ike: IkeSaState,
    followup: FollowupKeInitiator,
    onDone: () => Action[],
    onFail: (reason: string, fatal: boolean) => Action[],
  ): Action[] {
    return this.request(now, ike, ExchangeType.IKE_FOLLOWUP_KE, () => followup.nextRequest(), (t, _h, resp) => {
      this.lastNow = t;
      const r = followup.handleResponse(resp);
      if (!r.ok) return onFail(r.reason, 'deleteIkeSa' in r && r.deleteIkeSa === true);
      return r.done ? onDone() : this.runFollowups(t, ike, followup, onDone, onFail);
    }, true);
  }

  /**
   * Queue a request. It leaves when the peer's window has room (RFC 7296 §2.3); an `exclusive` one
   * (IKE SA rekey and its follow-ups, IKE SA delete, the initial exchanges) waits until nothing else
   * is outstanding and holds everything back until answered, so no Child SA exchange straddles the
   * switch to another IKE SA.
   */
  request(now: number, ike: IkeSaState, exchange: ExchangeType, build: () => Payload[], onResponse: Outstanding['onResponse'], front = false, exclusive = false): Action[] {
    this.lastNow = now;
    const initial = exchange === ExchangeType.IKE_AUTH || exchange === ExchangeType.IKE_INTERMEDIATE || exchange === ExchangeType.IKE_FOLLOWUP_KE;
    const item = {
      exclusive: exclusive || initial,
      start: (t: number): Action[] => {
        if (!ike.sa) return [];
        const payloads = build();
        const messageId = ike.nextRequestId++;
        const datagrams = this.seal(ike, exchange, messageId, false, payloads);
        const o: Outstanding = { messageId, datagrams, tries: 0, sentAt: t, exchange, onResponse, payloads, exclusive: item.exclusive };
        ike.inflight.set(messageId, o);
        return [...datagrams.map((d) => this.send(ike, d)), this.armRetransmit(t, ike, o)];
      },
    };
    ike.queue[front ? 'unshift' : 'push'](item);
    return this.pump(now, ike);
  }

  /** Send queued requests while the window has room: fewer than peerWindow outstanding, IDs within lowest + window. */
  pump(now: number, ike: IkeSaState): Action[] {
    const out: Action[] = [];
    while (ike.queue.length > 0 && this.sas.get(ike.id) === ike) {
      const next = ike.queue[0]!;
      const outstanding = [...ike.inflight.values()];
      if (outstanding.some((o) => o.exclusive)) break;
      if (next.exclusive ? outstanding.length > 0 : ike.ikeRekeyInFlight) break;
      const lowest = outstanding.length ? Math.min(...outstanding.map((o) => o.messageId)) : ike.nextRequestId;
      if (outstanding.length >= ike.peerWindow || ike.nextRequestId >= lowest + ike.peerWindow) break;
      ike.queue.shift();
      out.push(...next.start(now));
    }
    return out;
  }

  /**
   * Where the peer's authenticated messages come from (RFC 7296 §2.23). The first move to port 4500
   * is followed (RFC 3948). After that, when the peer is behind a NAT and we are not, its NAT may
   * re-map it to another port or address at any time: IKE follows every authenticated change, and the
   * Child SAs' UDP encapsulation follows a port change in place. A changed public address changes the
   * SAs' outer address, which XFRM cannot alter in place: those Child SAs are created anew.
   */
  followPeer(now: number, ike: IkeSaState, local: Endpoint, remote: Endpoint): Action[] {
    if (local.port === NATT_PORT && ike.local.port !== NATT_PORT) {
      ike.local = { ...local };
      ike.remote = { ...remote };
      return [];
    }
    if (!ike.natRemote || ike.natLocal || ike.state !== 'established') return [];
    if (remote.address === ike.remote.address && remote.port === ike.remote.port) return [];
    const before = ike.remote;
    ike.remote = { ...remote };
    const out: Action[] = [this.event({ type: 'notice', connection: ike.conn.name, message: `the peer's NAT mapping changed from ${before.address}:${before.port} to ${remote.address}:${remote.port} (RFC 7296 §2.23)` })];
    for (const child of [...ike.children.values()]) {
      if (!child.spec.encap) continue;
      if (remote.address !== before.address) {
        out.push(...deleteChild(this, now, ike, child, 'the peer moved to another address', true), ...createChildSa(this, now, ike, child.cfg));
        continue;
      }
      child.spec = { ...child.spec, encap: { ...child.spec.encap, remotePort: remote.port } };
      out.push({ kind: 'kernel', action: { op: 'updateSaEncap', spec: child.spec, keysIn: keysOf(this, child.sa.keysIn), keysOut: keysOf(this, child.sa.keysOut) } });
    }
    return out;
  }

  /** RFC 7296 §2.3: SET_WINDOW_SIZE tells the peer how many of its requests we take at once (sent when above 1). */
  windowSizeNotify(conn: ConnectionConfig): Payload[] {
    if (conn.ike.windowSize <= 1) return [];
    const data = Buffer.alloc(4);
    data.writeUInt32BE(conn.ike.windowSize);
    return [notify(NotifyType.SET_WINDOW_SIZE, data)];
  }

  /** The peer's SET_WINDOW_SIZE: how many of our requests it takes at once (§2.3). A malformed one is ignored. */
  noteWindowSize(ike: IkeSaState, payloads: readonly Payload[]): void {
    const n = findNotify(payloads, NotifyType.SET_WINDOW_SIZE);
    if (!n || n.data.length !== 4) return;
    const size = n.data.readUInt32BE(0);
    // Bounded so a hostile value cannot make us keep unbounded state; 0 is meaningless.
    if (size >= 1) ike.peerWindow = Math.min(size, MAX_PEER_WINDOW);
  }

  retransmitTimer(ike: IkeSaState, messageId: number): string {
    return `ike:${ike.id}:retransmit:${messageId}`;
  }

  /** Forget every outstanding request of an IKE SA and its retransmission timers. */
  abandonRequests(ike: IkeSaState): Action[] {
    const out: Action[] = [];
    for (const id of ike.inflight.keys()) out.push(...this.cancel(this.retransmitTimer(ike, id)));
    ike.inflight.clear();
    return out;
  }

  armRetransmit(now: number, ike: IkeSaState, o: Outstanding): Action {
    const r = ike.conn.ike.retransmit;
    let delay = r.timeout * Math.pow(r.base, o.tries) * 1000;
    const limit = ike.conn.ike.dpdTimeout * 1000;
    if (limit > 0) delay = Math.max(1, Math.min(delay, o.sentAt + limit - now));
    return this.arm(this.retransmitTimer(ike, o.messageId), now + delay, (t) => this.retransmit(t, ike, o));
  }

  retransmit(now: number, ike: IkeSaState, o: Outstanding): Action[] {
    if (ike.inflight.get(o.messageId) !== o || !this.sas.has(ike.id)) return [];
    o.tries++;
    const limit = ike.conn.ike.dpdTimeout * 1000;
    if (o.tries > ike.conn.ike.retransmit.tries || (limit > 0 && now - o.sentAt >= limit)) {
      const reason = `peer did not answer after ${o.tries} transmissions`;
      const connecting = ike.initiator && !ike.reauthOf && (ike.state === 'init-sent' || ike.state === 'auth-sent');
      const lost = ike.state === 'established' ? [...ike.children.values()].map((c) => c.cfg) : [];
      const out = dropIkeSa(this, now, ike, reason);
      if (connecting) return [...out, ...this.retryInitiation(now, ike.conn, reason)];
      return [...out, ...this.closeActions(now, ike, lost)];
    }
    this.counters.retransmits++;
    return [...o.datagrams.map((d) => this.send(ike, d)), this.armRetransmit(now, ike, o)];
  }

  // ------------------------------------------------------------------------------ dispatch

  dispatch(now: number, data: Buffer, local: Endpoint, remote: Endpoint): Action[] {
    const decoded = decodeMessage(data);
    if (!decoded.ok) {
      this.counters.dropped++;
      return [];
    }
    const { header } = decoded.message;
    if (header.exchangeType === ExchangeType.IKE_SA_INIT && !header.flags.response) {
      return this.onInitRequest(now, data, decoded.message.payloads, header, local, remote);
    }
    // Our SPI is the one of the side we are: the sender's I flag says which side that is.
    const ours = header.flags.initiator ? header.spiR : header.spiI;
    const ike = this.sas.get(hex(ours));
    if (!ike || (!header.flags.initiator) !== ike.initiator) {
      this.counters.dropped++;
      return [];
    }
    if (header.exchangeType === ExchangeType.IKE_SA_INIT) {
      return ike.state === 'init-sent' ? this.onInitResponse(now, ike, data, decoded.message.payloads, header) : [];
    }
    if (!ike.sa) {
      this.counters.dropped++;
      return [];
    }
    if (header.flags.response) {
      // Responses are matched strictly to an outstanding request (RFC 7296 §2.2).
      const o = ike.inflight.get(header.messageId);
      if (!o) {
        this.counters.dropped++;
        return [];
      }
      const opened = this.open(now, ike, data, decoded.message);
      if (!opened) return [];
      ike.inflight.delete(header.messageId);
      ike.lastActivity = now;
      this.noteWindowSize(ike, opened.payloads);
      const out = [...this.cancel(this.retransmitTimer(ike, o.messageId)), ...this.followPeer(now, ike, local, remote), ...o.onResponse(now, opened.header, opened.payloads, data)];
      if (this.sas.has(ike.id)) out.push(...this.pump(now, ike));
      return out;
    }
    // A request from the peer.
    const cached = ike.responses.get(header.messageId);
    if (cached) {
      // RFC 7296 §2.1: a retransmitted request is answered with the same response, not processed again;
      // for a fragmented request only its first fragment triggers that (RFC 7383 §2.6.1).
      const skf = decoded.message.payloads.at(-1);
      if (skf?.type === PayloadType.SKF && skf.fragmentNumber !== 1) return [];
      return cached.map((d) => this.send(ike, d));
    }
    // RFC 7296 §2.3: requests are taken within our window above the lowest unanswered message ID.
    const window = ike.state === 'established' ? ike.conn.ike.windowSize : 1;
    if (header.messageId < ike.expectedRequestId || header.messageId >= ike.expectedRequestId + window) {
      this.counters.dropped++;
      return [];
    }
    const opened = this.open(now, ike, data, decoded.message);
    if (!opened) return [];
    const followed = this.followPeer(now, ike, local, remote);
    ike.lastActivity = now;
    this.noteWindowSize(ike, opened.payloads);
    const { response, after } = this.onRequest(now, ike, opened.header, opened.payloads, data);
    const out: Action[] = [...followed];
    const reply = (payloads: Payload[]) => {
      const datagrams = this.seal(ike, header.exchangeType, header.messageId, true, payloads);
      ike.responses.set(header.messageId, datagrams);
      while (ike.responses.has(ike.expectedRequestId)) ike.expectedRequestId++;
      // Keep the responses a retransmission can still ask for: the window below the lowest unanswered ID.
      const keep = Math.max(1, ike.conn.ike.windowSize);
      for (const id of ike.responses.keys()) if (id < ike.expectedRequestId - keep) ike.responses.delete(id);
      after.sealed?.(datagrams[0]!);
      return datagrams.map((d) => this.send(ike, d));
    };
    out.push(...(after.before ?? []), ...reply(response), ...(after.after ?? []));
    return out;
  }

  // ------------------------------------------------------------------------------ IKE_SA_INIT

  natNotifies(spiI: Buffer, spiR: Buffer, local: Endpoint, remote: Endpoint, conn: ConnectionConfig): Payload[] {
    // RFC 7296 §2.23; forcing encapsulation is done by a source hash that cannot match (as others do).
    const src = conn.ike.forceEncap ? Buffer.from(this.rng(20)) : natDetectionHash(spiI, spiR, local.address, local.port);
    return [notify(NotifyType.NAT_DETECTION_SOURCE_IP, src), notify(NotifyType.NAT_DETECTION_DESTINATION_IP, natDetectionHash(spiI, spiR, remote.address, remote.port))];
  }

  detectNat(ike: IkeSaState, payloads: Payload[], spiI: Buffer, spiR: Buffer, local: Endpoint, remote: Endpoint): void {
    const src = findNotify(payloads, NotifyType.NAT_DETECTION_SOURCE_IP);
    const dst = findNotify(payloads, NotifyType.NAT_DETECTION_DESTINATION_IP);
    if (!src || !dst) return;
    ike.natRemote = !src.data.equals(natDetectionHash(spiI, spiR, remote.address, remote.port));
    ike.natLocal = !dst.data.equals(natDetectionHash(spiI, spiR, local.address, local.port)) || ike.conn.ike.forceEncap;
  }

  sendInitRequest(now: number, ike: IkeSaState, keMethod: number | undefined, cookie: Buffer | undefined): Action[] {
    const conn = ike.conn;
    ike.sentIkeProposals = proposalsToSa(conn.ike.proposals, 'ike');
    const method = keMethod ?? conn.ike.proposals[0]?.ke[0];
    const m = method !== undefined ? getKeMethod(method) : undefined;
    if (!m || method === undefined) throw new Error(`connection '${conn.name}' has no usable KE method`);
    ike.keInit = { method, init: m.initiate(this.rng) };
    if (ike.ni.length === 0) ike.ni = Buffer.from(this.rng(NONCE_LENGTH));
    const payloads: Payload[] = [];
    if (cookie) payloads.push(notify(NotifyType.COOKIE, cookie));
    payloads.push(
      saPayload(ike.sentIkeProposals.map((p) => proposal(p.num, p.protocol, Buffer.alloc(0), p.transforms))),
      kePayload(method, ike.keInit.init.publicData),
      noncePayload(ike.ni),
      ...this.natNotifies(ike.spiI, ZERO_SPI, ike.local, ike.remote, conn),
    );
    if (conn.childPfsInfo) payloads.push(notify(this.config.codePoints.childSaPfsInfoSupported));
    // RFC 9867 §3.1: USE_PPK_INT needs IKE_INTERMEDIATE, so PPKs alone are reason enough to announce it.
    const ppkInt = wantsPpkIntermediate(conn);
    if (ppkInt || conn.ike.proposals.some((p) => p.addKe.some((r) => r.some((m) => m !== 0)))) payloads.push(intermediateSupportedNotify());
    if (conn.ike.fragmentation) payloads.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
    // RFC 7427 §4: the hash algorithms we can verify signatures with.
    payloads.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, encodeSignatureHashAlgorithms()));
    // RFC 8784 §3: USE_PPK announces that a PPK will be mixed in during IKE_AUTH; RFC 9867 §3.1: with
    // USE_PPK_INT too, the responder picks one of the two and answers with that notify only.
    payloads.push(...ppkInitNotifies(conn, ppkInt));
    const header = ikeHeader({ spiI: ike.spiI, spiR: ZERO_SPI, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: true, response: false });
    const datagram = encodeMessage({ header, payloads });
    ike.initRequest = datagram;
    ike.nextRequestId = 1;
    const o: Outstanding = { messageId: 0, datagrams: [datagram], tries: 0, sentAt: now, exchange: ExchangeType.IKE_SA_INIT, onResponse: () => [], exclusive: true };
    ike.inflight.set(0, o);
    return [this.send(ike, datagram), this.armRetransmit(now, ike, o)];
  }

  findResponderConnection(local: Endpoint, remote: Endpoint): ConnectionConfig | undefined {
    const matches = (addrs: string[], a: string) => addrs.includes('%any') || addrs.includes(a);
    return this.config.connections.find((c) => matches(c.remote.addrs, remote.address) && matches(c.local.addrs, local.address)) ?? this.config.connections.find((c) => matches(c.remote.addrs, remote.address));
  }

  onInitRequest(now: number, data: Buffer, payloads: Payload[], header: IkeHeader, local: Endpoint, remote: Endpoint): Action[] {
    const key = `${remote.address}:${remote.port}:${hex(header.spiI)}`;
    const known = this.halfOpen.get(key);
    if (known) {
      // A retransmitted IKE_SA_INIT: the same answer again.
      return known.initResponse && known.initRequest?.equals(data) ? [this.send(known, known.initResponse)] : [];
    }
    if (!header.spiR.equals(ZERO_SPI) || header.messageId !== 0) {
      this.counters.dropped++;
      return [];
    }
    const plain = (p: Payload[]) => {
      this.counters.datagramsOut++;
      const h = ikeHeader({ spiI: header.spiI, spiR: ZERO_SPI, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: false, response: true });
      return [{ kind: 'send', local: { ...local }, remote: { ...remote }, data: encodeMessage({ header: h, payloads: p }) } as Action];
    };
    const conn = this.findResponderConnection(local, remote);
    if (!conn) {
      this.log('info', { remote: remote.address }, 'IKE_SA_INIT from a peer no connection is configured for');
      return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
    }
    const sa = getSa(payloads);
    const ke = getKe(payloads);
    const nonce = getNonce(payloads);
    if (!sa || !ke || !nonce) return plain([notify(NotifyType.INVALID_SYNTAX)]);
    // RFC 7296 §2.6: above the half-open threshold, demand a COOKIE before keeping any state.
    if (this.halfOpen.size >= this.config.cookieThreshold) {
      this.rotateCookieSecret(now);
      const offered = findNotify(payloads, NotifyType.COOKIE);
      const valid =
        offered !== undefined &&
        [this.cookieSecret, this.previousCookieSecret].some((c) => c && cookieSecretVersion(offered.data) === c.version && verifyCookie(offered.data, c.secret, c.version, nonce.data, remote.address, header.spiI));
      if (!valid) return plain([notify(NotifyType.COOKIE, makeCookie(this.cookieSecret!.secret, this.cookieSecret!.version, nonce.data, remote.address, header.spiI))]);
    }
    const selected = selectProposal(sa.proposals, conn.ike.proposals, 'ike', { requireKe: true, preferKe: ke.group });
    if (!selected) return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
    // RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE, announced by the initiator.
    if (intermediateRounds(selected.chosen).length > 0 && !announcesIntermediate(payloads)) return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
    if (selected.chosen.ke !== ke.group) {
      // RFC 7296 §1.2: tell the initiator which method to use; stateless.
      const d = Buffer.alloc(2);
      d.writeUInt16BE(selected.chosen.ke!);
      return plain([notify(NotifyType.INVALID_KE_PAYLOAD, d)]);
    }
    const m = getKeMethod(ke.group)!;
    let answer;
    try {
      answer = m.respond(ke.data, this.rng);
    } catch (e) {
      if (e instanceof KeError) return plain([notify(NotifyType.INVALID_SYNTAX)]);
      throw e;
    }
    const spiR = this.newIkeSpi();
    const ike = this.newIkeSa(conn, false, Buffer.from(header.spiI), spiR, local, remote, now);
    ike.ni = Buffer.from(nonce.data);
    ike.nr = Buffer.from(this.rng(NONCE_LENGTH));
    ike.childPfsInfo = conn.childPfsInfo && announcesChildPfsInfo(payloads, this.config.codePoints);
    this.detectNat(ike, payloads, ike.spiI, ZERO_SPI, local, remote);
    const chosen = selected.chosen;
    const keys = deriveIkeSaKeys({
      prf: createPrf(chosen.prf!),
      ni: ike.ni,
      nr: ike.nr,
      sharedSecret: answer.sharedSecret,
      spiI: ike.spiI,
      spiR,
      encr: chosen.encr.id,
      ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
      ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
    });
    ike.sa = { spiI: ike.spiI, spiR, originalInitiator: false, keys, chosen, keMethods: keMethodsOf(chosen), optimizedNegotiated: false, childPfsInfoNegotiated: ike.childPfsInfo };
    const response: Payload[] = [
      saPayload([proposal(selected.proposalNumber, ProtocolId.IKE, Buffer.alloc(0), selected.transforms)]),
      kePayload(ke.group, answer.publicData),
      noncePayload(ike.nr),
      ...this.natNotifies(ike.spiI, spiR, local, remote, conn),
    ];
    if (answerChildPfsInfo(payloads, this.config.codePoints, conn.childPfsInfo)) response.push(notify(this.config.codePoints.childSaPfsInfoSupported));
    ike.peerHashes = signatureHashes(this, payloads);
    response.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, encodeSignatureHashAlgorithms()));
    // RFC 7383 §2.3: answer the support notify only when asked and enabled here.
    if (conn.ike.fragmentation && findNotify(payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)) {
      response.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
      ike.fragmentation = true;
    }
    ike.ppkMode = responderPpkMode(payloads, conn, wantsPpkIntermediate(conn) && announcesIntermediate(payloads));
    const ppkNotify = responderPpkNotify(ike.ppkMode);
    if (ppkNotify) response.push(ppkNotify);
    ike.ppkRoundPending = ike.ppkMode === 'rfc9867';
    const rounds = intermediateRounds(chosen);
    if (rounds.length > 0 || ike.ppkRoundPending) {
      // RFC 9867 §3.1: the PPK round needs IKE_INTERMEDIATE even without additional key exchanges.
      response.push(intermediateSupportedNotify());
      ike.intermediate = { responder: new IntermediateKeResponder(rounds, keys, { ni: ike.ni, nr: ike.nr, spiI: ike.spiI, spiR }, this.rng), chain: new IntAuthChain() };
    }
    const h = ikeHeader({ spiI: ike.spiI, spiR, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: false, response: true });
    ike.initRequest = Buffer.from(data);
    ike.initResponse = encodeMessage({ header: h, payloads: response });
    ike.expectedRequestId = 1;
    this.sas.set(ike.id, ike);
    this.halfOpen.set(key, ike);
    return [
      this.send(ike, ike.initResponse),
      this.arm(`ike:${ike.id}:half-open`, now + HALF_OPEN_TIMEOUT_MS, (t) => (ike.state === 'init-received' ? dropIkeSa(this, t, ike, 'IKE_AUTH never arrived') : [])),
    ];
  }

  onInitResponse(now: number, ike: IkeSaState, data: Buffer, payloads: Payload[], header: IkeHeader): Action[] {
    const out: Action[] = this.abandonRequests(ike);
    const err = findErrorNotify(payloads);
    const cookie = findNotify(payloads, NotifyType.COOKIE);
    if (cookie) return [...out, ...this.sendInitRequest(now, ike, ike.keInit?.method, Buffer.from(cookie.data))];
    if (err?.notifyType === NotifyType.INVALID_KE_PAYLOAD && err.data.length === 2) {
      const method = err.data.readUInt16BE(0);
      const offered = ike.conn.ike.proposals.some((p) => p.ke.includes(method));
      if (offered && method !== ike.keInit?.method) return [...out, ...this.sendInitRequest(now, ike, method, undefined)];
    }
    if (err) return [...out, ...dropIkeSa(this, now, ike, `peer refused IKE_SA_INIT with notify ${err.notifyType}`, 'auth')];
    const sa = getSa(payloads);
    const ke = getKe(payloads);
    const nonce = getNonce(payloads);
    if (!sa || !ke || !nonce || !ike.keInit || header.spiR.equals(ZERO_SPI)) return [...out, ...dropIkeSa(this, now, ike, 'malformed IKE_SA_INIT response')];
    let chosen: ChosenAlgorithms;
    try {
      chosen = checkAccepted(ike.sentIkeProposals ?? [], sa.proposals, 'ike');
    } catch (e) {
      if (e instanceof ProposalMismatchError) return [...out, ...dropIkeSa(this, now, ike, e.message)];
      throw e;
    }
    if (chosen.ke !== ike.keInit.method || ke.group !== ike.keInit.method) return [...out, ...dropIkeSa(this, now, ike, 'responder chose another KE method')];
    let shared: Buffer;
    try {
      shared = ike.keInit.init.finish(ke.data);
    } catch (e) {
      return [...out, ...dropIkeSa(this, now, ike, `invalid KE payload: ${(e as Error).message}`)];
    }
    ike.spiR = Buffer.from(header.spiR);
    ike.nr = Buffer.from(nonce.data);
    ike.initResponse = Buffer.from(data);
    ike.childPfsInfo = ike.conn.childPfsInfo && announcesChildPfsInfo(payloads, this.config.codePoints);
    this.detectNat(ike, payloads, ike.spiI, ike.spiR, ike.local, ike.remote);
    const keys = deriveIkeSaKeys({
      prf: createPrf(chosen.prf!),
      ni: ike.ni,
      nr: ike.nr,
      sharedSecret: shared,
      spiI: ike.spiI,
      spiR: ike.spiR,
      encr: chosen.encr.id,
      ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
      ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
    });
    ike.sa = { spiI: ike.spiI, spiR: ike.spiR, originalInitiator: true, keys, chosen, keMethods: keMethodsOf(chosen), optimizedNegotiated: false, childPfsInfoNegotiated: ike.childPfsInfo };
    if (ike.natLocal || ike.natRemote) {
      // RFC 7296 §2.23: move from 500 to 4500; an IKE SA begun on 4500 (a reauthentication across a NAT) keeps the peer's mapped port.
      ike.local = { ...ike.local, port: NATT_PORT };
      ike.remote = { ...ike.remote, port: ike.remote.port === IKE_PORT ? NATT_PORT : ike.remote.port };
    }
    ike.peerHashes = signatureHashes(this, payloads);
    ike.fragmentation = ike.conn.ike.fragmentation && findNotify(payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
    const sentInt = wantsPpkIntermediate(ike.conn);
    ike.ppkMode = initiatorPpkMode(payloads, sentInt, (ike.conn.ppk?.keys.length ?? 0) > 0, sentInt && announcesIntermediate(payloads));
    ike.ppkRoundPending = ike.ppkMode === 'rfc9867';
    if (ike.conn.ppk?.required && ike.ppkMode === 'none') {
      const reason = `a PPK is required but the responder does not support PPKs (no ${sentInt ? 'USE_PPK_INT or ' : ''}USE_PPK)`;
      return [...out, this.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(this, now, ike, reason, 'auth')];
    }
    ike.state = 'auth-sent';
    const rounds = intermediateRounds(chosen);
    if (rounds.length > 0 || ike.ppkRoundPending) {
      if (!announcesIntermediate(payloads)) return [...out, ...dropIkeSa(this, now, ike, 'responder chose additional key exchanges without IKE_INTERMEDIATE support')];
      ike.intermediate = { initiator: new IntermediateKeInitiator(rounds, keys, { ni: ike.ni, nr: ike.nr, spiI: ike.spiI, spiR: ike.spiR }, this.rng), chain: new IntAuthChain() };
      return [...out, ...sendIntermediate(this, now, ike)];
    }
    return [...out, ...sendAuthRequest(this, now, ike)];
  }

  // ------------------------------------------------------------------------------ requests

  onRequest(now: number, ike: IkeSaState, header: IkeHeader, payloads: Payload[], datagram: Buffer): { response: Payload[]; after: RequestAfter } {
    switch (header.exchangeType) {
      case ExchangeType.IKE_AUTH:
        if (ike.initiator || ike.state !== 'init-received') return { response: [notify(NotifyType.INVALID_SYNTAX)], after: {} };
        if (ike.intermediate && (!ike.intermediate.responder?.done || ike.ppkRoundPending)) {
          return { response: [notify(NotifyType.INVALID_SYNTAX)], after: { after: dropIkeSa(this, now, ike, 'IKE_AUTH before the negotiated IKE_INTERMEDIATE key exchanges') } };
        }
        ike.intAuth = ike.intermediate?.chain.value(header.messageId);
        return onAuthRequest(this, now, ike, payloads);
      case ExchangeType.IKE_INTERMEDIATE:
        return onIntermediateRequest(this, now, ike, payloads, datagram);
      case ExchangeType.INFORMATIONAL:
        return onInformational(this, now, ike, payloads);
      case ExchangeType.CREATE_CHILD_SA:
        if (ike.state !== 'established') return { response: [notify(NotifyType.TEMPORARY_FAILURE)], after: {} };
        return onCreateChildSa(this, now, ike, payloads);
      case ExchangeType.IKE_FOLLOWUP_KE:
        if (ike.state !== 'established') return { response: [notify(NotifyType.STATE_NOT_FOUND)], after: {} };
        return onFollowupKe(this, now, ike, payloads);
      default:
        return { response: [notify(NotifyType.INVALID_SYNTAX)], after: {} };
    }
  }
}
