// Typed IKEv2 messages (RFC 7296 §3, RFC 7383 §2.5).
//
// Decoded Buffers are views (subarray) into the received datagram: copy them (Buffer.from) before
// keeping one beyond the life of that datagram if the datagram buffer is reused.
//
// Values a peer chooses (exchange type, notify type, transform ids, ...) are plain numbers so that
// unknown ones survive a decode/encode round trip; constants.ts names the known ones.
//
// Reserved fields: RFC 7296 says "MUST be sent as zero; MUST be ignored on receipt". The decoder keeps
// non-zero reserved bits in the optional `reserved*` fields so that encode(decode(x)) reproduces x
// exactly; builders leave them out (= zero).
import type { PayloadType, TsType } from './constants.js';

export interface IkeHeaderFlags {
  /** I (0x08): sender is the original initiator of the IKE SA. */
  initiator: boolean;
  /** R (0x20): this message is a response. */
  response: boolean;
  /** V (0x10): sender can speak a higher major version. */
  version: boolean;
}

export interface IkeHeader {
  /** Initiator's IKE SPI, 8 octets. */
  spiI: Buffer;
  /** Responder's IKE SPI, 8 octets (zero in the first IKE_SA_INIT request). */
  spiR: Buffer;
  /** Type of the first payload. Set by the decoder; computed (ignored) by the encoder. */
  nextPayload: number;
  majorVersion: number;
  minorVersion: number;
  exchangeType: number;
  flags: IkeHeaderFlags;
  /** Flag bits other than I/V/R as received (normally 0). */
  reservedFlags?: number;
  messageId: number;
  /** Total message length. Set by the decoder; computed (ignored) by the encoder. */
  length: number;
}

export interface IkeMessage {
  header: IkeHeader;
  payloads: Payload[];
}

/** Fields every payload has (generic payload header, RFC 7296 §3.2). */
export interface PayloadBase {
  /** The Critical bit as sent/received. */
  critical: boolean;
  /** The 7 RESERVED bits after the Critical bit as received (normally 0). */
  reservedBits?: number;
}

// ---- SA (RFC 7296 §3.3) ----------------------------------------------------------------------

/** A transform attribute other than Key Length, kept as received. */
export interface TransformAttribute {
  type: number;
  /** true = TV format (AF=1, 2-octet value in `value`), false = TLV. */
  tv: boolean;
  value: Buffer;
}

export interface Transform {
  /** Transform type (TransformType; 6..12 = ADDKE1..7). */
  type: number;
  /** Transform id within its type. */
  id: number;
  /** Key Length attribute (type 14, TV), bits. */
  keyLength?: number;
  /** Other attributes, in order (none are defined by RFC 7296; a proposal with them should be refused). */
  attributes: TransformAttribute[];
  /** Index of the Key Length attribute among all attributes when not first (exact re-encoding). */
  keyLengthIndex?: number;
  reserved1?: number;
  reserved2?: number;
}

export interface Proposal {
  /** Proposal Num. */
  num: number;
  /** ProtocolId (1 IKE, 2 AH, 3 ESP). */
  protocol: number;
  /** SPI (0 octets in IKE_SA_INIT, 8 for IKE rekey, 4 for AH/ESP). */
  spi: Buffer;
  transforms: Transform[];
  reserved?: number;
}

export interface SaPayload extends PayloadBase {
  type: PayloadType.SA;
  proposals: Proposal[];
}

// ---- KE (§3.4) --------------------------------------------------------------------------------

export interface KePayload extends PayloadBase {
  type: PayloadType.KE;
  /** Key Exchange Method (KeMethod). */
  group: number;
  data: Buffer;
  reserved?: number;
}

// ---- ID (§3.5) --------------------------------------------------------------------------------

export interface IdPayload extends PayloadBase {
  type: PayloadType.IDi | PayloadType.IDr;
  idType: number;
  data: Buffer;
  /** The 3 RESERVED octets as a 24-bit number. Part of the MACed ID (RFC 7296 §2.15). */
  reserved?: number;
}

// ---- CERT / CERTREQ (§3.6, §3.7) --------------------------------------------------------------

export interface CertPayload extends PayloadBase {
  type: PayloadType.CERT | PayloadType.CERTREQ;
  encoding: number;
  data: Buffer;
}

// ---- AUTH (§3.8) ------------------------------------------------------------------------------

export interface AuthPayload extends PayloadBase {
  type: PayloadType.AUTH;
  method: number;
  data: Buffer;
  reserved?: number;
}

// ---- Nonce (§3.9) -----------------------------------------------------------------------------

export interface NoncePayload extends PayloadBase {
  type: PayloadType.NONCE;
  data: Buffer;
}

// ---- Notify (§3.10) ---------------------------------------------------------------------------

export interface NotifyPayload extends PayloadBase {
  type: PayloadType.NOTIFY;
  /** ProtocolId (0 when no SPI). */
  protocol: number;
  /** SPI (its length is the SPI Size; empty for most notifies). */
  spi: Buffer;
  notifyType: number;
  data: Buffer;
}

// ---- Delete (§3.11) ---------------------------------------------------------------------------

