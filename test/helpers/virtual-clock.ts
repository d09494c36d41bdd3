// A virtual monotonic clock for sans-IO engine tests: named timers per owner, fired in time order.
// Re-arming a timer with the same id replaces it (the engine's `timer` action semantics).

export interface DueTimer {
  owner: string;
  id: string;
  at: number;
}

export class VirtualClock {
  now: number;
  private readonly timers = new Map<string, Map<string, number>>();

  constructor(start = 1_000_000) {
    this.now = start;
  }

  arm(owner: string, id: string, at: number): void {
    let m = this.timers.get(owner);
    if (!m) this.timers.set(owner, (m = new Map()));
    m.set(id, at);
  }

  cancel(owner: string, id: string): void {
    this.timers.get(owner)?.delete(id);
  }

  /** Armed timer ids of one owner (for assertions on timer naming and leaks). */
  armed(owner: string): Map<string, number> {
    return new Map(this.timers.get(owner) ?? []);
  }

  /** The earliest armed timer, if any. */
  next(): DueTimer | undefined {
    let best: DueTimer | undefined;
    for (const [owner, m] of this.timers) for (const [id, at] of m) if (!best || at < best.at) best = { owner, id, at };
    return best;
  }

  /** Remove and return a due timer (the caller fires it). */
  take(t: DueTimer): void {
    if (this.timers.get(t.owner)?.get(t.id) === t.at) this.timers.get(t.owner)!.delete(t.id);
  }

  /** Move forward; time never goes backwards. */
  advanceTo(at: number): void {
    if (at > this.now) this.now = at;
  }
}
