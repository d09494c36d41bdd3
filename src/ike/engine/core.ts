// The shared core of the sans-IO IKEv2 engine (RFC 7296): the state of all IKE SAs and their Child
// SAs, the timers, counters and configuration, and the small helpers every exchange module uses
// (timers, events, sending, SPIs). The exchanges themselves live in their own modules.
import { randomBytes } from 'node:crypto';
import type { ChildConfig, ConnectionConfig, EngineConfig } from '../config.js';
import { ExchangeType, PayloadType } from '../codec/constants.js';
import { encodeProtectedForSending, ikeMessageBudget, Reassembler } from '../codec/fragment.js';
import { ikeHeader } from '../codec/helpers.js';
import type { IkeHeader, Payload } from '../codec/types.js';
import { createIkeSaProtections } from '../crypto/index.js';
import type { Action, Endpoint, EngineEvent } from './actions.js';
import type { EngineOptions } from './api.js';
import { type ChildSaState, COOKIE_SECRET_LIFETIME_MS, hex, type IkeSaState, type InitiationAttempt, NATT_PORT, ZERO_SPI } from './state.js';
import { FollowupKeResponder } from './followup-ke.js';
import { AddressPools } from './virtual-ip.js';
import { openMessage, type RekeyPolicy, sealMessage } from './rekey-exchange.js';

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
