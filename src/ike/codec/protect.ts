// Encrypted (SK) messages: RFC 7296 §3.14, RFC 5282 §5.1.
//
// The protection (crypto's IkeProtection) seals and opens SK bodies; this module lays out the bytes
// around it. The authenticated data is everything from the first octet of the IKE header through the
// last octet of the SK payload's generic header, with every Length already final, so lengths are
// computed from `overhead` before sealing. On receipt the integrity check comes first; only a body that
// verifies is parsed.
import type { IkeProtection } from '../crypto/protection.js';
import { GENERIC_PAYLOAD_HEADER_LENGTH, IKE_HEADER_LENGTH, PayloadType } from './constants.js';
import { decodeMessage, decodePayloadChain } from './decode.js';
import { CodecEncodeError, encodeHeader, encodePayloadChain } from './encode.js';
import type { DecodeError, IkeHeader, IkeMessage, Payload, SkfPayload, SkPayload } from './types.js';

/** What the codec needs of an SK protection (crypto's IkeProtection has all of it). */
export type SkProtection = Pick<IkeProtection, 'seal' | 'open' | 'overhead'> & Partial<Pick<IkeProtection, 'maxPlaintext'>>;

export type ProtectedDecodeResult =
  | {
      ok: true;
      /** The header and the decrypted inner payloads (what the exchange logic reads). */
      message: IkeMessage;
      /** Payloads before SK, outside the encryption (normally none). */
      unprotected: Payload[];
    }
  | { ok: false; error: DecodeError };

/**
 * Build a protected message: HDR, [outer payloads], SK{inner payloads}. `header.nextPayload` and
 * `header.length` are computed. Throws CodecEncodeError for unencodable input or a protection that
 * returns a body of the wrong size.
 */
export function encodeProtected(header: IkeHeader, innerPayloads: readonly Payload[], protection: SkProtection, outerPayloads: readonly Payload[] = []): Buffer {
  for (const p of outerPayloads) {
    if (p.type === PayloadType.SK || p.type === PayloadType.SKF) throw new CodecEncodeError(`${p.type === PayloadType.SK ? 'SK' : 'SKF'} among the unprotected payloads`);
  }
  const inner = encodePayloadChain(innerPayloads);
  const bodyLength = inner.bytes.length + protection.overhead(inner.bytes.length);
  const skLength = GENERIC_PAYLOAD_HEADER_LENGTH + bodyLength;
  if (skLength > 0xffff) throw new CodecEncodeError(`SK payload of ${skLength} octets exceeds the 65535-octet Payload Length; fragment it (RFC 7383)`);

  // The outer chain ends in SK; encode it with a placeholder SK to get the Next Payload fields right.
  const outer = encodePayloadChain([...outerPayloads, { type: PayloadType.SK, critical: false, innerFirst: inner.first, body: Buffer.alloc(0) }]);
  const outerWithoutSk = outer.bytes.subarray(0, outer.bytes.length - GENERIC_PAYLOAD_HEADER_LENGTH);
  const skHeader = Buffer.alloc(GENERIC_PAYLOAD_HEADER_LENGTH);
  skHeader[0] = inner.first;
  skHeader.writeUInt16BE(skLength, 2);

  const length = IKE_HEADER_LENGTH + outerWithoutSk.length + skLength;
  const aad = Buffer.concat([encodeHeader(header, outer.first, length), outerWithoutSk, skHeader]);
  const body = protection.seal(aad, inner.bytes);
  if (body.length !== bodyLength) {
    throw new CodecEncodeError(`protection sealed ${body.length} octets, its overhead() promised ${bodyLength}`);
  }
  return Buffer.concat([aad, body], length);
}

/**
 * The datagram a decoded message was parsed from. decodeMessage's Buffers are views of the datagram,
 * so the header SPI view locates it; returns undefined for messages that were built, not decoded.
 */
export function datagramOf(message: IkeMessage): Buffer | undefined {
  const spiI = message.header.spiI;
  const last = message.payloads[message.payloads.length - 1];
  if (!last || (last.type !== PayloadType.SK && last.type !== PayloadType.SKF)) return undefined;
  const start = spiI.byteOffset;
  const length = message.header.length;
  if (last.body.buffer !== spiI.buffer) return undefined;
  if (last.body.byteOffset + last.body.length !== start + length) return undefined;
  if (start + length > spiI.buffer.byteLength) return undefined;
  return Buffer.from(spiI.buffer, start, length);
}

/** Resolve input (datagram or decoded message) to both forms; error when it does not decode. */
export function resolveEncrypted(input: Buffer | IkeMessage): { ok: true; bytes: Buffer; message: IkeMessage } | { ok: false; error: DecodeError } {
  if (Buffer.isBuffer(input)) {
    const decoded = decodeMessage(input);
    if (!decoded.ok) return decoded;
    return { ok: true, bytes: input, message: decoded.message };
  }
  const bytes = datagramOf(input);
  if (!bytes) {
    return { ok: false, error: { kind: 'unprotected', reason: 'message has no SK/SKF payload or was not decoded from a datagram', header: input.header } };
  }
  return { ok: true, bytes, message: input };
}

/** The authenticated data of an SK/SKF message: everything before the body (which ends the datagram). */
export function aadOf(bytes: Buffer, encrypted: SkPayload | SkfPayload): Buffer {
  return bytes.subarray(0, bytes.length - encrypted.body.length);
}

/**
 * Verify and decrypt an SK message, then parse its inner payloads. Integrity failure is
 * `error.kind === 'integrity'` (drop silently, RFC 7296 §2.21.2); an SKF fragment is
 * `error.kind === 'fragment'` (use a Reassembler).
 */
export function decodeProtected(input: Buffer | IkeMessage, protection: SkProtection): ProtectedDecodeResult {
  try {
    const resolved = resolveEncrypted(input);
    if (!resolved.ok) return resolved;
    const { bytes, message } = resolved;
    const header = message.header;
    const last = message.payloads[message.payloads.length - 1];
    if (!last || (last.type !== PayloadType.SK && last.type !== PayloadType.SKF)) {
      return { ok: false, error: { kind: 'unprotected', reason: 'message carries no SK payload', header } };
    }
    if (last.type === PayloadType.SKF) {
      return { ok: false, error: { kind: 'fragment', reason: `SKF fragment ${last.fragmentNumber}/${last.totalFragments}: reassemble it first`, header } };
    }
    const plaintext = protection.open(aadOf(bytes, last), last.body);
    if (plaintext === null) {
      return { ok: false, error: { kind: 'integrity', reason: 'SK payload failed its integrity check', header } };
    }
    const inner = decodePayloadChain(last.innerFirst, plaintext);
    if (!inner.ok) {
      inner.error.header = header;
      inner.error.reason = `inside SK: ${inner.error.reason}`;
      return inner;
    }
    return { ok: true, message: { header, payloads: inner.payloads }, unprotected: message.payloads.slice(0, -1) };
  } catch (err) {
    return { ok: false, error: { kind: 'syntax', reason: `internal decoder error: ${(err as Error)?.message ?? String(err)}` } };
  }
}
