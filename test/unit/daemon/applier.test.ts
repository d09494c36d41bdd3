import { describe, expect, it } from 'vitest';
import { ActionQueue, type ActionSinks } from '../../../src/daemon/applier.js';
import type { Action, ChildSaKernelSpec, KernelAction, KernelEventInput } from '../../../src/ike/engine/actions.js';

const spec = { childId: 7, spiIn: 0x1000, spiOut: 0x2000 } as ChildSaKernelSpec;
const ep = { address: '192.0.2.1', port: 500 };
const send = (tag: string): Action => ({ kind: 'send', local: ep, remote: ep, data: Buffer.from(tag) });
const kernel = (op: KernelAction['op']): Action => ({ kind: 'kernel', action: { op, spec } as KernelAction });

function recorder(opts: { kernelDelay?: number; fail?: KernelAction['op']; feedback?: (ev: KernelEventInput) => Action[] } = {}) {
  const log: string[] = [];
  const sinks: ActionSinks = {
    send: (_l, _r, d) => log.push(`send ${d.toString()}`),
    armTimer: (id, at) => log.push(`timer ${id}@${at}`),
    cancelTimer: (id) => log.push(`cancel ${id}`),
    async kernel(a) {
      log.push(`kernel ${a.op} start`);
      await new Promise((r) => setTimeout(r, opts.kernelDelay ?? 5));
      log.push(`kernel ${a.op} done`);
      if (a.op === opts.fail) return { type: 'action-failed', action: a, message: 'EEXIST' };
      if (a.op === 'queryCounters') return { type: 'counters', childId: 7, bytesIn: 1, bytesOut: 2, packetsIn: 3, packetsOut: 4 };
      return undefined;
    },
    event: (e) => log.push(`event ${e.type}`),
    feedback: (ev) => {
      log.push(`feedback ${ev.type}`);
      return opts.feedback?.(ev) ?? [];
    },
    error: (e, what) => log.push(`error ${what}: ${(e as Error).message}`),
  };
  return { log, queue: new ActionQueue(sinks) };
}

describe('ActionQueue', () => {
  it('awaits each kernel action before the next action (inbound SA before the response)', async () => {
    const { log, queue } = recorder();
    await queue.submit(() => [kernel('installInboundSa'), kernel('installOutboundSa'), kernel('installPolicies'), send('IKE_AUTH response'), { kind: 'timer', id: 'rekey', at: 5 }]);
    expect(log).toEqual([
      'kernel installInboundSa start', 'kernel installInboundSa done',
      'kernel installOutboundSa start', 'kernel installOutboundSa done',
      'kernel installPolicies start', 'kernel installPolicies done',
      'send IKE_AUTH response', 'timer rekey@5',
    ]);
  });

  it('runs inputs one after the other: a later input waits for the earlier one\'s kernel work', async () => {
    const { log, queue } = recorder({ kernelDelay: 20 });
    const calls: string[] = [];
    const a = queue.submit(() => { calls.push('first'); return [kernel('installInboundSa'), send('one')]; });
    const b = queue.submit(() => { calls.push('second'); log.push('engine second'); return [send('two')]; });
    expect(queue.pending).toBe(2);
    await Promise.all([a, b]);
    expect(calls).toEqual(['first', 'second']);
    expect(log).toEqual(['kernel installInboundSa start', 'kernel installInboundSa done', 'send one', 'engine second', 'send two']);
    expect(queue.pending).toBe(0);
  });

  it('feeds kernel results back to the engine and runs its reaction before the rest of the batch', async () => {
    const { log, queue } = recorder({
      fail: 'installOutboundSa',
      feedback: (ev) => (ev.type === 'action-failed' ? [kernel('deleteInboundSa'), send('delete notify')] : []),
    });
    await queue.submit(() => [kernel('installInboundSa'), kernel('installOutboundSa'), send('after')]);
    expect(log).toEqual([
      'kernel installInboundSa start', 'kernel installInboundSa done',
      'kernel installOutboundSa start', 'kernel installOutboundSa done',
      'feedback action-failed',
      'kernel deleteInboundSa start', 'kernel deleteInboundSa done',
      'send delete notify',
      'send after',
    ]);
  });

  it('counters come back as a kernel event', async () => {
    const { log, queue } = recorder();
    await queue.submit(() => [kernel('queryCounters')]);
    expect(log).toContain('feedback counters');
  });

  it('an engine exception or a failing sink is reported and does not stop later inputs', async () => {
    const { log, queue } = recorder();
    await queue.submit(() => { throw new Error('boom'); });
    await queue.submit(() => [{ kind: 'bogus' } as unknown as Action, send('still')]);
    expect(log[0]).toBe('error engine input: boom');
    expect(log[1]).toMatch(/^error action bogus: unknown action kind bogus/);
    expect(log[2]).toBe('send still');
  });

  it('after close() queued inputs are dropped', async () => {
    const { log, queue } = recorder({ kernelDelay: 10 });
    const a = queue.submit(() => [kernel('installPolicies')]);
    const b = queue.submit(() => [send('late')]);
    queue.close();
    await Promise.all([a, b]);
    expect(log).toEqual([]);
  });
});
