// Bytes -> typed IKEv2 messages (RFC 7296 §3, RFC 7383 §2.5).
//
// Strict and bounded: every length is checked against the bytes that are really there before it is
// used, nothing is read past the datagram, and the decoded payloads are views into the input (no copies),
// so memory is a small constant times the datagram size. Never throws on input: every failure is a
// DecodeError naming what was wrong and the notify to answer with, if any.
import {
  GENERIC_PAYLOAD_HEADER_LENGTH,
  HeaderFlag,
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  NotifyType,
  PayloadType,
  ProtocolId,
  TransformAttributeType,
  TsType,
  payloadName,
} from './constants.js';
import type {
  AuthPayload,
  CfgAttribute,
  CpPayload,
  IdPayload,
  KePayload,
  TsPayload,
  ChainDecodeResult,
  DecodeError,
  DecodeResult,
  IkeHeader,
  Payload,
  Proposal,
  TrafficSelector,
  Transform,
  TransformAttribute,
} from './types.js';

/** Most payloads one message (or one SK payload's inside) may hold; real messages carry a few dozen. */
export const MAX_PAYLOADS_PER_CHAIN = 512;

/** RFC 7296 §3.9: Nonce Data is 16..256 octets. */
export const NONCE_MIN_LENGTH = 16;
export const NONCE_MAX_LENGTH = 256;

type Fail = { fail: string };
const failed = (reason: string): Fail => ({ fail: reason });
const isFail = (x: unknown): x is Fail => typeof x === 'object' && x !== null && 'fail' in x;

function syntaxError(reason: string, header?: IkeHeader): DecodeError {
  const error: DecodeError = { kind: 'syntax', reason, notify: NotifyType.INVALID_SYNTAX };
  if (header) error.header = header;
  return error;
}

/** Parse the fixed IKE header (no checks beyond its size). */
export function decodeHeader(buf: Buffer): IkeHeader | undefined {
  if (buf.length < IKE_HEADER_LENGTH) return undefined;
  const version = buf[17]!;
  const flags = buf[19]!;
  const header: IkeHeader = {
    spiI: buf.subarray(0, 8),
    spiR: buf.subarray(8, 16),
    nextPayload: buf[16]!,
    majorVersion: version >> 4,
    minorVersion: version & 0x0f,
    exchangeType: buf[18]!,
    flags: {
      initiator: (flags & HeaderFlag.INITIATOR) !== 0,
      response: (flags & HeaderFlag.RESPONSE) !== 0,
      version: (flags & HeaderFlag.VERSION) !== 0,
    },
    messageId: buf.readUInt32BE(20),
    length: buf.readUInt32BE(24),
  };
  const reservedFlags = flags & ~(HeaderFlag.INITIATOR | HeaderFlag.RESPONSE | HeaderFlag.VERSION) & 0xff;
  if (reservedFlags !== 0) header.reservedFlags = reservedFlags;
  return header;
}

/**
 * Decode one IKE message (starting at the IKE header: strip the 4-octet non-ESP marker on port 4500
 * first). The header Length must equal the datagram length.
 */
export function decodeMessage(buf: Buffer): DecodeResult {
  try {
    return decodeMessageUnchecked(buf);
  } catch (err) {
    // A bug in this decoder must not take the daemon down; the fuzz tests assert this never happens.
    return { ok: false, error: { kind: 'syntax', reason: `internal decoder error: ${(err as Error)?.message ?? String(err)}` } };
  }
}

function decodeMessageUnchecked(buf: Buffer): DecodeResult {
  if (!Buffer.isBuffer(buf)) return { ok: false, error: { kind: 'header', reason: 'input is not a Buffer' } };
  const header = decodeHeader(buf);
  if (!header) {
    return { ok: false, error: { kind: 'header', reason: `datagram of ${buf.length} octets is shorter than the ${IKE_HEADER_LENGTH}-octet IKE header` } };
  }
  if (header.majorVersion !== IKE_MAJOR_VERSION) {
    // RFC 7296 §2.5: a higher major version gets INVALID_MAJOR_VERSION; anything lower is not IKEv2 at all.
    const error: DecodeError = { kind: 'header', reason: `IKE major version ${header.majorVersion}, expected ${IKE_MAJOR_VERSION}`, header };
    if (header.majorVersion > IKE_MAJOR_VERSION) error.notify = NotifyType.INVALID_MAJOR_VERSION;
    return { ok: false, error };
  }
  if (header.length !== buf.length) {
    return { ok: false, error: { kind: 'header', reason: `IKE header Length ${header.length} differs from the datagram length ${buf.length}`, header } };
  }
  const chain = decodeChainAt(header.nextPayload, buf, IKE_HEADER_LENGTH, buf.length, false);
  if (!chain.ok) {
    chain.error.header = header;
    return chain;
  }
  return { ok: true, message: { header, payloads: chain.payloads } };
}

