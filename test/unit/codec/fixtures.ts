// Sample IKEv2 messages for the codec tests, built from the flows of RFC 7296 §1.2-1.4, RFC 9242,
// RFC 9370, RFC 8784 and the optimized-rekey draft.
import { randomBytes } from 'node:crypto';
import {
  AuthMethod,
  CertEncoding,
  CfgAttributeType,
  CfgType,
  configuredNotifyTypes,
  EncrId,
  EsnId,
  ExchangeType,
  IdType,
  IntegId,
  KeMethod,
  NotifyType,
  PayloadType,
  PrfId,
  ProtocolId,
  TransformType,
  TsType,
  addressRange,
  authPayload,
  certPayload,
  certReqPayload,
  cpPayload,
  deletePayload,
  eapPayload,
  idPayload,
  kePayload,
  noncePayload,
  notify,
  proposal,
  saPayload,
  spi32,
  transform,
  tsPayload,
  vendorPayload,
  type IkeHeader,
  type IkeMessage,
  type Payload,
} from '../../../src/ike/codec/index.js';

export const CODE_POINTS = configuredNotifyTypes();

export const SPI_I = Buffer.from('0102030405060708', 'hex');
export const SPI_R = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');

export function header(exchangeType: number, opts: { initiator?: boolean; response?: boolean; messageId?: number; spiR?: Buffer } = {}): IkeHeader {
  return {
    spiI: SPI_I,
    spiR: opts.spiR ?? SPI_R,
    nextPayload: 0,
    majorVersion: 2,
    minorVersion: 0,
    exchangeType,
    flags: { initiator: opts.initiator ?? true, response: opts.response ?? false, version: false },
    messageId: opts.messageId ?? 0,
    length: 0,
  };
}

const fill = (n: number, byte: number) => Buffer.alloc(n, byte);

export function ikeProposals(): Payload {
  return saPayload([
    proposal(1, ProtocolId.IKE, Buffer.alloc(0), [
      transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
      transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
      transform(TransformType.KE, KeMethod.CURVE25519),
      transform(TransformType.ADDKE1, KeMethod.ML_KEM_768),
      transform(TransformType.ADDKE2, KeMethod.NONE),
    ]),
    proposal(2, ProtocolId.IKE, Buffer.alloc(0), [
      transform(TransformType.ENCR, EncrId.AES_CBC, 128),
      transform(TransformType.ENCR, EncrId.AES_CBC, 256),
      transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
      transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
      transform(TransformType.KE, KeMethod.ECP_256),
    ]),
  ]);
}

export function espProposal(spi: number, withKe = false): Payload {
  const transforms = [transform(TransformType.ENCR, EncrId.AES_GCM_16, 128), transform(TransformType.ESN, EsnId.NO_ESN), transform(TransformType.ESN, EsnId.ESN)];
  if (withKe) transforms.push(transform(TransformType.KE, KeMethod.CURVE25519), transform(TransformType.ADDKE1, KeMethod.ML_KEM_768));
  return saPayload([proposal(1, ProtocolId.ESP, spi32(spi), transforms)]);
}

export function selectors(): { tsi: Payload; tsr: Payload } {
  return {
    tsi: tsPayload(PayloadType.TSi, [
      addressRange(Buffer.from([10, 0, 1, 0]), Buffer.from([10, 0, 1, 255])),
      addressRange(fill(16, 0x20), fill(16, 0x21), 6, 443, 443),
    ]),
    tsr: tsPayload(PayloadType.TSr, [
      addressRange(Buffer.from([10, 0, 2, 0]), Buffer.from([10, 0, 2, 255]), 17, 500, 4500),
      { tsType: TsType.SECLABEL, octet2: 0, opaque: Buffer.from('system_u:object_r:ipsec_spd_t:s0\0', 'latin1') },
    ]),
  };
}

export function ikeSaInitRequest(): IkeMessage {
  return {
    header: header(ExchangeType.IKE_SA_INIT, { spiR: Buffer.alloc(8) }),
    payloads: [
      notify(NotifyType.COOKIE, fill(20, 0xc0)),
      ikeProposals(),
      kePayload(KeMethod.CURVE25519, fill(32, 0x25)),
      noncePayload(fill(32, 0x4e)),
      notify(NotifyType.NAT_DETECTION_SOURCE_IP, fill(20, 0x51)),
      notify(NotifyType.NAT_DETECTION_DESTINATION_IP, fill(20, 0x52)),
      notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
      notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, Buffer.from('0002000300040005', 'hex')),
      notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED),
      notify(NotifyType.USE_PPK_INT),
      notify(CODE_POINTS.CHILD_SA_PFS_INFO_SUPPORTED),
      vendorPayload(Buffer.from('ikev2d test vendor id')),
    ],
  };
}

export function ikeSaInitResponse(): IkeMessage {
  return {
    header: header(ExchangeType.IKE_SA_INIT, { initiator: false, response: true }),
    payloads: [
      saPayload([proposal(1, ProtocolId.IKE, Buffer.alloc(0), [
        transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
        transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
        transform(TransformType.KE, KeMethod.CURVE25519),
        transform(TransformType.ADDKE1, KeMethod.ML_KEM_768),
      ])]),
      kePayload(KeMethod.CURVE25519, fill(32, 0x26)),
      noncePayload(fill(48, 0x4f)),
      certReqPayload(CertEncoding.X509_SIGNATURE, fill(40, 0xca)),
      notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
      notify(NotifyType.MULTIPLE_AUTH_SUPPORTED),
    ],
  };
}

