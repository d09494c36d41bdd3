// Both sides of a hybrid IKEv2 key schedule through the public crypto API, as the engine drives it:
// IKE_SA_INIT (X25519) -> IKE_INTERMEDIATE (ML-KEM-768, RFC 9370) -> IKE_INTERMEDIATE with PPK (RFC 9867)
// -> IKE_AUTH (PSK with IntAuth) -> Child SA, then an IKE rekey with an additional KE and a Child rekey.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  applyPpkIntermediate,
  createIkeSaProtections,
  createPrf,
  deriveChildKeys,
  deriveIkeSaKeys,
  deriveRekeyedIkeSaKeys,
  encodeIdentity,
  ENCR,
  getKeMethod,
  idPayloadBody,
  intAuth,
  intAuthChunk,
  KE,
  ppkConfirmation,
  PRF,
  pskAuth,
  signedOctets,
  updateIkeSaKeys,
  type IkeProtection,
  type IkeSaKeys,
} from '../../../src/ike/crypto/index.js';

const suite = { prf: createPrf(PRF.HMAC_SHA2_384), encr: ENCR.AES_GCM_16, keyBits: 256 };

function header(exchange: number, mid: number, response: boolean, spiI: Buffer, spiR: Buffer, length: number): Buffer {
  const h = Buffer.alloc(28);
  spiI.copy(h, 0);
  spiR.copy(h, 8);
  h[16] = 46;
  h[17] = 0x20;
  h[18] = exchange;
  h[19] = response ? 0x20 : 0x08;
  h.writeUInt32BE(mid, 20);
  h.writeUInt32BE(length, 24);
  return h;
}

/** An SK-protected message: header | SK header | body, and its AAD. */
function protect(p: IkeProtection, exchange: number, mid: number, response: boolean, spiI: Buffer, spiR: Buffer, inner: Buffer) {
  const bodyLen = p.bodyLength(inner.length);
  const aad = Buffer.concat([header(exchange, mid, response, spiI, spiR, 32 + bodyLen), Buffer.from([34, 0, (4 + bodyLen) >> 8, (4 + bodyLen) & 0xff])]);
  return { aad, body: p.seal(aad, inner) };
}

const equalKeys = (a: IkeSaKeys, b: IkeSaKeys) => {
  for (const k of ['skD', 'skAi', 'skAr', 'skEi', 'skEr', 'skPi', 'skPr'] as const) expect(a[k], k).toEqual(b[k]);
};

