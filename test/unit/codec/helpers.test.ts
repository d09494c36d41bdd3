// Lookups and builders the exchange code uses.
import { describe, expect, it } from 'vitest';
import {
  ExchangeType,
  NotifyType,
  PayloadType,
  ProtocolId,
  TsType,
  addressRange,
  countPayloads,
  decodeMessage,
  deletePayload,
  encodeMessage,
  findErrorNotify,
  findNotifies,
  findNotify,
  getCertReqs,
  getCerts,
  getIdi,
  getIdr,
  getKe,
  getNonce,
  getSa,
  getTsi,
  getTsr,
  hasNotify,
  ikeHeader,
  ikeMessageBudget,
  isAddressRange,
  isErrorNotify,
  notifies,
  notify,
  payloadsOf,
  readSpi32,
  responseHeader,
  spi32,
} from '../../../src/ike/codec/index.js';
import { CODE_POINTS, ikeAuthInner, ikeSaInitRequest, SPI_I, SPI_R } from './fixtures.js';

describe('lookups', () => {
  const init = ikeSaInitRequest().payloads;
  const auth = ikeAuthInner();

  it('finds notifies by number, including configured code points', () => {
    expect(notifies(init).map((n) => n.notifyType)).toEqual([
      NotifyType.COOKIE, NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
      NotifyType.SIGNATURE_HASH_ALGORITHMS, NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED, NotifyType.USE_PPK_INT, CODE_POINTS.CHILD_SA_PFS_INFO_SUPPORTED,
    ]);
    expect(findNotify(init, NotifyType.COOKIE)!.data).toEqual(Buffer.alloc(20, 0xc0));
    expect(findNotify(init, NotifyType.REKEY_SA)).toBeUndefined();
    expect(hasNotify(auth, CODE_POINTS.OPTIMIZED_REKEY_SUPPORTED)).toBe(true);
    expect(hasNotify(init, CODE_POINTS.OPTIMIZED_REKEY_SUPPORTED)).toBe(false);
    expect(findNotifies([notify(7), notify(16384), notify(7, Buffer.from([1]))], 7)).toHaveLength(2);
    expect(findErrorNotify(init)).toBeUndefined();
    expect(findErrorNotify([notify(NotifyType.INITIAL_CONTACT), notify(NotifyType.TS_UNACCEPTABLE)])!.notifyType).toBe(NotifyType.TS_UNACCEPTABLE);
    expect(isErrorNotify(NotifyType.STATE_NOT_FOUND)).toBe(true);
    expect(isErrorNotify(NotifyType.COOKIE)).toBe(false);
  });

  it('typed getters return the first payload of their type', () => {
    expect(getSa(init)!.proposals).toHaveLength(2);
    expect(getKe(init)!.group).toBe(31);
    expect(getNonce(init)!.data.length).toBe(32);
    expect(getIdi(auth)!.data.toString()).toBe('client.example.org');
    expect(getIdr(auth)!.idType).toBe(9);
    expect(getTsi(auth)!.selectors).toHaveLength(2);
    expect(getTsr(auth)!.type).toBe(PayloadType.TSr);
    expect(getCerts(auth)).toHaveLength(1);
    expect(getCertReqs(auth)).toHaveLength(1);
    expect(countPayloads(auth, PayloadType.NOTIFY)).toBe(6);
    expect(payloadsOf(auth, PayloadType.IDr)).toHaveLength(1);
    expect(getSa([])).toBeUndefined();
  });

  it('tells address ranges from opaque selectors', () => {
    const [range, label] = getTsr(ikeAuthInner())!.selectors;
    expect(isAddressRange(range!)).toBe(true);
    expect(isAddressRange(label!)).toBe(false);
    expect(addressRange(Buffer.alloc(16), Buffer.alloc(16, 0xff)).tsType).toBe(TsType.IPV6_ADDR_RANGE);
    expect(addressRange(Buffer.alloc(4), Buffer.alloc(4, 0xff))).toEqual({
      tsType: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: Buffer.alloc(4), endAddr: Buffer.alloc(4, 0xff),
    });
  });
});

describe('builders', () => {
  it('SPIs and deletes', () => {
    expect(spi32(0xdeadbeef)).toEqual(Buffer.from('deadbeef', 'hex'));
    expect(readSpi32(spi32(0xdeadbeef))).toBe(0xdeadbeef);
    expect(readSpi32(Buffer.alloc(8))).toBe(-1);
    expect(deletePayload(ProtocolId.IKE)).toMatchObject({ protocol: 1, spiSize: 0, spis: [] });
    expect(deletePayload(ProtocolId.ESP, [spi32(1)])).toMatchObject({ protocol: 3, spiSize: 4 });
  });

  it('request and response headers carry the I and R flags', () => {
    const req = ikeHeader({ spiI: SPI_I, spiR: SPI_R, exchangeType: ExchangeType.CREATE_CHILD_SA, messageId: 4, originalInitiator: false, response: false });
    const bytes = encodeMessage({ header: req, payloads: [] });
    expect(bytes[19]).toBe(0x00);
    const resp = responseHeader(req, true);
    const rb = encodeMessage({ header: resp, payloads: [] });
    expect(rb[19]).toBe(0x28); // I | R
    expect(rb.readUInt32BE(20)).toBe(4);
    expect(rb[18]).toBe(ExchangeType.CREATE_CHILD_SA);
    const d = decodeMessage(rb);
    expect(d.ok && d.message.header.flags).toEqual({ initiator: true, response: true, version: false });
  });

  it('IKE message budget inside an IP datagram', () => {
    expect(ikeMessageBudget(1280, { ipv6: true, nonEspMarker: true })).toBe(1280 - 40 - 8 - 4);
    expect(ikeMessageBudget(576, { ipv6: false, nonEspMarker: false })).toBe(548);
  });
});
