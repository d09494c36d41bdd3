// RFC 9867 PPKs driven through two engines back to back: USE_PPK_INT in IKE_SA_INIT, PPK_IDENTITY_KEY in
// the last IKE_INTERMEDIATE exchange (all seven keys recomputed), and a fresh PPK mixed into SK_d on each
// CREATE_CHILD_SA (new Child SA, Child SA rekey, IKE SA rekey, regular and optimized).
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { parseConfig } from '../../../src/daemon/config.js';
import { connectionIdentity, type EngineConfig, type PpkConfig } from '../../../src/ike/config.js';
import { wantsPpkIntermediate } from '../../../src/ike/engine/ppk.js';
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

/** IKE_INTERMEDIATE requests sent by `from`, by message ID (fragments and retransmissions counted once). */
const intermediateCount = (p: EnginePair, from: 'a' | 'b') =>
  new Set(p.wire.filter((w) => w.from === from && w.data.length > 28 && w.data[18] === ExchangeType.IKE_INTERMEDIATE).map((w) => w.data.readUInt32BE(20))).size;

/** A second Child SA configuration `lan2` (10.1.1.0/24 <-> 10.2.1.0/24) that only starts on request. */
function withSecondChild(c: EngineConfig, side: 'a' | 'b'): EngineConfig {
  const conn = c.connections[0]!;
  const lan = conn.children[0]!;
  const net = (x: string) => ({ ...lan.localTs[0]!, cidr: x });
  const [l, r] = side === 'a' ? ['10.1.1.0/24', '10.2.1.0/24'] : ['10.2.1.0/24', '10.1.1.0/24'];
  conn.children.push({ ...lan, name: 'lan2', localTs: [net(l)], remoteTs: [net(r)], reqid: 300, startAction: 'none' });
  return c;
}
const notices = (p: EnginePair, side: 'a' | 'b', text: string) =>
  p.eventsOf('notice', side).filter((e) => (e as { message: string }).message.includes(text));

