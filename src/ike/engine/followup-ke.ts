// IKE_FOLLOWUP_KE (RFC 9370 §2.2.4): after a CREATE_CHILD_SA that negotiated additional key exchanges
// (new Child SA, Child SA rekey, IKE SA rekey; regular or optimized), one IKE_FOLLOWUP_KE exchange per
// additional method, linked by opaque data the responder chooses:
//
//   CREATE_CHILD_SA  <-- ..., N(ADDITIONAL_KEY_EXCHANGE, link1)
//   IKE_FOLLOWUP_KE  SK{KEi(1), N(ADDITIONAL_KEY_EXCHANGE, link1)} -->
//                    <-- SK{KEr(1)[, N(ADDITIONAL_KEY_EXCHANGE, link2)]}
//
// The SA exists only after the last follow-up; its keys use SK(0) | Ni | Nr | SK(1) | ... | SK(n).
// These classes hold the chain's state; the exchange tasks send and receive the messages.
import { NotifyType } from '../codec/constants.js';
import { findErrorNotify, findNotifies, getKe, kePayload, notify } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import { getKeMethod, KeError, type KeInitiation } from '../crypto/index.js';

/** Octets of link data we choose (opaque to the peer). */
export const FOLLOWUP_LINK_SIZE = 8;
/**
 * How long a responder keeps a half-done chain waiting for the next IKE_FOLLOWUP_KE request. RFC 9370
 * names no figure; 10 s is longer than a retransmission round and short enough not to pin state.
 */
export const FOLLOWUP_STATE_TIMEOUT_MS = 10_000;

export type FollowupFailure = { ok: false; reason: string; notify?: NotifyType };

/** The link notify of a message: exactly one allowed. */
function linkOf(payloads: readonly Payload[]): Buffer | undefined | 'many' {
  const ns = findNotifies(payloads, NotifyType.ADDITIONAL_KEY_EXCHANGE);
  if (ns.length > 1) return 'many';
  return ns[0]?.data;
}

// ---------------------------------------------------------------------------------------------
// Initiator

export class FollowupKeInitiator {
  /** SK(0), then each follow-up secret in order. */
  readonly secrets: Buffer[];
  private next = 0;
  private link: Buffer | undefined;
  private pending: KeInitiation | undefined;

  /**
   * @param methods additional KE methods still to run, in ADDKE order (after the CREATE_CHILD_SA KE)
   * @param firstSecrets SK(0) when the CREATE_CHILD_SA carried a KE (empty when it had none)
   */
  constructor(
    readonly methods: readonly number[],
    firstSecrets: readonly Buffer[],
    private readonly rng?: (n: number) => Buffer,
  ) {
    this.secrets = [...firstSecrets];
  }

  get done(): boolean {
    return this.next >= this.methods.length;
  }

  /**
   * Read the link from the CREATE_CHILD_SA response. A response that announces follow-ups we did not
   * negotiate, or lacks the link we need, ends the SA creation.
   */
  start(createResponse: readonly Payload[]): { ok: true } | FollowupFailure {
    const link = linkOf(createResponse);
    if (link === 'many') return { ok: false, reason: 'more than one ADDITIONAL_KEY_EXCHANGE notify' };
    if (this.methods.length === 0) {
      return link === undefined ? { ok: true } : { ok: false, reason: 'ADDITIONAL_KEY_EXCHANGE without negotiated additional key exchanges' };
    }
    if (link === undefined || link.length === 0) return { ok: false, reason: 'response lacks N(ADDITIONAL_KEY_EXCHANGE) though additional key exchanges follow' };
    this.link = Buffer.from(link);
    return { ok: true };
  }

  /** The next IKE_FOLLOWUP_KE request: KEi(n) with the link data echoed unchanged. */
  nextRequest(): Payload[] {
    if (this.done || !this.link) throw new Error('no IKE_FOLLOWUP_KE exchange pending');
    const method = this.methods[this.next]!;
    const m = getKeMethod(method);
    if (!m) throw new Error(`KE method ${method} is not implemented`);
    this.pending = m.initiate(this.rng);
    return [kePayload(method, this.pending.publicData), notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, this.link)];
  }

  /**
   * The response to our last request. STATE_NOT_FOUND (or any error) abandons the SA creation; a bad
   * ML-KEM ciphertext does too and, per draft-ietf-ipsecme-ikev2-mlkem §2.2, the caller must then
   * delete the IKE SA (`deleteIkeSa`).
   */
  handleResponse(payloads: readonly Payload[]): { ok: true; done: boolean } | (FollowupFailure & { deleteIkeSa?: boolean }) {
    if (!this.pending) return { ok: false, reason: 'IKE_FOLLOWUP_KE response without a request' };
    const method = this.methods[this.next]!;
    const err = findErrorNotify(payloads);
    if (err) return { ok: false, reason: `peer answered IKE_FOLLOWUP_KE with error notify ${err.notifyType}` };
    const ke = getKe(payloads);
    if (!ke) return { ok: false, reason: 'IKE_FOLLOWUP_KE response without KE payload' };
    if (ke.group !== method) return { ok: false, reason: `IKE_FOLLOWUP_KE response uses KE method ${ke.group}, expected ${method}` };
    let secret: Buffer;
    try {
      secret = this.pending.finish(ke.data);
    } catch (e) {
      if (e instanceof KeError) return { ok: false, reason: e.message, deleteIkeSa: true };
      throw e;
    }
    this.pending = undefined;
    this.secrets.push(secret);
    this.next++;
    const link = linkOf(payloads);
    if (link === 'many') return { ok: false, reason: 'more than one ADDITIONAL_KEY_EXCHANGE notify' };
    if (this.done) {
      if (link !== undefined) return { ok: false, reason: 'ADDITIONAL_KEY_EXCHANGE after the last negotiated key exchange' };
      return { ok: true, done: true };
    }
    if (link === undefined || link.length === 0) return { ok: false, reason: 'IKE_FOLLOWUP_KE response lacks the link for the next exchange' };
    this.link = Buffer.from(link);
    return { ok: true, done: false };
  }
}

