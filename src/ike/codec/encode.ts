// Typed IKEv2 messages -> bytes (RFC 7296 §3, RFC 7383 §2.5).
//
// The encoder computes every Next Payload and Length field itself (the header's nextPayload and
// length are ignored on input). It throws CodecEncodeError for shapes that cannot go on the wire
// (an SPI of the wrong size, a value out of its field's range, SK not last): those are bugs in the
// caller, never peer input.
import {
  GENERIC_PAYLOAD_HEADER_LENGTH,
  HeaderFlag,
  IKE_HEADER_LENGTH,
  IKE_MAJOR_VERSION,
  IKE_MINOR_VERSION,
  PayloadType,
  TransformAttributeType,
  TsType,
  payloadName,
} from './constants.js';
import type { IkeHeader, IkeMessage, Payload, Proposal, TrafficSelector, Transform } from './types.js';

export class CodecEncodeError extends Error {
  override name = 'CodecEncodeError';
}

function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new CodecEncodeError(message);
}

function u8(value: number, what: string): number {
  check(Number.isInteger(value) && value >= 0 && value <= 0xff, `${what} ${value} does not fit one octet`);
  return value;
}

function u16(value: number, what: string): number {
  check(Number.isInteger(value) && value >= 0 && value <= 0xffff, `${what} ${value} does not fit two octets`);
  return value;
}

function u24(value: number, what: string): number {
  check(Number.isInteger(value) && value >= 0 && value <= 0xffffff, `${what} ${value} does not fit three octets`);
  return value;
}

/** The wire payload type of a payload. */
export function wirePayloadType(p: Payload): number {
  return p.type === PayloadType.UNKNOWN ? p.rawType : p.type;
}

/** Encode the 28-octet IKE header with the given first payload type and total length. */
export function encodeHeader(header: IkeHeader, nextPayload: number, length: number): Buffer {
  check(header.spiI.length === 8, `IKE SPIi of ${header.spiI.length} octets, must be 8`);
  check(header.spiR.length === 8, `IKE SPIr of ${header.spiR.length} octets, must be 8`);
  const out = Buffer.alloc(IKE_HEADER_LENGTH);
  header.spiI.copy(out, 0);
  header.spiR.copy(out, 8);
  out[16] = u8(nextPayload, 'Next Payload');
  const major = header.majorVersion ?? IKE_MAJOR_VERSION;
  const minor = header.minorVersion ?? IKE_MINOR_VERSION;
  check(major >= 0 && major <= 15 && minor >= 0 && minor <= 15, `version ${major}.${minor} does not fit`);
  out[17] = (major << 4) | minor;
  out[18] = u8(header.exchangeType, 'Exchange Type');
  let flags = header.reservedFlags ?? 0;
  if (header.flags.initiator) flags |= HeaderFlag.INITIATOR;
  if (header.flags.response) flags |= HeaderFlag.RESPONSE;
  if (header.flags.version) flags |= HeaderFlag.VERSION;
  out[19] = u8(flags, 'Flags');
  check(Number.isInteger(header.messageId) && header.messageId >= 0 && header.messageId <= 0xffffffff, `Message ID ${header.messageId} out of range`);
  out.writeUInt32BE(header.messageId, 20);
  check(Number.isInteger(length) && length >= IKE_HEADER_LENGTH && length <= 0xffffffff, `message length ${length} out of range`);
  out.writeUInt32BE(length, 24);
  return out;
}

/** Encode one payload with its generic header; `next` is the Next Payload field value. */
export function encodePayload(p: Payload, next: number): Buffer {
  const body = encodePayloadBody(p);
  const length = GENERIC_PAYLOAD_HEADER_LENGTH + body.length;
  check(length <= 0xffff, `${payloadName(wirePayloadType(p))} payload of ${length} octets exceeds the 65535-octet Payload Length`);
  const header = Buffer.alloc(GENERIC_PAYLOAD_HEADER_LENGTH);
  header[0] = u8(next, 'Next Payload');
  header[1] = (p.critical ? 0x80 : 0) | ((p.reservedBits ?? 0) & 0x7f);
  header.writeUInt16BE(length, 2);
  return Buffer.concat([header, body], length);
}

/**
 * Encode a payload chain. `first` is the type of the first payload (0 for an empty chain). An SK or
 * SKF payload must be last; its Next Payload field is its `innerFirst`.
 */
