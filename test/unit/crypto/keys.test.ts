import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  applyPpk,
  applyPpkIntermediate,
  createPrf,
  deriveChildKeys,
  deriveIkeSaKeys,
  deriveRekeyedIkeSaKeys,
  ENCR,
  espKeyLengths,
  ikeKeyLengths,
  INTEG,
  ppkConfirmation,
  ppkMixedSkD,
  PRF,
  updateIkeSaKeys,
  type IkeSaKeys,
} from '../../../src/ike/crypto/index.js';
import { hex, loadJson, loadText } from './vectors.js';

// Independent prf+ straight from RFC 7296 §2.13 with node's HMAC, for cross-checks.
function refPrfPlus(hash: string, key: Buffer, seed: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let n = 1; Buffer.concat(out).length < len; n++) {
    t = createHmac(hash, key).update(Buffer.concat([t, seed, Buffer.from([n])])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, len);
}
const hmac = (hash: string, key: Buffer, ...data: Buffer[]) => createHmac(hash, key).update(Buffer.concat(data)).digest();
const concatKeys = (k: IkeSaKeys) => Buffer.concat([k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr]);

describe('IKEv2 KDF, NIST CAVP SP 800-135 (HMAC-SHA1)', () => {
  const v = loadJson('ikev2-kdf-cavp-sha1.json');
  const prf = createPrf(PRF.HMAC_SHA1);
  const ni = hex(v.Ni);
  const nr = hex(v.Nr);
  // DKM is 132 octets: SK_d(20) + 2*SK_a(20, HMAC-SHA1-96) + 2*SK_e(16, AES-128) + 2*SK_p(20)
  const suite = { prf, encr: ENCR.AES_CBC, keyBits: 128, integ: INTEG.HMAC_SHA1_96 };
  const keys = deriveIkeSaKeys({ ...suite, ni, nr, sharedSecret: hex(v.gir), spiI: hex(v.SPIi), spiR: hex(v.SPIr) });

  it('SKEYSEED = prf(Ni | Nr, g^ir)', () => {
    expect(keys.skeyseed.toString('hex')).toBe(v.SKEYSEED);
  });

  it('{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = DKM', () => {
    expect(concatKeys(keys).toString('hex')).toBe(v.DKM);
    expect(keys.skD).toHaveLength(20);
    expect(keys.skEi).toHaveLength(16);
    expect(keys.skAi).toHaveLength(20);
  });

  it('SPIs may be given as bigints', () => {
    const k2 = deriveIkeSaKeys({ ...suite, ni, nr, sharedSecret: hex(v.gir), spiI: BigInt('0x' + v.SPIi), spiR: BigInt('0x' + v.SPIr) });
    expect(concatKeys(k2).toString('hex')).toBe(v.DKM);
  });

  it('Child KEYMAT without PFS = prf+(SK_d, Ni | Nr)', () => {
    const dkm = hex(v.DKM_child);
    // AES-CBC-128 + HMAC-SHA1-96: ENCR_i(16) | INTEG_i(20) | ENCR_r(16) | INTEG_r(20)
    const c = deriveChildKeys({ prf, skD: keys.skD, ni, nr, sharedSecrets: [], encr: ENCR.AES_CBC, keyBits: 128, integ: INTEG.HMAC_SHA1_96 });
    expect(Buffer.concat([c.i2r.encKey, c.i2r.integKey, c.r2i.encKey, c.r2i.integKey])).toEqual(dkm.subarray(0, 72));
    expect(c.i2r.encKey).toEqual(dkm.subarray(0, 16));
    expect(c.r2i.integKey).toEqual(dkm.subarray(52, 72));
    // AEAD: salt included in the encryption key, no integrity key
    const g = deriveChildKeys({ prf, skD: keys.skD, ni, nr, sharedSecrets: [], encr: ENCR.AES_GCM_16, keyBits: 256 });
    expect(g.i2r.encKey).toEqual(dkm.subarray(0, 36));
    expect(g.i2r.integKey).toHaveLength(0);
    expect(g.r2i.encKey).toEqual(dkm.subarray(36, 72));
  });

  it('Child KEYMAT with PFS = prf+(SK_d, g^ir(new) | Ni | Nr)', () => {
    const dkm = hex(v.DKM_child_dh);
    const c = deriveChildKeys({ prf, skD: keys.skD, ni, nr, sharedSecrets: [hex(v.gir_new)], encr: ENCR.AES_CBC, keyBits: 256, integ: INTEG.HMAC_SHA2_256_128 });
    expect(Buffer.concat([c.i2r.encKey, c.i2r.integKey, c.r2i.encKey, c.r2i.integKey])).toEqual(dkm.subarray(0, 128));
  });

  it('rekey SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr)', () => {
    const r = deriveRekeyedIkeSaKeys({ ...suite, oldPrf: prf, oldSkD: keys.skD, sharedSecrets: [hex(v.gir_new)], ni, nr, spiI: hex(v.SPIi), spiR: hex(v.SPIr) });
    expect(r.skeyseed.toString('hex')).toBe(v.SKEYSEED_rekey);
    expect(concatKeys(r)).toEqual(refPrfPlus('sha1', r.skeyseed, Buffer.concat([ni, nr, hex(v.SPIi), hex(v.SPIr)]), 132));
  });
});

