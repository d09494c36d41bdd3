// Wire rules of optimized rekeys (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt-07 §4-§6) at the
// payload level: what we send, what a responder must refuse, what an initiator accepts.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CODE_POINTS } from '../../../src/ike/config.js';
import { NotifyType, PayloadType, ProtocolId } from '../../../src/ike/codec/constants.js';
import { encodePayload } from '../../../src/ike/codec/encode.js';
import { addressRange, kePayload, noncePayload, notify, saPayload, tsPayload } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import {
  checkOptimizedRequest,
  checkOptimizedResponse,
  classifyRequest,
  isOptimizedRefusal,
  optimizedChildRekeyRequest,
  optimizedIkeRekeyRequest,
  optimizedRekeyResponse,
  optimizedRekeySupportedNotify,
  PROPERTY_CHANGING_NOTIFIES,
  shouldOptimizeChildRekey,
  shouldOptimizeIkeRekey,
  type RekeyTarget,
} from '../../../src/ike/engine/optimized-rekey.js';

const cp = DEFAULT_CODE_POINTS;
const nonce = Buffer.alloc(32, 0x11);
const spi4 = Buffer.from('c0ffee01', 'hex');
const old4 = Buffer.from('0badcafe', 'hex');
const spi8 = Buffer.from('0102030405060708', 'hex');
const X25519 = 31;
const MLKEM768 = 36;

/** Notify body octets after the generic payload header (RFC 7296 §3.10). */
function notifyBody(p: Payload): Buffer {
  return encodePayload(p, 0).subarray(4);
}

describe('OPTIMIZED_REKEY notify on the wire (§6)', () => {
  it('IKE SA rekey: Protocol ID 0, SPI Size 0, type 50401, 8-octet SPI in the data', () => {
    const [n] = optimizedIkeRekeyRequest(cp, spi8, nonce, { method: X25519, data: Buffer.alloc(32, 9) });
    const b = notifyBody(n!);
    expect(b[0]).toBe(0); // Protocol ID
    expect(b[1]).toBe(0); // SPI Size
    expect(b.readUInt16BE(2)).toBe(50401);
    expect(b.subarray(4)).toEqual(spi8);
  });

  it('Child SA rekey: REKEY_SA names the old SPI, OPTIMIZED_REKEY carries the 4-octet new SPI', () => {
    const payloads = optimizedChildRekeyRequest(cp, old4, spi4, nonce);
    const rekey = notifyBody(payloads[0]!);
    expect(rekey[0]).toBe(ProtocolId.ESP);
    expect(rekey[1]).toBe(4);
    expect(rekey.readUInt16BE(2)).toBe(NotifyType.REKEY_SA);
    expect(rekey.subarray(4, 8)).toEqual(old4);
    const opt = notifyBody(payloads[1]!);
    expect([opt[0], opt[1], opt.readUInt16BE(2)]).toEqual([0, 0, 50401]);
    expect(opt.subarray(4)).toEqual(spi4);
  });

  it('requests carry no SA, no TS and none of the property-changing notifies; KE only when given', () => {
    const noPfs = optimizedChildRekeyRequest(cp, old4, spi4, nonce);
    const pfs = optimizedChildRekeyRequest(cp, old4, spi4, nonce, { method: X25519, data: Buffer.alloc(32, 7) });
    for (const ps of [noPfs, pfs]) {
      expect(ps.some((p) => p.type === PayloadType.SA || p.type === PayloadType.TSi || p.type === PayloadType.TSr)).toBe(false);
      expect(ps.some((p) => p.type === PayloadType.NOTIFY && PROPERTY_CHANGING_NOTIFIES.includes(p.notifyType))).toBe(false);
    }
    expect(noPfs.some((p) => p.type === PayloadType.KE)).toBe(false);
    expect(pfs.filter((p) => p.type === PayloadType.KE)).toHaveLength(1);
    const ike = optimizedIkeRekeyRequest(cp, spi8, nonce, { method: X25519, data: Buffer.alloc(32, 9) });
    expect(ike.map((p) => p.type)).toEqual([PayloadType.NOTIFY, PayloadType.NONCE, PayloadType.KE]);
  });

  it('OPTIMIZED_REKEY_SUPPORTED has no data and uses the configured code point', () => {
    const b = notifyBody(optimizedRekeySupportedNotify({ ...cp, optimizedRekeySupported: 61000 }));
    expect(b).toEqual(Buffer.from([0, 0, 61000 >> 8, 61000 & 0xff]));
  });

  it('refuses to build a notify with an SPI of the wrong size', () => {
    expect(() => optimizedIkeRekeyRequest(cp, spi4, nonce, { method: X25519, data: Buffer.alloc(32) })).toThrow(/8 octets/);
    expect(() => optimizedChildRekeyRequest(cp, old4, spi8, nonce)).toThrow(/4 octets/);
  });
});

