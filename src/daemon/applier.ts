// Carries out the engine's Action[] strictly in order. Every engine input goes
// through one serial queue: the engine call happens when its turn comes, and its
// actions are applied (each kernel action awaited) before the next input is given
// to the engine. So the kernel always reflects the engine's decisions in the order
// they were made, and e.g. an inbound SA is installed before the response that
// makes it usable is sent.
import type { Action, EngineEvent, Endpoint, KernelAction, KernelEventInput } from '../ike/engine/actions.js';

export interface ActionSinks {
  send(local: Endpoint, remote: Endpoint, data: Buffer): void;
  armTimer(id: string, at: number): void;
  cancelTimer(id: string): void;
  /** Applies one kernel action; returns what to feed back to the engine (counters, action-failed). Never throws. */
  kernel(action: KernelAction): Promise<KernelEventInput | undefined>;
  event(event: EngineEvent): void;
  /** Feeds a kernel result back into the engine; returns its actions. */
  feedback(ev: KernelEventInput): Action[];
  /** Something went wrong carrying out an action (logged, never fatal). */
  error(err: unknown, what: string): void;
}

export class ActionQueue {
  private tail: Promise<void> = Promise.resolve();
  private depth = 0;
  private closed = false;

  constructor(private readonly sinks: ActionSinks) {}

  /**
   * Queue an engine input: `produce` runs when every earlier input's actions are done,
   * and the actions it returns are carried out before the next input. Resolves when done.
   */
  submit(produce: () => Action[]): Promise<void> {
    const run = async () => {
      if (this.closed) return;
      let actions: Action[];
      try {
        actions = produce();
      } catch (e) {
        this.sinks.error(e, 'engine input');
        return;
      }
      await this.apply(actions);
    };
    this.depth++;
    const p = this.tail.then(run).finally(() => this.depth--);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Inputs queued or running. */
  get pending(): number {
    return this.depth;
  }

  /** Resolves when everything queued so far is done. */
  drain(): Promise<void> {
    return this.tail;
  }

  /** Stop taking inputs (queued ones are dropped once their turn comes). */
  close(): void {
    this.closed = true;
  }

  /** Carries out one batch in order; kernel results feed back into the engine and their actions run next. */
  private async apply(actions: Action[]): Promise<void> {
    for (const a of actions) {
      try {
        switch (a.kind) {
          case 'send':
            this.sinks.send(a.local, a.remote, a.data);
            break;
          case 'timer':
            this.sinks.armTimer(a.id, a.at);
            break;
          case 'cancelTimer':
            this.sinks.cancelTimer(a.id);
            break;
          case 'event':
            this.sinks.event(a.event);
            break;
          case 'kernel': {
            const result = await this.sinks.kernel(a.action);
            if (result) {
              let more: Action[] = [];
              try {
                more = this.sinks.feedback(result);
              } catch (e) {
                this.sinks.error(e, 'engine kernel event');
              }
              // The engine's reaction (e.g. a rollback after action-failed) comes before the
              // rest of this batch, which the engine planned without knowing the result.
              await this.apply(more);
            }
            break;
          }
          default: {
            const never: never = a;
            throw new TypeError(`unknown action kind ${(never as { kind: string }).kind}`);
          }
        }
      } catch (e) {
        this.sinks.error(e, `action ${a.kind}`);
      }
    }
  }
}
