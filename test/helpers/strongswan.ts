// strongSwan as an IKEv2 peer in a network namespace (interop and baseline tests).
//
// One charon per namespace, fully isolated from the host's configuration:
//  - charon-systemd, not /usr/lib/ipsec/charon: the classic daemon hard-codes
//    /var/run/charon.pid, so two of them on one machine clash; charon-systemd writes no
//    pid file and runs fine without systemd (sd_notify is a no-op without NOTIFY_SOCKET).
//  - STRONGSWAN_CONF points charon and swanctl at a private strongswan.conf: own vici
//    socket, own log file; swanctl loads a generated swanctl.conf from the same directory.
//  - The work directory must not live on a 9p share (inside scripts/vm-run the current
//    directory is one): QEMU refuses Unix sockets there. It defaults to /run (a fresh
//    tmpfs) inside the VM and to the OS temp directory elsewhere.
// Needs root, `ip`, charon-systemd, strongswan-swanctl and libstrongswan-standard-plugins
// (openssl, gcm); .ci/run installs them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureStderr, PeerProcess, run, tail, testRunDir, type CommandResult } from './peer-process.js';

export { run, sleep, tail, testRunDir, type CommandResult } from './peer-process.js';

export const CHARON = process.env.IKEV2D_CHARON ?? '/usr/sbin/charon-systemd';
export const SWANCTL = process.env.IKEV2D_SWANCTL ?? '/usr/sbin/swanctl';

/**
 * Plugins charon loads: crypto from OpenSSL (AES-GCM/CBC, ChaCha20-Poly1305, ECP, X25519/X448,
 * MODP, SHA-1/2), strongSwan's own as fallbacks, and the kernel/socket/vici plumbing.
 */
export const DEFAULT_PLUGINS = [
  'random', 'nonce', 'openssl', 'aes', 'sha1', 'sha2', 'hmac', 'kdf', 'gcm', 'chapoly', 'curve25519',
  'x509', 'revocation', 'constraints', 'pubkey', 'pkcs1', 'pkcs7', 'pkcs8', 'pkcs12', 'pem',
  'drbg', 'kernel-netlink', 'socket-default', 'vici', 'updown', 'counters',
];

/** A Child SA (swanctl.conf `children.<name>`). Times in seconds. */
export interface StrongswanChildConfig {
  name: string;
  localTs: string[];
  remoteTs: string[];
  /** strongSwan ESP proposals, e.g. ['aes128gcm16-ecp256'] (with a KE method = PFS). Default ['aes128gcm16']. */
  espProposals?: string[];
  mode?: 'tunnel' | 'transport';
  rekeyTime?: number;
  lifeTime?: number;
  /** Jitter subtracted from rekeyTime; default 0 here (tests want predictable rekeys). */
  randTime?: number;
  rekeyBytes?: number;
  rekeyPackets?: number;
  startAction?: 'none' | 'trap' | 'start';
  closeAction?: 'none' | 'trap' | 'start';
  dpdAction?: 'clear' | 'trap' | 'restart';
  replayWindow?: number;
  /** Raw lines added to this child's section. */
  extra?: string[];
}

/** This side's certificate for `auth: 'pubkey'` (PEM). */
export interface StrongswanCert {
  certPem: string;
  /** Unencrypted private key, PKCS#8 or PKCS#1/SEC1 PEM. */
  keyPem: string;
}

/** A post-quantum preshared key (RFC 8784). */
export interface StrongswanPpk {
  /** PPK_ID as text (strongSwan sends it as PPK_ID_FIXED). */
  id: string;
  /** The key: "0x..." hex, or text. */
  secret: string;
  /** Refuse SAs without a PPK (ppk_required). Default false. */
  required?: boolean;
}