/**
 * Decode a payload chain that starts with payload type `first` and fills `buf` exactly, e.g. the
 * plaintext of an SK payload (where SK/SKF may not appear again).
 */
export function decodePayloadChain(first: number, buf: Buffer): ChainDecodeResult {
  try {
    if (!Buffer.isBuffer(buf)) return { ok: false, error: syntaxError('input is not a Buffer') };
    return decodeChainAt(first, buf, 0, buf.length, true);
  } catch (err) {
    return { ok: false, error: { kind: 'syntax', reason: `internal decoder error: ${(err as Error)?.message ?? String(err)}` } };
  }
}

function decodeChainAt(first: number, buf: Buffer, start: number, end: number, inner: boolean): ChainDecodeResult {
  const payloads: Payload[] = [];
  let type = first;
  let offset = start;
  while (type !== PayloadType.NONE) {
    const where = `${payloadName(type)} payload #${payloads.length + 1} at offset ${offset}`;
    if (payloads.length >= MAX_PAYLOADS_PER_CHAIN) {
      return { ok: false, error: syntaxError(`more than ${MAX_PAYLOADS_PER_CHAIN} payloads in one chain`) };
    }
    if (end - offset < GENERIC_PAYLOAD_HEADER_LENGTH) {
      return { ok: false, error: syntaxError(`${where}: only ${end - offset} octets left, the generic payload header needs ${GENERIC_PAYLOAD_HEADER_LENGTH}`) };
    }
    const next = buf[offset]!;
    const critical = (buf[offset + 1]! & 0x80) !== 0;
    const reservedBits = buf[offset + 1]! & 0x7f;
    const length = buf.readUInt16BE(offset + 2);
    if (length < GENERIC_PAYLOAD_HEADER_LENGTH) {
      return { ok: false, error: syntaxError(`${where}: Payload Length ${length} is below the ${GENERIC_PAYLOAD_HEADER_LENGTH}-octet header`) };
    }
    if (length > end - offset) {
      return { ok: false, error: syntaxError(`${where}: Payload Length ${length} overruns the ${end - offset} octets left`) };
    }
    const body = buf.subarray(offset + GENERIC_PAYLOAD_HEADER_LENGTH, offset + length);
    offset += length;

    const isEncrypted = type === PayloadType.SK || type === PayloadType.SKF;
    if (isEncrypted && inner) {
      return { ok: false, error: syntaxError(`${where}: ${payloadName(type)} inside an encrypted payload`) };
    }
    const parsed = parsePayload(type, next, critical, body);
    if (parsed === null) {
      // RFC 7296 §2.5 / §3.2: an unrecognized payload with the Critical bit set rejects the message;
      // the answer carries UNSUPPORTED_CRITICAL_PAYLOAD with the one-octet payload type.
      return {
        ok: false,
        error: {
          kind: 'critical',
          reason: `${where}: unsupported payload type ${type} marked critical`,
          notify: NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
          notifyData: Buffer.from([type & 0xff]),
        },
      };
    }
    if (isFail(parsed)) return { ok: false, error: syntaxError(`${where}: ${parsed.fail}`) };
    if (reservedBits !== 0) parsed.reservedBits = reservedBits;
    payloads.push(parsed);

    if (isEncrypted) {
      // RFC 7296 §3.14, RFC 7383 §2.5: SK/SKF is the last payload; its Next Payload names the first
      // inner payload, not a following outer one.
      if (offset !== end) {
        return { ok: false, error: syntaxError(`${where}: ${end - offset} octets follow it, but it must be the last payload`) };
      }
      return { ok: true, payloads };
    }
    type = next;
  }
  if (offset !== end) {
    return { ok: false, error: syntaxError(`${end - offset} octets after the last payload (Next Payload 0 at offset ${offset})`) };
  }
  return { ok: true, payloads };
}

