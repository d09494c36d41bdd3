// IKEv2 wire code points (IANA "Internet Key Exchange Version 2 (IKEv2) Parameters"), in one place.
// Sources: RFC 7296 §3, RFC 7383 (SKF), RFC 9242 (IKE_INTERMEDIATE), RFC 9370 (ADDKE), RFC 8784 and
// RFC 9867 (PPK), RFC 7427/8420 (signature hashes), RFC 4754, RFC 7619, RFC 8598.
//
// Fields that carry these values on the wire are typed `number` in types.ts: a peer may send any value
// and the codec must keep it, so an enum here names values, it does not restrict them.
import { DEFAULT_CODE_POINTS, type CodePointConfig } from '../config.js';

/** Length of the fixed IKE header (RFC 7296 §3.1). */
export const IKE_HEADER_LENGTH = 28;
/** Length of the generic payload header (RFC 7296 §3.2). */
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
/** IKE SPI length. */
export const IKE_SPI_LENGTH = 8;
/** Version octet of IKEv2: major 2, minor 0. */
export const IKE_MAJOR_VERSION = 2;
export const IKE_MINOR_VERSION = 0;

/** Exchange types (RFC 7296 §3.1, RFC 5723, RFC 9242, RFC 9370). */
export enum ExchangeType {
  IKE_SA_INIT = 34,
  IKE_AUTH = 35,
  CREATE_CHILD_SA = 36,
  INFORMATIONAL = 37,
  IKE_SESSION_RESUME = 38,
  GSA_AUTH = 39,
  GSA_REGISTRATION = 40,
  GSA_REKEY = 41,
  IKE_INTERMEDIATE = 43,
  IKE_FOLLOWUP_KE = 44,
}

/** IKE header flag bits (RFC 7296 §3.1). */
export const HeaderFlag = {
  INITIATOR: 0x08,
  VERSION: 0x10,
  RESPONSE: 0x20,
} as const;

/** Payload types (RFC 7296 §3.2, RFC 7383 §2.5). 0 = "no next payload". */
export enum PayloadType {
  NONE = 0,
  SA = 33,
  KE = 34,
  IDi = 35,
  IDr = 36,
  CERT = 37,
  CERTREQ = 38,
  AUTH = 39,
  NONCE = 40,
  NOTIFY = 41,
  DELETE = 42,
  VENDOR = 43,
  TSi = 44,
  TSr = 45,
  SK = 46,
  CP = 47,
  EAP = 48,
  GSPM = 49,
  SKF = 53,
  /**
   * Not a wire value: the discriminant of `UnknownPayload` (a payload type this codec does not
   * parse; its wire type is in `UnknownPayload.rawType`).
   */
  UNKNOWN = -1,
}

/** Transform types (RFC 7296 §3.3.2, RFC 9370 §3.2: ADDKE1..ADDKE7 = 6..12). */
export enum TransformType {
  ENCR = 1,
  PRF = 2,
  INTEG = 3,
  /** "Key Exchange Method" (formerly D-H group). */
  KE = 4,
  ESN = 5,
  ADDKE1 = 6,
  ADDKE2 = 7,
  ADDKE3 = 8,
  ADDKE4 = 9,
  ADDKE5 = 10,
  ADDKE6 = 11,
  ADDKE7 = 12,
}

/** Transform type 1 (RFC 7296 §3.3.2, RFC 5282, RFC 7634, RFC 8750). */
export enum EncrId {
  DES_IV64 = 1,
  DES = 2,
  DES3 = 3,
  RC5 = 4,
  IDEA = 5,
  CAST = 6,
  BLOWFISH = 7,
  IDEA3 = 8,
  DES_IV32 = 9,
  NULL = 11,
  AES_CBC = 12,
  AES_CTR = 13,
  AES_CCM_8 = 14,
  AES_CCM_12 = 15,
  AES_CCM_16 = 16,
  AES_GCM_8 = 18,
  AES_GCM_12 = 19,
  AES_GCM_16 = 20,
  NULL_AUTH_AES_GMAC = 21,
  CAMELLIA_CBC = 23,
  CAMELLIA_CTR = 24,
  CAMELLIA_CCM_8 = 25,
  CAMELLIA_CCM_12 = 26,
  CAMELLIA_CCM_16 = 27,
  CHACHA20_POLY1305 = 28,
  AES_CCM_8_IIV = 29,
  AES_GCM_16_IIV = 30,
  CHACHA20_POLY1305_IIV = 31,
}

