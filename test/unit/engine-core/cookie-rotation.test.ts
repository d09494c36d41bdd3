// RFC 7296 §2.6: the COOKIE secret rotates; a cookie made with the previous secret is still accepted,
// one made two secrets ago is refused with a fresh COOKIE and no state.
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { PayloadType } from '../../../src/ike/codec/constants.js';
import { configFor, EnginePair } from './pair.js';

const COOKIE = 16390;

function cookieExchange(): { p: EnginePair; initial: Buffer; retry: Buffer } {
  const cfgB = configFor('b');
  cfgB.cookieThreshold = 0;
  const p = new EnginePair(configFor('a'), cfgB);
  p.apply('a', p.a.initiate(p.now, 'site'));
  p.run(6); // the cookie-less request reaches the responder, which answers N(COOKIE)
  p.cut = true;
  p.run(6); // the initiator retries with the cookie; the link is cut so the retry is only recorded
  const fromA = p.wire.filter((w) => w.from === 'a');
  expect(fromA.length).toBeGreaterThanOrEqual(2);
  const retry = fromA[1]!.data;
  const d = decodeMessage(retry);
  expect(d.ok && d.message.payloads.some((x) => x.type === PayloadType.NOTIFY && x.notifyType === COOKIE)).toBe(true);
  expect(p.b.stats().halfOpen).toBe(0);
  return { p, initial: fromA[0]!.data, retry };
}

function lastAnswerHasCookie(p: EnginePair): boolean {
  const d = decodeMessage(p.wire.filter((w) => w.from === 'b').at(-1)!.data);
  return d.ok && d.message.payloads.some((x) => x.type === PayloadType.NOTIFY && x.notifyType === COOKIE);
}

describe('COOKIE secret rotation', () => {
  it('a cookie from the previous secret is accepted after one rotation', () => {
    const { p, retry } = cookieExchange();
    p.now += 301_000; // past the secret lifetime: the next request rotates it
    p.inject('b', retry);
    expect(p.b.stats().halfOpen).toBe(1);
    expect(lastAnswerHasCookie(p)).toBe(false);
  });

  it('a cookie two secrets old is refused with a fresh COOKIE and no state', () => {
    const { p, initial, retry } = cookieExchange();
    p.now += 301_000;
    p.inject('b', initial); // rotation 1 (cookie-less request: answered with a cookie, no state)
    expect(lastAnswerHasCookie(p)).toBe(true);
    p.now += 301_000;
    p.inject('b', initial); // rotation 2: the secret that made `retry`'s cookie is gone
    p.inject('b', retry);
    expect(p.b.stats().halfOpen).toBe(0);
    expect(p.b.listSas(p.now)).toHaveLength(0);
    expect(lastAnswerHasCookie(p)).toBe(true);
  });
});
