// A new Child SA (CREATE_CHILD_SA without REKEY_SA) whose proposal has additional key exchanges
// (RFC 9370 §2.2.4): IKE_FOLLOWUP_KE with ADDITIONAL_KEY_EXCHANGE link data, keys only after the last
// follow-up, nothing in either kernel before it, STATE_NOT_FOUND for a chain the responder dropped,
// and an abandoned chain timing out without leaving state.
import { describe, expect, it } from 'vitest';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import type { EngineConfig } from '../../../src/ike/config.js';
import type { Action } from '../../../src/ike/engine/actions.js';
import { FOLLOWUP_STATE_TIMEOUT_MS } from '../../../src/ike/engine/followup-ke.js';
import { parseProposal } from '../../../src/ike/proposal.js';
import { EnginePairHarness, mirrored, peerConfig, type PeerOptions } from '../../helpers/engine-pair.js';
import type { Host } from '../../helpers/lossy-link.js';

/** `dmz` (reqid 101) is created in CREATE_CHILD_SA once the IKE SA is up, with `dmzEsp`. */
function config(side: Host, dmzEsp: string, o: PeerOptions = {}): EngineConfig {
  const cfg = peerConfig(side, { extraChild: true, ...o });
  cfg.connections[0]!.children[1]!.espProposals = [parseProposal(dmzEsp, 'esp')];
  return cfg;
}

type Step = { host: Host; kind: 'send'; exchange: number; response: boolean } | { host: Host; kind: 'kernel'; op: string; reqid: number };

/** The harness, recording every datagram sent and kernel action in the order they happen. */
function pair(dmzEsp: string, o: PeerOptions = {}) {
  const h = new EnginePairHarness(config('a', dmzEsp, o), config('b', dmzEsp, o));
  const steps: Step[] = [];
  const apply = h.apply.bind(h);
  h.apply = (host: Host, actions: Action[]) => {
    for (const a of actions) {
      if (a.kind === 'send') {
        const d = decodeMessage(a.data);
        // One step per message: of an RFC 7383 fragmented one (an ML-KEM-768 KEi is), fragment 1 only.
        const last = d.ok ? d.message.payloads.at(-1) : undefined;
        if (last?.type === PayloadType.SKF && last.fragmentNumber !== 1) continue;
        if (d.ok) steps.push({ host, kind: 'send', exchange: d.message.header.exchangeType, response: d.message.header.flags.response });
      } else if (a.kind === 'kernel' && 'spec' in a.action) steps.push({ host, kind: 'kernel', op: a.action.op, reqid: a.action.spec.reqid });
    }
    apply(host, actions);
  };
  return { h, steps };
}

const DMZ = 101;
const isDmz = (s: Step) => s.kind === 'kernel' && s.reqid === DMZ;
const sendOf = (steps: Step[], host: Host, exchange: number, response: boolean, from = 0) =>
  steps.findIndex((s, i) => i >= from && s.kind === 'send' && s.host === host && s.exchange === exchange && s.response === response);