/** Transform type 2 (RFC 7296 §3.3.2, RFC 4434, RFC 4615, RFC 4868). */
export enum PrfId {
  HMAC_MD5 = 1,
  HMAC_SHA1 = 2,
  HMAC_TIGER = 3,
  AES128_XCBC = 4,
  HMAC_SHA2_256 = 5,
  HMAC_SHA2_384 = 6,
  HMAC_SHA2_512 = 7,
  AES128_CMAC = 8,
}

/** Transform type 3 (RFC 7296 §3.3.2, RFC 4494, RFC 4543, RFC 4868). */
export enum IntegId {
  NONE = 0,
  HMAC_MD5_96 = 1,
  HMAC_SHA1_96 = 2,
  DES_MAC = 3,
  KPDK_MD5 = 4,
  AES_XCBC_96 = 5,
  HMAC_MD5_128 = 6,
  HMAC_SHA1_160 = 7,
  AES_CMAC_96 = 8,
  AES_128_GMAC = 9,
  AES_192_GMAC = 10,
  AES_256_GMAC = 11,
  HMAC_SHA2_256_128 = 12,
  HMAC_SHA2_384_192 = 13,
  HMAC_SHA2_512_256 = 14,
}

/** Transform type 4 and ADDKE1..7: Key Exchange Methods (RFC 7296, RFC 5903, RFC 8031, RFC 9370, ML-KEM). */
export enum KeMethod {
  NONE = 0,
  MODP_768 = 1,
  MODP_1024 = 2,
  MODP_1536 = 5,
  MODP_2048 = 14,
  MODP_3072 = 15,
  MODP_4096 = 16,
  MODP_6144 = 17,
  MODP_8192 = 18,
  ECP_256 = 19,
  ECP_384 = 20,
  ECP_521 = 21,
  MODP_1024_160 = 22,
  MODP_2048_224 = 23,
  MODP_2048_256 = 24,
  ECP_192 = 25,
  ECP_224 = 26,
  BRAINPOOL_P224R1 = 27,
  BRAINPOOL_P256R1 = 28,
  BRAINPOOL_P384R1 = 29,
  BRAINPOOL_P512R1 = 30,
  CURVE25519 = 31,
  CURVE448 = 32,
  GOST3410_2012_256 = 33,
  GOST3410_2012_512 = 34,
  ML_KEM_512 = 35,
  ML_KEM_768 = 36,
  ML_KEM_1024 = 37,
}

/** Transform type 5 (RFC 7296 §3.3.2). */
export enum EsnId {
  NO_ESN = 0,
  ESN = 1,
}

/** Transform attribute types (RFC 7296 §3.3.5). */
export enum TransformAttributeType {
  /** TV format (AF=1), value = key length in bits. */
  KEY_LENGTH = 14,
}

/** Protocol IDs of proposals, notifies and deletes (RFC 7296 §3.3.1). 0 = none (notify/delete only). */
export enum ProtocolId {
  NONE = 0,
  IKE = 1,
  AH = 2,
  ESP = 3,
}

/** ID payload ID types (RFC 7296 §3.5, RFC 7619). */
export enum IdType {
  IPV4_ADDR = 1,
  FQDN = 2,
  RFC822_ADDR = 3,
  IPV6_ADDR = 5,
  DER_ASN1_DN = 9,
  DER_ASN1_GN = 10,
  KEY_ID = 11,
  FC_NAME = 12,
  NULL = 13,
}

