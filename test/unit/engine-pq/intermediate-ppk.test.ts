// The initial IKE SA's post-quantum steps, both sides in process: ADDKE rounds in IKE_INTERMEDIATE
// (RFC 9370 §2.2.2), the IntAuth chain (RFC 9242 §3.3.2), PPK selection and mixing (RFC 8784, RFC 9867),
// and require_pq.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PpkConfig } from '../../../src/ike/config.js';
import { NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { findNotify, kePayload, notify } from '../../../src/ike/codec/helpers.js';
import { createPrf, deriveIkeSaKeys, getKeMethod, type IkeSaKeys } from '../../../src/ike/crypto/index.js';
import {
  announcesIntermediate,
  IntAuthChain,
  intermediateRounds,
  IntermediateKeInitiator,
  IntermediateKeResponder,
  intermediateSupportedNotify,
} from '../../../src/ike/engine/intermediate.js';
import {
  initiatorPpk8784Used,
  initiatorPpk9867,
  initiatorPpkMode,
  mixPpkIntermediate,
  ppkAuthRequestNotifies,
  ppkIdentityKeyNotifies,
  ppkInitNotifies,
  pqSatisfied,
  responderPpk8784,
  responderPpk9867,
  responderPpkMode,
  responderPpkNotify,
} from '../../../src/ike/engine/ppk.js';

const X25519 = 31;
const MLKEM512 = 35;
const MLKEM768 = 36;
const prf = createPrf(7); // PRF_HMAC_SHA2_512: 64-octet outputs
const ni = randomBytes(32);
const nr = randomBytes(32);
const spiI = randomBytes(8);
const spiR = randomBytes(8);
const ctx = { ni, nr, spiI, spiR };

function initialKeys(): IkeSaKeys {
  const m = getKeMethod(X25519)!;
  const i = m.initiate();
  const r = m.respond(i.publicData);
  const shared = i.finish(r.publicData);
  expect(shared).toEqual(r.sharedSecret);
  return deriveIkeSaKeys({ prf, encr: 20, keyBits: 256, ni, nr, spiI, spiR, sharedSecret: shared });
}

/** A stand-in AAD: IKE header (28 octets, next payload SK) + SK generic header. */
function aad(mid: number, response: boolean): Buffer {
  const b = Buffer.alloc(32);
  spiI.copy(b, 0);
  spiR.copy(b, 8);
  b[16] = 46;
  b[17] = 0x20;
  b[18] = 43; // IKE_INTERMEDIATE
  b[19] = response ? 0x20 : 0x08;
  b.writeUInt32BE(mid, 20);
  return b;
}

function runRounds(methods: number[]) {
  const start = initialKeys();
  const ini = new IntermediateKeInitiator(methods, start, ctx);
  const res = new IntermediateKeResponder(methods, start, ctx);
  const chainI = new IntAuthChain();
  const chainR = new IntAuthChain();
  let mid = 1;
  while (!ini.done) {
    const before = ini.currentKeys;
    const req = ini.nextRequest();
    const reqInner = Buffer.from(JSON.stringify(req.map((p) => p.type))); // any octets: both sides MAC the same
    chainI.addRequest(prf, before.skPi, aad(mid, false), reqInner);
    chainR.addRequest(prf, res.currentKeys.skPi, aad(mid, false), reqInner);
    const r = res.handleRequest(req);
    if (!r.ok) throw new Error(r.reason);
    const resInner = Buffer.from(`response ${mid}`);
    // the response is MACed with the SK_pr that protected it: the responder's keys *before* the update
    chainR.addResponse(prf, before.skPr, aad(mid, true), resInner);
    chainI.addResponse(prf, before.skPr, aad(mid, true), resInner);
    const step = ini.handleResponse(r.response);
    if (!step.ok) throw new Error(step.reason);
    mid++;
  }
  return { start, ini, res, chainI, chainR, ikeAuthMid: mid };
}

describe('IKE_INTERMEDIATE additional key exchanges', () => {
  it('rounds are the non-NONE ADDKEs in ascending order', () => {
    expect(intermediateRounds({ encr: { id: 20 }, addKe: [MLKEM768, undefined, MLKEM512] })).toEqual([MLKEM768, MLKEM512]);
    expect(intermediateRounds({ encr: { id: 20 }, addKe: [] })).toEqual([]);
    expect(announcesIntermediate([intermediateSupportedNotify()])).toBe(true);
  });

  it('X25519 + ML-KEM-768: both sides end with the same seven keys, different from the classic ones', () => {
    const { start, ini, res, chainI, chainR, ikeAuthMid } = runRounds([MLKEM768]);
    expect(ini.currentKeys).toEqual(res.currentKeys);
    // AES-GCM: no integrity keys (RFC 5282), the other five all change
    expect(ini.currentKeys.skAi.length + ini.currentKeys.skAr.length).toBe(0);
    for (const k of ['skD', 'skEi', 'skEr', 'skPi', 'skPr'] as const) expect(ini.currentKeys[k]).not.toEqual(start[k]);
    expect(ikeAuthMid).toBe(2);
    const ia = chainI.value(ikeAuthMid)!;
    expect(ia).toEqual(chainR.value(ikeAuthMid));
    expect(ia.length).toBe(64 + 64 + 4);
    expect(ia.readUInt32BE(128)).toBe(2);
  });

  it('two rounds chain the updates (SK_d(n) feeds round n+1)', () => {
    const two = runRounds([MLKEM768, MLKEM512]);
    expect(two.ini.currentKeys).toEqual(two.res.currentKeys);
    expect(two.ini.secrets).toHaveLength(2);
    expect(two.chainI.exchanges).toBe(2);
    expect(two.chainI.value(3)).toEqual(two.chainR.value(3));
  });

  it('no IKE_INTERMEDIATE: no IntAuth', () => {
    expect(new IntAuthChain().value(1)).toBeUndefined();
  });

  it('the responder refuses a KE of another method, a missing KE and an extra KE with INVALID_SYNTAX', () => {
    const start = initialKeys();
    const res = new IntermediateKeResponder([MLKEM768], start, ctx);
    expect(res.handleRequest([kePayload(MLKEM512, getKeMethod(MLKEM512)!.initiate().publicData)])).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX });
    expect(res.handleRequest([])).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX });
    expect(res.handleRequest([kePayload(MLKEM768, Buffer.alloc(1184, 0xff))])).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX });
    const done = new IntermediateKeResponder([], start, ctx);
    expect(done.handleRequest([])).toMatchObject({ ok: true, response: [] });
    expect(done.handleRequest([kePayload(X25519, Buffer.alloc(32, 9))])).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX });
  });

  it('the initiator refuses a response with another method or a malformed ciphertext', () => {
    const ini = new IntermediateKeInitiator([MLKEM768], initialKeys(), ctx);
    ini.nextRequest();
    expect(ini.handleResponse([kePayload(MLKEM512, Buffer.alloc(768))]).ok).toBe(false);
    expect(ini.handleResponse([kePayload(MLKEM768, Buffer.alloc(5))]).ok).toBe(false);
    expect(ini.handleResponse([]).ok).toBe(false);
  });
});