/** One payload body. Returns null for an unknown critical payload. */
function parsePayload(type: number, next: number, critical: boolean, body: Buffer): Payload | Fail | null {
  switch (type) {
    case PayloadType.SA:
      return parseSa(body, critical);
    case PayloadType.KE: {
      if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Key Exchange Method, RESERVED)`);
      const p: KePayload = { type: PayloadType.KE, critical, group: body.readUInt16BE(0), data: body.subarray(4) };
      const reserved = body.readUInt16BE(2);
      if (reserved !== 0) p.reserved = reserved;
      return p;
    }
    case PayloadType.IDi:
    case PayloadType.IDr: {
      if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (ID Type, RESERVED)`);
      const p: IdPayload = { type, critical, idType: body[0]!, data: body.subarray(4) };
      const reserved = body.readUIntBE(1, 3);
      if (reserved !== 0) p.reserved = reserved;
      return p;
    }
    case PayloadType.CERT:
    case PayloadType.CERTREQ:
      if (body.length < 1) return failed('empty body, the Encoding octet is missing');
      return { type, critical, encoding: body[0]!, data: body.subarray(1) };
    case PayloadType.AUTH: {
      if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Auth Method, RESERVED)`);
      const p: AuthPayload = { type: PayloadType.AUTH, critical, method: body[0]!, data: body.subarray(4) };
      const reserved = body.readUIntBE(1, 3);
      if (reserved !== 0) p.reserved = reserved;
      return p;
    }
    case PayloadType.NONCE:
      if (body.length < NONCE_MIN_LENGTH || body.length > NONCE_MAX_LENGTH) {
        return failed(`Nonce Data of ${body.length} octets, RFC 7296 §3.9 requires ${NONCE_MIN_LENGTH}..${NONCE_MAX_LENGTH}`);
      }
      return { type: PayloadType.NONCE, critical, data: body };
    case PayloadType.NOTIFY: {
      if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Protocol ID, SPI Size, Notify Message Type)`);
      const spiSize = body[1]!;
      if (4 + spiSize > body.length) return failed(`SPI Size ${spiSize} overruns the ${body.length - 4} octets after the notify header`);
      return {
        type: PayloadType.NOTIFY,
        critical,
        protocol: body[0]!,
        notifyType: body.readUInt16BE(2),
        spi: body.subarray(4, 4 + spiSize),
        data: body.subarray(4 + spiSize),
      };
    }
    case PayloadType.DELETE:
      return parseDelete(body, critical);
    case PayloadType.VENDOR:
      return { type: PayloadType.VENDOR, critical, data: body };
    case PayloadType.TSi:
    case PayloadType.TSr:
      return parseTs(type, body, critical);
    case PayloadType.SK:
      return { type: PayloadType.SK, critical, innerFirst: next, body };
    case PayloadType.SKF: {
      if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Fragment Number, Total Fragments)`);
      const fragmentNumber = body.readUInt16BE(0);
      const totalFragments = body.readUInt16BE(2);
      // RFC 7383 §2.5: numbering starts at 1 and never exceeds Total Fragments.
      if (fragmentNumber === 0 || totalFragments === 0 || fragmentNumber > totalFragments) {
        return failed(`Fragment Number ${fragmentNumber} / Total Fragments ${totalFragments} is not within 1..total`);
      }
      return { type: PayloadType.SKF, critical, innerFirst: next, fragmentNumber, totalFragments, body: body.subarray(4) };
    }
    case PayloadType.CP:
      return parseCp(body, critical);
    case PayloadType.EAP:
      return { type: PayloadType.EAP, critical, data: body };
    default:
      if (critical) return null;
      return { type: PayloadType.UNKNOWN, critical, rawType: type, data: body };
  }
}

function parseSa(body: Buffer, critical: boolean): Payload | Fail {
  const proposals: Proposal[] = [];
  let offset = 0;
  for (;;) {
    const at = `proposal #${proposals.length + 1} at SA offset ${offset}`;
    if (body.length - offset < 8) return failed(`${at}: ${body.length - offset} octets left, a proposal needs at least 8`);
    const last = body[offset]!;
    const reserved = body[offset + 1]!;
    const length = body.readUInt16BE(offset + 2);
    const num = body[offset + 4]!;
    const protocol = body[offset + 5]!;
    const spiSize = body[offset + 6]!;
    const numTransforms = body[offset + 7]!;
    if (last !== 0 && last !== 2) return failed(`${at}: Last Substruc ${last}, must be 0 (last) or 2 (more)`);
    if (length < 8 + spiSize) return failed(`${at}: Proposal Length ${length} below 8 + SPI Size ${spiSize}`);
    if (length > body.length - offset) return failed(`${at}: Proposal Length ${length} overruns the ${body.length - offset} octets left`);
    // RFC 7296 §3.3.1: SPI Size is 0 (IKE_SA_INIT) or 8 (IKE rekey) for IKE, 4 for AH and ESP.
    if (protocol === ProtocolId.IKE && spiSize !== 0 && spiSize !== 8) return failed(`${at}: IKE proposal with SPI Size ${spiSize}, must be 0 or 8`);
    if ((protocol === ProtocolId.AH || protocol === ProtocolId.ESP) && spiSize !== 4) {
      return failed(`${at}: ${protocol === ProtocolId.AH ? 'AH' : 'ESP'} proposal with SPI Size ${spiSize}, must be 4`);
    }
    const end = offset + length;
    const spi = body.subarray(offset + 8, offset + 8 + spiSize);
    const transforms: Transform[] = [];
    let t = offset + 8 + spiSize;
    for (let i = 0; i < numTransforms; i++) {
      const tr = parseTransform(body, t, end, i, numTransforms);
      if (isFail(tr)) return failed(`${at}: ${tr.fail}`);
      transforms.push(tr.transform);
      t = tr.next;
    }
    if (t !== end) return failed(`${at}: Proposal Length ${length} but its ${numTransforms} transforms end ${t - offset} octets in`);
    const proposal: Proposal = { num, protocol, spi, transforms };
    if (reserved !== 0) proposal.reserved = reserved;
    proposals.push(proposal);
    offset = end;
    if (last === 0) {
      if (offset !== body.length) return failed(`${at}: marked last but ${body.length - offset} octets follow in the SA payload`);
      break;
    }
    if (offset === body.length) return failed(`${at}: marked "more proposals" but the SA payload ends`);
  }
  return { type: PayloadType.SA, critical, proposals };
}

