// IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of the initial IKE SA (RFC 9370
// §2.2.2): one exchange per negotiated, non-NONE ADDKE in ascending order, all seven keys updated after
// each, and the IntAuth chain (RFC 9242 §3.3.2) that AUTH covers. The PPK round of RFC 9867, when used,
// rides on the last of these exchanges (or on a dedicated one) and lives in ppk.ts.
import { NotifyType } from '../codec/constants.js';
import { countPayloads, findNotify, getKe, kePayload, notify } from '../codec/helpers.js';
import { GENERIC_PAYLOAD_HEADER_LENGTH, IKE_HEADER_LENGTH, PayloadType } from '../codec/constants.js';
import { encodePayloadChain } from '../codec/encode.js';
import type { NotifyPayload, Payload } from '../codec/types.js';
import { getKeMethod, intAuth, intAuthChunk, KeError, updateIkeSaKeys, type IkeSaKeys, type KeInitiation, type Prf, type Spi } from '../crypto/index.js';
import type { ChosenAlgorithms } from '../proposal.js';

/** N(INTERMEDIATE_EXCHANGE_SUPPORTED) for IKE_SA_INIT (no data). */
export function intermediateSupportedNotify(): NotifyPayload {
  return notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED);
}

export function announcesIntermediate(payloads: readonly Payload[]): boolean {
  return findNotify(payloads, NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) !== undefined;
}

/** The KE methods of the IKE_INTERMEDIATE rounds: the chosen ADDKE1..7, NONE rounds skipped, in ascending order. */
export function intermediateRounds(chosen: ChosenAlgorithms): number[] {
  return chosen.addKe.filter((m): m is number => m !== undefined && m !== 0);
}

/**
 * The IntAuth chain over all IKE_INTERMEDIATE exchanges (RFC 9242 §3.3.2). Each message is added with
 * the SK_pi (request) or SK_pr (response) that protected it, before the exchange's own key update.
 */
export class IntAuthChain {
  private i: Buffer | undefined;
  private r: Buffer | undefined;
  private count = 0;

  /** `aad`: the message from the IKE header through the SK (or first SKF) header; `inner`: plaintext inner payloads. */
  addRequest(prf: Prf, skPi: Buffer, aad: Buffer, inner: Buffer): void {
    this.i = intAuthChunk(prf, skPi, this.i, aad, inner);
  }

  addResponse(prf: Prf, skPr: Buffer, aad: Buffer, inner: Buffer): void {
    this.r = intAuthChunk(prf, skPr, this.r, aad, inner);
    this.count++;
  }

  /**
   * Add one IKE_INTERMEDIATE message: `message` is the message as sent or received (IKE header first,
   * no non-ESP marker, SK or SKF as its first payload) or, when it travelled as RFC 7383 fragments,
   * any one of its fragments; `inner` its plaintext inner payloads (the whole reassembled chain). The
   * sender passes what it sealed, the receiver what it opened; both get the same chunk.
   *
   * RFC 9242 §3.3.2: the prf is applied to whole messages only, before any IKE fragmentation, and a
   * message received in fragments is taken as if it had arrived unfragmented, so IntAuth does not
   * depend on whether (or how) RFC 7383 fragmented it. So for a fragment, A is rebuilt: the IKE header
   * with Next Payload SK (46), then the SK generic header whose Next Payload is the first inner payload
   * type (fragments other than the first carry 0 there); intAuthA then sets both Length fields from len(P).
   */
  addMessage(prf: Prf, skP: Buffer, message: Buffer, inner: readonly Payload[], isResponse: boolean): void {
    if (message.length < IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH) throw new Error('IKE_INTERMEDIATE message too short');
    const first = message[16];
    if (first !== PayloadType.SK && first !== PayloadType.SKF) throw new Error('IKE_INTERMEDIATE message must carry SK or SKF as its first payload');
    const chain = encodePayloadChain(inner);
    let aad: Buffer;
    if (first === PayloadType.SK) {
      aad = message.subarray(0, IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH);
    } else {
      aad = Buffer.alloc(IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH);
      message.copy(aad, 0, 0, IKE_HEADER_LENGTH);
      aad[16] = PayloadType.SK;
      // Fragment 1 names the first inner payload, the others carry 0: the unfragmented SK header names it.
      aad[IKE_HEADER_LENGTH] = chain.first;
    }
    if (isResponse) this.addResponse(prf, skP, aad, chain.bytes);
    else this.addRequest(prf, skP, aad, chain.bytes);
  }

  /** Number of complete exchanges added. */
  get exchanges(): number {
    return this.count;
  }

  /** IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID, or undefined when no IKE_INTERMEDIATE took place. */
  value(ikeAuthMessageId: number): Buffer | undefined {
    if (!this.i || !this.r) return undefined;
    return intAuth(this.i, this.r, ikeAuthMessageId);
  }
}

export interface IntermediateContext {
  ni: Buffer;
  nr: Buffer;
  spiI: Spi;
  spiR: Spi;
}