describe('RFC 9867 PPK selection and failures', () => {
  it('several candidate PPKs, the responder has only the second: it is selected, echoed, and used by both', () => {
    const p = new EnginePair(cfg('a', [ppk3, ppk2], true), cfg('b', [ppk2], true));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    // The initiator only records a PPK the responder echoed in N(PPK_IDENTITY) and that it offered.
    expect(ikeSas(p, 'a')[0]!.ppkUsed?.id.equals(ppk2.id)).toBe(true);
    expect(ikeSas(p, 'b')[0]!.ppkUsed?.id.equals(ppk2.id)).toBe(true);
    expect(allKeys(ikeSas(p, 'a')[0]!.sa!.keys)).toBe(allKeys(ikeSas(p, 'b')[0]!.sa!.keys));
    // No additional key exchange: one dedicated IKE_INTERMEDIATE exchange carries the PPK round.
    expect(intermediateCount(p, 'a')).toBe(1);
  });

  it('with an additional key exchange the PPK rides on its IKE_INTERMEDIATE exchange (no extra one)', () => {
    const ike = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
    const p = new EnginePair(cfg('a', [ppk1], true, { ike }), cfg('b', [ppk1], true, { ike }));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(intermediateCount(p, 'a')).toBe(1);
    expect(ikeSas(p, 'b')[0]!.ppkUsed?.id.equals(ppk1.id)).toBe(true);
    expect(allKeys(ikeSas(p, 'a')[0]!.sa!.keys)).toBe(allKeys(ikeSas(p, 'b')[0]!.sa!.keys));
  });

  const wrong: PpkConfig = { id: ppk1.id, key: Buffer.alloc(64, 0x33) };
  it('wrong PPK (same id, other secret), both optional: the confirmation does not match, no PPK is selected, the SA comes up unmixed', () => {
    const p = new EnginePair(cfg('a', [ppk1], false), cfg('b', [wrong], false));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(ikeSas(p, 'a')[0]!.ppkUsed).toBeUndefined();
    expect(ikeSas(p, 'b')[0]!.ppkUsed).toBeUndefined();
  });

  it('wrong PPK, responder requires one: AUTHENTICATION_FAILED in IKE_INTERMEDIATE, both report why, nothing installed', () => {
    const p = new EnginePair(cfg('a', [ppk1], false), cfg('b', [wrong], true));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
    const rb = p.eventsOf('auth-failed', 'b').map((e) => (e as { reason: string }).reason);
    const ra = p.eventsOf('auth-failed', 'a').map((e) => (e as { reason: string }).reason);
    expect(rb.some((r) => r.includes('PPK required but no offered PPK matched'))).toBe(true);
    expect(ra.some((r) => r.includes('requires a PPK'))).toBe(true);
  });

  it('wrong PPK, initiator requires one: the responder selects none, the initiator refuses to continue', () => {
    const p = new EnginePair(cfg('a', [ppk1], true), cfg('b', [wrong], false));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
    const ra = p.eventsOf('auth-failed', 'a').map((e) => (e as { reason: string }).reason);
    expect(ra.some((r) => r.includes('PPK required but the responder selected none'))).toBe(true);
  });

  describe('mandatory/optional against a peer without PPKs', () => {
    it('initiator requires a PPK: fails at IKE_SA_INIT naming USE_PPK_INT/USE_PPK', () => {
      const p = new EnginePair(cfg('a', [ppk1], true), cfg('b', undefined));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(0);
      const ra = p.eventsOf('auth-failed', 'a').map((e) => (e as { reason: string }).reason);
      expect(ra.some((r) => r.includes('no USE_PPK_INT or USE_PPK'))).toBe(true);
      expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
    });
    it('initiator with an optional PPK: comes up without it', () => {
      const p = new EnginePair(cfg('a', [ppk1], false), cfg('b', undefined));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
      expect(ikeSas(p, 'a')[0]!.ppkMode).toBe('none');
    });
    it('responder requires a PPK the initiator does not offer: AUTHENTICATION_FAILED naming the missing PPK', () => {
      const p = new EnginePair(cfg('a', undefined), cfg('b', [ppk1], true));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(0);
      const rb = p.eventsOf('auth-failed', 'b').map((e) => (e as { reason: string }).reason);
      expect(rb.some((r) => r.includes('PPK required'))).toBe(true);
      expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
    });
    it('responder with an optional PPK: comes up without it', () => {
      const p = new EnginePair(cfg('a', undefined), cfg('b', [ppk1], false));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    });
  });

  describe('a peer doing only RFC 8784', () => {
    for (const [label, a, b] of [
      ['responder is RFC 8784 only', cfg('a', [ppk1], true), cfg('b', [ppk1], true, { rfc9867: false })],
      ['initiator is RFC 8784 only', cfg('a', [ppk1], true, { rfc9867: false }), cfg('b', [ppk1], true)],
    ] as const) {
      it(`${label}: USE_PPK is agreed, the PPK goes into IKE_AUTH, no IKE_INTERMEDIATE`, () => {
        const p = new EnginePair(a, b);
        establish(p);
        expect(p.eventsOf('ike-up')).toHaveLength(2);
        expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
        expect(ikeSas(p, 'a')[0]!.ppkMode).toBe('rfc8784');
        expect(ikeSas(p, 'b')[0]!.ppkMode).toBe('rfc8784');
        expect(initNotifies(p, 'b')[0]).toContain(NotifyType.USE_PPK);
        expect(initNotifies(p, 'b')[0]).not.toContain(NotifyType.USE_PPK_INT);
        expect(intermediateCount(p, 'a')).toBe(0);
        const authA = sealedNotifies(p, 'a', ExchangeType.IKE_AUTH, ikeSas(p, 'b')[0]!);
        expect(authA[0]).toContain(NotifyType.PPK_IDENTITY);
      });
    }
  });
});

