import { describe, expect, it } from 'vitest';
import { TimerTable, type Scheduler } from '../../../src/daemon/timers.js';

/** A hand-driven clock: advance() fires due callbacks in time order. */
class FakeScheduler implements Scheduler {
  t = 1000;
  private seq = 0;
  private readonly q = new Map<number, { at: number; fn: () => void }>();
  now() { return this.t; }
  setTimeout(fn: () => void, ms: number) { const h = ++this.seq; this.q.set(h, { at: this.t + ms, fn }); return h; }
  clearTimeout(h: unknown) { this.q.delete(h as number); }
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.q].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.q.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
  }
  get armed() { return this.q.size; }
}

describe('TimerTable', () => {
  it('fires named timers at their absolute time, in order', () => {
    const s = new FakeScheduler();
    const fired: [string, number][] = [];
    const t = new TimerTable((id, now) => fired.push([id, now]), s);
    t.arm('retransmit', 1500);
    t.arm('dpd', 1200);
    s.advance(199);
    expect(fired).toEqual([]);
    s.advance(1);
    expect(fired).toEqual([['dpd', 1200]]);
    s.advance(1000);
    expect(fired).toEqual([['dpd', 1200], ['retransmit', 1500]]);
    expect(t.pending()).toEqual([]);
  });

  it('re-arming a name replaces the earlier deadline; cancel stops it', () => {
    const s = new FakeScheduler();
    const fired: string[] = [];
    const t = new TimerTable((id) => fired.push(id), s);
    t.arm('rekey', 1100);
    t.arm('rekey', 3000);
    expect(t.pending()).toEqual([{ id: 'rekey', at: 3000 }]);
    s.advance(500);
    expect(fired).toEqual([]);
    t.arm('x', 1600);
    expect(t.cancel('x')).toBe(true);
    expect(t.cancel('x')).toBe(false);
    s.advance(5000);
    expect(fired).toEqual(['rekey']);
    expect(s.armed).toBe(0);
  });

  it('a deadline in the past fires on the next turn', () => {
    const s = new FakeScheduler();
    const fired: string[] = [];
    const t = new TimerTable((id) => fired.push(id), s);
    t.arm('late', 10);
    s.advance(0);
    expect(fired).toEqual(['late']);
  });

  it('timers longer than the 2^31-1 ms setTimeout limit step towards their deadline', () => {
    const s = new FakeScheduler();
    const fired: string[] = [];
    const t = new TimerTable((id) => fired.push(id), s);
    const at = 1000 + 30 * 24 * 3600 * 1000; // 30 days
    t.arm('ike-lifetime', at);
    s.advance(0x7fffffff);
    expect(fired).toEqual([]);
    expect(t.pending()).toEqual([{ id: 'ike-lifetime', at }]);
    s.advance(at - s.t);
    expect(fired).toEqual(['ike-lifetime']);
  });

  it('cancelAll clears everything', () => {
    const s = new FakeScheduler();
    const t = new TimerTable(() => { throw new Error('must not fire'); }, s);
    t.arm('a', 2000);
    t.arm('b', 3000);
    t.cancelAll();
    s.advance(10_000);
    expect(t.pending()).toEqual([]);
  });
});
