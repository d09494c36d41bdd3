// Lookups and builders over typed payloads, so exchange code reads like the RFC's flow diagrams.
import { IKE_MAJOR_VERSION, IKE_MINOR_VERSION, PayloadType, ProtocolId, TsType } from './constants.js';
import type {
  AddressRangeSelector,
  AuthPayload,
  CertPayload,
  CfgAttribute,
  CpPayload,
  DeletePayload,
  EapPayload,
  IdPayload,
  IkeHeader,
  KePayload,
  NoncePayload,
  NotifyPayload,
  Payload,
  PayloadOf,
  Proposal,
  SaPayload,
  Transform,
  TrafficSelector,
  TsPayload,
  VendorPayload,
} from './types.js';

const EMPTY = Buffer.alloc(0);

// ---- Lookups ----------------------------------------------------------------------------------

/** Every payload of the given type, in message order. */
export function payloadsOf<T extends PayloadType>(payloads: readonly Payload[], type: T): PayloadOf<T>[] {
  return payloads.filter((p): p is PayloadOf<T> => p.type === type);
}

/** The first payload of the given type, if any. */
export function firstPayload<T extends PayloadType>(payloads: readonly Payload[], type: T): PayloadOf<T> | undefined {
  return payloads.find((p): p is PayloadOf<T> => p.type === type);
}

/** How many payloads of the given type (e.g. to refuse two SA payloads). */
export function countPayloads(payloads: readonly Payload[], type: PayloadType): number {
  let n = 0;
  for (const p of payloads) if (p.type === type) n++;
  return n;
}

/** All Notify payloads in order. */
export function notifies(payloads: readonly Payload[]): NotifyPayload[] {
  return payloadsOf(payloads, PayloadType.NOTIFY);
}