// ---------------------------------------------------------------------------------------------
// Responder

interface PendingChain<T> {
  methods: readonly number[];
  next: number;
  secrets: Buffer[];
  deadline: number;
  context: T;
}

export type FollowupResponderResult<T> =
  | { ok: true; response: Payload[]; done: false }
  | { ok: true; response: Payload[]; done: true; secrets: Buffer[]; context: T }
  | (FollowupFailure & { notify: NotifyType; context?: T });

/**
 * The responder's pending chains, keyed by the link data it handed out. `T` is whatever the engine
 * needs to finish the SA (the half-built Child SA or IKE SA).
 */
export class FollowupKeResponder<T> {
  private readonly chains = new Map<string, PendingChain<T>>();

  constructor(
    private readonly rng: (n: number) => Buffer,
    private readonly timeoutMs: number = FOLLOWUP_STATE_TIMEOUT_MS,
  ) {}

  get size(): number {
    return this.chains.size;
  }

  private newLink(): Buffer {
    for (;;) {
      const link = this.rng(FOLLOWUP_LINK_SIZE);
      if (!this.chains.has(link.toString('hex'))) return link;
    }
  }

  /**
   * After answering a CREATE_CHILD_SA with more key exchanges to come: remember the chain and return
   * the N(ADDITIONAL_KEY_EXCHANGE) for the response. No methods: nothing to remember, no notify.
   */
  begin(now: number, methods: readonly number[], firstSecrets: readonly Buffer[], context: T): Payload | undefined {
    if (methods.length === 0) return undefined;
    const link = this.newLink();
    this.chains.set(link.toString('hex'), { methods, next: 0, secrets: [...firstSecrets], deadline: now + this.timeoutMs, context });
    return notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, link);
  }

  /** One IKE_FOLLOWUP_KE request. Unknown or missing link: STATE_NOT_FOUND (RFC 9370 §2.2.4). */
  handleRequest(now: number, payloads: readonly Payload[]): FollowupResponderResult<T> {
    this.expire(now);
    const link = linkOf(payloads);
    if (link === 'many') return { ok: false, notify: NotifyType.INVALID_SYNTAX, reason: 'more than one ADDITIONAL_KEY_EXCHANGE notify' };
    if (link === undefined) return { ok: false, notify: NotifyType.STATE_NOT_FOUND, reason: 'IKE_FOLLOWUP_KE without ADDITIONAL_KEY_EXCHANGE' };
    const key = link.toString('hex');
    const chain = this.chains.get(key);
    if (!chain) return { ok: false, notify: NotifyType.STATE_NOT_FOUND, reason: 'unknown ADDITIONAL_KEY_EXCHANGE link' };
    const method = chain.methods[chain.next]!;
    const ke = getKe(payloads);
    const fail = (n: NotifyType, reason: string): FollowupResponderResult<T> => {
      this.chains.delete(key);
      return { ok: false, notify: n, reason, context: chain.context };
    };
    if (!ke) return fail(NotifyType.INVALID_SYNTAX, 'IKE_FOLLOWUP_KE request without KE payload');
    // The method of ADDKEn was negotiated; a different one is a malformed request, not a renegotiation.
    if (ke.group !== method) return fail(NotifyType.INVALID_SYNTAX, `IKE_FOLLOWUP_KE uses KE method ${ke.group}, negotiated ${method}`);
    const m = getKeMethod(method);
    if (!m) return fail(NotifyType.NO_PROPOSAL_CHOSEN, `KE method ${method} is not implemented`);
    let answer;
    try {
      answer = m.respond(ke.data, this.rng);
    } catch (e) {
      if (e instanceof KeError) return fail(NotifyType.INVALID_SYNTAX, e.message);
      throw e;
    }
    chain.secrets.push(answer.sharedSecret);
    chain.next++;
    this.chains.delete(key);
    const response: Payload[] = [kePayload(method, answer.publicData)];
    if (chain.next >= chain.methods.length) return { ok: true, response, done: true, secrets: chain.secrets, context: chain.context };
    const next = this.newLink();
    chain.deadline = now + this.timeoutMs;
    this.chains.set(next.toString('hex'), chain);
    response.push(notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, next));
    return { ok: true, response, done: false };
  }

  /** Drop chains whose next request never came; returns their contexts so the engine can release them. */
  expire(now: number): T[] {
    const out: T[] = [];
    for (const [k, c] of this.chains) {
      if (c.deadline <= now) {
        this.chains.delete(k);
        out.push(c.context);
      }
    }
    return out;
  }

  /** Earliest deadline, for the engine's timer. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const c of this.chains.values()) if (d === undefined || c.deadline < d) d = c.deadline;
    return d;
  }

  /** Forget every chain (IKE SA deleted or rekeyed away). */
  clear(): T[] {
    const out = [...this.chains.values()].map((c) => c.context);
    this.chains.clear();
    return out;
  }
}