describe('RFC 9867 PPK in CREATE_CHILD_SA', () => {
  it('a new Child SA offers the PPK again and mixes it into SK_d; both ends agree', () => {
    const p = new EnginePair(withSecondChild(cfg('a', [ppk1], true), 'a'), withSecondChild(cfg('b', [ppk1], true), 'b'));
    establish(p);
    p.apply('a', p.a.initiate(p.now, 'site', 'lan2'));
    p.run(5_000);
    expect(p.eventsOf('child-up').length).toBe(4);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(notices(p, 'a', 'PPK ppk-one mixed into the new Child SA lan2')).toHaveLength(1);
    expect(notices(p, 'b', 'PPK ppk-one mixed into the new Child SA lan2')).toHaveLength(1);
    const reqs = sealedNotifies(p, 'a', ExchangeType.CREATE_CHILD_SA, ikeSas(p, 'b')[0]!);
    const resps = sealedNotifies(p, 'b', ExchangeType.CREATE_CHILD_SA, ikeSas(p, 'a')[0]!);
    expect(reqs.at(-1)).toContain(NotifyType.PPK_IDENTITY_KEY);
    expect(resps.at(-1)).toContain(NotifyType.PPK_IDENTITY);
  });

  /**
   * Set up with ppk1, rotate both sides to `rotated` by reloading, then rekey the Child SA and the IKE SA
   * (optimized or regular) and once more the Child SA under the new IKE SA.
   */
  function rotation(rotated: PpkConfig, optimized: boolean) {
    const o = { optimized };
    const p = seeded(new EnginePair(cfg('a', [ppk1], true, o), cfg('b', [ppk1], true, o)));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    const before = allKeys(ikeSas(p, 'a')[0]!.sa!.keys);
    p.apply('a', p.a.reload(p.now, cfg('a', [rotated], true, o)));
    p.apply('b', p.b.reload(p.now, cfg('b', [rotated], true, o)));
    p.run(1_000);
    // A rotated PPK keeps the SAs (no re-authentication).
    expect(p.eventsOf('ike-down')).toHaveLength(0);
    const child = p.a.listSas(p.now)[0]!.children[0]!;
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    const childRekeys = p.eventsOf('child-rekeyed') as { optimized: boolean; newSpiIn: number }[];
    expect(childRekeys).toHaveLength(2);
    for (const r of childRekeys) expect(r.optimized).toBe(optimized);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    const label = rotated.id.subarray(1).toString();
    expect(notices(p, 'a', `PPK ${label} mixed into the rekeyed Child SA lan`)).toHaveLength(1);
    expect(notices(p, 'b', `PPK ${label} mixed into the rekeyed Child SA lan`)).toHaveLength(1);
    const newSpiIn = (p.eventsOf('child-rekeyed', 'a')[0] as { newSpiIn: number }).newSpiIn;
    const rekeyedChildKey = [...p.kernelA.sas.values()].find((s) => s.spi === newSpiIn && s.dir === 'in')!.encKey;

    const ikeSaId = p.a.listSas(p.now)[0]!.ikeSaId;
    p.apply('a', p.a.rekeyIke(p.now, ikeSaId));
    p.run(20_000);
    const ikeRekeys = p.eventsOf('ike-rekeyed') as { optimized: boolean }[];
    expect(ikeRekeys).toHaveLength(2);
    for (const r of ikeRekeys) expect(r.optimized).toBe(optimized);
    expect(notices(p, 'a', `PPK ${label} mixed into the rekeyed IKE SA`)).toHaveLength(1);
    expect(notices(p, 'b', `PPK ${label} mixed into the rekeyed IKE SA`)).toHaveLength(1);
    const [na] = ikeSas(p, 'a');
    const [nb] = ikeSas(p, 'b');
    expect(ikeSas(p, 'a')).toHaveLength(1);
    expect(allKeys(na!.sa!.keys)).toBe(allKeys(nb!.sa!.keys));
    expect(na!.ppkMode).toBe('rfc9867');
    // The new IKE SA works, and negotiates the PPK again for its own Child SA rekey.
    const child2 = p.a.listSas(p.now)[0]!.children[0]!;
    p.apply('a', p.a.rekeyChild(p.now, child2.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(4);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(notices(p, 'b', `PPK ${label} mixed into the rekeyed Child SA lan`)).toHaveLength(2);
    // Optimized or not, each CREATE_CHILD_SA offered PPK_IDENTITY_KEY and got N(PPK_IDENTITY) back.
    const reqs = sealedNotifies(p, 'a', ExchangeType.CREATE_CHILD_SA, nb!);
    const resps = sealedNotifies(p, 'b', ExchangeType.CREATE_CHILD_SA, na!);
    expect(reqs.length).toBeGreaterThan(0);
    for (const r of reqs) expect(r).toContain(NotifyType.PPK_IDENTITY_KEY);
    for (const r of resps) expect(r).toContain(NotifyType.PPK_IDENTITY);
    return { before, rekeyedChildKey, ikeKeys: allKeys(na!.sa!.keys) };
  }

  for (const optimized of [false, true]) {
    it(`PPK rotation across a Child SA rekey and an IKE SA rekey (${optimized ? 'optimized' : 'regular'}): both ends agree, the new keys depend on the new PPK`, () => {
      const r1 = rotation(ppk2, optimized);
      const r2 = rotation({ id: ppk2.id, key: Buffer.alloc(64, 0x99) }, optimized);
      // Same seed: identical until the rotation; the keys made afterwards differ only through the PPK value.
      expect(r1.before).toBe(r2.before);
      expect(r1.rekeyedChildKey).not.toBe(r2.rekeyedChildKey);
      expect(r1.ikeKeys).not.toBe(r2.ikeKeys);
    });
  }

  it('without RFC 9867 on the IKE SA, CREATE_CHILD_SA carries no PPK notifies', () => {
    const p = new EnginePair(cfg('a', [ppk1], true, { rfc9867: false }), cfg('b', [ppk1], true));
    establish(p);
    const child = p.a.listSas(p.now)[0]!.children[0]!;
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    const reqs = sealedNotifies(p, 'a', ExchangeType.CREATE_CHILD_SA, ikeSas(p, 'b')[0]!);
    expect(reqs.length).toBe(1);
    expect(reqs[0]).not.toContain(NotifyType.PPK_IDENTITY_KEY);
  });
});

describe('RFC 9867 configuration', () => {
  const yaml = (ppk: string) => `
connections:
  site:
    local: { addrs: [192.0.2.1], id: gw-a.example, auth: psk }
    remote: { addrs: [192.0.2.2], id: gw-b.example, auth: psk }
    psk: "a shared secret of some length 0123"
    ppk: ${ppk}
    children:
      lan: { local_ts: [10.1.0.0/24], remote_ts: [10.2.0.0/24] }
`;
  const key = `0x${'ab'.repeat(32)}`;
  it('ppk.rfc9867 defaults to on and "no" restricts the connection to RFC 8784', () => {
    const on = parseConfig(yaml(`{ keys: [{ id: one, key: "${key}" }] }`), 'a.yaml').engine.connections[0]!;
    const off = parseConfig(yaml(`{ keys: [{ id: one, key: "${key}" }], rfc9867: no }`), 'a.yaml').engine.connections[0]!;
    expect(wantsPpkIntermediate(on)).toBe(true);
    expect(wantsPpkIntermediate(off)).toBe(false);
    expect(off.ppk?.rfc9867).toBe(false);
  });
  it('a rotated PPK value is not an identity change; required or rfc9867 is', () => {
    const base = parseConfig(yaml(`{ keys: [{ id: one, key: "${key}" }] }`), 'a.yaml').engine.connections[0]!;
    const rotated = parseConfig(yaml(`{ keys: [{ id: two, key: "0x${'cd'.repeat(32)}" }] }`), 'a.yaml').engine.connections[0]!;
    const required = parseConfig(yaml(`{ keys: [{ id: one, key: "${key}" }], required: yes }`), 'a.yaml').engine.connections[0]!;
    const only8784 = parseConfig(yaml(`{ keys: [{ id: one, key: "${key}" }], rfc9867: no }`), 'a.yaml').engine.connections[0]!;
    expect(connectionIdentity(rotated)).toBe(connectionIdentity(base));
    expect(connectionIdentity(required)).not.toBe(connectionIdentity(base));
    expect(connectionIdentity(only8784)).not.toBe(connectionIdentity(base));
  });
  it('rotating on one side only: that CREATE_CHILD_SA selects no PPK, keys still agree, the SA survives', () => {
    const p = new EnginePair(cfg('a', [ppk1], true), cfg('b', [ppk1], true));
    establish(p);
    p.apply('a', p.a.reload(p.now, cfg('a', [ppk2], true)));
    const child = p.a.listSas(p.now)[0]!.children[0]!;
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.eventsOf('ike-down')).toHaveLength(0);
    expect(p.eventsOf('notice').some((e) => (e as { message: string }).message.includes('mixed into the rekeyed Child SA'))).toBe(false);
  });
});
