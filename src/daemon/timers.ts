// Named one-shot timers for the engine's `timer`/`cancelTimer` actions, against a
// monotonic clock (performance.now() by default). Re-arming a name replaces it.
// The scheduler is injectable so tests can drive time by hand.

export interface Scheduler {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Node clamps setTimeout delays above 2^31-1 ms to 1 ms; longer timers re-arm in steps. */
const MAX_DELAY = 0x7fffffff;

export class TimerTable {
  private readonly timers = new Map<string, { at: number; handle: unknown }>();

  constructor(
    private readonly onFire: (id: string, now: number) => void,
    private readonly sched: Scheduler = realScheduler,
  ) {}

  now(): number {
    return this.sched.now();
  }

  /** Arm (or re-arm) `id` to fire at absolute clock time `at` (ms). */
  arm(id: string, at: number): void {
    this.cancel(id);
    this.schedule(id, at);
  }

  private schedule(id: string, at: number): void {
    const delay = Math.max(0, Math.min(MAX_DELAY, at - this.sched.now()));
    const handle = this.sched.setTimeout(() => {
      const entry = this.timers.get(id);
      if (!entry || entry.handle !== handle) return; // cancelled or re-armed meanwhile
      const now = this.sched.now();
      if (now < entry.at) {
        // a long timer stepping towards its deadline, or a scheduler firing early
        this.schedule(id, entry.at);
        return;
      }
      this.timers.delete(id);
      this.onFire(id, now);
    }, delay);
    this.timers.set(id, { at, handle });
  }

  cancel(id: string): boolean {
    const entry = this.timers.get(id);
    if (!entry) return false;
    this.sched.clearTimeout(entry.handle);
    this.timers.delete(id);
    return true;
  }

  cancelAll(): void {
    for (const id of [...this.timers.keys()]) this.cancel(id);
  }

  /** Armed timers and their deadlines (for diagnostics and tests). */
  pending(): { id: string; at: number }[] {
    return [...this.timers].map(([id, t]) => ({ id, at: t.at })).sort((a, b) => a.at - b.at);
  }
}
