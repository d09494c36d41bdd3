// End-to-end harness: ikev2d (the compiled dist/) in network namespaces, its control
// socket, topologies, kernel state inspection, ping floods and TCP streams.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectVeth, createNetns, isRoot, kernelHasEsp, type Netns } from '../helpers/netns.js';
import { afterEach, expect } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { controlRequest } from '../../src/daemon/control.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const IKEV2D = join(ROOT, 'dist', 'cli', 'ikev2d.js');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Why the e2e suite cannot run here, or null. */
export async function e2eUnavailable(): Promise<string | null> {
  if (!isRoot()) return 'needs root (network namespaces, XFRM)';
  if (!(await kernelHasEsp())) return 'kernel cannot carry ESP (run inside scripts/vm-run, as npm test does)';
  if (!existsSync(IKEV2D)) return `${IKEV2D} missing: run npm run build`;
  if (!existsSync(join(ROOT, 'dist', 'ike', 'engine', 'engine.js'))) return 'the protocol engine (dist/ike/engine/engine.js) is not built';
  if (!existsSync(join(ROOT, 'build', 'Release', 'xfrm.node'))) return 'XFRM addon not built (npm run build:native)';
  return null;
}

/** Work directory off the repository (QEMU's 9p share refuses Unix sockets). */
export function runDir(tag: string): string {
  const base = existsSync('/run') ? '/run' : tmpdir();
  return mkdtempSync(join(base, `ikev2d-e2e-${tag}-`));
}

export interface SaView {
  ikeSaId: string;
  connection: string;
  state: string;
  initiator: boolean;
  spiI: string;
  spiR: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  natDetected: { local: boolean; remote: boolean };
  /** The negotiated IKE algorithms, e.g. "AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519+ML-KEM-768". */
  suite: string;
  children: { childId: number; name: string; state: string; spiIn: number; spiOut: number; counters?: { packetsIn: number; packetsOut: number } }[];
}

export class Ikev2d {
  readonly output: string[] = [];
  exitCode: number | null = null;
  private readonly exited: Promise<number>;

  constructor(
    readonly ns: Netns,
    readonly dir: string,
    readonly configPath: string,
    readonly proc: ChildProcess,
  ) {
    const collect = (d: Buffer) => this.output.push(...d.toString().split('\n').filter(Boolean));
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    this.exited = new Promise((r) => proc.once('exit', (code, sig) => r((this.exitCode = code ?? (sig ? 128 : 1)))));
  }

  get socket(): string {
    return join(this.dir, 'ctl.sock');
  }

  /**
   * A ctl command straight over the control socket (the same protocol `ikev2d ctl` speaks;
   * spawning the CLI per poll costs seconds in the VM). Arguments as on the ctl command line.
   */
  async ctl(...args: string[]): Promise<unknown> {
    const cli = parseArgs(['ctl', ...args]);
    if (cli.mode !== 'ctl') throw new Error(`not a ctl command: ${args.join(' ')}`);
    return controlRequest(this.socket, cli.cmd, cli.args);
  }

  /** `ikev2d ctl --json ...` through the CLI inside the namespace. */
  async ctlCli(...args: string[]): Promise<unknown> {
    const r = await this.ns.exec(['node', IKEV2D, 'ctl', '--socket', this.socket, '--json', ...args], { timeoutMs: 120_000 });
    return JSON.parse(r.stdout);
  }

  /** Human-readable `ikev2d ctl ...` output. */
  async ctlText(...args: string[]): Promise<string> {
    return (await this.ns.exec(['node', IKEV2D, 'ctl', '--socket', this.socket, ...args], { timeoutMs: 120_000 })).stdout;
  }

  listSas(): Promise<SaView[]> {
    return this.ctl('list-sas') as Promise<SaView[]>;
  }

