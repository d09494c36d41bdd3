// RFC 9867 PPKs driven through two engines back to back: USE_PPK_INT in IKE_SA_INIT, PPK_IDENTITY_KEY in
// the last IKE_INTERMEDIATE exchange (all seven keys recomputed), and a fresh PPK mixed into SK_d on each
// CREATE_CHILD_SA (new Child SA, Child SA rekey, IKE SA rekey, regular and optimized).
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import type { EngineConfig, PpkConfig } from '../../../src/ike/config.js';
import { applyPpkIntermediate, type IkeSaKeys } from '../../../src/ike/crypto/index.js';
import { openMessage, type RekeyIkeSa } from '../../../src/ike/engine/rekey-exchange.js';
import { configFor, EnginePair, kernelsMirror, type SideOptions } from '../engine-core/pair.js';

const ppk1: PpkConfig = { id: Buffer.from([2, ...Buffer.from('ppk-one')]), key: Buffer.alloc(64, 0x5a) };
const ppk2: PpkConfig = { id: Buffer.from([2, ...Buffer.from('ppk-two')]), key: Buffer.alloc(64, 0x6b) };
const ppk3: PpkConfig = { id: Buffer.from([2, ...Buffer.from('ppk-three')]), key: Buffer.alloc(64, 0x7c) };

function cfg(side: 'a' | 'b', keys: PpkConfig[] | undefined, required = false, o: SideOptions & { rfc9867?: boolean } = {}): EngineConfig {
  const c = configFor(side, o);
  if (keys) c.connections[0]!.ppk = { keys, required, ...(o.rfc9867 !== undefined ? { rfc9867: o.rfc9867 } : {}) };
  return c;
}

interface IkeView {
  ni: Buffer;
  nr: Buffer;
  spiI: Buffer;
  spiR: Buffer;
  ppkMode: string;
  ppkUsed?: PpkConfig;
  state: string;
  sa?: { keys: IkeSaKeys };
}
/** The established IKE SAs of one engine (internal state, read only). */
function ikeSas(p: EnginePair, side: 'a' | 'b'): IkeView[] {
  const sas = (p.engine(side) as unknown as { sas: Map<string, IkeView> }).sas;
  return [...sas.values()].filter((s) => s.state === 'established');
}
const keyNames = ['skD', 'skAi', 'skAr', 'skEi', 'skEr', 'skPi', 'skPr'] as const;
const allKeys = (k: IkeSaKeys) => keyNames.map((n) => k[n].toString('hex')).join('|');

/** Deterministic randomness for both engines, so two runs differing only in PPKs share nonces and KE values. */
function seeded(p: EnginePair): EnginePair {
  for (const [side, seed] of [['a', 7], ['b', 11]] as const) {
    let x = seed;
    (p.engine(side) as unknown as { rng: (n: number) => Buffer }).rng = (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        b[i] = x >>> 24;
      }
      return b;
    };
  }
  return p;
}

function establish(p: EnginePair): void {
  p.apply('a', p.a.initiate(p.now, 'site'));
  p.run(2_000);
}

/** Notify types of the plaintext IKE_SA_INIT messages sent by `from`. */
function initNotifies(p: EnginePair, from: 'a' | 'b'): number[][] {
  const out: number[][] = [];
  for (const w of p.wire) {
    if (w.from !== from) continue;
    const d = decodeMessage(w.data);
    if (!d.ok || d.message.header.exchangeType !== ExchangeType.IKE_SA_INIT) continue;
    out.push(d.message.payloads.filter((x) => x.type === PayloadType.NOTIFY).map((x) => (x as { notifyType: number }).notifyType));
  }
  return out;
}

/** Notify types of the encrypted messages of `exchange` sent by `from` that `reader` (the receiving IKE SA) can open. */
function sealedNotifies(p: EnginePair, from: 'a' | 'b', exchange: ExchangeType, reader: IkeView): number[][] {
  const out: number[][] = [];
  for (const w of p.wire) {
    if (w.from !== from) continue;
    let m;
    try {
      m = openMessage(reader.sa as unknown as RekeyIkeSa, w.data);
    } catch {
      continue;
    }
    if (m.header.exchangeType !== exchange) continue;
    out.push(m.payloads.filter((x) => x.type === PayloadType.NOTIFY).map((x) => (x as { notifyType: number }).notifyType));
  }
  return out;
}

describe('RFC 9867 PPK in IKE_INTERMEDIATE', () => {
  it('both sides have the PPK: USE_PPK_INT agreed, keys agree, all seven differ from the unmixed ones exactly by the RFC 9867 formula', () => {
    const p = seeded(new EnginePair(cfg('a', [ppk1], true), cfg('b', [ppk1], true)));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    const [ia] = ikeSas(p, 'a');
    const [ib] = ikeSas(p, 'b');
    expect(ia!.ppkMode).toBe('rfc9867');
    expect(ia!.ppkUsed?.id.equals(ppk1.id)).toBe(true);
    expect(ib!.ppkUsed?.id.equals(ppk1.id)).toBe(true);
    expect(allKeys(ia!.sa!.keys)).toBe(allKeys(ib!.sa!.keys));
    // IKE_SA_INIT: the initiator offered both variants, the responder answered USE_PPK_INT only (RFC 9867 §3.1).
    const initA = initNotifies(p, 'a')[0]!;
    expect(initA).toContain(NotifyType.USE_PPK_INT);
    expect(initA).toContain(NotifyType.USE_PPK);
    expect(initA).toContain(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED);
    const initB = initNotifies(p, 'b')[0]!;
    expect(initB).toContain(NotifyType.USE_PPK_INT);
    expect(initB).not.toContain(NotifyType.USE_PPK);
    // IKE_AUTH carries no RFC 8784 PPK notifies once RFC 9867 settled the PPK.
    const authA = sealedNotifies(p, 'a', ExchangeType.IKE_AUTH, ib!);
    const authB = sealedNotifies(p, 'b', ExchangeType.IKE_AUTH, ia!);
    expect(authA).toHaveLength(1);
    expect(authB).toHaveLength(1);
    for (const n of [...authA[0]!, ...authB[0]!]) expect([NotifyType.PPK_IDENTITY, NotifyType.NO_PPK_AUTH, NotifyType.PPK_IDENTITY_KEY]).not.toContain(n);

    // The same run (same seed, same nonces and KE) where the responder lacks the PPK gives the unmixed keys.
    const q = seeded(new EnginePair(cfg('a', [ppk1], false), cfg('b', [ppk3], false)));
    establish(q);
    expect(q.eventsOf('ike-up')).toHaveLength(2);
    const [qa] = ikeSas(q, 'a');
    expect(qa!.ppkUsed).toBeUndefined();
    expect(qa!.ni.equals(ia!.ni) && qa!.nr.equals(ia!.nr)).toBe(true);
    // (SK_ai/SK_ar are empty with an AEAD cipher.)
    for (const n of keyNames) if (qa!.sa!.keys[n].length > 0) expect(`${n}:${ia!.sa!.keys[n].equals(qa!.sa!.keys[n])}`).toBe(`${n}:false`);
    const expected = applyPpkIntermediate(qa!.sa!.keys, ppk1.key, ia!.ni, ia!.nr, ia!.spiI, ia!.spiR);
    expect(allKeys(ia!.sa!.keys)).toBe(allKeys(expected));
  });
});