describe('new Child SA with additional key exchanges (IKE_FOLLOWUP_KE, RFC 9370 §2.2.4)', () => {
  it.each([
    ['aes256gcm16-x25519-ke1_mlkem768', 1],
    ['aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem512', 2],
  ])('%s: %i follow-up(s), keys agree, and neither kernel sees the Child SA before the last one', (esp, rounds) => {
    const { h, steps } = pair(esp);
    h.establish();
    expect(h.eventsOf('child-up')).toHaveLength(2);
    const start = steps.length;
    h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    h.run(5_000);
    expect(h.thrown).toEqual([]);
    expect(h.eventsOf('child-up').filter((e) => e.child === 'dmz')).toHaveLength(2);
    expect(h.eventsOf('child-up', 'a').find((e) => e.child === 'dmz')!.suite).toContain('ML-KEM-768');
    // The exchanges: CREATE_CHILD_SA, then `rounds` IKE_FOLLOWUP_KE request/response pairs.
    const after = steps.slice(start).filter((s) => s.kind === 'send');
    expect(after.filter((s) => s.kind === 'send' && s.exchange === ExchangeType.CREATE_CHILD_SA)).toHaveLength(2);
    expect(after.filter((s) => s.kind === 'send' && s.exchange === ExchangeType.IKE_FOLLOWUP_KE)).toHaveLength(2 * rounds);
    // Ordering: no dmz kernel action before the last IKE_FOLLOWUP_KE request; the responder installs
    // while answering it (before its response leaves), the initiator only after that response.
    let lastRequest = start;
    for (let r = 0; r < rounds; r++) lastRequest = sendOf(steps, 'a', ExchangeType.IKE_FOLLOWUP_KE, false, lastRequest + 1);
    const lastResponse = sendOf(steps, 'b', ExchangeType.IKE_FOLLOWUP_KE, true, lastRequest);
    expect(lastRequest).toBeGreaterThan(start);
    expect(lastResponse).toBeGreaterThan(lastRequest);
    const dmzSteps = steps.map((s, i) => [s, i] as const).filter(([s]) => isDmz(s));
    expect(dmzSteps.map(([s]) => `${s.host}:${(s as { op: string }).op}`).sort()).toEqual(
      ['a:installInboundSa', 'a:installOutboundSa', 'a:installPolicies', 'b:installInboundSa', 'b:installOutboundSa', 'b:installPolicies'].sort(),
    );
    for (const [s, i] of dmzSteps) {
      if (s.host === 'b') expect(i > lastRequest && i < lastResponse, `b ${(s as { op: string }).op} at ${i}`).toBe(true);
      else expect(i, `a ${(s as { op: string }).op}`).toBeGreaterThan(lastResponse);
    }
    // Both Child SAs are mirrored with equal keys, and the dmz keys are not those of lan.
    expect(h.kernels.a.inbound.size).toBe(2);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    const keys = [...h.kernels.a.inbound.values()].map((s) => s.encKey);
    expect(new Set(keys).size).toBe(2);
    expect(h.allViolations()).toEqual([]);
    // The new Child SA then rekeys like any other (its recorded KE methods include the ADDKE).
    const dmz = h.engines.a.listSas(h.now)[0]!.children.find((c) => c.name === 'dmz')!;
    expect(dmz.keMethods).toHaveLength(1 + rounds);
    h.call('a', (e, now) => e.rekeyChild(now, dmz.childId));
    h.run(60_000); // past the grace period of the old inbound SAs
    expect(h.eventsOf('child-rekeyed').filter((e) => e.child === 'dmz')).toHaveLength(2);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.allViolations()).toEqual([]);
  });

  it(`an abandoned follow-up: the responder drops the chain after ${FOLLOWUP_STATE_TIMEOUT_MS / 1000} s, answers the late request STATE_NOT_FOUND, and nothing is installed on either side`, () => {
    // Retransmissions at 0, 4 and 12 s: the first two IKE_FOLLOWUP_KE requests are lost, the third arrives too late.
    const { h, steps } = pair('aes256gcm16-x25519-ke1_mlkem768', { retransmit: { timeout: '4s', base: 2, tries: 5 } });
    h.establish();
    let dropped = 0;
    const until = h.now + 11_000;
    h.link.dropIf = (from, data) => {
      const d = decodeMessage(data);
      if (from === 'a' && d.ok && d.message.header.exchangeType === ExchangeType.IKE_FOLLOWUP_KE && h.now < until) {
        dropped++;
        return true;
      }
      return false;
    };
    const start = steps.length;
    const lanSpis = [...h.kernels.a.inbound.keys()];
    h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    h.run(30_000);
    expect(dropped).toBe(4); // two transmissions of a request in two fragments
    expect(h.thrown).toEqual([]);
    // The responder gave up on its own timer ...
    expect(h.eventsOf('error', 'b').some((e) => /abandoned/.test(e.message))).toBe(true);
    // ... then answered the late request STATE_NOT_FOUND, and the initiator abandoned the creation.
    expect(sendOf(steps, 'b', ExchangeType.IKE_FOLLOWUP_KE, true, start)).toBeGreaterThan(start);
    expect(h.eventsOf('error', 'a').some((e) => e.message.includes(`error notify ${NotifyType.STATE_NOT_FOUND}`))).toBe(true);
    expect(steps.slice(start).filter(isDmz)).toEqual([]);
    expect(h.eventsOf('child-up').filter((e) => e.child === 'dmz')).toHaveLength(0);
    // The IKE SA and the first Child SA are untouched.
    expect([...h.kernels.a.inbound.keys()]).toEqual(lanSpis);
    expect(h.engines.a.listSas(h.now)).toHaveLength(1);
    expect(h.engines.b.listSas(h.now)[0]!.children.map((c) => c.name)).toEqual(['lan']);
    expect(h.allViolations()).toEqual([]);
    // A new attempt over the same IKE SA succeeds.
    h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    h.run(5_000);
    expect(h.eventsOf('child-up').filter((e) => e.child === 'dmz')).toHaveLength(2);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
  });

  it('an initiator that never sends the follow-up (IKE SA gone quiet): the responder drops its state on the timeout and installs nothing', () => {
    const { h, steps } = pair('aes256gcm16-x25519-ke1_mlkem768', { retransmit: { timeout: '4s', base: 2, tries: 1 } });
    h.establish();
    h.link.dropIf = (from, data) => {
      const d = decodeMessage(data);
      return from === 'a' && d.ok && d.message.header.exchangeType === ExchangeType.IKE_FOLLOWUP_KE;
    };
    const start = steps.length;
    h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    h.run(FOLLOWUP_STATE_TIMEOUT_MS + 1_000);
    expect(h.eventsOf('error', 'b').filter((e) => /abandoned/.test(e.message))).toHaveLength(1);
    expect(steps.slice(start).filter(isDmz)).toEqual([]);
    expect(h.kernels.b.inbound.size).toBe(1);
    expect(h.allViolations()).toEqual([]);
  });
});
