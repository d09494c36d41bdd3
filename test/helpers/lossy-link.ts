// A datagram link between two hosts for in-process engine tests: seeded loss, duplication,
// reordering delay, a hard cut, and an optional NAT in front of one host that rewrites its
// source address/port (and can re-map them, as a NAT that lost its state does).
import type { Endpoint } from '../../src/ike/engine/actions.js';

export type Host = 'a' | 'b';

export interface InFlight {
  at: number;
  to: Host;
  data: Buffer;
  /** As seen by the receiver: its own address (local) and the sender's (remote). */
  local: Endpoint;
  remote: Endpoint;
}

export interface LinkOptions {
  seed?: number;
  latencyMs?: number;
  /** Drop every Nth datagram (deterministic), 0 = off. */
  dropEvery?: number;
  /** Probability of loss per datagram (seeded), 0..1. */
  lossRate?: number;
  /** Probability that a datagram is delivered twice. */
  duplicateRate?: number;
  /** Extra random delay up to this many ms (reorders datagrams). */
  jitterMs?: number;
}

/** NAT in front of host `inside`: its packets appear from `publicAddress` and a mapped port. */
export interface NatOptions {
  inside: Host;
  publicAddress: string;
  /** Private port -> public port. */
  portMap: Map<number, number>;
}

export class LossyLink {
  readonly opts: Required<LinkOptions>;
  cut = false;
  nat: NatOptions | undefined;
  sent = 0;
  lost = 0;
  private seed: number;
  private queue: InFlight[] = [];

  constructor(opts: LinkOptions = {}) {
    this.opts = { seed: 1, latencyMs: 5, dropEvery: 0, lossRate: 0, duplicateRate: 0, jitterMs: 0, ...opts };
    this.seed = this.opts.seed >>> 0 || 1;
  }

  random(): number {
    // xorshift32: reproducible runs for a given seed.
    let x = this.seed;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.seed = x;
    return x / 0x100000000;
  }

  /** Targeted loss: datagrams for which this returns true are dropped. */
  dropIf: ((from: Host, data: Buffer) => boolean) | undefined;

  /** Host `from` sends `data` from its `local` to `remote` at time `now`. */
  send(now: number, from: Host, local: Endpoint, remote: Endpoint, data: Buffer): void {
    this.sent++;
    if (this.cut || this.dropIf?.(from, data)) return void this.lost++;
    const o = this.opts;
    if ((o.dropEvery && this.sent % o.dropEvery === 0) || (o.lossRate && this.random() < o.lossRate)) return void this.lost++;
    const to: Host = from === 'a' ? 'b' : 'a';
    let src = { ...local };
    let dst = { ...remote };
    if (this.nat) {
      if (this.nat.inside === from) {
        src = { address: this.nat.publicAddress, port: this.mapPort(local.port) };
      } else if (remote.address === this.nat.publicAddress) {
        // Towards the NAT: only mapped ports get through, translated back to the private ones.
        const privatePort = [...this.nat.portMap].find(([, pub]) => pub === remote.port)?.[0];
        if (privatePort === undefined) return void this.lost++;
        dst = { address: this.privateAddressOf(to, remote), port: privatePort };
      }
    }
    const at = now + o.latencyMs + (o.jitterMs ? Math.floor(this.random() * o.jitterMs) : 0);
    // Bytes are copied: the sender may reuse its buffers, the receiver must not see later mutation.
    const item: InFlight = { at, to, data: Buffer.from(data), local: dst, remote: src };
    this.queue.push(item);
    if (o.duplicateRate && this.random() < o.duplicateRate) this.queue.push({ ...item, at: at + 1 + Math.floor(this.random() * 3), data: Buffer.from(data) });
  }

  /** The private address of the host behind the NAT is whatever the harness registered. */
  privateAddresses: Partial<Record<Host, string>> = {};

  private privateAddressOf(host: Host, fallback: Endpoint): string {
    return this.privateAddresses[host] ?? fallback.address;
  }

  private mapPort(privatePort: number): number {
    const nat = this.nat!;
    let pub = nat.portMap.get(privatePort);
    if (pub === undefined) {
      pub = 30000 + nat.portMap.size * 1111 + (privatePort % 100);
      nat.portMap.set(privatePort, pub);
    }
    return pub;
  }

  nextAt(): number | undefined {
    let best: number | undefined;
    for (const p of this.queue) if (best === undefined || p.at < best) best = p.at;
    return best;
  }

  /** Remove and return the earliest datagram due at or before `now`. */
  pop(now: number): InFlight | undefined {
    let idx = -1;
    for (let i = 0; i < this.queue.length; i++) if (this.queue[i]!.at <= now && (idx < 0 || this.queue[i]!.at < this.queue[idx]!.at)) idx = i;
    if (idx < 0) return undefined;
    return this.queue.splice(idx, 1)[0];
  }

  get inFlight(): number {
    return this.queue.length;
  }
}