describe('key derivation cross-checks (independent HMAC computation)', () => {
  const ni = Buffer.alloc(32, 0x11);
  const nr = Buffer.alloc(32, 0x22);
  const spiI = Buffer.from('0102030405060708', 'hex');
  const spiR = Buffer.from('1112131415161718', 'hex');
  const spis = Buffer.concat([spiI, spiR]);
  const g = Buffer.alloc(32, 0x33);
  const prf256 = createPrf(PRF.HMAC_SHA2_256);
  const base = deriveIkeSaKeys({ prf: prf256, encr: ENCR.AES_GCM_16, keyBits: 256, ni, nr, sharedSecret: g, spiI, spiR });

  it('AEAD suites have empty SK_a and salted SK_e', () => {
    expect(base.skAi).toHaveLength(0);
    expect(base.skEi).toHaveLength(36);
    expect(base.skD).toHaveLength(32);
    const ref = refPrfPlus('sha256', hmac('sha256', Buffer.concat([ni, nr]), g), Buffer.concat([ni, nr, spis]), 32 + 72 + 64);
    expect(concatKeys(base)).toEqual(ref);
  });

  it('RFC 9370 §2.2.2 update: SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)', () => {
    const sk1 = Buffer.alloc(32, 0x44);
    const sk2 = Buffer.alloc(32, 0x55);
    const k1 = updateIkeSaKeys(base, sk1, ni, nr, spiI, spiR);
    const seed1 = hmac('sha256', base.skD, sk1, ni, nr);
    expect(k1.skeyseed).toEqual(seed1);
    expect(concatKeys(k1)).toEqual(refPrfPlus('sha256', seed1, Buffer.concat([ni, nr, spis]), 168));
    const k2 = updateIkeSaKeys(k1, sk2, ni, nr, spiI, spiR);
    expect(k2.skeyseed).toEqual(hmac('sha256', k1.skD, sk2, ni, nr));
    expect(k2.skD).not.toEqual(k1.skD);
    expect(k2.encr).toBe(ENCR.AES_GCM_16);
  });

  it('RFC 9370 §2.2.4 IKE rekey with follow-up KEs: SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | SK(2))', () => {
    const [s0, s1, s2] = [Buffer.alloc(32, 1), Buffer.alloc(1088, 2), Buffer.alloc(32, 3)];
    const n2i = Buffer.alloc(32, 0x66);
    const n2r = Buffer.alloc(32, 0x77);
    const newSpiI = Buffer.alloc(8, 0xa1);
    const newSpiR = Buffer.alloc(8, 0xb2);
    const r = deriveRekeyedIkeSaKeys({
      oldPrf: prf256,
      oldSkD: base.skD,
      prf: prf256,
      encr: ENCR.AES_GCM_16,
      keyBits: 256,
      sharedSecrets: [s0, s1, s2],
      ni: n2i,
      nr: n2r,
      spiI: newSpiI,
      spiR: newSpiR,
    });
    const seed = hmac('sha256', base.skD, s0, n2i, n2r, s1, s2);
    expect(r.skeyseed).toEqual(seed);
    expect(concatKeys(r)).toEqual(refPrfPlus('sha256', seed, Buffer.concat([n2i, n2r, newSpiI, newSpiR]), 168));
    expect(() => deriveRekeyedIkeSaKeys({ oldPrf: prf256, oldSkD: base.skD, prf: prf256, encr: ENCR.AES_GCM_16, keyBits: 256, sharedSecrets: [], ni, nr, spiI, spiR })).toThrow(/requires a key exchange/);
  });

  it('RFC 7296 §2.18 PRF change: old PRF for SKEYSEED, new PRF for prf+', () => {
    const prf512 = createPrf(PRF.HMAC_SHA2_512);
    const s0 = Buffer.alloc(32, 9);
    const r = deriveRekeyedIkeSaKeys({ oldPrf: prf256, oldSkD: base.skD, prf: prf512, encr: ENCR.AES_CBC, keyBits: 256, integ: INTEG.HMAC_SHA2_512_256, sharedSecrets: [s0], ni, nr, spiI, spiR });
    const seed = hmac('sha256', base.skD, s0, ni, nr);
    expect(r.skeyseed).toEqual(seed);
    expect(r.skD).toHaveLength(64);
    expect(r.skAi).toHaveLength(64);
    expect(concatKeys(r)).toEqual(refPrfPlus('sha512', seed, Buffer.concat([ni, nr, spis]), 64 + 128 + 64 + 128));
    expect(r.prf.id).toBe(PRF.HMAC_SHA2_512);
  });

  it('Child KEYMAT with additional KEs: prf+(SK_d, SK(0) | Ni | Nr | SK(1))', () => {
    const s0 = Buffer.alloc(32, 4);
    const s1 = Buffer.alloc(32, 5);
    const c = deriveChildKeys({ prf: prf256, skD: base.skD, ni, nr, sharedSecrets: [s0, s1], encr: ENCR.CHACHA20_POLY1305 });
    const ref = refPrfPlus('sha256', base.skD, Buffer.concat([s0, ni, nr, s1]), 72);
    expect(Buffer.concat([c.i2r.encKey, c.r2i.encKey])).toEqual(ref);
    expect(c.i2r.encKey).toHaveLength(36);
  });

  it('RFC 8784 §3: PPK mixes SK_d, SK_pi and SK_pr only', () => {
    const ppk = Buffer.alloc(32, 0x99);
    const m = applyPpk(prf256, base, ppk);
    expect(m.skD).toEqual(refPrfPlus('sha256', ppk, base.skD, 32));
    expect(m.skPi).toEqual(refPrfPlus('sha256', ppk, base.skPi, 32));
    expect(m.skPr).toEqual(refPrfPlus('sha256', ppk, base.skPr, 32));
    expect(m.skEi).toEqual(base.skEi);
    expect(m.skEr).toEqual(base.skEr);
    expect(m.skAi).toEqual(base.skAi);
    expect(() => applyPpk(prf256, base, Buffer.alloc(0))).toThrow(/PPK/);
  });

  it('RFC 9867: PPK confirmation and IKE_INTERMEDIATE key recomputation', () => {
    const ppk = Buffer.from('a quantum-resistant preshared key');
    expect(ppkConfirmation(prf256, ppk, ni, nr, spiI, spiR)).toEqual(hmac('sha256', ppk, ni, nr, spis).subarray(0, 8));
    const m = applyPpkIntermediate(base, ppk, ni, nr, spiI, spiR);
    const seed = refPrfPlus('sha256', ppk, base.skD, 32);
    expect(m.skeyseed).toEqual(seed);
    expect(concatKeys(m)).toEqual(refPrfPlus('sha256', seed, Buffer.concat([ni, nr, spis]), 168));
    expect(ppkMixedSkD(prf256, base.skD, ppk)).toEqual(seed);
  });
});