/** One IKE connection (swanctl.conf `connections.<name>`), PSK or certificate auth. Times in seconds. */
export interface StrongswanConfig {
  /** Connection name, default 'net'. */
  name?: string;
  localAddrs: string[];
  remoteAddrs: string[];
  localId: string;
  /** Default: any identity. */
  remoteId?: string;
  /** Pre-shared key; required with auth 'psk' (the default). */
  psk?: string;
  /** Default 'psk' (both directions). 'pubkey': this side signs with `cert`, the peer's chain must end in `caPem`. */
  auth?: 'psk' | 'pubkey';
  cert?: StrongswanCert;
  /** Trusted CA (and intermediate) certificates, PEM. */
  caPem?: string[];
  ppk?: StrongswanPpk;
  /** IKE proposals, default ['aes128gcm16-prfsha256-ecp256']. */
  proposals?: string[];
  children: StrongswanChildConfig[];
  rekeyTime?: number;
  reauthTime?: number;
  overTime?: number;
  /** IKE jitter, default 0. */
  randTime?: number;
  dpdDelay?: number;
  encap?: boolean;
  fragmentation?: 'yes' | 'no' | 'accept' | 'force';
  /** Default false (a peer in a fixed namespace has nothing to roam). */
  mobike?: boolean;
  /** UDP ports charon binds, default 500 and 4500. */
  port?: number;
  portNatT?: number;
  /** charon log levels per subsystem (-1..4); default { default: 1, ike: 2, knl: 2, cfg: 2 }. */
  logLevels?: Record<string, number>;
  /** Raw lines added to the connection's section. */
  extra?: string[];
  /** Raw lines added to the charon-systemd section of strongswan.conf. */
  charonExtra?: string[];
  /** charon plugins to load, default DEFAULT_PLUGINS. */
  plugins?: string[];
}

/** Parsed `swanctl --list-sas` tree: sections are objects, lists arrays, values strings. */
export type SwanctlNode = string | string[] | { [key: string]: SwanctlNode };

export interface StrongswanChildSa {
  /** The key in the IKE SA's child-sas section, e.g. "net-1". */
  key: string;
  name: string;
  uniqueId: number;
  reqid: number;
  state: string;
  mode: string;
  protocol: string;
  spiIn: string;
  spiOut: string;
  encrAlg: string;
  encrKeysize?: number;
  integAlg?: string;
  dhGroup?: string;
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
  localTs: string[];
  remoteTs: string[];
  raw: { [key: string]: SwanctlNode };
}

export interface StrongswanIkeSa {
  name: string;
  uniqueId: number;
  state: string;
  localHost: string;
  remoteHost: string;
  localId: string;
  remoteId: string;
  initiator: boolean;
  initiatorSpi: string;
  responderSpi: string;
  encrAlg: string;
  encrKeysize?: number;
  integAlg?: string;
  prfAlg: string;
  dhGroup: string;
  children: StrongswanChildSa[];
  raw: { [key: string]: SwanctlNode };
}

/** null when strongSwan can be used here, else why not (for a loud SKIPPED). */
export function strongswanUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(CHARON)) return `${CHARON} missing (apt-get install charon-systemd)`;
  if (!existsSync(SWANCTL)) return `${SWANCTL} missing (apt-get install strongswan-swanctl)`;
  if (!existsSync('/usr/lib/ipsec/plugins/libstrongswan-openssl.so'))
    return 'strongSwan openssl plugin missing (apt-get install libstrongswan-standard-plugins)';
  return null;
}

function quote(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`strongswan config: value ${JSON.stringify(s)} contains a quote, backslash or newline`);
  return `"${s}"`;
}

const secs = (n: number) => `${n}s`;

/** strongswan.conf for one instance (vici socket and log in `dir`). */
export function strongswanConf(dir: string, cfg: StrongswanConfig): string {
  const levels = { default: 1, ike: 2, knl: 2, cfg: 2, ...(cfg.logLevels ?? {}) };
  return `charon-systemd {
  # explicit plugin list, nothing from /etc/strongswan.d: af-alg alone probes dozens of
  # kernel crypto algorithms at start-up, each a module load (~40 s under TCG)
  load_modular = no
  load = ${(cfg.plugins ?? DEFAULT_PLUGINS).join(' ')}
  port = ${cfg.port ?? 500}
  port_nat_t = ${cfg.portNatT ?? 4500}
  plugins {
    vici {
      socket = unix://${dir}/charon.vici
    }
  }
  journal {
    default = -1
  }
  filelog {
    main {
      path = ${dir}/charon.log
      time_format = %T
      time_precision = ms
      # unbuffered: tests read the log while charon runs
      flush_line = yes
      ike_name = yes
${Object.entries(levels)
  .map(([k, v]) => `      ${k} = ${v}`)
  .join('\n')}
    }
  }
${(cfg.charonExtra ?? []).map((l) => `  ${l}`).join('\n')}
}
swanctl {
  socket = unix://${dir}/charon.vici
  # Debian's default list names plugins that are not installed
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey
}
`;
}