const ppkA: PpkConfig = { id: Buffer.from('\x02site-a'), key: randomBytes(32) };
const ppkB: PpkConfig = { id: Buffer.from('\x02site-b'), key: randomBytes(32) };

describe('PPK negotiation in IKE_SA_INIT', () => {
  it('sends USE_PPK_INT (with IKE_INTERMEDIATE) and USE_PPK; RFC 9867 preferred', () => {
    const req = ppkInitNotifies({ ppk: { keys: [ppkA], required: false } }, true);
    expect(req.map((n) => n.notifyType)).toEqual([NotifyType.USE_PPK_INT, NotifyType.USE_PPK]);
    const conn = { ppk: { keys: [ppkA], required: false } };
    expect(responderPpkMode(req, conn, true)).toBe('rfc9867');
    expect(responderPpkMode(req, conn, false)).toBe('rfc8784');
    expect(responderPpkMode(req, {}, true)).toBe('none');
    expect(initiatorPpkMode([responderPpkNotify('rfc9867')!], true, true, true)).toBe('rfc9867');
    expect(initiatorPpkMode([responderPpkNotify('rfc8784')!], true, true, true)).toBe('rfc8784');
    expect(initiatorPpkMode([], true, true, true)).toBe('none');
    expect(ppkInitNotifies({}, true)).toEqual([]);
  });
});

