// IKE_FOLLOWUP_KE chains (RFC 9370 §2.2.4) between an initiator and a responder with real KE methods:
// both end with the same secrets and the same Child SA keys; link handling, STATE_NOT_FOUND, timeout.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { findNotify, kePayload, notify } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import { createPrf, deriveChildKeys, getKeMethod } from '../../../src/ike/crypto/index.js';
import { FOLLOWUP_STATE_TIMEOUT_MS, FollowupKeInitiator, FollowupKeResponder } from '../../../src/ike/engine/followup-ke.js';

const X25519 = 31;
const MLKEM512 = 35;
const MLKEM768 = 36;

/** SK(0) from a CREATE_CHILD_SA KE, computed by both sides. */
function firstExchange(method = X25519) {
  const m = getKeMethod(method)!;
  const i = m.initiate();
  const r = m.respond(i.publicData);
  return { iSecret: i.finish(r.publicData), rSecret: r.sharedSecret };
}

function run(methods: number[]) {
  const sk0 = firstExchange();
  const responder = new FollowupKeResponder<string>(randomBytes);
  const linkNotify = responder.begin(0, methods, [sk0.rSecret], 'child#7');
  const createResponse: Payload[] = linkNotify ? [linkNotify] : [];
  const initiator = new FollowupKeInitiator(methods, [sk0.iSecret]);
  expect(initiator.start(createResponse)).toEqual({ ok: true });
  let finished: { secrets: Buffer[]; context: string } | undefined;
  let exchanges = 0;
  while (!initiator.done) {
    const req = initiator.nextRequest();
    const res = responder.handleRequest(1000 * ++exchanges, req);
    if (!res.ok) throw new Error(res.reason);
    if (res.done) finished = { secrets: res.secrets, context: res.context };
    expect(initiator.handleResponse(res.response)).toEqual({ ok: true, done: res.done });
  }
  return { initiator, finished, exchanges, responder };
}

describe('IKE_FOLLOWUP_KE chains', () => {
  it('one ML-KEM-768 follow-up: same secrets, same Child SA keys on both sides', () => {
    const { initiator, finished, exchanges, responder } = run([MLKEM768]);
    expect(exchanges).toBe(1);
    expect(finished?.context).toBe('child#7');
    expect(initiator.secrets).toHaveLength(2);
    expect(finished!.secrets).toEqual(initiator.secrets);
    expect(initiator.secrets[1]).toHaveLength(32);
    const prf = createPrf(5); // PRF_HMAC_SHA2_256
    const skD = Buffer.alloc(32, 0x42);
    const ni = Buffer.alloc(32, 1);
    const nr = Buffer.alloc(32, 2);
    const k = (s: Buffer[]) => deriveChildKeys({ prf, skD, ni, nr, sharedSecrets: s, encr: 20, keyBits: 256 });
    expect(k(initiator.secrets)).toEqual(k(finished!.secrets));
    expect(k(initiator.secrets)).not.toEqual(k(initiator.secrets.slice(0, 1)));
    expect(responder.size).toBe(0);
  });

  it('two follow-ups link through fresh link data each time', () => {
    const sk0 = firstExchange();
    const responder = new FollowupKeResponder<number>(randomBytes);
    const first = responder.begin(0, [MLKEM512, MLKEM768], [sk0.rSecret], 1)!;
    const initiator = new FollowupKeInitiator([MLKEM512, MLKEM768], [sk0.iSecret]);
    initiator.start([first]);
    const req1 = initiator.nextRequest();
    expect(findNotify(req1, NotifyType.ADDITIONAL_KEY_EXCHANGE)?.data).toEqual(first.type === PayloadType.NOTIFY ? first.data : undefined);
    const res1 = responder.handleRequest(1, req1);
    if (!res1.ok || res1.done) throw new Error('expected a second round');
    const link2 = findNotify(res1.response, NotifyType.ADDITIONAL_KEY_EXCHANGE)!.data;
    expect(link2).not.toEqual(findNotify(req1, NotifyType.ADDITIONAL_KEY_EXCHANGE)!.data);
    expect(initiator.handleResponse(res1.response)).toEqual({ ok: true, done: false });
    // the old link is spent
    expect(responder.handleRequest(2, req1)).toMatchObject({ ok: false, notify: NotifyType.STATE_NOT_FOUND });
    const res2 = responder.handleRequest(3, initiator.nextRequest());
    if (!res2.ok || !res2.done) throw new Error('expected the last round');
    expect(findNotify(res2.response, NotifyType.ADDITIONAL_KEY_EXCHANGE)).toBeUndefined();
    expect(initiator.handleResponse(res2.response)).toEqual({ ok: true, done: true });
    expect(res2.secrets).toEqual(initiator.secrets);
    expect(res2.secrets).toHaveLength(3);
  });

  it('no additional methods: no link notify, nothing remembered', () => {
    const responder = new FollowupKeResponder<number>(randomBytes);
    expect(responder.begin(0, [], [], 1)).toBeUndefined();
    expect(responder.size).toBe(0);
    const initiator = new FollowupKeInitiator([], []);
    expect(initiator.done).toBe(true);
    expect(initiator.start([notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, Buffer.alloc(8, 1))]).ok).toBe(false);
  });
});