describe('key lengths against the Wireshark IKEv2 decryption table', () => {
  // The table's SK_e*/SK_a* columns are keys of real IKE SAs: their lengths must be what we derive.
  const rows = loadText('wireshark-ikev2_decryption_table.csv')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.match(/("[^"]*"|[^,]*)(,|$)/g)!.map((f) => f.replace(/,$/, '').replace(/^"|"$/g, '')));
  const mapping: Record<string, { encr: number; keyBits: number; integ?: number; ike: boolean }> = {
    'AES-CBC-256 [RFC3602]|HMAC_SHA2_256_128 [RFC4868]': { encr: ENCR.AES_CBC, keyBits: 256, integ: INTEG.HMAC_SHA2_256_128, ike: true },
    'AES-GCM-256 with 8 octet ICV [RFC5282]|NONE [RFC4306]': { encr: ENCR.AES_GCM_8, keyBits: 256, ike: true },
    'AES-GCM-256 with 16 octet ICV [RFC5282]|NONE [RFC4306]': { encr: ENCR.AES_GCM_16, keyBits: 256, ike: true },
    'AES-CCM-128 with 12 octet ICV [RFC5282]|NONE [RFC4306]': { encr: ENCR.AES_CCM_12, keyBits: 128, ike: false },
    'AES-CCM-256 with 16 octet ICV [RFC5282]|NONE [RFC4306]': { encr: ENCR.AES_CCM_16, keyBits: 256, ike: false },
    'AES-CTR-192 [RFC5930]|HMAC_SHA2_512_256 [RFC4868]': { encr: ENCR.AES_CTR, keyBits: 192, integ: INTEG.HMAC_SHA2_512_256, ike: false },
  };
  const usable = rows.filter((r) => mapping[`${r[4]}|${r[7]}`]);
  it('covers the table rows whose algorithms this implementation knows', () => {
    expect(usable.length).toBe(6);
  });
  for (const r of usable) {
    it(`${r[4]} / ${r[7]}`, () => {
      const m = mapping[`${r[4]}|${r[7]}`]!;
      const l = m.ike ? ikeKeyLengths(m.encr, m.keyBits, m.integ) : espKeyLengths(m.encr, m.keyBits, m.integ);
      expect(l.encKey).toBe(r[2]!.length / 2);
      expect(l.encKey).toBe(r[3]!.length / 2);
      expect(l.integKey).toBe((r[5] ?? '').length / 2);
    });
  }
});