function parseTransform(body: Buffer, offset: number, end: number, index: number, count: number): { transform: Transform; next: number } | Fail {
  const at = `transform #${index + 1}`;
  if (end - offset < 8) return failed(`${at}: ${end - offset} octets left in the proposal, a transform needs at least 8 (Number of Transforms ${count})`);
  const last = body[offset]!;
  const reserved1 = body[offset + 1]!;
  const length = body.readUInt16BE(offset + 2);
  const type = body[offset + 4]!;
  const reserved2 = body[offset + 5]!;
  const id = body.readUInt16BE(offset + 6);
  const expectedLast = index === count - 1 ? 0 : 3;
  if (last !== expectedLast) {
    return failed(`${at}: Last Substruc ${last}, expected ${expectedLast} (${index + 1} of ${count} transforms)`);
  }
  if (length < 8) return failed(`${at}: Transform Length ${length} below 8`);
  if (length > end - offset) return failed(`${at}: Transform Length ${length} overruns the ${end - offset} octets left in the proposal`);
  const transform: Transform = { type, id, attributes: [] };
  if (reserved1 !== 0) transform.reserved1 = reserved1;
  if (reserved2 !== 0) transform.reserved2 = reserved2;
  const attrEnd = offset + length;
  let a = offset + 8;
  let index2 = 0;
  while (a < attrEnd) {
    if (attrEnd - a < 4) return failed(`${at}: ${attrEnd - a} stray octets where a transform attribute (4 octets at least) should be`);
    const word = body.readUInt16BE(a);
    const tv = (word & 0x8000) !== 0;
    const attrType = word & 0x7fff;
    let value: Buffer;
    if (tv) {
      value = body.subarray(a + 2, a + 4);
      a += 4;
    } else {
      const attrLength = body.readUInt16BE(a + 2);
      if (attrLength > attrEnd - a - 4) return failed(`${at}: attribute ${attrType} Length ${attrLength} overruns the transform`);
      value = body.subarray(a + 4, a + 4 + attrLength);
      a += 4 + attrLength;
    }
    if (attrType === TransformAttributeType.KEY_LENGTH) {
      // RFC 7296 §3.3.5: Key Length is TV format only, at most once.
      if (!tv) return failed(`${at}: Key Length attribute in TLV format, must be TV`);
      if (transform.keyLength !== undefined) return failed(`${at}: two Key Length attributes`);
      transform.keyLength = value.readUInt16BE(0);
      if (index2 !== 0) transform.keyLengthIndex = index2;
    } else {
      const attribute: TransformAttribute = { type: attrType, tv, value };
      transform.attributes.push(attribute);
    }
    index2++;
  }
  return { transform, next: attrEnd };
}

