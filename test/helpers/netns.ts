// Network namespace test bed: fresh uniquely named namespaces, veth links
// with IPv4/IPv6 addresses, commands inside a namespace, ping floods, and a
// probe for an ESP-capable kernel. Every namespace made here is deleted by
// Netns.delete() / cleanupAllNetns() (also on process exit).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let counter = 0;
const live = new Set<Netns>();

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export class Netns {
  readonly path: string;
  private deleted = false;

  constructor(readonly name: string) {
    this.path = `/var/run/netns/${name}`;
  }

  /** Runs argv inside the namespace; rejects with stderr on a non-zero exit. */
  async exec(argv: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    try {
      const r = await execFileP('ip', ['netns', 'exec', this.name, ...argv], {
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return { stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const err = e as Error & { stderr?: string; stdout?: string; code?: number };
      throw Object.assign(new Error(`[${this.name}] ${argv.join(' ')} failed: ${err.stderr?.trim() || err.message}`), {
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
        exitCode: err.code,
      });
    }
  }

  /** Runs a shell command line inside the namespace. */
  sh(cmd: string, opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return this.exec(['sh', '-c', cmd], opts);
  }

  /** Starts a long-running process inside the namespace. */
  spawn(argv: string[], opts: { stdio?: 'pipe' | 'inherit' } = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: opts.stdio ?? 'pipe' });
  }

  async delete(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    live.delete(this);
    try {
      await execFileP('ip', ['netns', 'del', this.name]);
    } catch {
      // already gone
    }
  }
}

/** Creates a fresh namespace with `lo` up. */
export async function createNetns(prefix = 'ikev2d'): Promise<Netns> {
  const name = `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 6)}`;
  await execFileP('ip', ['netns', 'add', name]);
  const ns = new Netns(name);
  live.add(ns);
  await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
  return ns;
}

export interface VethEnd {
  ns: Netns;
  /** Interface name inside ns (default veth0, veth1, ...). */
  ifname?: string;
  /** "addr/prefix" for IPv4 and IPv6 (IPv6 gets `nodad` so it is usable at once). */
  v4?: string;
  v6?: string;
}

let vethCounter = 0;

/** A veth pair between two namespaces, both ends up with their addresses. */
export async function connectVeth(a: VethEnd, b: VethEnd): Promise<{ a: string; b: string }> {
  const n = ++vethCounter;
  const tmpA = `vt${process.pid % 100000}a${n}`;
  const tmpB = `vt${process.pid % 100000}b${n}`;
  const ifA = a.ifname ?? 'veth0';
  const ifB = b.ifname ?? 'veth0';
  await execFileP('ip', ['link', 'add', tmpA, 'netns', a.ns.name, 'type', 'veth', 'peer', 'name', tmpB, 'netns', b.ns.name]);
  for (const [end, tmp, ifn] of [[a, tmpA, ifA], [b, tmpB, ifB]] as const) {
    await end.ns.exec(['ip', 'link', 'set', tmp, 'name', ifn]);
    if (end.v4) await end.ns.exec(['ip', 'addr', 'add', end.v4, 'dev', ifn]);
    if (end.v6) await end.ns.exec(['ip', '-6', 'addr', 'add', end.v6, 'dev', ifn, 'nodad']);
    await end.ns.exec(['ip', 'link', 'set', ifn, 'up']);
  }
  return { a: ifA, b: ifB };
}

/** Adds an address to `lo` (an "inner" host address behind a tunnel endpoint). */
export async function addLoopbackAddress(ns: Netns, cidr: string): Promise<void> {
  const v6 = cidr.includes(':');
  await ns.exec(['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', 'lo', ...(v6 ? ['nodad'] : [])]);
}

export async function addRoute(ns: Netns, dst: string, dev: string, src?: string): Promise<void> {
  const v6 = dst.includes(':');
  await ns.exec(['ip', ...(v6 ? ['-6'] : []), 'route', 'add', dst, 'dev', dev, ...(src ? ['src', src] : [])]);
}

export interface PingResult {
  transmitted: number;
  received: number;
  output: string;
}

/** ping from inside ns; never rejects on loss (inspect the counts). */
export async function ping(
  ns: Netns,
  dst: string,
  opts: { count?: number; intervalS?: number; src?: string; timeoutS?: number; size?: number } = {},
): Promise<PingResult> {
  const argv = ['ping', '-n', '-q', '-c', String(opts.count ?? 3), '-i', String(opts.intervalS ?? 0.2), '-W', String(opts.timeoutS ?? 2)];
  if (opts.src) argv.push('-I', opts.src);
  if (opts.size !== undefined) argv.push('-s', String(opts.size));
  argv.push(dst);
  let output: string;
  try {
    output = (await ns.exec(argv, { timeoutMs: 120_000 })).stdout;
  } catch (e) {
    output = (e as { stdout?: string }).stdout ?? '';
  }
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  return { transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output };
}

/**
 * A fast ping stream (count packets, `intervalS` apart, default 10 ms; root may
 * go below 200 ms) for loss checks; same result shape as ping().
 */
export function pingFlood(
  ns: Netns,
  dst: string,
  opts: { count?: number; intervalS?: number; src?: string; size?: number } = {},
): Promise<PingResult> {
  return ping(ns, dst, { count: opts.count ?? 500, intervalS: opts.intervalS ?? 0.01, timeoutS: 2, ...(opts.src ? { src: opts.src } : {}), ...(opts.size !== undefined ? { size: opts.size } : {}) });
}

/** Deletes every namespace this process created and has not deleted yet. */
export async function cleanupAllNetns(): Promise<void> {
  await Promise.all([...live].map((ns) => ns.delete()));
}

process.once('exit', () => {
  for (const ns of live) {
    try {
      execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  }
});

let espProbe: Promise<boolean> | undefined;

/**
 * Whether this kernel can hold ESP SAs (esp4 + AES-GCM): tries `ip xfrm state
 * add ... proto esp` in a throw-away namespace. False when not root.
 */
export function kernelHasEsp(): Promise<boolean> {
  espProbe ??= (async () => {
    if (!isRoot() || !haveCommand('ip') || !existsSync('/proc/net')) return false;
    let ns: Netns | undefined;
    try {
      ns = await createNetns('espprobe');
      await ns.exec(['ip', 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x1000',
        'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', '0x' + '11'.repeat(20), '128']);
      return true;
    } catch {
      return false;
    } finally {
      await ns?.delete();
    }
  })();
  return espProbe;
}

/** Whether namespaces can be made here at all (root + iproute2). */
export function canMakeNetns(): boolean {
  return isRoot() && haveCommand('ip');
}