describe('classifying a CREATE_CHILD_SA request', () => {
  it('no OPTIMIZED_REKEY: regular', () => {
    expect(classifyRequest([saPayload([]), noncePayload(nonce)], cp).kind).toBe('regular');
  });

  it('REKEY_SA absent: IKE SA rekey; present: Child SA rekey', () => {
    const ike = classifyRequest(optimizedIkeRekeyRequest(cp, spi8, nonce, { method: X25519, data: Buffer.alloc(32, 1) }), cp);
    expect(ike).toMatchObject({ kind: 'ike', newSpi: spi8, ke: { method: X25519 } });
    const child = classifyRequest(optimizedChildRekeyRequest(cp, old4, spi4, nonce), cp);
    expect(child).toMatchObject({ kind: 'child', oldSpi: old4, newSpi: spi4, protocol: ProtocolId.ESP, forbiddenNotifies: [] });
    expect(child.kind === 'child' && child.ke).toBeFalsy();
  });

  const invalid: [string, Payload[]][] = [
    ['IKE rekey with a 4-octet SPI', [notify(cp.optimizedRekey, spi4), noncePayload(nonce), kePayload(X25519, Buffer.alloc(32))]],
    ['Child rekey with an 8-octet SPI', [notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, old4), notify(cp.optimizedRekey, spi8), noncePayload(nonce)]],
    ['Protocol ID 3 on OPTIMIZED_REKEY', [notify(cp.optimizedRekey, spi8, ProtocolId.ESP), noncePayload(nonce)]],
    ['SPI Size 4 on OPTIMIZED_REKEY', [notify(cp.optimizedRekey, spi8, ProtocolId.NONE, spi4), noncePayload(nonce)]],
    ['two OPTIMIZED_REKEY', [notify(cp.optimizedRekey, spi8), notify(cp.optimizedRekey, spi8), noncePayload(nonce)]],
    ['SA payload with OPTIMIZED_REKEY', [saPayload([]), notify(cp.optimizedRekey, spi8), noncePayload(nonce)]],
    ['no nonce', [notify(cp.optimizedRekey, spi8), kePayload(X25519, Buffer.alloc(32))]],
    [
      'TS payloads in a Child rekey',
      [
        notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, old4),
        notify(cp.optimizedRekey, spi4),
        noncePayload(nonce),
        tsPayload(PayloadType.TSi, [addressRange(Buffer.from([10, 0, 0, 0]), Buffer.from([10, 0, 0, 255]))]),
      ],
    ],
    ['reserved SPI 1', [notify(NotifyType.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, old4), notify(cp.optimizedRekey, Buffer.from([0, 0, 0, 1])), noncePayload(nonce)]],
    ['zero IKE SPI', [notify(cp.optimizedRekey, Buffer.alloc(8)), noncePayload(nonce), kePayload(X25519, Buffer.alloc(32))]],
  ];
  for (const [name, payloads] of invalid) {
    it(`malformed: ${name}`, () => {
      const r = classifyRequest(payloads, cp);
      expect(r.kind).toBe('invalid');
      expect(r.kind === 'invalid' && r.reason.length).toBeGreaterThan(5);
    });
  }

  it('records every property-changing notify it finds', () => {
    const ps = [...optimizedChildRekeyRequest(cp, old4, spi4, nonce), notify(NotifyType.USE_TRANSPORT_MODE), notify(NotifyType.USE_AGGFRAG)];
    const r = classifyRequest(ps, cp);
    expect(r.kind === 'child' && r.forbiddenNotifies).toEqual([NotifyType.USE_TRANSPORT_MODE, NotifyType.USE_AGGFRAG]);
  });

  it('follows a configured code point, ignoring the default one', () => {
    const other = { ...cp, optimizedRekey: 60001 };
    const ps = optimizedChildRekeyRequest(other, old4, spi4, nonce);
    expect(classifyRequest(ps, other).kind).toBe('child');
    expect(classifyRequest(ps, cp).kind).toBe('regular');
  });
});