/** The first Notify of the given type (a plain number, so configured code points work too). */
export function findNotify(payloads: readonly Payload[], notifyType: number): NotifyPayload | undefined {
  return payloads.find((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && p.notifyType === notifyType);
}

/** All Notifies of the given type. */
export function findNotifies(payloads: readonly Payload[], notifyType: number): NotifyPayload[] {
  return payloads.filter((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && p.notifyType === notifyType);
}

export function hasNotify(payloads: readonly Payload[], notifyType: number): boolean {
  return findNotify(payloads, notifyType) !== undefined;
}

/** The first error Notify (type < 16384), if any. */
export function findErrorNotify(payloads: readonly Payload[]): NotifyPayload | undefined {
  return payloads.find((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && p.notifyType > 0 && p.notifyType < 16384);
}

export const getSa = (p: readonly Payload[]): SaPayload | undefined => firstPayload(p, PayloadType.SA);
export const getKe = (p: readonly Payload[]): KePayload | undefined => firstPayload(p, PayloadType.KE);
export const getNonce = (p: readonly Payload[]): NoncePayload | undefined => firstPayload(p, PayloadType.NONCE);
export const getIdi = (p: readonly Payload[]): IdPayload | undefined => firstPayload(p, PayloadType.IDi);
export const getIdr = (p: readonly Payload[]): IdPayload | undefined => firstPayload(p, PayloadType.IDr);
export const getAuth = (p: readonly Payload[]): AuthPayload | undefined => firstPayload(p, PayloadType.AUTH);
export const getTsi = (p: readonly Payload[]): TsPayload | undefined => firstPayload(p, PayloadType.TSi);
export const getTsr = (p: readonly Payload[]): TsPayload | undefined => firstPayload(p, PayloadType.TSr);
export const getCp = (p: readonly Payload[]): CpPayload | undefined => firstPayload(p, PayloadType.CP);
export const getCerts = (p: readonly Payload[]): CertPayload[] => payloadsOf(p, PayloadType.CERT);
export const getCertReqs = (p: readonly Payload[]): CertPayload[] => payloadsOf(p, PayloadType.CERTREQ);
export const getDeletes = (p: readonly Payload[]): DeletePayload[] => payloadsOf(p, PayloadType.DELETE);
export const getVendorIds = (p: readonly Payload[]): VendorPayload[] => payloadsOf(p, PayloadType.VENDOR);
export const getEap = (p: readonly Payload[]): EapPayload | undefined => firstPayload(p, PayloadType.EAP);

export function isAddressRange(ts: TrafficSelector): ts is AddressRangeSelector {
  return !('opaque' in ts);
}

// ---- Builders ---------------------------------------------------------------------------------

/**
 * An IKE header for a message we send. `originalInitiator`: whether we are the original initiator of
 * the IKE SA (the I flag, RFC 7296 §3.1); `response`: whether it answers a request (the R flag).
 * nextPayload and length are filled in by the encoder.
 */
export function ikeHeader(opts: {
  spiI: Buffer;
  spiR: Buffer;
  exchangeType: number;
  messageId: number;
  originalInitiator: boolean;
  response: boolean;
}): IkeHeader {
  return {
    spiI: opts.spiI,
    spiR: opts.spiR,
    nextPayload: PayloadType.NONE,
    majorVersion: IKE_MAJOR_VERSION,
    minorVersion: IKE_MINOR_VERSION,
    exchangeType: opts.exchangeType,
    flags: { initiator: opts.originalInitiator, response: opts.response, version: false },
    messageId: opts.messageId,
    length: 0,
  };
}

/** The header of the response to `request`: same SPIs, exchange and Message ID, R set, our I flag. */
export function responseHeader(request: IkeHeader, originalInitiator: boolean): IkeHeader {
  return ikeHeader({
    spiI: request.spiI,
    spiR: request.spiR,
    exchangeType: request.exchangeType,
    messageId: request.messageId,
    originalInitiator,
    response: true,
  });
}

/** N payload. `protocol` defaults to 0 (none) or, when an SPI is given, must name its protocol. */
export function notify(notifyType: number, data: Buffer = EMPTY, protocol: number = ProtocolId.NONE, spi: Buffer = EMPTY): NotifyPayload {
  return { type: PayloadType.NOTIFY, critical: false, protocol, spi, notifyType, data };
}

export function saPayload(proposals: Proposal[]): SaPayload {
  return { type: PayloadType.SA, critical: false, proposals };
}

export function proposal(num: number, protocol: number, spi: Buffer, transforms: Transform[]): Proposal {
  return { num, protocol, spi, transforms };
}

export function transform(type: number, id: number, keyLength?: number): Transform {
  return keyLength === undefined ? { type, id, attributes: [] } : { type, id, keyLength, attributes: [] };
}

export function kePayload(group: number, data: Buffer): KePayload {
  return { type: PayloadType.KE, critical: false, group, data };
}

export function noncePayload(data: Buffer): NoncePayload {
  return { type: PayloadType.NONCE, critical: false, data };
}

export function idPayload(type: PayloadType.IDi | PayloadType.IDr, idType: number, data: Buffer): IdPayload {
  return { type, critical: false, idType, data };
}

export function certPayload(encoding: number, data: Buffer): CertPayload {
  return { type: PayloadType.CERT, critical: false, encoding, data };
}

export function certReqPayload(encoding: number, data: Buffer): CertPayload {
  return { type: PayloadType.CERTREQ, critical: false, encoding, data };
}

export function authPayload(method: number, data: Buffer): AuthPayload {
  return { type: PayloadType.AUTH, critical: false, method, data };
}

/** D payload: IKE SA (no SPIs) or Child SAs (4-octet SPIs) of `protocol`. */
export function deletePayload(protocol: number, spis: Buffer[] = []): DeletePayload {
  return { type: PayloadType.DELETE, critical: false, protocol, spiSize: protocol === ProtocolId.IKE ? 0 : 4, spis };
}

export function vendorPayload(data: Buffer): VendorPayload {
  return { type: PayloadType.VENDOR, critical: false, data };
}

export function tsPayload(type: PayloadType.TSi | PayloadType.TSr, selectors: TrafficSelector[]): TsPayload {
  return { type, critical: false, selectors };
}

/** An address-range selector; the TS type follows from the address length (4 -> 7, 16 -> 8). */
export function addressRange(startAddr: Buffer, endAddr: Buffer, ipProtocol = 0, startPort = 0, endPort = 65535): AddressRangeSelector {
  const tsType = startAddr.length === 16 ? TsType.IPV6_ADDR_RANGE : TsType.IPV4_ADDR_RANGE;
  return { tsType, ipProtocol, startPort, endPort, startAddr, endAddr };
}

export function cpPayload(cfgType: number, attributes: CfgAttribute[]): CpPayload {
  return { type: PayloadType.CP, critical: false, cfgType, attributes };
}

export function eapPayload(data: Buffer): EapPayload {
  return { type: PayloadType.EAP, critical: false, data };
}

/** A 4-octet SPI (ESP/AH) from a host-order number. */
export function spi32(spi: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(spi >>> 0, 0);
  return b;
}

/** A 4-octet SPI as a host-order number. */
export function readSpi32(spi: Buffer): number {
  return spi.length === 4 ? spi.readUInt32BE(0) : -1;
}