export function encodePayloadChain(payloads: readonly Payload[]): { first: number; bytes: Buffer } {
  const parts: Buffer[] = [];
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    let next: number;
    if (p.type === PayloadType.SK || p.type === PayloadType.SKF) {
      check(i === payloads.length - 1, `${payloadName(p.type)} must be the last payload (RFC 7296 §3.14)`);
      next = p.innerFirst;
    } else {
      next = i + 1 < payloads.length ? wirePayloadType(payloads[i + 1]!) : PayloadType.NONE;
    }
    parts.push(encodePayload(p, next));
  }
  return { first: payloads.length > 0 ? wirePayloadType(payloads[0]!) : PayloadType.NONE, bytes: Buffer.concat(parts) };
}

/** Encode a whole message: header fields nextPayload and length are computed. */
export function encodeMessage(msg: IkeMessage): Buffer {
  const chain = encodePayloadChain(msg.payloads);
  const length = IKE_HEADER_LENGTH + chain.bytes.length;
  return Buffer.concat([encodeHeader(msg.header, chain.first, length), chain.bytes], length);
}

function encodePayloadBody(p: Payload): Buffer {
  switch (p.type) {
    case PayloadType.SA:
      check(p.proposals.length > 0, 'SA payload without proposals');
      return Buffer.concat(p.proposals.map((prop, i) => encodeProposal(prop, i === p.proposals.length - 1)));
    case PayloadType.KE: {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(u16(p.group, 'Key Exchange Method'), 0);
      head.writeUInt16BE(u16(p.reserved ?? 0, 'KE RESERVED'), 2);
      return Buffer.concat([head, p.data]);
    }
    case PayloadType.IDi:
    case PayloadType.IDr:
      return Buffer.concat([typeAndReserved24(p.idType, p.reserved, 'ID Type'), p.data]);
    case PayloadType.CERT:
    case PayloadType.CERTREQ:
      return Buffer.concat([Buffer.from([u8(p.encoding, 'Cert Encoding')]), p.data]);
    case PayloadType.AUTH:
      return Buffer.concat([typeAndReserved24(p.method, p.reserved, 'Auth Method'), p.data]);
    case PayloadType.NONCE:
    case PayloadType.VENDOR:
    case PayloadType.EAP:
      return p.data;
    case PayloadType.NOTIFY: {
      const head = Buffer.alloc(4);
      head[0] = u8(p.protocol, 'Notify Protocol ID');
      head[1] = u8(p.spi.length, 'Notify SPI Size');
      head.writeUInt16BE(u16(p.notifyType, 'Notify Message Type'), 2);
      return Buffer.concat([head, p.spi, p.data]);
    }
    case PayloadType.DELETE: {
      const head = Buffer.alloc(4);
      head[0] = u8(p.protocol, 'Delete Protocol ID');
      head[1] = u8(p.spiSize, 'Delete SPI Size');
      head.writeUInt16BE(u16(p.spis.length, 'Num of SPIs'), 2);
      for (const spi of p.spis) check(spi.length === p.spiSize, `Delete SPI of ${spi.length} octets, SPI Size is ${p.spiSize}`);
      return Buffer.concat([head, ...p.spis]);
    }
    case PayloadType.TSi:
    case PayloadType.TSr:
      return Buffer.concat([
        typeAndReserved24(p.selectors.length, p.reserved, 'Number of TSs'),
        ...p.selectors.map(encodeSelector),
      ]);
    case PayloadType.SK:
      return p.body;
    case PayloadType.SKF: {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(u16(p.fragmentNumber, 'Fragment Number'), 0);
      head.writeUInt16BE(u16(p.totalFragments, 'Total Fragments'), 2);
      return Buffer.concat([head, p.body]);
    }
    case PayloadType.CP: {
      const attrs = p.attributes.map((a) => {
        const head = Buffer.alloc(4);
        check(Number.isInteger(a.type) && a.type >= 0 && a.type <= 0x7fff, `configuration attribute type ${a.type} does not fit 15 bits`);
        head.writeUInt16BE((a.reservedBit ? 0x8000 : 0) | a.type, 0);
        head.writeUInt16BE(u16(a.value.length, 'configuration attribute Length'), 2);
        return Buffer.concat([head, a.value]);
      });
      return Buffer.concat([typeAndReserved24(p.cfgType, p.reserved, 'CFG Type'), ...attrs]);
    }
    case PayloadType.UNKNOWN:
      u8(p.rawType, 'payload type');
      return p.data;
  }
}