export interface DeletePayload extends PayloadBase {
  type: PayloadType.DELETE;
  protocol: number;
  /** 0 for IKE, 4 for AH/ESP. */
  spiSize: number;
  spis: Buffer[];
}

// ---- Vendor ID (§3.12) ------------------------------------------------------------------------

export interface VendorPayload extends PayloadBase {
  type: PayloadType.VENDOR;
  data: Buffer;
}

// ---- Traffic selectors (§3.13) ----------------------------------------------------------------

/** TS type 7 (IPv4, 4-octet addresses) or 8 (IPv6, 16-octet addresses). */
export interface AddressRangeSelector {
  tsType: TsType.IPV4_ADDR_RANGE | TsType.IPV6_ADDR_RANGE;
  /** IP protocol, 0 = any. */
  ipProtocol: number;
  startPort: number;
  endPort: number;
  startAddr: Buffer;
  endAddr: Buffer;
}

/** Any other TS type (e.g. 10 SECLABEL, RFC 9478), kept as received. Tell apart with `'opaque' in ts`. */
export interface OpaqueSelector {
  tsType: number;
  /** Octet 2 of the selector (IP Protocol ID for ranges, reserved for SECLABEL). */
  octet2: number;
  /** Everything after the 4-octet selector header. */
  opaque: Buffer;
}

export type TrafficSelector = AddressRangeSelector | OpaqueSelector;

export interface TsPayload extends PayloadBase {
  type: PayloadType.TSi | PayloadType.TSr;
  selectors: TrafficSelector[];
  reserved?: number;
}

// ---- Encrypted (§3.14) and Encrypted Fragment (RFC 7383 §2.5) --------------------------------

export interface SkPayload extends PayloadBase {
  type: PayloadType.SK;
  /** Type of the first inner payload (the SK's Next Payload field). */
  innerFirst: number;
  /** IV | ciphertext | ICV. */
  body: Buffer;
}

export interface SkfPayload extends PayloadBase {
  type: PayloadType.SKF;
  /** First inner payload type in fragment 1; 0 in the others. */
  innerFirst: number;
  /** 1-based. */
  fragmentNumber: number;
  totalFragments: number;
  /** IV | ciphertext | ICV. */
  body: Buffer;
}

// ---- Configuration (§3.15) --------------------------------------------------------------------

export interface CfgAttribute {
  /** Attribute type (CfgAttributeType), 15 bits. */
  type: number;
  value: Buffer;
  /** The R bit as received (normally false). */
  reservedBit?: boolean;
}

export interface CpPayload extends PayloadBase {
  type: PayloadType.CP;
  /** CfgType. */
  cfgType: number;
  attributes: CfgAttribute[];
  reserved?: number;
}

// ---- EAP (§3.16) ------------------------------------------------------------------------------

export interface EapPayload extends PayloadBase {
  type: PayloadType.EAP;
  /** The EAP message (Code, Identifier, Length, Type, Data), opaque to the codec. */
  data: Buffer;
}

// ---- Anything else ----------------------------------------------------------------------------

/** A payload type the codec does not parse (non-critical, or GSPM). Kept so re-encoding is exact. */
export interface UnknownPayload extends PayloadBase {
  type: PayloadType.UNKNOWN;
  /** The payload type on the wire. */
  rawType: number;
  /** Payload body after the generic header. */
  data: Buffer;
}

export type Payload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | AuthPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorPayload
  | TsPayload
  | SkPayload
  | SkfPayload
  | CpPayload
  | EapPayload
  | UnknownPayload;

/** The payload shape for a given payload type. */
export type PayloadOf<T extends PayloadType> = PayloadMatching<Payload, T>;
type PayloadMatching<P, T> = P extends { type: infer U } ? (T extends U ? P : never) : never;

// ---- Decoding results ------------------------------------------------------------------------

export type DecodeErrorKind =
  /** Too short for an IKE header, or not IKEv2. */
  | 'header'
  /** Malformed payload chain or payload content (answer INVALID_SYNTAX where the exchange allows). */
  | 'syntax'
  /** An unknown payload with the Critical bit set (answer UNSUPPORTED_CRITICAL_PAYLOAD). */
  | 'critical'
  /** The SK/SKF integrity check failed: drop silently (RFC 7296 §2.21.2). */
  | 'integrity'
  /** decodeProtected on a message without an SK payload. */
  | 'unprotected'
  /** decodeProtected on an SKF fragment: hand it to a Reassembler instead. */
  | 'fragment';

export interface DecodeError {
  kind: DecodeErrorKind;
  /** What was wrong, for logs (names the field and the values). */
  reason: string;
  /** The notify type to answer with, when one applies (INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION). */
  notify?: number;
  /** Its notification data (e.g. the payload type octet for UNSUPPORTED_CRITICAL_PAYLOAD). */
  notifyData?: Buffer;
  /** The IKE header, when it could be parsed (to address an answer). */
  header?: IkeHeader;
}

export type DecodeResult = { ok: true; message: IkeMessage } | { ok: false; error: DecodeError };

export type ChainDecodeResult = { ok: true; payloads: Payload[] } | { ok: false; error: DecodeError };
