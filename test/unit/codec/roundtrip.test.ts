// Every payload type and every exchange's messages survive encode -> decode -> encode unchanged.
import { describe, expect, it } from 'vitest';
import {
  ExchangeType,
  PayloadType,
  decodeMessage,
  encodeMessage,
  encodePayloadChain,
  decodePayloadChain,
  notifyName,
  payloadName,
  exchangeName,
  transformIdName,
  TransformType,
  type IkeMessage,
  type Payload,
} from '../../../src/ike/codec/index.js';
import { createChildVariants, header, ikeAuthInner, ikeAuthResponseInner, ikeSaInitRequest, ikeSaInitResponse, informationalVariants, CODE_POINTS } from './fixtures.js';

function roundTrip(msg: IkeMessage): { bytes: Buffer; decoded: IkeMessage } {
  const bytes = encodeMessage(msg);
  const r = decodeMessage(bytes);
  if (!r.ok) throw new Error(`decode failed: ${r.error.reason}`);
  expect(encodeMessage(r.message).equals(bytes)).toBe(true);
  return { bytes, decoded: r.message };
}

function expectSamePayloads(actual: Payload[], expected: Payload[]): void {
  expect(actual).toHaveLength(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toEqual(expected[i]);
}

describe('round trip of full messages', () => {
  it('IKE_SA_INIT request and response', () => {
    for (const msg of [ikeSaInitRequest(), ikeSaInitResponse()]) {
      const { bytes, decoded } = roundTrip(msg);
      expectSamePayloads(decoded.payloads, msg.payloads);
      expect(decoded.header.length).toBe(bytes.length);
      expect(decoded.header.nextPayload).toBe(bytes[16]);
      expect(decoded.header.flags).toEqual(msg.header.flags);
      expect(decoded.header.spiR.equals(msg.header.spiR)).toBe(true);
    }
  });

  const plainInner: Record<string, Payload[]> = {
    'IKE_AUTH request': ikeAuthInner(),
    'IKE_AUTH response': ikeAuthResponseInner(),
    ...Object.fromEntries(Object.entries(createChildVariants()).map(([k, v]) => [`CREATE_CHILD_SA ${k}`, v])),
    ...Object.fromEntries(Object.entries(informationalVariants()).map(([k, v]) => [`INFORMATIONAL ${k}`, v])),
  };
  for (const [name, payloads] of Object.entries(plainInner)) {
    it(`${name}: payload chain and as an unencrypted message`, () => {
      const chain = encodePayloadChain(payloads);
      const back = decodePayloadChain(chain.first, chain.bytes);
      if (!back.ok) throw new Error(back.error.reason);
      expectSamePayloads(back.payloads, payloads);
      expect(encodePayloadChain(back.payloads).bytes.equals(chain.bytes)).toBe(true);
      const { decoded } = roundTrip({ header: header(ExchangeType.INFORMATIONAL, { messageId: 7 }), payloads });
      expectSamePayloads(decoded.payloads, payloads);
      expect(decoded.header.messageId).toBe(7);
    });
  }

  it('covers every payload type the codec parses', () => {
    const all = [ikeSaInitRequest().payloads, ikeSaInitResponse().payloads, ...Object.values(plainInner)].flat();
    const seen = new Set<PayloadType>(all.map((p) => p.type));
    for (const t of [PayloadType.SA, PayloadType.KE, PayloadType.IDi, PayloadType.IDr, PayloadType.CERT, PayloadType.CERTREQ, PayloadType.AUTH,
      PayloadType.NONCE, PayloadType.NOTIFY, PayloadType.DELETE, PayloadType.VENDOR, PayloadType.TSi, PayloadType.TSr, PayloadType.CP,
      PayloadType.EAP, PayloadType.UNKNOWN]) {
      expect(seen.has(t), payloadName(t)).toBe(true);
    }
  });

  it('SK and SKF payloads as opaque bodies', () => {
    const sk: IkeMessage = { header: header(ExchangeType.IKE_AUTH, { messageId: 1 }), payloads: [{ type: PayloadType.SK, critical: false, innerFirst: PayloadType.IDi, body: Buffer.alloc(64, 0xee) }] };
    const { decoded } = roundTrip(sk);
    expectSamePayloads(decoded.payloads, sk.payloads);
    const skf: IkeMessage = {
      header: header(ExchangeType.IKE_AUTH, { messageId: 1 }),
      payloads: [{ type: PayloadType.SKF, critical: false, innerFirst: 0, fragmentNumber: 2, totalFragments: 3, body: Buffer.alloc(40, 0xdd) }],
    };
    expectSamePayloads(roundTrip(skf).decoded.payloads, skf.payloads);
  });
});

describe('exact reproduction of fields the RFC says to ignore', () => {
  it('keeps reserved bits, flag bits, minor version, attribute order and critical bits', () => {
    const msg = ikeSaInitRequest();
    const bytes = Buffer.from(encodeMessage(msg));
    bytes[17] = 0x23; // minor version 3
    bytes[19] |= 0x41; // reserved flag bits
    bytes[28 + 1] = 0x7f; // reserved bits of the first payload (N(COOKIE)), C=0
    const r = decodeMessage(bytes);
    if (!r.ok) throw new Error(r.error.reason);
    expect(r.message.header.minorVersion).toBe(3);
    expect(r.message.header.reservedFlags).toBe(0x41);
    expect(r.message.payloads[0]!.reservedBits).toBe(0x7f);
    expect(encodeMessage(r.message).equals(bytes)).toBe(true);
  });

  it('keeps a Key Length attribute that is not first and unknown attributes', () => {
    const msg: IkeMessage = {
      header: header(ExchangeType.IKE_SA_INIT),
      payloads: [{
        type: PayloadType.SA, critical: false, proposals: [{ num: 1, protocol: 1, spi: Buffer.alloc(0), reserved: 5, transforms: [{
          type: TransformType.ENCR, id: 12, keyLength: 256, keyLengthIndex: 1, reserved1: 1, reserved2: 2,
          attributes: [{ type: 99, tv: false, value: Buffer.from('abc') }, { type: 100, tv: true, value: Buffer.from([1, 2]) }],
        }] }],
      }, { type: PayloadType.KE, critical: true, group: 31, data: Buffer.alloc(32, 1), reserved: 0xffff },
      { type: PayloadType.IDi, critical: false, idType: 2, data: Buffer.from('x'), reserved: 0x010203 }],
    };
    const { decoded, bytes } = roundTrip(msg);
    expectSamePayloads(decoded.payloads, msg.payloads);
    // Key Length sits after the TLV attribute: 8 (transform hdr) + 4 + 3 octets into the transform.
    const transformAt = 28 + 4 + 8;
    expect(bytes.readUInt16BE(transformAt + 8 + 7)).toBe(0x800e);
  });
});

describe('names for logs', () => {
  it('names code points, including configured ones', () => {
    expect(notifyName(16390)).toBe('COOKIE');
    expect(notifyName(CODE_POINTS.OPTIMIZED_REKEY)).toBe('OPTIMIZED_REKEY');
    expect(notifyName(CODE_POINTS.CHILD_SA_PFS_INFO_SUPPORTED)).toBe('CHILD_SA_PFS_INFO_SUPPORTED');
    expect(notifyName(60000, { optimizedRekeySupported: 60000, optimizedRekey: 60001, childSaPfsInfoSupported: 60002 })).toBe('OPTIMIZED_REKEY_SUPPORTED');
    expect(notifyName(12)).toBe('UNKNOWN_ERROR(12)');
    expect(notifyName(40000)).toBe('UNKNOWN_STATUS(40000)');
    expect(payloadName(53)).toBe('SKF');
    expect(payloadName(250)).toBe('PAYLOAD(250)');
    expect(exchangeName(43)).toBe('IKE_INTERMEDIATE');
    expect(exchangeName(44)).toBe('IKE_FOLLOWUP_KE');
    expect(transformIdName(TransformType.ADDKE3, 36)).toBe('ML_KEM_768');
    expect(transformIdName(TransformType.ESN, 1)).toBe('ESN');
    expect(transformIdName(TransformType.ENCR, 20)).toBe('AES_GCM_16');
  });
});