export function intermediateInner(): Payload[] {
  return [kePayload(KeMethod.ML_KEM_768, randomBytes(1184))];
}

/** IKE_AUTH request inner payloads with CP, a Child SA and the optimized-rekey/child-pfs notifies. */
export function ikeAuthInner(): Payload[] {
  const { tsi, tsr } = selectors();
  return [
    idPayload(PayloadType.IDi, IdType.FQDN, Buffer.from('client.example.org')),
    certPayload(CertEncoding.X509_SIGNATURE, randomBytes(700)),
    certReqPayload(CertEncoding.X509_SIGNATURE, fill(20, 0x33)),
    notify(NotifyType.INITIAL_CONTACT),
    idPayload(PayloadType.IDr, IdType.DER_ASN1_DN, Buffer.from('3015311330110603550403130a67772e6578616d706c65', 'hex')),
    authPayload(AuthMethod.DIGITAL_SIGNATURE, Buffer.concat([Buffer.from('07300506032b6570', 'hex'), fill(64, 0x5a)])),
    cpPayload(CfgType.CFG_REQUEST, [
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(0) },
      { type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: Buffer.alloc(0) },
      { type: CfgAttributeType.INTERNAL_IP4_DNS, value: Buffer.alloc(0) },
      { type: CfgAttributeType.INTERNAL_IP6_DNS, value: Buffer.alloc(0) },
    ]),
    notify(NotifyType.USE_TRANSPORT_MODE),
    notify(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED),
    notify(NotifyType.PPK_IDENTITY, Buffer.from('02707069642d31', 'hex')),
    notify(NotifyType.NO_PPK_AUTH, fill(48, 0x77)),
    notify(CODE_POINTS.OPTIMIZED_REKEY_SUPPORTED),
    espProposal(0xc0ffee01),
    tsi,
    tsr,
  ];
}

export function ikeAuthResponseInner(): Payload[] {
  const { tsi, tsr } = selectors();
  return [
    idPayload(PayloadType.IDr, IdType.IPV4_ADDR, Buffer.from([192, 0, 2, 1])),
    authPayload(AuthMethod.SHARED_KEY_MIC, fill(48, 0x41)),
    cpPayload(CfgType.CFG_REPLY, [
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.from([10, 9, 0, 7]) },
      { type: CfgAttributeType.INTERNAL_IP4_DNS, value: Buffer.from([10, 9, 0, 1]) },
      { type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: Buffer.concat([fill(16, 0xfd), Buffer.from([64])]) },
    ]),
    espProposal(0xc0ffee02),
    tsi,
    tsr,
    notify(CODE_POINTS.OPTIMIZED_REKEY_SUPPORTED),
  ];
}

/** CREATE_CHILD_SA request variants (inner payloads). */
export function createChildVariants(): Record<string, Payload[]> {
  const { tsi, tsr } = selectors();
  return {
    'new Child SA with PFS': [espProposal(0x11111111, true), noncePayload(fill(32, 1)), kePayload(KeMethod.CURVE25519, fill(32, 2)), tsi, tsr],
    'rekey Child SA': [notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, spi32(0xc0ffee01)), espProposal(0x22222222), noncePayload(fill(32, 3)), tsi, tsr],
    'rekey IKE SA': [saPayload([proposal(1, ProtocolId.IKE, fill(8, 0x99), [
      transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
      transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
      transform(TransformType.KE, KeMethod.CURVE25519),
    ])]), noncePayload(fill(32, 4)), kePayload(KeMethod.CURVE25519, fill(32, 5))],
    'optimized Child SA rekey': [
      notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, spi32(0xc0ffee01)),
      notify(CODE_POINTS.OPTIMIZED_REKEY, spi32(0x33333333)),
      noncePayload(fill(32, 6)),
      kePayload(KeMethod.CURVE25519, fill(32, 7)),
    ],
    'optimized IKE SA rekey': [notify(CODE_POINTS.OPTIMIZED_REKEY, fill(8, 0x44)), noncePayload(fill(32, 8)), kePayload(KeMethod.CURVE25519, fill(32, 9))],
    'IKE_FOLLOWUP_KE link': [notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, fill(8, 0x1e)), kePayload(KeMethod.ML_KEM_768, fill(1088, 0x6b))],
    'error answer': [notify(NotifyType.TEMPORARY_FAILURE)],
    'STATE_NOT_FOUND': [notify(NotifyType.STATE_NOT_FOUND)],
  };
}

export function informationalVariants(): Record<string, Payload[]> {
  return {
    'liveness check': [],
    'delete Child SAs': [deletePayload(ProtocolId.ESP, [spi32(1), spi32(0xfffffffe)])],
    'delete IKE SA': [deletePayload(ProtocolId.IKE)],
    'delete AH': [deletePayload(ProtocolId.AH, [spi32(5)])],
    'notify with EAP and an unknown non-critical payload': [
      notify(NotifyType.AUTHENTICATION_FAILED),
      eapPayload(Buffer.from('0201000501', 'hex')),
      { type: PayloadType.UNKNOWN, critical: false, rawType: 200, data: Buffer.from('opaque') },
    ],
  };
}