describe('responder verdicts (§3, §5, §5.1)', () => {
  const target = (t: Partial<RekeyTarget> = {}): RekeyTarget => ({ negotiated: true, enabled: true, keMethods: [X25519], configChanged: false, ...t });
  const child = (ke?: number, extra: Payload[] = []) => {
    const r = classifyRequest([...optimizedChildRekeyRequest(cp, old4, spi4, nonce, ke === undefined ? undefined : { method: ke, data: Buffer.alloc(32) }), ...extra], cp);
    if (r.kind !== 'child') throw new Error('not a child shape');
    return r;
  };

  it('accepts an optimized rekey with the inherited KE method, or without KE for a no-PFS SA', () => {
    expect(checkOptimizedRequest(child(X25519), target())).toEqual({ ok: true });
    expect(checkOptimizedRequest(child(), target({ keMethods: [] }))).toEqual({ ok: true });
    expect(checkOptimizedRequest(child(X25519), target({ keMethods: [X25519, MLKEM768] }))).toEqual({ ok: true });
  });

  const refusals: [string, () => ReturnType<typeof checkOptimizedRequest>][] = [
    ['not negotiated', () => checkOptimizedRequest(child(X25519), target({ negotiated: false }))],
    ['disabled locally', () => checkOptimizedRequest(child(X25519), target({ enabled: false }))],
    ['configuration changed', () => checkOptimizedRequest(child(X25519), target({ configChanged: true }))],
    ['initial Child SA with undetermined KE (§5.1)', () => checkOptimizedRequest(child(X25519), target({ keMethods: undefined }))],
    ['KE missing for a PFS SA', () => checkOptimizedRequest(child(), target())],
    ['KE present for a no-PFS SA', () => checkOptimizedRequest(child(X25519), target({ keMethods: [] }))],
    ['other KE method', () => checkOptimizedRequest(child(19), target())],
    ['USE_TRANSPORT_MODE', () => checkOptimizedRequest(child(X25519, [notify(NotifyType.USE_TRANSPORT_MODE)]), target())],
    ['ESP_TFC_PADDING_NOT_SUPPORTED', () => checkOptimizedRequest(child(X25519, [notify(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED)]), target())],
    ['ROHC_SUPPORTED', () => checkOptimizedRequest(child(X25519, [notify(NotifyType.ROHC_SUPPORTED)]), target())],
    ['USE_AGGFRAG', () => checkOptimizedRequest(child(X25519, [notify(NotifyType.USE_AGGFRAG)]), target())],
  ];
  for (const [name, run] of refusals) {
    it(`NO_PROPOSAL_CHOSEN: ${name}`, () => {
      const v = run();
      expect(v.ok).toBe(false);
      expect(!v.ok && v.notify).toBe(NotifyType.NO_PROPOSAL_CHOSEN);
    });
  }

  it('IKE SA rekey must carry the inherited KE method', () => {
    const shape = classifyRequest(optimizedIkeRekeyRequest(cp, spi8, nonce, { method: 19, data: Buffer.alloc(64) }), cp);
    if (shape.kind !== 'ike') throw new Error('not ike');
    expect(checkOptimizedRequest(shape, target({ keMethods: [19] }))).toEqual({ ok: true });
    expect(checkOptimizedRequest(shape, target({ keMethods: [X25519] })).ok).toBe(false);
  });
});