describe('hybrid IKEv2 key schedule, both sides', () => {
  it('IKE_SA_INIT + ML-KEM IKE_INTERMEDIATE + PPK + PSK AUTH + Child SA + rekeys', () => {
    const spiI = randomBytes(8);
    const spiR = randomBytes(8);
    const ni = randomBytes(32);
    const nr = randomBytes(32);

    // IKE_SA_INIT with X25519
    const x = getKeMethod(KE.CURVE25519)!;
    const iKe = x.initiate();
    const rKe = x.respond(iKe.publicData);
    const gI = iKe.finish(rKe.publicData);
    let keysI = deriveIkeSaKeys({ ...suite, ni, nr, sharedSecret: gI, spiI, spiR });
    let keysR = deriveIkeSaKeys({ ...suite, ni, nr, sharedSecret: rKe.sharedSecret, spiI, spiR });
    equalKeys(keysI, keysR);

    // IKE_INTERMEDIATE #1 (MID 1): KEi(1)/KEr(1) with ML-KEM-768, protected with the current keys
    const kem = getKeMethod(KE.ML_KEM_768)!;
    let protI = createIkeSaProtections({ encrId: suite.encr, keyBits: suite.keyBits }, keysI, true);
    let protR = createIkeSaProtections({ encrId: suite.encr, keyBits: suite.keyBits }, keysR, false);
    const kemI = kem.initiate();
    const req1 = protect(protI.outbound, 43, 1, false, spiI, spiR, kemI.publicData);
    const req1Inner = protR.inbound.open(req1.aad, req1.body)!;
    expect(req1Inner).toEqual(kemI.publicData);
    const kemR = kem.respond(req1Inner);
    const resp1 = protect(protR.outbound, 43, 1, true, spiI, spiR, kemR.publicData);
    const resp1Inner = protI.inbound.open(resp1.aad, resp1.body)!;
    // IntAuth uses the SK_p that protected this exchange, before its key update
    let intAuthI_i = intAuthChunk(keysI.prf, keysI.skPi, undefined, req1.aad, kemI.publicData);
    let intAuthI_r = intAuthChunk(keysI.prf, keysI.skPr, undefined, resp1.aad, resp1Inner);
    let intAuthR_i = intAuthChunk(keysR.prf, keysR.skPi, undefined, req1.aad, req1Inner);
    let intAuthR_r = intAuthChunk(keysR.prf, keysR.skPr, undefined, resp1.aad, kemR.publicData);
    keysI = updateIkeSaKeys(keysI, kemI.finish(resp1Inner), ni, nr, spiI, spiR);
    keysR = updateIkeSaKeys(keysR, kemR.sharedSecret, ni, nr, spiI, spiR);
    equalKeys(keysI, keysR);

    // IKE_INTERMEDIATE #2 (MID 2): PPK_IDENTITY_KEY with the confirmation (RFC 9867); notify bodies stand in for payloads
    const ppk = randomBytes(32);
    protI = createIkeSaProtections({ encrId: suite.encr, keyBits: suite.keyBits }, keysI, true);
    protR = createIkeSaProtections({ encrId: suite.encr, keyBits: suite.keyBits }, keysR, false);
    const conf = ppkConfirmation(keysI.prf, ppk, ni, nr, spiI, spiR);
    const req2Inner = Buffer.concat([Buffer.from([2]), Buffer.from('ppk-1'), conf]);
    const req2 = protect(protI.outbound, 43, 2, false, spiI, spiR, req2Inner);
    const got = protR.inbound.open(req2.aad, req2.body)!;
    expect(got.subarray(got.length - 8)).toEqual(ppkConfirmation(keysR.prf, ppk, ni, nr, spiI, spiR));
    const resp2Inner = Buffer.concat([Buffer.from([2]), Buffer.from('ppk-1')]);
    const resp2 = protect(protR.outbound, 43, 2, true, spiI, spiR, resp2Inner);
    expect(protI.inbound.open(resp2.aad, resp2.body)).toEqual(resp2Inner);
    intAuthI_i = intAuthChunk(keysI.prf, keysI.skPi, intAuthI_i, req2.aad, req2Inner);
    intAuthI_r = intAuthChunk(keysI.prf, keysI.skPr, intAuthI_r, resp2.aad, resp2Inner);
    intAuthR_i = intAuthChunk(keysR.prf, keysR.skPi, intAuthR_i, req2.aad, got);
    intAuthR_r = intAuthChunk(keysR.prf, keysR.skPr, intAuthR_r, resp2.aad, resp2Inner);
    const prePpk = keysI;
    keysI = applyPpkIntermediate(keysI, ppk, ni, nr, spiI, spiR);
    keysR = applyPpkIntermediate(keysR, ppk, ni, nr, spiI, spiR);
    equalKeys(keysI, keysR);
    expect(keysI.skEi).not.toEqual(prePpk.skEi); // RFC 9867 changes all seven keys

    // IKE_AUTH (MID 3): PSK AUTH over the signed octets with IntAuth, verified by the other side
    const ia = intAuth(intAuthI_i, intAuthI_r, 3);
    expect(intAuth(intAuthR_i, intAuthR_r, 3)).toEqual(ia);
    const realMessage1 = Buffer.concat([header(34, 0, false, spiI, Buffer.alloc(8), 100), randomBytes(72)]);
    const idI = idPayloadBody(encodeIdentity({ type: 'fqdn', value: 'initiator.example.org' }));
    const psk = Buffer.from('a pre-shared key');
    const authI = pskAuth(keysI.prf, psk, signedOctets(realMessage1, nr, keysI.prf, keysI.skPi, idI, ia));
    expect(pskAuth(keysR.prf, psk, signedOctets(realMessage1, nr, keysR.prf, keysR.skPi, idI, ia))).toEqual(authI);

    // Child SA from IKE_AUTH: KEYMAT = prf+(SK_d, Ni | Nr) with the final SK_d
    const childI = deriveChildKeys({ prf: keysI.prf, skD: keysI.skD, ni, nr, sharedSecrets: [], encr: ENCR.AES_GCM_16, keyBits: 128 });
    const childR = deriveChildKeys({ prf: keysR.prf, skD: keysR.skD, ni, nr, sharedSecrets: [], encr: ENCR.AES_GCM_16, keyBits: 128 });
    expect(childI).toEqual(childR);
    expect(childI.i2r.encKey).toHaveLength(20);
    expect(childI.i2r.encKey).not.toEqual(childI.r2i.encKey);

    // IKE SA rekey (responder of the old SA initiates): ECP-256 + IKE_FOLLOWUP_KE with ML-KEM-512
    const n2i = randomBytes(32);
    const n2r = randomBytes(32);
    const newSpiI = randomBytes(8);
    const newSpiR = randomBytes(8);
    const ecp = getKeMethod(KE.ECP_256)!;
    const e0 = ecp.initiate();
    const e0r = ecp.respond(e0.publicData);
    const k1 = getKeMethod(KE.ML_KEM_512)!.initiate();
    const k1r = getKeMethod(KE.ML_KEM_512)!.respond(k1.publicData);
    const rekeyInput = { ...suite, oldPrf: keysI.prf, ni: n2i, nr: n2r, spiI: newSpiI, spiR: newSpiR };
    const newI = deriveRekeyedIkeSaKeys({ ...rekeyInput, oldSkD: keysR.skD, sharedSecrets: [e0.finish(e0r.publicData), k1.finish(k1r.publicData)] });
    const newR = deriveRekeyedIkeSaKeys({ ...rekeyInput, oldSkD: keysI.skD, sharedSecrets: [e0r.sharedSecret, k1r.sharedSecret] });
    equalKeys(newI, newR);

    // Child rekey with PFS under the new IKE SA
    const c0 = x.initiate();
    const c0r = x.respond(c0.publicData);
    const n3i = randomBytes(32);
    const n3r = randomBytes(32);
    const esp = { encr: ENCR.CHACHA20_POLY1305 };
    const rc1 = deriveChildKeys({ prf: newI.prf, skD: newI.skD, ni: n3i, nr: n3r, sharedSecrets: [c0.finish(c0r.publicData)], ...esp });
    const rc2 = deriveChildKeys({ prf: newR.prf, skD: newR.skD, ni: n3i, nr: n3r, sharedSecrets: [c0r.sharedSecret], ...esp });
    expect(rc1).toEqual(rc2);
    expect(rc1.i2r.encKey).toHaveLength(36);
  });
});
