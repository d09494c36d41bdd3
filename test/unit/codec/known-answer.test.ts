// Known-answer decoding of real captured IKEv2 messages (vectors.ts says where they come from).
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
  notifies,
  Reassembler,
  decodeProtected,
  decodePayloadChain,
  encodeMessage,
  encodePayloadChain,
  findNotify,
  getSa,
  type Payload,
} from '../../../src/ike/codec/index.js';
import {
  ANDROID_IKE_AUTH,
  ANDROID_IKE_AUTH_PADDED_PLAINTEXT,
  ANDROID_IKE_SA_INIT,
  STRONGSWAN_COOKIE,
  STRONGSWAN_IKE_SA_INIT,
  STRONGSWAN_IKE_SA_INIT_WITH_COOKIE,
  STRONGSWAN_LIVE,
  STRONGSWAN_RESPONDER,
} from './vectors.js';
import { createProtection, ENCR } from '../../../src/ike/crypto/index.js';

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

describe('known-answer: strongSwan 5.9.8 IKE_SA_INIT request and its COOKIE retry', () => {
  it('decodes proposals, KE, nonce and notifies', () => {
    const r = decodeMessage(STRONGSWAN_IKE_SA_INIT);
    if (!r.ok) throw new Error(r.error.reason);
    const { header: h, payloads: p } = r.message;
    expect(h.spiI.toString('hex')).toBe('32af01eeb3b77500');
    expect(h.flags).toEqual({ initiator: true, response: false, version: false });
    expect(h.length).toBe(284);
    const sa = getSa(p)!;
    expect(sa.proposals.map((x) => [x.num, x.protocol, x.spi.length, x.transforms.map((t) => [t.type, t.id, t.keyLength])])).toEqual([
      [1, ProtocolId.IKE, 0, [[1, EncrId.AES_GCM_16, 256], [2, PrfId.HMAC_SHA2_384, undefined], [4, KeMethod.CURVE25519, undefined], [4, KeMethod.ECP_256, undefined]]],
      [2, ProtocolId.IKE, 0, [[1, EncrId.AES_CBC, 128], [3, IntegId.HMAC_SHA2_256_128, undefined], [2, PrfId.HMAC_SHA2_256, undefined], [4, KeMethod.MODP_2048, undefined]]],
    ]);
    const ke = p[1]!;
    expect(ke.type === PayloadType.KE && [ke.group, ke.data.length]).toEqual([KeMethod.CURVE25519, 32]);
    expect(p[2]!.type === PayloadType.NONCE && p[2]!.data.length).toBe(32);
    expect(notifies(p).map((n) => n.notifyType)).toEqual([
      NotifyType.NAT_DETECTION_SOURCE_IP,
      NotifyType.NAT_DETECTION_DESTINATION_IP,
      NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
      NotifyType.SIGNATURE_HASH_ALGORITHMS,
      NotifyType.REDIRECT_SUPPORTED,
    ]);
    expect(findNotify(p, NotifyType.SIGNATURE_HASH_ALGORITHMS)!.data.toString('hex')).toBe('0002000300040005');
    expect(encodeMessage(r.message).equals(STRONGSWAN_IKE_SA_INIT)).toBe(true);
  });

  it('the retry carries our COOKIE first and otherwise the same payloads', () => {
    const first = decodeMessage(STRONGSWAN_IKE_SA_INIT);
    const retry = decodeMessage(STRONGSWAN_IKE_SA_INIT_WITH_COOKIE);
    if (!first.ok || !retry.ok) throw new Error('decode failed');
    const [cookie, ...rest] = retry.message.payloads;
    expect(cookie).toEqual({ type: PayloadType.NOTIFY, critical: false, protocol: 0, spi: Buffer.alloc(0), notifyType: NotifyType.COOKIE, data: STRONGSWAN_COOKIE });
    expect(rest).toEqual(first.message.payloads);
    expect(retry.message.header.messageId).toBe(0);
    expect(encodeMessage(retry.message).equals(STRONGSWAN_IKE_SA_INIT_WITH_COOKIE)).toBe(true);
  });
});

