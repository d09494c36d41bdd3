// IKEv2 message fragmentation, RFC 7383.
//
// Sending: the inner payload chain is cut into pieces that each fit one datagram; every piece is an
// SKF payload protected on its own (§2.5), Fragment Number 1 carries the first inner payload type.
// Receiving: a Reassembler collects fragments per (IKE SPIs, Message ID, direction), checks each one's
// integrity before it is stored (§2.6), accepts any order, drops duplicates, restarts on a higher Total
// Fragments and is bounded in memory and time.
import { IKE_HEADER_LENGTH, PayloadType } from './constants.js';
import { decodePayloadChain } from './decode.js';
import { CodecEncodeError, encodeHeader, encodePayloadChain } from './encode.js';
import { aadOf, encodeProtected, resolveEncrypted, type SkProtection } from './protect.js';
import type { DecodeError, IkeHeader, IkeMessage, Payload } from './types.js';

/** IKE header + SKF generic header + Fragment Number/Total Fragments. */
const SKF_MESSAGE_OVERHEAD = IKE_HEADER_LENGTH + 4 + 4;

/** The largest inner-piece length whose SKF body fits in `bodyLimit`. */
function maxPiece(protection: SkProtection, bodyLimit: number): number {
  if (protection.maxPlaintext) return protection.maxPlaintext(bodyLimit);
  // Binary search on n + overhead(n) <= bodyLimit (overhead is non-decreasing in block steps).
  let lo = 0;
  let hi = bodyLimit;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (mid + protection.overhead(mid) <= bodyLimit) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The IKE message size that fits an IP datagram of `ipDatagramSize` octets (e.g. the configured
 * fragment size): minus the IPv4 (20) or IPv6 (40) header, the UDP header (8) and, on port 4500,
 * the non-ESP marker (4).
 */
export function ikeMessageBudget(ipDatagramSize: number, opts: { ipv6: boolean; nonEspMarker: boolean }): number {
  return ipDatagramSize - (opts.ipv6 ? 40 : 20) - 8 - (opts.nonEspMarker ? 4 : 0);
}

/**
 * Encode HDR, SKF{...} fragments of the inner payloads, each at most `maxMessage` octets (the IKE
 * message: the caller subtracts IP and UDP headers and the non-ESP marker). `header.nextPayload` and
 * `header.length` are computed per fragment.
 */
export function encodeFragments(header: IkeHeader, innerPayloads: readonly Payload[], protection: SkProtection, maxMessage: number): Buffer[] {
  const inner = encodePayloadChain(innerPayloads);
  const piece = maxPiece(protection, Math.min(maxMessage, 0xffff + IKE_HEADER_LENGTH) - SKF_MESSAGE_OVERHEAD);
  if (piece < 1) throw new CodecEncodeError(`no inner octets fit a ${maxMessage}-octet fragment`);
  const total = Math.max(1, Math.ceil(inner.bytes.length / piece));
  if (total > 0xffff) throw new CodecEncodeError(`${total} fragments exceed the 65535 RFC 7383 allows`);
  const out: Buffer[] = [];
  for (let i = 0; i < total; i++) {
    const plaintext = inner.bytes.subarray(i * piece, Math.min(inner.bytes.length, (i + 1) * piece));
    const bodyLength = plaintext.length + protection.overhead(plaintext.length);
    const skfLength = 8 + bodyLength;
    const length = IKE_HEADER_LENGTH + skfLength;
    const skfHeader = Buffer.alloc(8);
    // RFC 7383 §2.5: Next Payload is the first inner payload type in fragment 1, zero in the others.
    skfHeader[0] = i === 0 ? inner.first : PayloadType.NONE;
    skfHeader.writeUInt16BE(skfLength, 2);
    skfHeader.writeUInt16BE(i + 1, 4);
    skfHeader.writeUInt16BE(total, 6);
    const aad = Buffer.concat([encodeHeader(header, PayloadType.SKF, length), skfHeader]);
    const body = protection.seal(aad, plaintext);
    if (body.length !== bodyLength) throw new CodecEncodeError(`protection sealed ${body.length} octets, its overhead() promised ${bodyLength}`);
    out.push(Buffer.concat([aad, body], length));
  }
  return out;
}

/**
 * One SK message when it fits `maxMessage` or fragmentation is off; otherwise SKF fragments
 * (RFC 7383 §2.5: fragment only when the peer announced IKEV2_FRAGMENTATION_SUPPORTED).
 */
export function encodeProtectedForSending(
  header: IkeHeader,
  innerPayloads: readonly Payload[],
  protection: SkProtection,
  options: { fragmentation: boolean; maxMessage: number },
): Buffer[] {
  const whole = encodeProtected(header, innerPayloads, protection);
  if (!options.fragmentation || whole.length <= options.maxMessage) return [whole];
  return encodeFragments(header, innerPayloads, protection, options.maxMessage);
}

export interface ReassemblerLimits {
  /** Largest Total Fragments accepted for one message. */
  maxFragments: number;
  /** Decrypted octets held across all messages being reassembled. */
  maxBytes: number;
  /** Messages reassembled at the same time (oldest evicted first). */
  maxMessages: number;
  /** A message not complete this long after its first stored fragment is dropped (ms). */
  timeoutMs: number;
}

export const DEFAULT_REASSEMBLER_LIMITS: ReassemblerLimits = {
  maxFragments: 128,
  maxBytes: 256 * 1024,
  maxMessages: 8,
  timeoutMs: 30_000,
};

export type ReassemblyResult =
  /** Stored; more fragments are needed. */
  | { status: 'incomplete'; received: number; total: number }
  /** All fragments arrived: `message.header` is fragment 1's header, `payloads` the inner payloads. */
  | { status: 'complete'; message: IkeMessage }
  /** Not stored (duplicate, stale Total Fragments, over a limit, integrity failure): drop silently. */
  | { status: 'dropped'; reason: string; integrity?: boolean }
  /** The datagram does not decode or the reassembled inner chain is malformed. */
  | { status: 'error'; error: DecodeError };

interface PendingMessage {
  key: string;
  total: number;
  firstAt: number;
  innerFirst: number;
  header: IkeHeader | undefined;
  pieces: (Buffer | undefined)[];
  received: number;
  bytes: number;
}

export function reassemblyKey(header: IkeHeader): string {
  return `${header.spiI.toString('hex')}:${header.spiR.toString('hex')}:${header.messageId}:${header.flags.response ? 'r' : 'q'}`;
}

export class Reassembler {
  readonly limits: ReassemblerLimits;
  private readonly pending = new Map<string, PendingMessage>();
  private heldBytes = 0;

  constructor(limits: Partial<ReassemblerLimits> = {}) {
    this.limits = { ...DEFAULT_REASSEMBLER_LIMITS, ...limits };
  }

  /** Decrypted octets currently held. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Messages currently being reassembled. */
  get messagesPending(): number {
    return this.pending.size;
  }

  /**
   * Offer one SKF datagram (or its decoded message). `protection` is the peer's direction of the IKE SA
   * the header's SPIs name; the caller has checked the Message ID against its window.
   */
  add(now: number, input: Buffer | IkeMessage, protection: SkProtection): ReassemblyResult {
    this.expire(now);
    const resolved = resolveEncrypted(input);
    if (!resolved.ok) return { status: 'error', error: resolved.error };
    const { bytes, message } = resolved;
    const skf = message.payloads[message.payloads.length - 1];
    if (!skf || skf.type !== PayloadType.SKF) {
      return { status: 'error', error: { kind: 'syntax', reason: 'not an SKF fragment', header: message.header } };
    }
    const { fragmentNumber, totalFragments } = skf;
    if (totalFragments > this.limits.maxFragments) {
      return { status: 'dropped', reason: `Total Fragments ${totalFragments} above the limit of ${this.limits.maxFragments}` };
    }
    const key = reassemblyKey(message.header);
    let entry = this.pending.get(key);
    // RFC 7383 §2.6: a fragment with a lower Total Fragments than the stored ones is stale.
    if (entry && totalFragments < entry.total) {
      return { status: 'dropped', reason: `Total Fragments ${totalFragments} below the ${entry.total} of the fragments held` };
    }
    if (entry && totalFragments === entry.total && entry.pieces[fragmentNumber - 1] !== undefined) {
      return { status: 'dropped', reason: `duplicate fragment ${fragmentNumber}/${totalFragments}` };
    }
    // Integrity before anything is stored or discarded.
    const plaintext = protection.open(aadOf(bytes, skf), skf.body);
    if (plaintext === null) return { status: 'dropped', reason: `fragment ${fragmentNumber}/${totalFragments} failed its integrity check`, integrity: true };

    if (entry && totalFragments > entry.total) {
      // RFC 7383 §2.6: a higher Total Fragments (the sender re-fragmented for a smaller MTU) restarts reassembly.
      this.remove(entry);
      entry = undefined;
    }
    if (!entry) {
      while (this.pending.size >= this.limits.maxMessages) this.evictOldest();
      entry = { key, total: totalFragments, firstAt: now, innerFirst: PayloadType.NONE, header: undefined, pieces: new Array(totalFragments), received: 0, bytes: 0 };
      this.pending.set(key, entry);
    }
    if (plaintext.length > this.limits.maxBytes) {
      this.remove(entry);
      return { status: 'dropped', reason: `fragment of ${plaintext.length} octets exceeds the ${this.limits.maxBytes}-octet reassembly limit` };
    }
    while (this.heldBytes + plaintext.length > this.limits.maxBytes) {
      const oldest = this.oldestOther(entry);
      if (!oldest) {
        this.remove(entry);
        return { status: 'dropped', reason: `message exceeds the ${this.limits.maxBytes}-octet reassembly limit` };
      }
      this.remove(oldest);
    }
    // Keep a copy: the decrypted buffer may be a view of a larger one.
    const piece = Buffer.from(plaintext);
    entry.pieces[fragmentNumber - 1] = piece;
    entry.received++;
    entry.bytes += piece.length;
    this.heldBytes += piece.length;
    if (fragmentNumber === 1) {
      entry.innerFirst = skf.innerFirst;
      entry.header = message.header;
    }
    if (entry.received < entry.total) return { status: 'incomplete', received: entry.received, total: entry.total };

    this.remove(entry);
    const whole = Buffer.concat(entry.pieces as Buffer[], entry.bytes);
    const header = entry.header ?? message.header;
    const inner = decodePayloadChain(entry.innerFirst, whole);
    if (!inner.ok) {
      inner.error.header = header;
      inner.error.reason = `inside reassembled SKF message: ${inner.error.reason}`;
      return { status: 'error', error: inner.error };
    }
    return { status: 'complete', message: { header, payloads: inner.payloads } };
  }

  /** Drop messages whose first fragment is older than the timeout. */
  expire(now: number): void {
    for (const entry of [...this.pending.values()]) {
      if (now - entry.firstAt >= this.limits.timeoutMs) this.remove(entry);
    }
  }

  /** Forget any partial message for this header's SPIs, Message ID and direction. */
  forget(header: IkeHeader): void {
    const entry = this.pending.get(reassemblyKey(header));
    if (entry) this.remove(entry);
  }

  clear(): void {
    this.pending.clear();
    this.heldBytes = 0;
  }

  private remove(entry: PendingMessage): void {
    if (this.pending.get(entry.key) === entry) {
      this.pending.delete(entry.key);
      this.heldBytes -= entry.bytes;
    }
  }

  private oldestOther(except: PendingMessage): PendingMessage | undefined {
    let oldest: PendingMessage | undefined;
    for (const e of this.pending.values()) if (e !== except && (!oldest || e.firstAt < oldest.firstAt)) oldest = e;
    return oldest;
  }

  private evictOldest(): void {
    let oldest: PendingMessage | undefined;
    for (const e of this.pending.values()) if (!oldest || e.firstAt < oldest.firstAt) oldest = e;
    if (oldest) this.remove(oldest);
  }
}
