// IKE_SA_INIT keys -> IKE_INTERMEDIATE with ML-KEM over real encrypted messages -> AUTH covering IntAuth
// (RFC 9242 §3.3.2): the initiator's PSK AUTH verifies at the responder only when both saw the same
// IKE_INTERMEDIATE exchanges; then an RFC 9867 PPK round on the last exchange.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ExchangeType, PayloadType } from '../../../src/ike/codec/constants.js';
import { createPrf, deriveIkeSaKeys, getKeMethod, pskAuth, signedOctets, type IkeSaKeys } from '../../../src/ike/crypto/index.js';
import { IntAuthChain, IntermediateKeInitiator, IntermediateKeResponder } from '../../../src/ike/engine/intermediate.js';
import { mixPpkIntermediate, ppkIdentityKeyNotifies, responderPpk9867, initiatorPpk9867 } from '../../../src/ike/engine/ppk.js';
import { openMessage, sealMessage, type RekeyIkeSa } from '../../../src/ike/engine/rekey-exchange.js';

const X25519 = 31;
const MLKEM768 = 36;
const MLKEM1024 = 37;

function setup() {
  const prfId = 5; // PRF_HMAC_SHA2_256
  const prf = createPrf(prfId);
  const m = getKeMethod(X25519)!;
  const i = m.initiate();
  const r = m.respond(i.publicData);
  const ctx = { ni: randomBytes(32), nr: randomBytes(32), spiI: randomBytes(8), spiR: randomBytes(8) };
  const keys = deriveIkeSaKeys({ prf, encr: 20, keyBits: 256, ...ctx, sharedSecret: i.finish(r.publicData) });
  return { prf, prfId, ctx, keys };
}

function sa(keys: IkeSaKeys, ctx: { spiI: Buffer; spiR: Buffer }, originalInitiator: boolean): RekeyIkeSa {
  return { spiI: ctx.spiI, spiR: ctx.spiR, originalInitiator, keys, chosen: { encr: { id: 20, keyBits: 256 }, prf: 5, addKe: [] }, keMethods: [], optimizedNegotiated: false, childPfsInfoNegotiated: false };
}

function run(methods: number[], opts: { dropAtResponder?: number; ppk?: boolean } = {}) {
  const { prf, ctx, keys } = setup();
  const ini = new IntermediateKeInitiator(methods, keys, ctx);
  const res = new IntermediateKeResponder(methods, keys, ctx);
  const chainI = new IntAuthChain();
  const chainR = new IntAuthChain();
  const ppk = { id: Buffer.from('\x02gw-pair'), key: randomBytes(32) };
  const pctx = { prf, ...ctx };
  let kI = keys;
  let kR = keys;
  let mid = 1;
  const rounds = methods.length + (opts.ppk && methods.length === 0 ? 1 : 0);
  for (let n = 0; n < rounds; n++) {
    const last = n === rounds - 1;
    const reqPayloads = ini.done ? [] : ini.nextRequest();
    if (opts.ppk && last) reqPayloads.push(...ppkIdentityKeyNotifies([ppk], pctx));
    const reqBytes = sealMessage(sa(kI, ctx, true), ExchangeType.IKE_INTERMEDIATE, mid, false, reqPayloads);
    const got = openMessage(sa(kR, ctx, false), reqBytes);
    expect(got.header.exchangeType).toBe(ExchangeType.IKE_INTERMEDIATE);
    chainI.addMessage(prf, kI.skPi, reqBytes, reqPayloads, false);
    if (opts.dropAtResponder !== n) chainR.addMessage(prf, kR.skPi, reqBytes, got.payloads, false);
    const step = res.handleRequest(got.payloads);
    if (!step.ok) throw new Error(step.reason);
    const resPayloads = [...step.response];
    let selected;
    if (opts.ppk && last) {
      const d = responderPpk9867(got.payloads, { ppk: { keys: [ppk], required: true } }, pctx);
      if (d.use !== 'ppk') throw new Error('PPK not selected');
      resPayloads.push(d.response);
      selected = d.ppk;
    }
    // the response is protected with the keys in force before this exchange's update
    const resBytes = sealMessage(sa(kR, ctx, false), ExchangeType.IKE_INTERMEDIATE, mid, true, resPayloads);
    const back = openMessage(sa(kI, ctx, true), resBytes);
    if (opts.dropAtResponder !== n) chainR.addMessage(prf, kR.skPr, resBytes, resPayloads, true);
    chainI.addMessage(prf, kI.skPr, resBytes, back.payloads, true);
    if (back.payloads.some((p) => p.type === PayloadType.KE)) {
      const s = ini.handleResponse(back.payloads);
      if (!s.ok) throw new Error(s.reason);
    }
    kI = ini.currentKeys;
    kR = res.currentKeys;
    if (opts.ppk && last) {
      const pick = initiatorPpk9867(back.payloads, [ppk], true);
      if (!pick.ok || !pick.ppk) throw new Error('initiator did not see the PPK');
      kI = mixPpkIntermediate(kI, pick.ppk, pctx);
      kR = mixPpkIntermediate(kR, selected!, pctx);
    }
    mid++;
  }
  const psk = Buffer.from('a long enough pre-shared key for the test');
  const realMessage1 = randomBytes(300); // IKE_SA_INIT request as sent (its content does not matter here)
  const idI = Buffer.from([2, 0, 0, 0, ...Buffer.from('gw-a.example')]);
  const authI = pskAuth(prf, psk, signedOctets(realMessage1, ctx.nr, prf, kI.skPi, idI, chainI.value(mid)));
  const expected = pskAuth(prf, psk, signedOctets(realMessage1, ctx.nr, prf, kR.skPi, idI, chainR.value(mid)));
  return { authI, expected, kI, kR, start: keys, chainI, chainR, mid };
}

describe('IKE_INTERMEDIATE on the wire with AUTH over IntAuth', () => {
  it('one ML-KEM-768 round: same keys, IntAuth equal on both sides, AUTH verifies; IKE_AUTH MID is 2', () => {
    const r = run([MLKEM768]);
    expect(r.kI).toEqual(r.kR);
    expect(r.kI.skD).not.toEqual(r.start.skD);
    expect(r.mid).toBe(2);
    expect(r.chainI.value(r.mid)).toEqual(r.chainR.value(r.mid));
    expect(r.authI).toEqual(r.expected);
  });

  it('two rounds (ML-KEM-768 then ML-KEM-1024): AUTH verifies, IKE_AUTH MID is 3', () => {
    const r = run([MLKEM768, MLKEM1024]);
    expect(r.mid).toBe(3);
    expect(r.kI).toEqual(r.kR);
    expect(r.authI).toEqual(r.expected);
  });

  it('a responder that missed one exchange in its IntAuth computes another AUTH (the exchange is authenticated)', () => {
    const r = run([MLKEM768, MLKEM1024], { dropAtResponder: 0 });
    expect(r.kI).toEqual(r.kR);
    expect(r.authI).not.toEqual(r.expected);
  });

  it('RFC 9867 PPK on the last exchange: all keys remixed alike, AUTH verifies with the PPK-mixed SK_pi', () => {
    const withPpk = run([MLKEM768], { ppk: true });
    expect(withPpk.kI).toEqual(withPpk.kR);
    expect(withPpk.authI).toEqual(withPpk.expected);
    const dedicated = run([], { ppk: true });
    expect(dedicated.mid).toBe(2);
    expect(dedicated.kI).toEqual(dedicated.kR);
    expect(dedicated.kI.skEi).not.toEqual(dedicated.start.skEi);
    expect(dedicated.authI).toEqual(dedicated.expected);
  });
});