/** AUTH payload methods (RFC 7296 §3.8, RFC 4754, RFC 7619, RFC 7427). */
export enum AuthMethod {
  RSA_SIG = 1,
  SHARED_KEY_MIC = 2,
  DSS_SIG = 3,
  ECDSA_SHA256_P256 = 9,
  ECDSA_SHA384_P384 = 10,
  ECDSA_SHA512_P521 = 11,
  GSPM = 12,
  NULL = 13,
  DIGITAL_SIGNATURE = 14,
}

/** RFC 7427 §4 hash algorithm ids (SIGNATURE_HASH_ALGORITHMS data); 5 = Identity (RFC 8420). */
export enum SignatureHash {
  SHA1 = 1,
  SHA2_256 = 2,
  SHA2_384 = 3,
  SHA2_512 = 4,
  IDENTITY = 5,
}

/** CERT/CERTREQ encodings (RFC 7296 §3.6, RFC 4806, RFC 7670). */
export enum CertEncoding {
  PKCS7_X509 = 1,
  PGP = 2,
  DNS_SIGNED_KEY = 3,
  X509_SIGNATURE = 4,
  KERBEROS_TOKEN = 6,
  CRL = 7,
  ARL = 8,
  SPKI = 9,
  X509_ATTRIBUTE = 10,
  RAW_RSA_KEY = 11,
  HASH_URL_X509_CERT = 12,
  HASH_URL_X509_BUNDLE = 13,
  OCSP_CONTENT = 14,
  RAW_PUBLIC_KEY = 15,
}

/** Traffic selector types (RFC 7296 §3.13.1, RFC 9478 for SECLABEL). */
export enum TsType {
  IPV4_ADDR_RANGE = 7,
  IPV6_ADDR_RANGE = 8,
  /** Security label (RFC 9478): kept opaque by the codec. */
  SECLABEL = 10,
}

/** Configuration payload CFG types (RFC 7296 §3.15). */
export enum CfgType {
  CFG_REQUEST = 1,
  CFG_REPLY = 2,
  CFG_SET = 3,
  CFG_ACK = 4,
}

/** Configuration attribute types (RFC 7296 §3.15.1, RFC 5739, RFC 8598). */
export enum CfgAttributeType {
  INTERNAL_IP4_ADDRESS = 1,
  INTERNAL_IP4_NETMASK = 2,
  INTERNAL_IP4_DNS = 3,
  INTERNAL_IP4_NBNS = 4,
  INTERNAL_IP4_DHCP = 6,
  APPLICATION_VERSION = 7,
  INTERNAL_IP6_ADDRESS = 8,
  INTERNAL_IP6_DNS = 10,
  INTERNAL_IP6_DHCP = 12,
  INTERNAL_IP4_SUBNET = 13,
  SUPPORTED_ATTRIBUTES = 14,
  INTERNAL_IP6_SUBNET = 15,
  MIP6_HOME_PREFIX = 16,
  INTERNAL_IP6_LINK = 17,
  INTERNAL_IP6_PREFIX = 18,
  HOME_AGENT_ADDRESS = 19,
  P_CSCF_IP4_ADDRESS = 20,
  P_CSCF_IP6_ADDRESS = 21,
  INTERNAL_DNS_DOMAIN = 25,
  INTERNAL_DNSSEC_TA = 26,
}

/**
 * Notify message types (RFC 7296 §3.10.1 and the IANA registry): errors 1..16383, status 16384..
 * The types whose values are not yet assigned (optimized rekeys, child-pfs-info) are not here: they
 * come from `CodePointConfig` (see `configuredNotifyTypes`).
 */