describe('errors', () => {
  it('unknown or missing link: STATE_NOT_FOUND', () => {
    const responder = new FollowupKeResponder<number>(randomBytes);
    responder.begin(0, [MLKEM768], [], 1);
    const ke = kePayload(MLKEM768, getKeMethod(MLKEM768)!.initiate().publicData);
    expect(responder.handleRequest(1, [ke])).toMatchObject({ ok: false, notify: NotifyType.STATE_NOT_FOUND });
    expect(responder.handleRequest(1, [ke, notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, Buffer.alloc(8, 0xee))])).toMatchObject({
      ok: false,
      notify: NotifyType.STATE_NOT_FOUND,
    });
    expect(responder.size).toBe(1);
  });

  it('the responder drops a chain whose next request does not come in time', () => {
    const responder = new FollowupKeResponder<string>(randomBytes);
    const link = responder.begin(0, [MLKEM768], [], 'sa')!;
    expect(responder.nextDeadline()).toBe(FOLLOWUP_STATE_TIMEOUT_MS);
    expect(responder.expire(FOLLOWUP_STATE_TIMEOUT_MS - 1)).toEqual([]);
    expect(responder.expire(FOLLOWUP_STATE_TIMEOUT_MS)).toEqual(['sa']);
    const initiator = new FollowupKeInitiator([MLKEM768], []);
    initiator.start([link]);
    const late = responder.handleRequest(FOLLOWUP_STATE_TIMEOUT_MS + 1, initiator.nextRequest());
    expect(late).toMatchObject({ ok: false, notify: NotifyType.STATE_NOT_FOUND });
    // the initiator abandons on the error notify
    expect(initiator.handleResponse([notify(NotifyType.STATE_NOT_FOUND)]).ok).toBe(false);
  });

  it('a KE of another method than negotiated, or a bad ML-KEM key, is INVALID_SYNTAX and ends the chain', () => {
    const responder = new FollowupKeResponder<number>(randomBytes);
    const link = responder.begin(0, [MLKEM768], [], 9)!;
    const initiator = new FollowupKeInitiator([MLKEM768], []);
    initiator.start([link]);
    const req = initiator.nextRequest();
    const wrong = req.map((p) => (p.type === PayloadType.KE ? kePayload(MLKEM512, getKeMethod(MLKEM512)!.initiate().publicData) : p));
    expect(responder.handleRequest(1, wrong)).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX, context: 9 });
    expect(responder.size).toBe(0);

    const link2 = responder.begin(0, [MLKEM768], [], 10)!;
    const bad = [kePayload(MLKEM768, Buffer.alloc(1184, 0xff)), link2];
    expect(responder.handleRequest(1, bad)).toMatchObject({ ok: false, notify: NotifyType.INVALID_SYNTAX });
  });

  it('the initiator refuses a response with a bad ciphertext and asks for the IKE SA to be deleted', () => {
    const initiator = new FollowupKeInitiator([MLKEM768], []);
    initiator.start([notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, Buffer.alloc(8, 3))]);
    initiator.nextRequest();
    expect(initiator.handleResponse([kePayload(MLKEM768, Buffer.alloc(10))])).toMatchObject({ ok: false, deleteIkeSa: true });
  });

  it('a CREATE_CHILD_SA response without the link, when follow-ups are due, fails', () => {
    const initiator = new FollowupKeInitiator([MLKEM768], []);
    expect(initiator.start([]).ok).toBe(false);
  });
});