function typeAndReserved24(first: number, reserved: number | undefined, what: string): Buffer {
  const head = Buffer.alloc(4);
  head[0] = u8(first, what);
  head.writeUIntBE(u24(reserved ?? 0, `${what} RESERVED`), 1, 3);
  return head;
}

function encodeProposal(prop: Proposal, last: boolean): Buffer {
  const transforms = prop.transforms.map((t, i) => encodeTransform(t, i === prop.transforms.length - 1));
  const head = Buffer.alloc(8);
  head[0] = last ? 0 : 2;
  head[1] = u8(prop.reserved ?? 0, 'Proposal RESERVED');
  head[4] = u8(prop.num, 'Proposal Num');
  head[5] = u8(prop.protocol, 'Protocol ID');
  head[6] = u8(prop.spi.length, 'SPI Size');
  head[7] = u8(prop.transforms.length, 'Num Transforms');
  const length = 8 + prop.spi.length + transforms.reduce((n, b) => n + b.length, 0);
  head.writeUInt16BE(u16(length, 'Proposal Length'), 2);
  return Buffer.concat([head, prop.spi, ...transforms], length);
}

function encodeTransform(t: Transform, last: boolean): Buffer {
  const attrs: Buffer[] = t.attributes.map((a) => {
    check(Number.isInteger(a.type) && a.type >= 0 && a.type <= 0x7fff, `transform attribute type ${a.type} does not fit 15 bits`);
    const head = Buffer.alloc(a.tv ? 2 : 4);
    head.writeUInt16BE((a.tv ? 0x8000 : 0) | a.type, 0);
    if (a.tv) {
      check(a.value.length === 2, `TV attribute ${a.type} with a ${a.value.length}-octet value, must be 2`);
    } else {
      head.writeUInt16BE(u16(a.value.length, 'attribute Length'), 2);
    }
    return Buffer.concat([head, a.value]);
  });
  if (t.keyLength !== undefined) {
    const kl = Buffer.alloc(4);
    kl.writeUInt16BE(0x8000 | TransformAttributeType.KEY_LENGTH, 0);
    kl.writeUInt16BE(u16(t.keyLength, 'Key Length'), 2);
    const at = Math.min(t.keyLengthIndex ?? 0, attrs.length);
    attrs.splice(at, 0, kl);
  }
  const head = Buffer.alloc(8);
  head[0] = last ? 0 : 3;
  head[1] = u8(t.reserved1 ?? 0, 'Transform RESERVED');
  head[4] = u8(t.type, 'Transform Type');
  head[5] = u8(t.reserved2 ?? 0, 'Transform RESERVED');
  head.writeUInt16BE(u16(t.id, 'Transform ID'), 6);
  const length = 8 + attrs.reduce((n, b) => n + b.length, 0);
  head.writeUInt16BE(u16(length, 'Transform Length'), 2);
  return Buffer.concat([head, ...attrs], length);
}

function encodeSelector(ts: TrafficSelector): Buffer {
  if ('opaque' in ts) {
    const head = Buffer.alloc(4);
    head[0] = u8(ts.tsType, 'TS Type');
    head[1] = u8(ts.octet2, 'TS octet 2');
    head.writeUInt16BE(u16(4 + ts.opaque.length, 'Selector Length'), 2);
    return Buffer.concat([head, ts.opaque]);
  }
  const addrLength = ts.tsType === TsType.IPV6_ADDR_RANGE ? 16 : 4;
  check(ts.tsType === TsType.IPV4_ADDR_RANGE || ts.tsType === TsType.IPV6_ADDR_RANGE, `address range selector with TS type ${ts.tsType as number}`);
  check(ts.startAddr.length === addrLength && ts.endAddr.length === addrLength, `TS type ${ts.tsType} needs ${addrLength}-octet addresses, got ${ts.startAddr.length}/${ts.endAddr.length}`);
  const out = Buffer.alloc(8 + 2 * addrLength);
  out[0] = ts.tsType;
  out[1] = u8(ts.ipProtocol, 'IP Protocol ID');
  out.writeUInt16BE(out.length, 2);
  out.writeUInt16BE(u16(ts.startPort, 'Start Port'), 4);
  out.writeUInt16BE(u16(ts.endPort, 'End Port'), 6);
  ts.startAddr.copy(out, 8);
  ts.endAddr.copy(out, 8 + addrLength);
  return out;
}
