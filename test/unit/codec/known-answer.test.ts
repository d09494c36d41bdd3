// Known-answer decoding of real captured IKEv2 messages. The hex comes from the unit tests of
// Android's IKEv2 library (platform/packages/modules/IPsec, IkeMessageTest.java): an IKE_SA_INIT
// request, an IKE_AUTH request and the decrypted, padded plaintext of that IKE_AUTH's SK payload.
import { describe, expect, it } from 'vitest';
import {
  AuthMethod,
  EncrId,
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
  decodeMessage,
  decodePayloadChain,
  encodeMessage,
  encodePayloadChain,
  findNotify,
  getSa,
  type Payload,
} from '../../../src/ike/codec/index.js';

export const ANDROID_IKE_SA_INIT = Buffer.from(
  '8f54bf6d8b48e6e10000000000000000212022080000000000000150' +
    '220000300000002c010100040300000c0100000c800e00800300000803000002030000080400000200000008' +
    '020000022800008800020000b4a2faf4bb54878ae21d638512ece55d9236fc5046ab6cef82220f421f3ce6361faf3656' +
    '4ecb6d28798a94aad7b2b4b603ddeaaa5630adb9ece8ac37534036040610ebdd92f46bef84f0be7db860351843858f8a' +
    'cf87056e272377f70c9f2d81e29c7b0ce4f291a3a72476bb0b278fd4b7b0a4c26bbeb08214c707137607958729000024' +
    'c39b7f368f4681b89fa9b7be6465abd7c5f68b6ed5d3b4c72cb4240eb5c464122900001c00004004e54f73b7d83f6beb' +
    '881eab2051d8663f421d10b02b00001c00004005d915368ca036004cb578ae3e3fb268509aeab19000000020699369228' +
    '741c6d4ca094c93e242c9de19e7b7c60000000500000500',
  'hex',
);

export const ANDROID_IKE_AUTH = Buffer.from(
  '5f54bf6d8b48e6e1909232b3d1edcb5c2e20230800000001000000ec' +
    '230000d0b9132b7bb9f658dfdc648e5017a6322a030c316ce55f365760d46426ce5cfc78bd1ed9abff63eb9594c1bd58' +
    '46de333ecd3ea2b705d18293b130395300ba92a3510413450a10525cea51b2753b4e92b081fd78d995659a98f742278f' +
    'f9b8fd3e21554865c15c79a5134d66b2744966089e416c60a274e44a9a3f084eb02f3bdce1e7de9de8d9a62773ab563b' +
    '9a69ba1db03c752acb6136452b8a86c41addb4210d68c423efed80e26edca5fa3fe5d0a5ca9375ce332c474b93fb1fa3' +
    '59eb4e81ae6e0f22abdad69ba8007d50',
  'hex',
);

const ANDROID_IKE_AUTH_PADDED_PLAINTEXT = Buffer.from(
  '2400000c010000000a50500d2700000c010000000a5050502100001c02000000df7c038aefaaa32d3f44b228b52a3327' +
    '44dfb2c12c00002c00000028010304032ad4c0a20300000c0100000c800e008003000008030000020000000805000000' +
    '2d00001801000000070000100000ffff00000000ffffffff2900001801000000070000100000ffff00000000ffffffff' +
    '29000008000040000000000c000040010000000100000000000000000000000b',
  'hex',
);

describe('known-answer: captured IKE_SA_INIT request', () => {
  const r = decodeMessage(ANDROID_IKE_SA_INIT);

  it('decodes the header', () => {
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const h = r.message.header;
    expect(h.spiI.toString('hex')).toBe('8f54bf6d8b48e6e1');
    expect(h.spiR.toString('hex')).toBe('0000000000000000');
    expect(h.nextPayload).toBe(PayloadType.SA);
    expect([h.majorVersion, h.minorVersion]).toEqual([2, 0]);
    expect(h.exchangeType).toBe(ExchangeType.IKE_SA_INIT);
    expect(h.flags).toEqual({ initiator: true, response: false, version: false });
    expect(h.messageId).toBe(0);
    expect(h.length).toBe(336);
  });

  it('decodes SA, KE, Ni, two NAT_DETECTION notifies and a Vendor ID', () => {
    if (!r.ok) throw new Error(r.error.reason);
    const p = r.message.payloads;
    expect(p.map((x) => x.type)).toEqual([PayloadType.SA, PayloadType.KE, PayloadType.NONCE, PayloadType.NOTIFY, PayloadType.NOTIFY, PayloadType.VENDOR]);
    const sa = getSa(p)!;
    expect(sa.proposals).toHaveLength(1);
    const prop = sa.proposals[0]!;
    expect(prop.num).toBe(1);
    expect(prop.protocol).toBe(ProtocolId.IKE);
    expect(prop.spi.length).toBe(0);
    expect(prop.transforms.map((t) => [t.type, t.id, t.keyLength])).toEqual([
      [TransformType.ENCR, EncrId.AES_CBC, 128],
      [TransformType.INTEG, IntegId.HMAC_SHA1_96, undefined],
      [TransformType.KE, KeMethod.MODP_1024, undefined],
      [TransformType.PRF, PrfId.HMAC_SHA1, undefined],
    ]);
    const ke = p[1]!;
    expect(ke.type === PayloadType.KE && ke.group).toBe(KeMethod.MODP_1024);
    expect(ke.type === PayloadType.KE && ke.data.length).toBe(128);
    expect(ke.type === PayloadType.KE && ke.data.subarray(0, 4).toString('hex')).toBe('b4a2faf4');
    const nonce = p[2]!;
    expect(nonce.type === PayloadType.NONCE && nonce.data.toString('hex')).toBe('c39b7f368f4681b89fa9b7be6465abd7c5f68b6ed5d3b4c72cb4240eb5c46412');
    expect(findNotify(p, NotifyType.NAT_DETECTION_SOURCE_IP)!.data.toString('hex')).toBe('e54f73b7d83f6beb881eab2051d8663f421d10b0');
    expect(findNotify(p, NotifyType.NAT_DETECTION_DESTINATION_IP)!.data.toString('hex')).toBe('d915368ca036004cb578ae3e3fb268509aeab190');
    const v = p[5]!;
    expect(v.type === PayloadType.VENDOR && v.data.length).toBe(28);
  });

  it('re-encodes byte for byte', () => {
    if (!r.ok) throw new Error(r.error.reason);
    expect(encodeMessage(r.message).equals(ANDROID_IKE_SA_INIT)).toBe(true);
  });
});