export enum NotifyType {
  // Errors
  UNSUPPORTED_CRITICAL_PAYLOAD = 1,
  INVALID_IKE_SPI = 4,
  INVALID_MAJOR_VERSION = 5,
  INVALID_SYNTAX = 7,
  INVALID_MESSAGE_ID = 9,
  INVALID_SPI = 11,
  NO_PROPOSAL_CHOSEN = 14,
  INVALID_KE_PAYLOAD = 17,
  AUTHENTICATION_FAILED = 24,
  SINGLE_PAIR_REQUIRED = 34,
  NO_ADDITIONAL_SAS = 35,
  INTERNAL_ADDRESS_FAILURE = 36,
  FAILED_CP_REQUIRED = 37,
  TS_UNACCEPTABLE = 38,
  INVALID_SELECTORS = 39,
  UNACCEPTABLE_ADDRESSES = 40,
  UNEXPECTED_NAT_DETECTED = 41,
  USE_ASSIGNED_HoA = 42,
  TEMPORARY_FAILURE = 43,
  CHILD_SA_NOT_FOUND = 44,
  INVALID_GROUP_ID = 45,
  AUTHORIZATION_FAILED = 46,
  /** RFC 9370 §2.2.4. */
  STATE_NOT_FOUND = 47,
  TS_MAX_QUEUE = 48,
  REGISTRATION_FAILED = 49,
  // Status
  INITIAL_CONTACT = 16384,
  SET_WINDOW_SIZE = 16385,
  ADDITIONAL_TS_POSSIBLE = 16386,
  IPCOMP_SUPPORTED = 16387,
  NAT_DETECTION_SOURCE_IP = 16388,
  NAT_DETECTION_DESTINATION_IP = 16389,
  COOKIE = 16390,
  USE_TRANSPORT_MODE = 16391,
  HTTP_CERT_LOOKUP_SUPPORTED = 16392,
  REKEY_SA = 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
  NON_FIRST_FRAGMENTS_ALSO = 16395,
  MOBIKE_SUPPORTED = 16396,
  ADDITIONAL_IP4_ADDRESS = 16397,
  ADDITIONAL_IP6_ADDRESS = 16398,
  NO_ADDITIONAL_ADDRESSES = 16399,
  UPDATE_SA_ADDRESSES = 16400,
  COOKIE2 = 16401,
  NO_NATS_ALLOWED = 16402,
  AUTH_LIFETIME = 16403,
  MULTIPLE_AUTH_SUPPORTED = 16404,
  ANOTHER_AUTH_FOLLOWS = 16405,
  REDIRECT_SUPPORTED = 16406,
  REDIRECT = 16407,
  REDIRECTED_FROM = 16408,
  TICKET_LT_OPAQUE = 16409,
  TICKET_REQUEST = 16410,
  TICKET_ACK = 16411,
  TICKET_NACK = 16412,
  TICKET_OPAQUE = 16413,
  LINK_ID = 16414,
  USE_WESP_MODE = 16415,
  ROHC_SUPPORTED = 16416,
  EAP_ONLY_AUTHENTICATION = 16417,
  CHILDLESS_IKEV2_SUPPORTED = 16418,
  QUICK_CRASH_DETECTION = 16419,
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
  IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
  IKEV2_MESSAGE_ID_SYNC = 16422,
  IPSEC_REPLAY_COUNTER_SYNC = 16423,
  SECURE_PASSWORD_METHODS = 16424,
  PSK_PERSIST = 16425,
  PSK_CONFIRM = 16426,
  ERX_SUPPORTED = 16427,
  IFOM_CAPABILITY = 16428,
  SENDER_REQUEST_ID = 16429,
  /** RFC 7383 §2.3. */
  IKEV2_FRAGMENTATION_SUPPORTED = 16430,
  /** RFC 7427 §4. */
  SIGNATURE_HASH_ALGORITHMS = 16431,
  CLONE_IKE_SA_SUPPORTED = 16432,
  CLONE_IKE_SA = 16433,
  PUZZLE = 16434,
  /** RFC 8784. */
  USE_PPK = 16435,
  PPK_IDENTITY = 16436,
  NO_PPK_AUTH = 16437,
  /** RFC 9242. */
  INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
  IP4_ALLOWED = 16439,
  IP6_ALLOWED = 16440,
  /** RFC 9370. */
  ADDITIONAL_KEY_EXCHANGE = 16441,
  USE_AGGFRAG = 16442,
  SUPPORTED_AUTH_METHODS = 16443,
  SA_RESOURCE_INFO = 16444,
  /** RFC 9867. */
  USE_PPK_INT = 16445,
  PPK_IDENTITY_KEY = 16446,
}

