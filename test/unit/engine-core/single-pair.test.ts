// SINGLE_PAIR_REQUIRED (RFC 7296 §2.9, §3.10.1): a responder that takes only one address pair per
// Child SA narrows to the triggering packet's selectors, which the initiator sends first after a
// kernel ACQUIRE; without a packet to name a pair the Child SA fails with a reason saying so.
import { describe, expect, it } from 'vitest';
import type { KernelAction, TrafficSelectorSpec } from '../../../src/ike/engine/actions.js';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

const host = (address: string): TrafficSelectorSpec => ({ protocol: 0, startPort: 0, endPort: 65535, startAddress: address, endAddress: address });
const acquire = (src: string, dst: string) => ({ type: 'acquire' as const, reqid: 100, local: '192.0.2.1', remote: '192.0.2.2', selector: { src: host(src), dst: host(dst) } });
const policyInstalls = (log: KernelAction[]) => log.filter((a): a is Extract<KernelAction, { op: 'installPolicies' }> => a.op === 'installPolicies');

describe('SINGLE_PAIR_REQUIRED', () => {
  it('a trap-triggered Child SA to a single-pair responder is narrowed to the packet\'s address pair', () => {
    const p = new EnginePair(configFor('a', { startAction: 'trap' }), configFor('b', { childExtra: 'single_pair: yes' }));
    p.apply('a', p.a.kernelEvent(p.now, acquire('10.1.0.5', '10.2.0.7')));
    p.run(2_000);
    const sa = p.a.listSas(p.now)[0]!;
    expect(sa.children).toHaveLength(1);
    const [ours] = policyInstalls(p.kernelA.log);
    expect(ours!.spec.localTs).toEqual([host('10.1.0.5')]);
    expect(ours!.spec.remoteTs).toEqual([host('10.2.0.7')]);
    const [theirs] = policyInstalls(p.kernelB.log);
    expect(theirs!.spec.localTs).toEqual([host('10.2.0.7')]);
    expect(theirs!.spec.remoteTs).toEqual([host('10.1.0.5')]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('without a triggering packet the single-pair responder answers SINGLE_PAIR_REQUIRED; a later ACQUIRE creates the Child SA for that pair', () => {
    const p = new EnginePair(configFor('a'), configFor('b', { childExtra: 'single_pair: yes' }));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.a.listSas(p.now)).toHaveLength(1);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
    expect(p.eventsOf('error', 'b').some((e) => e.type === 'error' && /SINGLE_PAIR_REQUIRED/.test(e.message))).toBe(true);
    expect(p.eventsOf('error', 'a').some((e) => e.type === 'error' && /initial Child SA.*34/.test(e.message))).toBe(true);

    // Traffic for one host pair: the kernel asks, a CREATE_CHILD_SA with the packet's selectors first follows.
    p.apply('a', p.a.kernelEvent(p.now, acquire('10.1.0.9', '10.2.0.3')));
    p.run(2_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(1);
    const [ours] = policyInstalls(p.kernelA.log);
    expect(ours!.spec.localTs).toEqual([host('10.1.0.9')]);
    expect(ours!.spec.remoteTs).toEqual([host('10.2.0.3')]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('a responder without single_pair still narrows to its whole configured range when the packet comes first', () => {
    const p = new EnginePair(configFor('a', { startAction: 'trap' }), configFor('b'));
    p.apply('a', p.a.kernelEvent(p.now, acquire('10.1.0.5', '10.2.0.7')));
    p.run(2_000);
    const [theirs] = policyInstalls(p.kernelB.log);
    // The packet's selectors lie inside the configured ones, so they add no policy of their own.
    expect(theirs!.spec.remoteTs).toEqual([{ protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.1.0.0', endAddress: '10.1.0.255' }]);
    expect(theirs!.spec.localTs).toEqual([{ protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.2.0.0', endAddress: '10.2.0.255' }]);
    // The initiator sent the packet first (RFC 7296 §2.9) and got the whole range back.
    const [ours] = policyInstalls(p.kernelA.log);
    expect(ours!.spec.remoteTs).toEqual([{ protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.2.0.0', endAddress: '10.2.0.255' }]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });
});