describe('known-answer: captured IKE_AUTH request', () => {
  it('decodes HDR, SK{...} with the SK body as IV | ciphertext | ICV', () => {
    const r = decodeMessage(ANDROID_IKE_AUTH);
    if (!r.ok) throw new Error(r.error.reason);
    expect(r.message.header.exchangeType).toBe(ExchangeType.IKE_AUTH);
    expect(r.message.header.messageId).toBe(1);
    expect(r.message.header.spiR.toString('hex')).toBe('909232b3d1edcb5c');
    expect(r.message.payloads).toHaveLength(1);
    const sk = r.message.payloads[0]!;
    if (sk.type !== PayloadType.SK) throw new Error('not SK');
    expect(sk.innerFirst).toBe(PayloadType.IDi);
    expect(sk.body.length).toBe(0xd0 - 4);
    expect(sk.body.subarray(sk.body.length - 12).toString('hex')).toBe('ae6e0f22abdad69ba8007d50');
    expect(encodeMessage(r.message).equals(ANDROID_IKE_AUTH)).toBe(true);
  });

  it('decodes the decrypted inner chain after the padding is removed', () => {
    const padLength = ANDROID_IKE_AUTH_PADDED_PLAINTEXT[ANDROID_IKE_AUTH_PADDED_PLAINTEXT.length - 1]!;
    expect(padLength).toBe(11);
    const inner = ANDROID_IKE_AUTH_PADDED_PLAINTEXT.subarray(0, ANDROID_IKE_AUTH_PADDED_PLAINTEXT.length - 1 - padLength);
    const r = decodePayloadChain(PayloadType.IDi, inner);
    if (!r.ok) throw new Error(r.error.reason);
    const p: Payload[] = r.payloads;
    expect(p.map((x) => x.type)).toEqual([
      PayloadType.IDi, PayloadType.IDr, PayloadType.AUTH, PayloadType.SA, PayloadType.TSi, PayloadType.TSr, PayloadType.NOTIFY, PayloadType.NOTIFY,
    ]);
    const [idi, idr, auth, sa, tsi, , n1, n2] = p;
    expect(idi!.type === PayloadType.IDi && [idi.idType, [...idi.data]]).toEqual([IdType.IPV4_ADDR, [10, 80, 80, 13]]);
    expect(idr!.type === PayloadType.IDr && [idr.idType, [...idr.data]]).toEqual([IdType.IPV4_ADDR, [10, 80, 80, 80]]);
    expect(auth!.type === PayloadType.AUTH && [auth.method, auth.data.length]).toEqual([AuthMethod.SHARED_KEY_MIC, 20]);
    if (sa!.type !== PayloadType.SA) throw new Error('not SA');
    expect(sa.proposals[0]!.protocol).toBe(ProtocolId.ESP);
    expect(sa.proposals[0]!.spi.toString('hex')).toBe('2ad4c0a2');
    expect(sa.proposals[0]!.transforms.map((t) => [t.type, t.id, t.keyLength])).toEqual([
      [TransformType.ENCR, EncrId.AES_CBC, 128],
      [TransformType.INTEG, IntegId.HMAC_SHA1_96, undefined],
      [TransformType.ESN, 0, undefined],
    ]);
    if (tsi!.type !== PayloadType.TSi) throw new Error('not TSi');
    expect(tsi.selectors).toEqual([
      { tsType: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: Buffer.from([0, 0, 0, 0]), endAddr: Buffer.from([255, 255, 255, 255]) },
    ]);
    expect(n1!.type === PayloadType.NOTIFY && n1.notifyType).toBe(NotifyType.INITIAL_CONTACT);
    expect(n2!.type === PayloadType.NOTIFY && [n2.notifyType, n2.data.toString('hex')]).toEqual([NotifyType.SET_WINDOW_SIZE, '00000001']);
    const again = encodePayloadChain(p);
    expect(again.first).toBe(PayloadType.IDi);
    expect(again.bytes.equals(inner)).toBe(true);
  });
});