/** Notify types below this value are errors (RFC 7296 §3.10.1). */
export const NOTIFY_STATUS_MIN = 16384;
export function isErrorNotify(notifyType: number): boolean {
  return notifyType > 0 && notifyType < NOTIFY_STATUS_MIN;
}

/** The notify types whose values are configuration (not yet assigned by IANA). */
export interface ConfiguredNotifyTypes {
  OPTIMIZED_REKEY_SUPPORTED: number;
  OPTIMIZED_REKEY: number;
  CHILD_SA_PFS_INFO_SUPPORTED: number;
}

export function configuredNotifyTypes(codePoints: CodePointConfig = DEFAULT_CODE_POINTS): ConfiguredNotifyTypes {
  return {
    OPTIMIZED_REKEY_SUPPORTED: codePoints.optimizedRekeySupported,
    OPTIMIZED_REKEY: codePoints.optimizedRekey,
    CHILD_SA_PFS_INFO_SUPPORTED: codePoints.childSaPfsInfoSupported,
  };
}

// ---- Names for logs -------------------------------------------------------------------------

function enumName(e: Record<string, string | number>, value: number): string | undefined {
  const name = e[value];
  return typeof name === 'string' ? name : undefined;
}

/** Notify type name, including the configured ones; `UNKNOWN_NOTIFY(n)` otherwise. */
export function notifyName(notifyType: number, codePoints: CodePointConfig = DEFAULT_CODE_POINTS): string {
  const known = enumName(NotifyType, notifyType);
  if (known) return known;
  const configured = configuredNotifyTypes(codePoints);
  for (const [name, value] of Object.entries(configured)) if (value === notifyType) return name;
  return `${isErrorNotify(notifyType) ? 'UNKNOWN_ERROR' : 'UNKNOWN_STATUS'}(${notifyType})`;
}

export function payloadName(payloadType: number): string {
  if (payloadType === PayloadType.UNKNOWN) return 'UNKNOWN';
  return enumName(PayloadType, payloadType) ?? `PAYLOAD(${payloadType})`;
}

export function exchangeName(exchangeType: number): string {
  return enumName(ExchangeType, exchangeType) ?? `EXCHANGE(${exchangeType})`;
}

export function transformTypeName(transformType: number): string {
  return enumName(TransformType, transformType) ?? `TRANSFORM_TYPE(${transformType})`;
}

/** Name of a transform id within its type (ENCR/PRF/INTEG/KE/ESN, ADDKE use the KE registry). */
export function transformIdName(transformType: number, id: number): string {
  let table: Record<string, string | number> | undefined;
  if (transformType === TransformType.ENCR) table = EncrId;
  else if (transformType === TransformType.PRF) table = PrfId;
  else if (transformType === TransformType.INTEG) table = IntegId;
  else if (transformType === TransformType.ESN) table = EsnId;
  else if (transformType >= TransformType.KE && transformType <= TransformType.ADDKE7 && transformType !== TransformType.ESN) table = KeMethod;
  return (table && enumName(table, id)) ?? `${transformTypeName(transformType)}(${id})`;
}

export function protocolName(protocol: number): string {
  return enumName(ProtocolId, protocol) ?? `PROTOCOL(${protocol})`;
}

export function idTypeName(idType: number): string {
  return enumName(IdType, idType) ?? `ID_TYPE(${idType})`;
}

export function authMethodName(method: number): string {
  return enumName(AuthMethod, method) ?? `AUTH_METHOD(${method})`;
}

export function certEncodingName(encoding: number): string {
  return enumName(CertEncoding, encoding) ?? `CERT_ENCODING(${encoding})`;
}

export function cfgAttributeName(attributeType: number): string {
  return enumName(CfgAttributeType, attributeType) ?? `CFG_ATTRIBUTE(${attributeType})`;
}