describe('RFC 9867 PPK in IKE_INTERMEDIATE', () => {
  const pctx = { prf, ni, nr, spiI, spiR };
  it('the responder selects the first known PPK with a matching confirmation; both mix all seven keys alike', () => {
    const start = initialKeys();
    const offer = ppkIdentityKeyNotifies([ppkB, ppkA], pctx);
    expect(offer[0]!.data.length).toBe(ppkB.id.length + 8);
    const d = responderPpk9867(offer, { ppk: { keys: [ppkA], required: true } }, pctx);
    expect(d.use).toBe('ppk');
    if (d.use !== 'ppk') return;
    expect(d.response.data).toEqual(ppkA.id);
    const pick = initiatorPpk9867([d.response], [ppkB, ppkA], true);
    expect(pick).toMatchObject({ ok: true, ppk: ppkA });
    const mixedR = mixPpkIntermediate(start, d.ppk, pctx);
    const mixedI = mixPpkIntermediate(start, ppkA, pctx);
    expect(mixedI).toEqual(mixedR);
    expect(mixedI.skEi).not.toEqual(start.skEi);
  });

  it('a wrong confirmation is not selected; optional -> none, required -> AUTHENTICATION_FAILED', () => {
    const forged = { id: ppkA.id, key: randomBytes(32) };
    const offer = ppkIdentityKeyNotifies([forged], pctx);
    expect(responderPpk9867(offer, { ppk: { keys: [ppkA], required: false } }, pctx)).toEqual({ use: 'none' });
    expect(responderPpk9867(offer, { ppk: { keys: [ppkA], required: true } }, pctx)).toMatchObject({ use: 'fail', notify: NotifyType.AUTHENTICATION_FAILED });
    expect(responderPpk9867([notify(NotifyType.PPK_IDENTITY_KEY, Buffer.alloc(3))], { ppk: { keys: [ppkA], required: false } }, pctx)).toEqual({ use: 'none' });
  });

  it('the initiator insists when required and refuses an id it did not offer', () => {
    expect(initiatorPpk9867([], [ppkA], true).ok).toBe(false);
    expect(initiatorPpk9867([], [ppkA], false)).toEqual({ ok: true });
    expect(initiatorPpk9867([notify(NotifyType.PPK_IDENTITY, ppkB.id)], [ppkA], false).ok).toBe(false);
  });
});

describe('RFC 8784 PPK in IKE_AUTH', () => {
  it('known PPK: mixed SK_d/SK_pi/SK_pr, SK_e/SK_a unchanged, empty PPK_IDENTITY answer', () => {
    const keys = initialKeys();
    const req = ppkAuthRequestNotifies(ppkA, false, Buffer.from('auth-without-ppk'));
    expect(req.map((n) => n.notifyType)).toEqual([NotifyType.PPK_IDENTITY, NotifyType.NO_PPK_AUTH]);
    const d = responderPpk8784(req, { ppk: { keys: [ppkA], required: false } }, prf, keys);
    expect(d.use).toBe('ppk');
    if (d.use !== 'ppk') return;
    expect(d.response.data.length).toBe(0);
    expect(d.keys.skD).not.toEqual(keys.skD);
    expect(d.keys.skPi).not.toEqual(keys.skPi);
    expect(d.keys.skEi).toEqual(keys.skEi);
    expect(initiatorPpk8784Used([d.response], true)).toEqual({ ok: true, used: true });
  });

  it('unknown PPK: NO_PPK_AUTH when optional, AUTHENTICATION_FAILED when required or absent', () => {
    const keys = initialKeys();
    const req = ppkAuthRequestNotifies(ppkB, false, Buffer.from('auth-without-ppk'));
    expect(responderPpk8784(req, { ppk: { keys: [ppkA], required: false } }, prf, keys)).toMatchObject({ use: 'no-ppk', noPpkAuth: Buffer.from('auth-without-ppk') });
    expect(responderPpk8784(req, { ppk: { keys: [ppkA], required: true } }, prf, keys).use).toBe('fail');
    expect(responderPpk8784(ppkAuthRequestNotifies(ppkB, true), { ppk: { keys: [ppkA], required: false } }, prf, keys).use).toBe('fail');
    expect(responderPpk8784([], { ppk: { keys: [ppkA], required: true } }, prf, keys).use).toBe('fail');
    expect(responderPpk8784([], {}, prf, keys).use).toBe('none');
    expect(initiatorPpk8784Used([], true).ok).toBe(false);
    expect(() => ppkAuthRequestNotifies(ppkA, false)).toThrow(/NO_PPK_AUTH/);
  });
});

describe('require_pq', () => {
  it('needs an ML-KEM exchange or a PPK', () => {
    expect(pqSatisfied([X25519], false)).toBe(false);
    expect(pqSatisfied([X25519, MLKEM768], false)).toBe(true);
    expect(pqSatisfied([X25519], true)).toBe(true);
    expect(pqSatisfied([], false)).toBe(false);
  });
  it('the PPK_IDENTITY response type is the one the codec knows', () => {
    expect(findNotify([notify(NotifyType.PPK_IDENTITY)], NotifyType.PPK_IDENTITY)?.type).toBe(PayloadType.NOTIFY);
  });
});