  /** Polls list-sas until `pred` holds; throws with the log tail on timeout. */
  async waitFor(what: string, pred: (sas: SaView[]) => boolean, timeoutMs = 60_000): Promise<SaView[]> {
    const end = Date.now() + timeoutMs;
    let last: SaView[] = [];
    while (Date.now() < end) {
      if (this.exitCode !== null) throw new Error(`ikev2d in ${this.ns.name} exited (${this.exitCode}) while waiting for ${what}:\n${this.tail()}`);
      try {
        last = await this.listSas();
        if (pred(last)) return last;
      } catch {
        /* not answering yet */
      }
      await sleep(250);
    }
    throw new Error(`timeout waiting for ${what} in ${this.ns.name}; SAs: ${JSON.stringify(last)}\n${this.tail()}`);
  }

  waitChildren(n = 1, timeoutMs = 60_000): Promise<SaView[]> {
    return this.waitFor(`${n} installed Child SA(s)`, (s) => installedChildren(s).length >= n && s.some((x) => x.state === 'established'), timeoutMs);
  }

  tail(n = 40): string {
    return this.output.slice(-n).join('\n');
  }

  logged(re: RegExp): boolean {
    return this.output.some((l) => re.test(l));
  }

  /** Waits until a log line matches; throws with the log tail on timeout. */
  async waitLog(re: RegExp, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.logged(re)) {
      if (Date.now() > end) throw new Error(`timeout waiting for a log line matching ${re} in ${this.ns.name}:\n${this.tail()}`);
      if (this.exitCode !== null) throw new Error(`ikev2d in ${this.ns.name} exited (${this.exitCode}) while waiting for ${re}:\n${this.tail()}`);
      await sleep(200);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** SIGTERM and wait for the exit code (SIGKILL after timeoutMs). */
  async stop(timeoutMs = 30_000): Promise<number> {
    if (this.exitCode !== null) return this.exitCode;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  wait(): Promise<number> {
    return this.exited;
  }
}

export function installedChildren(sas: SaView[]) {
  return sas.flatMap((s) => s.children.filter((c) => c.state === 'installed'));
}

/**
 * Rekey the Child SA named `child` (default: the first installed one) `count` times, alternating the
 * gateway that starts each rekey, waiting each time until the new SA is installed and no rekey is
 * still in progress.
 */
export async function rekeyChildren(gateways: Ikev2d[], count: number, child?: string): Promise<void> {
  const seen = new Set<number>();
  const pick = (s: SaView[]) => installedChildren(s).filter((c) => child === undefined || c.name === child);
  for (let i = 0; i < count; i++) {
    const d = gateways[i % gateways.length]!;
    const before = pick(await d.listSas())[0];
    if (!before) throw new Error(`Child SA rekey ${i + 1}: no installed Child SA${child ? ` '${child}'` : ''}\n${d.tail()}`);
    seen.add(before.spiIn);
    await d.ctl('rekey', 'child', String(before.childId));
    await d.waitFor(`Child SA rekey ${i + 1}`, (s) => pick(s).some((c) => !seen.has(c.spiIn)) && !s.some((x) => x.children.some((c) => c.state === 'rekeying')), 60_000);
  }
}

/** Rekey the IKE SA `count` times, alternating the gateway that starts it; `children` Child SAs must follow. */
export async function rekeyIkeSas(gateways: Ikev2d[], count: number, children = 1): Promise<void> {
  for (let i = 0; i < count; i++) {
    const d = gateways[i % gateways.length]!;
    const old = (await d.listSas()).find((s) => s.state === 'established')!;
    await d.ctl('rekey', 'ike', old.ikeSaId);
    await d.waitFor(`IKE SA rekey ${i + 1}`, (s) => s.length === 1 && s[0]!.state === 'established' && s[0]!.ikeSaId !== old.ikeSaId && installedChildren(s).length === children, 60_000);
  }
}

export interface DaemonConfig {
  listen: string[];
  connections: string; // YAML of the connections map (indented by 2)
  extraDaemon?: string;
}

/** Writes the configuration and starts ikev2d in `ns`; resolves once its control socket answers. */
export async function startIkev2d(ns: Netns, name: string, cfg: DaemonConfig): Promise<Ikev2d> {
  const dir = runDir(name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const configPath = join(dir, 'ikev2d.yaml');
  writeFileSync(configPath, daemonYaml(dir, cfg), { mode: 0o600 });
  return launch(ns, dir, configPath);
}

export function daemonYaml(dir: string, cfg: DaemonConfig): string {
  return `daemon:
  control_socket: ${dir}/ctl.sock
  state_file: ${dir}/state.json
  listen: [${cfg.listen.map((a) => JSON.stringify(a)).join(', ')}]
  log_level: ${process.env.IKEV2D_E2E_LOG_LEVEL ?? 'debug'}
${cfg.extraDaemon ?? ''}connections:
${cfg.connections}`;
}

export async function launch(ns: Netns, dir: string, configPath: string, extraArgs: string[] = []): Promise<Ikev2d> {
  const proc = spawn('ip', ['netns', 'exec', ns.name, 'node', IKEV2D, '--config', configPath, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const d = new Ikev2d(ns, dir, configPath, proc);
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (d.exitCode !== null) throw new Error(`ikev2d in ${ns.name} exited (${d.exitCode}) at start:\n${d.tail()}`);
    if (existsSync(d.socket)) return d;
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`ikev2d in ${ns.name} did not open its control socket:\n${d.tail()}`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Connection YAML (indented under `connections:`). */
export function connectionYaml(o: {
  name?: string;
  local: string;
  remote: string;
  localId: string;
  remoteId: string;
  psk?: string;
  children: { name?: string; localTs: string[]; remoteTs: string[]; mode?: 'tunnel' | 'transport'; startAction?: 'start' | 'trap' | 'none'; rekeyTime?: string; closeAction?: string; esp?: string }[];
  ike?: string; // extra lines under ike: (indented 6)
  extra?: string; // extra lines at connection level (indented 4)
}): string {
  const children = o.children
    .map((c, i) => `      ${c.name ?? `net${i}`}:
        local_ts: [${c.localTs.join(', ')}]
        remote_ts: [${c.remoteTs.join(', ')}]
        esp_proposals: [${c.esp ?? 'aes256gcm16-x25519'}]
        mode: ${c.mode ?? 'tunnel'}
        start_action: ${c.startAction ?? 'none'}
${c.closeAction ? `        close_action: ${c.closeAction}\n` : ''}        rekey_time: ${c.rekeyTime ?? '1h'}
`)
    .join('');
  return `  ${o.name ?? 'conn'}:
    local: { addrs: ["${o.local}"], id: ${o.localId} }
    remote: { addrs: ["${o.remote}"], id: ${o.remoteId} }
    psk: "${o.psk ?? 'e2e-test-pre-shared-key-0123456789'}"
    ike:
      proposals: [aes256gcm16-prfsha384-x25519]
      rekey_time: 4h
      retransmit: { timeout: 6s, tries: 5 }
${o.ike ?? ''}${o.extra ?? ''}    children:
${children}`;
}

/** The options of connectionYaml, and of one of its Child SAs. */
export type ConnectionOptions = Parameters<typeof connectionYaml>[0];
export type ChildOptions = ConnectionOptions['children'][number];

/** gw-a initiates, gw-b responds. */
export type GatewaySide = 'a' | 'b';

export interface GatewaysOptions {
  /** gw-a's start_action of the `lan` Child SA (default start); gw-b's stays none. */
  startAction?: ChildOptions['startAction'];
  /** gw-a's close_action of the `lan` Child SA (default: none written). */
  closeAction?: ChildOptions['closeAction'];
  /** More options of the `lan` Child SA, on both gateways. */
  child?: Pick<ChildOptions, 'mode' | 'esp' | 'rekeyTime'>;
  /** Instead of the one `lan` Child SA: the Child SAs of each side, given its own LAN and the peer's. */
  children?: (side: GatewaySide, localLan: string, remoteLan: string) => ChildOptions[];
  /** Extra lines under ike: (indented 6), on both gateways. */
  ike?: string;
  /** Extra lines at connection level (indented 4), on both gateways. */
  extra?: string;
  /** Extra lines under daemon: (indented 2), on both gateways. */
  extraDaemon?: string;
  /** The connection YAML of a side from its options (default connectionYaml), e.g. other proposals. */
  yaml?: (side: GatewaySide, o: ConnectionOptions) => string;
}

/**
 * The configurations of gw-a and gw-b of a site: one connection `site` between gw-a.example and
 * gw-b.example (PSK); gw-b accepts gw-a from any address when a NAT sits between them.
 */
export function gatewayConfigs(site: Site, o: GatewaysOptions = {}): Record<GatewaySide, DaemonConfig> {
  const children = o.children ?? ((side: GatewaySide, localLan: string, remoteLan: string): ChildOptions[] => [
    {
      name: 'lan', localTs: [localLan], remoteTs: [remoteLan], ...o.child,
      ...(side === 'a' ? { startAction: o.startAction ?? 'start', ...(o.closeAction ? { closeAction: o.closeAction } : {}) } : {}),
    },
  ]);
  const config = (side: GatewaySide): DaemonConfig => {
    const [local, remote] = side === 'a' ? [site.gwAOuter, site.gwBOuter] : [site.gwBOuter, site.mid ? '%any' : site.gwAOuter];
    const [localLan, remoteLan] = side === 'a' ? [site.lanA, site.lanB] : [site.lanB, site.lanA];
    const [localId, remoteId] = side === 'a' ? ['gw-a.example', 'gw-b.example'] : ['gw-b.example', 'gw-a.example'];
    const conn: ConnectionOptions = {
      name: 'site', local, remote, localId, remoteId, children: children(side, localLan, remoteLan),
      ...(o.ike ? { ike: o.ike } : {}), ...(o.extra ? { extra: o.extra } : {}),
    };
    return {
      listen: [local],
      ...(o.extraDaemon ? { extraDaemon: o.extraDaemon } : {}),
      connections: o.yaml ? o.yaml(side, conn) : connectionYaml(conn),
    };
  };
  return { a: config('a'), b: config('b') };
}

/**
 * Starts gw-b (responder) and then gw-a (initiator) of a site with gatewayConfigs; each daemon goes
 * onto `daemons` (cleanupAfterEach's list) as soon as it runs. The site's namespaces are the caller's.
 */
export async function startGateways(site: Site, daemons: Ikev2d[], o: GatewaysOptions = {}): Promise<{ a: Ikev2d; b: Ikev2d }> {
  const cfg = gatewayConfigs(site, o);
  const b = await startIkev2d(site.gwB, 'gwb', cfg.b);
  daemons.push(b);
  const a = await startIkev2d(site.gwA, 'gwa', cfg.a);
  daemons.push(a);
  return { a, b };
}

export interface Site {
  hostA: Netns;
  gwA: Netns;
  gwB: Netns;
  hostB: Netns;
  mid?: Netns;
  all: Netns[];
  /** Outer addresses of the gateways (as each sees itself) and inner host addresses. */
  gwAOuter: string;
  gwBOuter: string;
  hostAAddr: string;
  hostBAddr: string;
  lanA: string;
  lanB: string;
}

async function forward(ns: Netns): Promise<void> {
  await ns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await ns.exec(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
}

/**
 * host-a -- gw-a == gw-b -- host-b, IPv4 or IPv6; with `nat`, a middle namespace masquerades
 * gw-a's traffic (gw-a sits behind a NAT, only gw-b's address is public). `wanMtu` sets the MTU
 * of the gateways' outer links (both ends; with `nat`, also the middle namespace's).
 */
export async function siteToSite(o: { v6?: boolean; nat?: boolean; wanMtu?: number } = {}): Promise<Site> {
  const [hostA, gwA, gwB, hostB] = [await createNetns('hosta'), await createNetns('gwa'), await createNetns('gwb'), await createNetns('hostb')];
  const all = [hostA, gwA, gwB, hostB];
  const v6 = o.v6 === true;
  const a = (v4: string, v6a: string) => (v6 ? v6a : v4);
  const lanA = a('10.1.0.0/24', 'fd00:a::/64');
  const lanB = a('10.2.0.0/24', 'fd00:b::/64');
  const hostAAddr = a('10.1.0.10', 'fd00:a::10');
  const hostBAddr = a('10.2.0.10', 'fd00:b::10');
  const gwALan = a('10.1.0.1', 'fd00:a::1');
  const gwBLan = a('10.2.0.1', 'fd00:b::1');
  const plen = v6 ? 64 : 24;
  const end = (ns: Netns, ifname: string, addr: string) => (v6 ? { ns, ifname, v6: `${addr}/${plen}` } : { ns, ifname, v4: `${addr}/${plen}` });
  await connectVeth(end(hostA, 'eth0', hostAAddr), end(gwA, 'lan', gwALan));
  await connectVeth(end(gwB, 'lan', gwBLan), end(hostB, 'eth0', hostBAddr));
  const ipf = v6 ? ['-6'] : [];
  await hostA.exec(['ip', ...ipf, 'route', 'add', 'default', 'via', gwALan]);
  await hostB.exec(['ip', ...ipf, 'route', 'add', 'default', 'via', gwBLan]);
  await forward(gwA);
  await forward(gwB);
  let gwAOuter: string, gwBOuter: string, mid: Netns | undefined;
  if (!o.nat) {
    gwAOuter = a('192.0.2.1', 'fd00:2::1');
    gwBOuter = a('192.0.2.2', 'fd00:2::2');
    await connectVeth(end(gwA, 'wan', gwAOuter), end(gwB, 'wan', gwBOuter));
    // the inner destination must be routable for the XFRM lookup to happen at all
    await gwA.exec(['ip', ...ipf, 'route', 'add', lanB, 'via', gwBOuter]);
    await gwB.exec(['ip', ...ipf, 'route', 'add', lanA, 'via', gwAOuter]);
  } else {
    if (v6) throw new Error('NAT topology is IPv4 only');
    mid = await createNetns('nat');
    all.push(mid);
    gwAOuter = '172.16.0.2';
    gwBOuter = '198.51.100.2';
    await connectVeth({ ns: gwA, ifname: 'wan', v4: '172.16.0.2/24' }, { ns: mid, ifname: 'inside', v4: '172.16.0.1/24' });
    await connectVeth({ ns: mid, ifname: 'outside', v4: '198.51.100.1/24' }, { ns: gwB, ifname: 'wan', v4: '198.51.100.2/24' });
    await gwA.exec(['ip', 'route', 'add', 'default', 'via', '172.16.0.1']);
    await gwB.exec(['ip', 'route', 'add', lanA, 'via', '198.51.100.1']);
    await forward(mid);
    await mid.sh('nft add table ip nat && nft add chain ip nat post "{ type nat hook postrouting priority 100; }" && nft add rule ip nat post oifname outside masquerade');
  }
  if (o.wanMtu !== undefined) {
    await gwA.exec(['ip', 'link', 'set', 'wan', 'mtu', String(o.wanMtu)]);
    await gwB.exec(['ip', 'link', 'set', 'wan', 'mtu', String(o.wanMtu)]);
    if (mid) for (const ifname of ['inside', 'outside']) await mid.exec(['ip', 'link', 'set', ifname, 'mtu', String(o.wanMtu)]);
  }
  return { hostA, gwA, gwB, hostB, mid, all, gwAOuter, gwBOuter, hostAAddr, hostBAddr, lanA, lanB };
}

/**
 * Counts of XFRM SAs and policies in a namespace (socket policies excluded). Larval SAs the
 * kernel itself creates for an ACQUIRE (SPI 0, expiring after net.core.xfrm_acq_expires) are
 * counted apart: no daemon installs them and none can delete them by SPI.
 */
/** SIGTERM both gateways (each must exit 0), then neither gateway's kernel holds an SA or a policy. */
export async function stopGatewaysCleanly(site: Site, a: Ikev2d, b: Ikev2d): Promise<void> {
  expect(await a.stop()).toBe(0);
  expect(await b.stop()).toBe(0);
  for (const ns of [site.gwA, site.gwB]) {
    const k = await kernelCounts(ns);
    expect(k.sas, k.text).toBe(0);
    expect(k.policies, k.text).toBe(0);
  }
}

export async function kernelCounts(ns: Netns): Promise<{ sas: number; larval: number; policies: number; text: string }> {
  const s = (await ns.exec(['ip', 'xfrm', 'state'])).stdout;
  const p = (await ns.exec(['ip', 'xfrm', 'policy'])).stdout;
  const policies = p.split('\n').filter((l) => /^src /.test(l)).length;
  const spis = [...s.matchAll(/proto esp spi (0x[0-9a-f]+)/g)].map((m) => Number(m[1]));
  return { sas: spis.filter((x) => x !== 0).length, larval: spis.filter((x) => x === 0).length, policies, text: `${s}\n${p}` };
}

/** Total ESP packets through the kernel SAs of a namespace (proves traffic used ESP). */
export async function espPackets(ns: Netns): Promise<number> {
  const out = (await ns.exec(['ip', '-s', 'xfrm', 'state'])).stdout;
  let n = 0;
  for (const m of out.matchAll(/(\d+)\(bytes\), (\d+)\(packets\)/g)) n += Number(m[2]);
  return n;
}

/** A background ping; stop() resolves with transmitted/received. */
export function startPing(ns: Netns, dst: string, intervalS = 0.02): { stop(): Promise<{ transmitted: number; received: number; output: string }> } {
  const proc = ns.spawn(['ping', '-n', '-q', '-i', String(intervalS), '-W', '5', dst]);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return {
    async stop() {
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      // `ip netns exec` execs ping in place: SIGINT makes it print its summary
      proc.kill('SIGINT');
      await Promise.race([done, sleep(10_000)]);
      const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
      return { transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output: out };
    },
  };
}

/** A TCP stream of `bytes` from `from` to `toAddr` in `to`; returns whether what arrived equals what was sent. */
export async function tcpStream(from: Netns, to: Netns, toAddr: string, bytes = 2_000_000): Promise<{ sent: string; received: string }> {
  const tool = join(ROOT, 'test', 'e2e', 'tcp-stream.mjs');
  const port = String(5000 + Math.floor(Math.random() * 1000));
  const server = to.spawn(['node', tool, 'server', toAddr.includes(':') ? '::' : '0.0.0.0', port]);
  let sout = '';
  server.stdout?.on('data', (d: Buffer) => (sout += d.toString()));
  for (let i = 0; i < 100 && !sout.includes('listening'); i++) await sleep(100);
  const client = await from.exec(['node', tool, 'client', toAddr, port, String(bytes)], { timeoutMs: 120_000 });
  const end = Date.now() + 60_000;
  while (Date.now() < end && sout.trim().split('\n').length < 2) await sleep(100);
  server.kill();
  return { sent: client.stdout.trim(), received: sout.trim().split('\n').pop() ?? '' };
}

/**
 * What a test started (daemons, namespaces), stopped and removed after each test whatever its
 * outcome: push onto the returned lists. `before` runs first (e.g. stopping a peer daemon).
 */
export function cleanupAfterEach(before?: () => Promise<void>): { daemons: Ikev2d[]; namespaces: Netns[] } {
  const daemons: Ikev2d[] = [];
  const namespaces: Netns[] = [];
  afterEach(async () => {
    if (before) await before();
    for (const d of daemons.splice(0)) {
      await d.stop().catch(() => undefined);
      removeDir(d.dir);
    }
    for (const ns of namespaces.splice(0)) await ns.delete();
  });
  return { daemons, namespaces };
}