export type IntermediateStep = { ok: true; keys: IkeSaKeys; done: boolean } | { ok: false; reason: string; notify?: NotifyType };

/** Initiator: runs the ADDKE rounds one request at a time. */
export class IntermediateKeInitiator {
  private next = 0;
  private pending: KeInitiation | undefined;
  /** The secrets SK(1..n), in order (kept for tests and key logs; never logged). */
  readonly secrets: Buffer[] = [];

  constructor(
    readonly methods: readonly number[],
    private keys: IkeSaKeys,
    private readonly ctx: IntermediateContext,
    private readonly rng?: (n: number) => Buffer,
  ) {}

  get done(): boolean {
    return this.next >= this.methods.length;
  }

  get currentKeys(): IkeSaKeys {
    return this.keys;
  }

  /** Inner payloads of the next IKE_INTERMEDIATE request: KEi(n). */
  nextRequest(): Payload[] {
    if (this.done) throw new Error('no additional key exchange pending');
    const method = this.methods[this.next]!;
    const m = getKeMethod(method);
    if (!m) throw new Error(`KE method ${method} is not implemented`);
    this.pending = m.initiate(this.rng);
    return [kePayload(method, this.pending.publicData)];
  }

  /**
   * The response: KEr(n) of the same method. Returns the updated keys, which protect the next exchange
   * (the caller adds this exchange to the IntAuth chain with the keys it was protected with first).
   */
  handleResponse(payloads: readonly Payload[]): IntermediateStep {
    if (!this.pending) return { ok: false, reason: 'IKE_INTERMEDIATE response without a pending key exchange' };
    const method = this.methods[this.next]!;
    if (countPayloads(payloads, PayloadType.KE) !== 1) return { ok: false, reason: 'IKE_INTERMEDIATE response must carry exactly one KE payload' };
    const ke = getKe(payloads)!;
    if (ke.group !== method) return { ok: false, reason: `IKE_INTERMEDIATE response KE method ${ke.group}, negotiated ${method}` };
    let secret: Buffer;
    try {
      secret = this.pending.finish(ke.data);
    } catch (e) {
      if (e instanceof KeError) return { ok: false, reason: e.message };
      throw e;
    }
    this.pending = undefined;
    this.secrets.push(secret);
    this.keys = updateIkeSaKeys(this.keys, secret, this.ctx.ni, this.ctx.nr, this.ctx.spiI, this.ctx.spiR);
    this.next++;
    return { ok: true, keys: this.keys, done: this.done };
  }
}

/** Responder: answers the ADDKE rounds in order. */
export class IntermediateKeResponder {
  private next = 0;
  readonly secrets: Buffer[] = [];

  constructor(
    readonly methods: readonly number[],
    private keys: IkeSaKeys,
    private readonly ctx: IntermediateContext,
    private readonly rng?: (n: number) => Buffer,
  ) {}

  get done(): boolean {
    return this.next >= this.methods.length;
  }

  get currentKeys(): IkeSaKeys {
    return this.keys;
  }

  /**
   * One IKE_INTERMEDIATE request. A request without KE after all rounds are done is legal (e.g. the
   * PPK round) and returns `response: []`. A KE of another method than ADDKEn is INVALID_SYNTAX
   * (docs/post-quantum.md): the method was negotiated, the message is malformed for this SA.
   */
  handleRequest(payloads: readonly Payload[]): (IntermediateStep & { ok: true; response: Payload[] }) | (IntermediateStep & { ok: false }) {
    const kes = countPayloads(payloads, PayloadType.KE);
    if (this.done) {
      if (kes > 0) return { ok: false, reason: 'KE payload after the last negotiated additional key exchange', notify: NotifyType.INVALID_SYNTAX };
      return { ok: true, keys: this.keys, done: true, response: [] };
    }
    const method = this.methods[this.next]!;
    if (kes !== 1) return { ok: false, reason: `IKE_INTERMEDIATE request must carry one KE payload (ADDKE method ${method})`, notify: NotifyType.INVALID_SYNTAX };
    const ke = getKe(payloads)!;
    if (ke.group !== method) return { ok: false, reason: `IKE_INTERMEDIATE KE method ${ke.group}, negotiated ${method}`, notify: NotifyType.INVALID_SYNTAX };
    const m = getKeMethod(method);
    if (!m) return { ok: false, reason: `KE method ${method} is not implemented`, notify: NotifyType.NO_PROPOSAL_CHOSEN };
    let answer;
    try {
      answer = m.respond(ke.data, this.rng);
    } catch (e) {
      if (e instanceof KeError) return { ok: false, reason: e.message, notify: NotifyType.INVALID_SYNTAX };
      throw e;
    }
    this.secrets.push(answer.sharedSecret);
    // The response is still protected with the keys in force now; the update applies from the next exchange.
    const response = [kePayload(method, answer.publicData)];
    this.keys = updateIkeSaKeys(this.keys, answer.sharedSecret, this.ctx.ni, this.ctx.nr, this.ctx.spiI, this.ctx.spiR);
    this.next++;
    return { ok: true, keys: this.keys, done: this.done, response };
  }
}