function parseDelete(body: Buffer, critical: boolean): Payload | Fail {
  if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Protocol ID, SPI Size, Num of SPIs)`);
  const protocol = body[0]!;
  const spiSize = body[1]!;
  const count = body.readUInt16BE(2);
  // RFC 7296 §3.11: IKE SA deletes carry no SPIs (size 0, count 0); AH/ESP SPIs are 4 octets.
  if (protocol === ProtocolId.IKE && (spiSize !== 0 || count !== 0)) return failed(`IKE SA delete with SPI Size ${spiSize} and ${count} SPIs, both must be 0`);
  if ((protocol === ProtocolId.AH || protocol === ProtocolId.ESP) && spiSize !== 4) return failed(`${protocol === ProtocolId.AH ? 'AH' : 'ESP'} delete with SPI Size ${spiSize}, must be 4`);
  if (spiSize === 0 && count !== 0) return failed(`${count} SPIs of size 0`);
  if (body.length - 4 !== spiSize * count) return failed(`${count} SPIs of ${spiSize} octets need ${spiSize * count} octets, the payload has ${body.length - 4}`);
  const spis: Buffer[] = [];
  for (let i = 0; i < count; i++) spis.push(body.subarray(4 + i * spiSize, 4 + (i + 1) * spiSize));
  return { type: PayloadType.DELETE, critical, protocol, spiSize, spis };
}

function parseTs(type: PayloadType.TSi | PayloadType.TSr, body: Buffer, critical: boolean): Payload | Fail {
  if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (Number of TSs, RESERVED)`);
  const count = body[0]!;
  const reserved = body.readUIntBE(1, 3);
  const selectors: TrafficSelector[] = [];
  let offset = 4;
  for (let i = 0; i < count; i++) {
    const at = `traffic selector #${i + 1} of ${count}`;
    if (body.length - offset < 4) return failed(`${at}: ${body.length - offset} octets left, a selector header needs 4`);
    const tsType = body[offset]!;
    const octet2 = body[offset + 1]!;
    const length = body.readUInt16BE(offset + 2);
    if (length > body.length - offset) return failed(`${at}: Selector Length ${length} overruns the ${body.length - offset} octets left`);
    if (tsType === TsType.IPV4_ADDR_RANGE || tsType === TsType.IPV6_ADDR_RANGE) {
      // RFC 7296 §3.13.1: 16 octets for IPv4 ranges, 40 for IPv6.
      const addrLength = tsType === TsType.IPV4_ADDR_RANGE ? 4 : 16;
      if (length !== 8 + 2 * addrLength) return failed(`${at}: TS type ${tsType} with Selector Length ${length}, must be ${8 + 2 * addrLength}`);
      selectors.push({
        tsType,
        ipProtocol: octet2,
        startPort: body.readUInt16BE(offset + 4),
        endPort: body.readUInt16BE(offset + 6),
        startAddr: body.subarray(offset + 8, offset + 8 + addrLength),
        endAddr: body.subarray(offset + 8 + addrLength, offset + 8 + 2 * addrLength),
      });
    } else {
      if (length < 4) return failed(`${at}: Selector Length ${length} below its 4-octet header`);
      selectors.push({ tsType, octet2, opaque: body.subarray(offset + 4, offset + length) });
    }
    offset += length;
  }
  if (offset !== body.length) return failed(`Number of TSs ${count} but ${body.length - offset} octets follow the last selector`);
  const p: TsPayload = { type, critical, selectors };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}

function parseCp(body: Buffer, critical: boolean): Payload | Fail {
  if (body.length < 4) return failed(`body of ${body.length} octets, at least 4 needed (CFG Type, RESERVED)`);
  const cfgType = body[0]!;
  const reserved = body.readUIntBE(1, 3);
  const attributes: CfgAttribute[] = [];
  let offset = 4;
  while (offset < body.length) {
    if (body.length - offset < 4) return failed(`${body.length - offset} stray octets where a configuration attribute (4 octets at least) should be`);
    const word = body.readUInt16BE(offset);
    const length = body.readUInt16BE(offset + 2);
    if (length > body.length - offset - 4) return failed(`configuration attribute ${word & 0x7fff} Length ${length} overruns the payload`);
    const attribute: CfgAttribute = { type: word & 0x7fff, value: body.subarray(offset + 4, offset + 4 + length) };
    if (word & 0x8000) attribute.reservedBit = true;
    attributes.push(attribute);
    offset += 4 + length;
  }
  const p: CpPayload = { type: PayloadType.CP, critical, cfgType, attributes };
  if (reserved !== 0) p.reserved = reserved;
  return p;
}