describe('known-answer: fragments exchanged with strongSwan 5.9.8 (vectors.ts)', () => {
  const fromInitiator = () => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: STRONGSWAN_LIVE.skEi });
  const fromResponder = () => createProtection({ encrId: ENCR.AES_GCM_16, keyBits: 256, encKey: STRONGSWAN_LIVE.skEr });

  it('the IKE_SA_INIT pair decodes and re-encodes exactly', () => {
    for (const m of [STRONGSWAN_LIVE.ikeSaInitRequest, STRONGSWAN_LIVE.ikeSaInitResponse]) {
      const r = decodeMessage(m);
      if (!r.ok) throw new Error(r.error.reason);
      expect(encodeMessage(r.message).equals(m)).toBe(true);
    }
  });

  it("reassembles strongSwan's six SKF fragments of IKE_AUTH, in any order", () => {
    const frags = STRONGSWAN_LIVE.authRequestFragments;
    expect(frags).toHaveLength(6);
    for (const order of [frags, [...frags].reverse(), [frags[3]!, frags[0]!, frags[5]!, frags[1]!, frags[4]!, frags[2]!]]) {
      const r = new Reassembler();
      const results = order.map((f) => r.add(0, f, fromInitiator()));
      const last = results[results.length - 1]!;
      if (last.status !== 'complete') throw new Error(JSON.stringify(last));
      const p = last.message.payloads;
      expect(p.map((x) => x.type)).toEqual([PayloadType.IDi, PayloadType.AUTH, PayloadType.SA, PayloadType.TSi, PayloadType.TSr, PayloadType.NOTIFY, PayloadType.NOTIFY]);
      const idi = p[0]!;
      expect(idi.type === PayloadType.IDi && [idi.idType, idi.data.toString()]).toEqual([IdType.RFC822_ADDR, 'a@example.org']);
      expect(p[1]!.type === PayloadType.AUTH && p[1]!.method).toBe(AuthMethod.SHARED_KEY_MIC);
      const tsi = p[3]!;
      expect(tsi.type === PayloadType.TSi && tsi.selectors).toEqual([
        { tsType: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: Buffer.from([10, 1, 0, 0]), endAddr: Buffer.from([10, 1, 0, 255]) },
      ]);
      expect(notifies(p).map((n) => n.notifyType)).toEqual([NotifyType.EAP_ONLY_AUTHENTICATION, NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED]);
      expect(last.message.header.exchangeType).toBe(ExchangeType.IKE_AUTH);
      expect(last.message.header.messageId).toBe(1);
    }
  });

  it('the SKF fragments do not open with the other direction\'s key', () => {
    const r = new Reassembler();
    const res = r.add(0, STRONGSWAN_LIVE.authRequestFragments[0]!, fromResponder());
    expect(res.status === 'dropped' && res.integrity).toBe(true);
    expect(decodeProtected(STRONGSWAN_LIVE.authRequestFragments[0]!, fromInitiator()).ok).toBe(false);
  });

  it('our response fragments that strongSwan accepted reassemble to N(AUTHENTICATION_FAILED), V', () => {
    const r = new Reassembler();
    const results = STRONGSWAN_LIVE.authResponseFragments.map((f) => r.add(0, f, fromResponder()));
    const last = results[results.length - 1]!;
    if (last.status !== 'complete') throw new Error(JSON.stringify(last));
    expect(last.message.payloads.map((x) => x.type)).toEqual([PayloadType.NOTIFY, PayloadType.VENDOR]);
    expect(findNotify(last.message.payloads, NotifyType.AUTHENTICATION_FAILED)).toBeDefined();
    expect(STRONGSWAN_LIVE.authResponseFragments.every((f) => f.length <= 300)).toBe(true);
  });
});

describe('known-answer: strongSwan 5.9.8 answering IKE_SA_INIT requests encoded here (vectors.ts)', () => {
  it('INVALID_KE_PAYLOAD names the wanted method in 2 octets', () => {
    const r = decodeMessage(STRONGSWAN_RESPONDER.invalidKeResponse);
    if (!r.ok) throw new Error(r.error.reason);
    const req = decodeMessage(STRONGSWAN_RESPONDER.requestWrongKe);
    if (!req.ok) throw new Error(req.error.reason);
    expect(r.message.header.spiI.equals(req.message.header.spiI)).toBe(true);
    expect(r.message.header.flags).toEqual({ initiator: false, response: true, version: false });
    expect(r.message.payloads).toEqual([{ type: PayloadType.NOTIFY, critical: false, protocol: 0, spi: Buffer.alloc(0), notifyType: NotifyType.INVALID_KE_PAYLOAD, data: Buffer.from([0, KeMethod.CURVE25519]) }]);
    expect(encodeMessage(r.message).equals(STRONGSWAN_RESPONDER.invalidKeResponse)).toBe(true);
  });

  it('the response picks the plain proposal and decodes and re-encodes exactly', () => {
    const req = decodeMessage(STRONGSWAN_RESPONDER.request);
    const r = decodeMessage(STRONGSWAN_RESPONDER.response);
    if (!r.ok || !req.ok) throw new Error('decode failed');
    expect(getSa(req.message.payloads)!.proposals[0]!.transforms.map((t) => t.type)).toContain(TransformType.ADDKE1);
    const h = r.message.header;
    expect(h.spiI.equals(req.message.header.spiI)).toBe(true);
    expect(h.spiR.equals(Buffer.alloc(8))).toBe(false);
    expect(h.flags).toEqual({ initiator: false, response: true, version: false });
    const sa = getSa(r.message.payloads)!;
    expect(sa.proposals).toHaveLength(1);
    expect(sa.proposals[0]!.num).toBe(2);
    expect(sa.proposals[0]!.transforms.map((t) => [t.type, t.id, t.keyLength])).toEqual([
      [TransformType.ENCR, EncrId.AES_GCM_16, 256], [TransformType.PRF, PrfId.HMAC_SHA2_384, undefined], [TransformType.KE, KeMethod.CURVE25519, undefined],
    ]);
    const ke = r.message.payloads.find((p) => p.type === PayloadType.KE)!;
    expect(ke.type === PayloadType.KE && [ke.group, ke.data.length]).toEqual([KeMethod.CURVE25519, 32]);
    expect(notifies(r.message.payloads).map((n) => n.notifyType)).toEqual([
      NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.SIGNATURE_HASH_ALGORITHMS, NotifyType.CHILDLESS_IKEV2_SUPPORTED, NotifyType.MULTIPLE_AUTH_SUPPORTED,
    ]);
    expect(encodeMessage(r.message).equals(STRONGSWAN_RESPONDER.response)).toBe(true);
    expect(encodeMessage(req.message).equals(STRONGSWAN_RESPONDER.request)).toBe(true);
  });
});