describe('initiator decisions', () => {
  const base = { negotiated: true, enabled: true, keMethods: [X25519] as number[] | undefined, configChanged: false, refusedOnce: false };
  it('§5.1: optimized only when the KE methods are known', () => {
    expect(shouldOptimizeChildRekey(base)).toBe(true);
    expect(shouldOptimizeChildRekey({ ...base, keMethods: [] })).toBe(true);
    expect(shouldOptimizeChildRekey({ ...base, keMethods: undefined })).toBe(false);
  });
  it('regular after a configuration change, a refusal, or without negotiation', () => {
    expect(shouldOptimizeChildRekey({ ...base, configChanged: true })).toBe(false);
    expect(shouldOptimizeChildRekey({ ...base, refusedOnce: true })).toBe(false);
    expect(shouldOptimizeChildRekey({ ...base, negotiated: false })).toBe(false);
    expect(shouldOptimizeChildRekey({ ...base, enabled: false })).toBe(false);
    expect(shouldOptimizeIkeRekey({ negotiated: true, enabled: true, configChanged: false, refusedOnce: false })).toBe(true);
    expect(shouldOptimizeIkeRekey({ negotiated: true, enabled: true, configChanged: true, refusedOnce: false })).toBe(false);
  });
  it('NO_PROPOSAL_CHOSEN and INVALID_KE_PAYLOAD mean fall back', () => {
    expect(isOptimizedRefusal([notify(NotifyType.NO_PROPOSAL_CHOSEN)])).toBe(true);
    expect(isOptimizedRefusal([notify(NotifyType.INVALID_KE_PAYLOAD, Buffer.from([0, 31]))])).toBe(true);
    expect(isOptimizedRefusal([notify(NotifyType.TEMPORARY_FAILURE)])).toBe(false);
  });
  it('checks the response shape', () => {
    const good = optimizedRekeyResponse(cp, spi4, nonce, { method: X25519, data: Buffer.alloc(32, 3) });
    expect(checkOptimizedResponse(good, cp, 4, X25519)).toMatchObject({ ok: true, newSpi: spi4 });
    expect(checkOptimizedResponse(good, cp, 4, undefined).ok).toBe(false); // KE we did not ask for
    expect(checkOptimizedResponse(good, cp, 8, X25519).ok).toBe(false); // wrong SPI size
    expect(checkOptimizedResponse(optimizedRekeyResponse(cp, spi4, nonce), cp, 4, X25519).ok).toBe(false); // KE missing
    expect(checkOptimizedResponse([saPayload([]), ...good], cp, 4, X25519).ok).toBe(false);
    expect(checkOptimizedResponse([noncePayload(nonce)], cp, 4, undefined).ok).toBe(false);
    const ike = optimizedRekeyResponse(cp, spi8, nonce, { method: X25519, data: Buffer.alloc(32, 3) });
    expect(checkOptimizedResponse(ike, cp, 8, X25519)).toMatchObject({ ok: true, newSpi: spi8 });
  });
});

describe('negotiation in IKE_AUTH (§3)', () => {
  it('negotiated only when both messages carry OPTIMIZED_REKEY_SUPPORTED', async () => {
    const { answerOptimizedRekeySupported, optimizedRekeyNegotiated } = await import('../../../src/ike/engine/optimized-rekey.js');
    const withN = [optimizedRekeySupportedNotify(cp)];
    expect(answerOptimizedRekeySupported(withN, cp, true)).toBe(true);
    expect(answerOptimizedRekeySupported(withN, cp, false)).toBe(false);
    expect(answerOptimizedRekeySupported([], cp, true)).toBe(false);
    expect(optimizedRekeyNegotiated(true, withN, cp)).toBe(true);
    expect(optimizedRekeyNegotiated(false, withN, cp)).toBe(false); // unsolicited answer ignored
    expect(optimizedRekeyNegotiated(true, [], cp)).toBe(false);
  });
});