/** swanctl.conf for one PSK connection. */
export function swanctlConf(cfg: StrongswanConfig): string {
  const name = cfg.name ?? 'net';
  const lines: string[] = [];
  const kv = (indent: number, k: string, v: string | number | undefined) => {
    if (v !== undefined) lines.push(`${' '.repeat(indent)}${k} = ${v}`);
  };
  lines.push('connections {', `  ${name} {`);
  kv(4, 'version', 2);
  kv(4, 'local_addrs', cfg.localAddrs.join(','));
  kv(4, 'remote_addrs', cfg.remoteAddrs.join(','));
  kv(4, 'proposals', (cfg.proposals ?? ['aes128gcm16-prfsha256-ecp256']).join(','));
  if (cfg.rekeyTime !== undefined) kv(4, 'rekey_time', secs(cfg.rekeyTime));
  if (cfg.reauthTime !== undefined) kv(4, 'reauth_time', secs(cfg.reauthTime));
  if (cfg.overTime !== undefined) kv(4, 'over_time', secs(cfg.overTime));
  kv(4, 'rand_time', secs(cfg.randTime ?? 0));
  if (cfg.dpdDelay !== undefined) kv(4, 'dpd_delay', secs(cfg.dpdDelay));
  if (cfg.encap !== undefined) kv(4, 'encap', cfg.encap ? 'yes' : 'no');
  if (cfg.fragmentation !== undefined) kv(4, 'fragmentation', cfg.fragmentation);
  kv(4, 'mobike', cfg.mobike ? 'yes' : 'no');
  for (const l of cfg.extra ?? []) lines.push(`    ${l}`);
  const auth = cfg.auth ?? 'psk';
  if (cfg.ppk) {
    kv(4, 'ppk_id', quote(cfg.ppk.id));
    kv(4, 'ppk_required', cfg.ppk.required ? 'yes' : 'no');
  }
  lines.push('    local {', `      auth = ${auth}`, `      id = ${quote(cfg.localId)}`);
  if (auth === 'pubkey') lines.push('      certs = local.pem');
  lines.push('    }');
  lines.push('    remote {', `      auth = ${auth}`);
  if (cfg.remoteId !== undefined) lines.push(`      id = ${quote(cfg.remoteId)}`);
  lines.push('    }', '    children {');
  for (const c of cfg.children) {
    lines.push(`      ${c.name} {`);
    kv(8, 'local_ts', c.localTs.join(','));
    kv(8, 'remote_ts', c.remoteTs.join(','));
    kv(8, 'esp_proposals', (c.espProposals ?? ['aes128gcm16']).join(','));
    kv(8, 'mode', c.mode ?? 'tunnel');
    if (c.rekeyTime !== undefined) kv(8, 'rekey_time', secs(c.rekeyTime));
    if (c.lifeTime !== undefined) kv(8, 'life_time', secs(c.lifeTime));
    kv(8, 'rand_time', secs(c.randTime ?? 0));
    kv(8, 'rekey_bytes', c.rekeyBytes);
    kv(8, 'rekey_packets', c.rekeyPackets);
    kv(8, 'start_action', c.startAction ?? 'none');
    kv(8, 'close_action', c.closeAction);
    kv(8, 'dpd_action', c.dpdAction);
    kv(8, 'replay_window', c.replayWindow);
    for (const l of c.extra ?? []) lines.push(`        ${l}`);
    lines.push('      }');
  }
  lines.push('    }', '  }', '}');
  lines.push('secrets {');
  if (cfg.psk !== undefined) {
    lines.push('  ike-psk {', `    id-local = ${quote(cfg.localId)}`);
    if (cfg.remoteId !== undefined) lines.push(`    id-remote = ${quote(cfg.remoteId)}`);
    lines.push(`    secret = ${quote(cfg.psk)}`, '  }');
  }
  if (cfg.ppk) {
    const secret = /^0x[0-9a-fA-F]+$/.test(cfg.ppk.secret) ? cfg.ppk.secret : quote(cfg.ppk.secret);
    lines.push('  ppk-1 {', `    id = ${quote(cfg.ppk.id)}`, `    secret = ${secret}`, '  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * Parse `swanctl --pretty` output: `name {` ... `}`, `key = value`, `key = [` items `]`.
 * Returns the top-level sections in order (e.g. several "list-sa event" and a "list-sas reply").
 */
export function parseSwanctlPretty(text: string): { name: string; body: { [key: string]: SwanctlNode } }[] {
  const out: { name: string; body: { [key: string]: SwanctlNode } }[] = [];
  const stack: { [key: string]: SwanctlNode }[] = [];
  let list: string[] | null = null;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    if (list) {
      if (line === ']') list = null;
      else list.push(line);
      continue;
    }
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^(.*\S)\s*\{$/))) {
      const section: { [key: string]: SwanctlNode } = {};
      if (stack.length === 0) out.push({ name: m[1]!, body: section });
      else stack[stack.length - 1]![m[1]!] = section;
      stack.push(section);
    } else if (line === '}') {
      stack.pop();
    } else if ((m = line.match(/^(\S+) = \[$/)) && stack.length) {
      list = [];
      stack[stack.length - 1]![m[1]!] = list;
    } else if ((m = line.match(/^(\S+) = (.*)$/)) && stack.length) {
      stack[stack.length - 1]![m[1]!] = m[2]!;
    }
    // anything else (log lines of swanctl itself) is ignored
  }
  return out;
}

const str = (v: SwanctlNode | undefined): string => (typeof v === 'string' ? v : '');
const num = (v: SwanctlNode | undefined): number => (typeof v === 'string' && v !== '' ? Number(v) : 0);
const optNum = (v: SwanctlNode | undefined): number | undefined => (typeof v === 'string' ? Number(v) : undefined);
const optStr = (v: SwanctlNode | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: SwanctlNode | undefined): string[] => (Array.isArray(v) ? v : []);

/** Typed view of `swanctl --list-sas --pretty`. */
export function parseListSas(text: string): StrongswanIkeSa[] {
  const sas: StrongswanIkeSa[] = [];
  for (const top of parseSwanctlPretty(text)) {
    if (top.name !== 'list-sa event') continue;
    for (const [name, node] of Object.entries(top.body)) {
      if (typeof node !== 'object' || Array.isArray(node)) continue;
      const children: StrongswanChildSa[] = [];
      const cs = node['child-sas'];
      if (cs && typeof cs === 'object' && !Array.isArray(cs)) {
        for (const [key, c] of Object.entries(cs)) {
          if (typeof c !== 'object' || Array.isArray(c)) continue;
          children.push({
            key,
            name: str(c.name),
            uniqueId: num(c.uniqueid),
            reqid: num(c.reqid),
            state: str(c.state),
            mode: str(c.mode),
            protocol: str(c.protocol),
            spiIn: str(c['spi-in']),
            spiOut: str(c['spi-out']),
            encrAlg: str(c['encr-alg']),
            encrKeysize: optNum(c['encr-keysize']),
            integAlg: optStr(c['integ-alg']),
            dhGroup: optStr(c['dh-group']),
            bytesIn: num(c['bytes-in']),
            packetsIn: num(c['packets-in']),
            bytesOut: num(c['bytes-out']),
            packetsOut: num(c['packets-out']),
            localTs: list(c['local-ts']),
            remoteTs: list(c['remote-ts']),
            raw: c,
          });
        }
      }
      sas.push({
        name,
        uniqueId: num(node.uniqueid),
        state: str(node.state),
        localHost: str(node['local-host']),
        remoteHost: str(node['remote-host']),
        localId: str(node['local-id']),
        remoteId: str(node['remote-id']),
        initiator: str(node.initiator) === 'yes',
        initiatorSpi: str(node['initiator-spi']),
        responderSpi: str(node['responder-spi']),
        encrAlg: str(node['encr-alg']),
        encrKeysize: optNum(node['encr-keysize']),
        integAlg: optStr(node['integ-alg']),
        prfAlg: str(node['prf-alg']),
        dhGroup: str(node['dh-group']),
        children,
        raw: node,
      });
    }
  }
  return sas;
}

export class StrongswanError extends Error {}

export class Strongswan extends PeerProcess {
  readonly name: string;

  constructor(
    netns: string,
    dir: string,
    readonly config: StrongswanConfig,
    proc: ChildProcess,
    keepDir: boolean,
  ) {
    super(netns, dir, proc, keepDir);
    this.name = config.name ?? 'net';
  }

  protected get daemonName(): string {
    return 'charon';
  }
  protected error(message: string): Error {
    return new StrongswanError(message);
  }

  get confFile(): string {
    return join(this.dir, 'strongswan.conf');
  }
  get logFile(): string {
    return join(this.dir, 'charon.log');
  }
  get viciSocket(): string {
    return join(this.dir, 'charon.vici');
  }

  /** Run swanctl against this instance (vici is a Unix socket: no need to enter the netns). */
  swanctl(args: string[], timeoutMs = 90_000): Promise<CommandResult> {
    return run(SWANCTL, args, { env: { ...process.env, STRONGSWAN_CONF: this.confFile }, timeoutMs });
  }

  private async must(args: string[], what: string, timeoutMs?: number): Promise<string> {
    const r = await this.swanctl(args, timeoutMs);
    if (r.code !== 0) {
      throw new StrongswanError(
        `strongSwan (${this.netns}) ${what} failed (swanctl exit ${r.code}):\n${r.stdout}${r.stderr}\n--- charon.log (tail) ---\n${tail(this.log(), 40)}`,
      );
    }
    return r.stdout;
  }

  /** (Re)load swanctl.conf (connections and secrets). */
  async load(): Promise<void> {
    await this.must(['--load-all', '--file', join(this.dir, 'swanctl.conf')], 'load-all');
  }

  /** Initiate a Child SA (default: the first child) and wait until it is up; throws on failure. */
  async initiate(opts: { child?: string; timeoutSec?: number } = {}): Promise<string> {
    const child = opts.child ?? this.config.children[0]?.name;
    if (!child) throw new StrongswanError('strongswan initiate: the connection has no child');
    const t = opts.timeoutSec ?? 60;
    return this.must(['--initiate', '--child', child, '--timeout', String(t)], `initiate ${child}`, (t + 30) * 1000);
  }

  /** Rekey a Child SA (by config name) or the IKE SA; returns once the request is queued. */
  async rekey(opts: { child?: string; ike?: string; reauth?: boolean }): Promise<void> {
    const args = ['--rekey'];
    if (opts.child) args.push('--child', opts.child);
    else args.push('--ike', opts.ike ?? this.name);
    if (opts.reauth) args.push('--reauth');
    await this.must(args, 'rekey');
  }

  /** Close an IKE SA (with its children) or a single Child SA, waiting up to timeoutSec. */
  async terminate(opts: { child?: string; ike?: string; timeoutSec?: number } = {}): Promise<void> {
    const t = opts.timeoutSec ?? 30;
    const args = ['--terminate', '--timeout', String(t)];
    if (opts.child) args.push('--child', opts.child);
    else args.push('--ike', opts.ike ?? this.name);
    await this.must(args, 'terminate', (t + 30) * 1000);
  }

  async listSas(): Promise<StrongswanIkeSa[]> {
    return parseListSas(await this.must(['--list-sas', '--pretty'], 'list-sas'));
  }

  /** Stop charon (SIGTERM, then SIGKILL after 10 s) and remove the work directory. */
  stop(): Promise<void> {
    return this.stopProcess(undefined, 0, 10_000);
  }
}

/**
 * Start charon in `netns` (which must exist and have the addresses) with `config` loaded.
 * `dir`: work directory to use (created; kept after stop); default a fresh temp directory.
 */
export async function startStrongswan(netns: string, config: StrongswanConfig, opts: { dir?: string; startTimeoutMs?: number } = {}): Promise<Strongswan> {
  const why = strongswanUnavailable();
  if (why) throw new StrongswanError(`strongSwan unavailable: ${why}`);
  const dir = opts.dir ?? mkdtempSync(join(testRunDir(), `ikev2d-strongswan-${netns}-`));
  mkdirSync(dir, { recursive: true });
  if (join(dir, 'charon.vici').length > 100) throw new StrongswanError(`strongswan: path too long for a Unix socket: ${dir}`);
  // credential directories swanctl --load-all expects next to swanctl.conf
  for (const d of ['x509', 'x509ca', 'x509ocsp', 'x509aa', 'x509ac', 'x509crl', 'pubkey', 'private', 'rsa', 'ecdsa', 'bliss', 'pkcs8', 'pkcs12'])
    mkdirSync(join(dir, d), { recursive: true });
  if ((config.auth ?? 'psk') === 'psk' && config.psk === undefined) throw new StrongswanError('strongswan: auth psk needs `psk`');
  if (config.auth === 'pubkey') {
    if (!config.cert) throw new StrongswanError('strongswan: auth pubkey needs `cert`');
    writeFileSync(join(dir, 'x509', 'local.pem'), config.cert.certPem);
    writeFileSync(join(dir, 'private', 'local.pem'), config.cert.keyPem, { mode: 0o600 });
  }
  (config.caPem ?? []).forEach((pem, i) => writeFileSync(join(dir, 'x509ca', `ca-${i}.pem`), pem));
  writeFileSync(join(dir, 'strongswan.conf'), strongswanConf(dir, config));
  writeFileSync(join(dir, 'swanctl.conf'), swanctlConf(config), { mode: 0o600 });
  const proc = spawn('ip', ['netns', 'exec', netns, CHARON], {
    env: { ...process.env, STRONGSWAN_CONF: join(dir, 'strongswan.conf') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = captureStderr(proc);
  const sw = new Strongswan(netns, dir, config, proc, opts.dir !== undefined);
  await sw.waitForSocket(sw.viciSocket, stderr, opts.startTimeoutMs ?? 60_000);
  try {
    await sw.load();
  } catch (e) {
    await sw.stop();
    throw e;
  }
  return sw;
}
