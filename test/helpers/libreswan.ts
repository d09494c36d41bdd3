// Libreswan (pluto) as an IKEv2 peer in a network namespace (interop and baseline tests).
//
// Debian cannot co-install libreswan and strongSwan, so scripts/prepare-libreswan.sh unpacks
// libreswan's .deb under the test-bed cache ($TESTBED_CACHE/libreswan/root) and installs only
// its libraries. Every path pluto would take from /etc, /run or /var/lib is given on its
// command line (--config --rundir --nssdir --secretsfile --ipsecdir, dumpdir=), so each
// instance lives in a private directory. Two details:
//  - pluto execs helpers (addconn, _updown) by their compiled-in /usr/libexec/ipsec path:
//    with the unpacked copy, pluto runs in a private mount namespace where a tmpfs on
//    /usr/libexec holds a link to the copy (nothing changes on the host).
//  - `keyexchange=ikev2` is rejected by 4.10: `ikev2=insist`. leftupdown=%disabled, so
//    pluto installs no route: the caller routes the remote subnet (see the baseline test).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureStderr, PeerProcess, run, tail, testRunDir, type CommandResult } from './peer-process.js';

/** Root of the unpacked libreswan ('' = installed natively under /usr/libexec/ipsec). */
export function libreswanRoot(): string | null {
  const candidates = [
    process.env.LIBRESWAN_ROOT,
    join(process.env.TESTBED_CACHE ?? '/var/cache/ike-testbed', 'libreswan', 'root'),
  ].filter((p): p is string => !!p);
  for (const root of candidates) if (existsSync(join(root, 'usr/libexec/ipsec/pluto'))) return root;
  if (existsSync('/usr/libexec/ipsec/pluto')) return '';
  return null;
}

/** null when Libreswan can be used here, else why not (for a loud SKIPPED). */
export function libreswanUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (libreswanRoot() === null) return 'no pluto: run scripts/prepare-libreswan.sh (as root) first';
  if (!existsSync('/usr/bin/certutil')) return 'certutil missing (apt-get install libnss3-tools)';
  return null;
}

/** One IKEv2 PSK connection in ipsec.conf terms ("left" = this side). Times in seconds. */
export interface LibreswanConfig {
  /** Connection name, default 'net'. */
  name?: string;
  left: string;
  right: string;
  leftId: string;
  rightId?: string;
  psk: string;
  leftSubnet: string;
  rightSubnet: string;
  /** Libreswan syntax, default 'aes_gcm128-sha2_256-dh19'. */
  ike?: string;
  /** Default 'aes_gcm128'. */
  esp?: string;
  /** PFS for Child SAs created by CREATE_CHILD_SA; default false. */
  pfs?: boolean;
  type?: 'tunnel' | 'transport';
  ikeLifetime?: number;
  ipsecLifetime?: number;
  rekeyMargin?: number;
  /** Percent, default 0 here (predictable rekeys). */
  rekeyFuzz?: number;
  rekey?: boolean;
  auto?: 'add' | 'start' | 'ondemand';
  dpdDelay?: number;
  dpdTimeout?: number;
  encapsulation?: 'yes' | 'no' | 'auto';
  fragmentation?: 'yes' | 'no' | 'force';
  /** Post-quantum preshared key (ipsec.secrets `PPKS`); mode is conn `ppk=` (default 'propose'). */
  ppk?: { id: string; secret: string; mode?: 'propose' | 'insist' | 'no' };
  /** plutodebug=, default 'none' ('all' is verbose). */
  plutoDebug?: string;
  /** Raw lines added to the conn section. */
  extra?: string[];
}

export interface LibreswanState {
  serial: number;
  connection: string;
  /** e.g. STATE_V2_ESTABLISHED_IKE_SA, STATE_V2_ESTABLISHED_CHILD_SA */
  state: string;
  kind: 'ike' | 'child';
  /** For a Child SA: the serial of its IKE SA. */
  ikeSerial?: number;
  /** For a Child SA: ESP SPIs (8 hex digits, no 0x), outbound then inbound. */
  espSpis: string[];
  line: string;
}

export interface LibreswanTraffic {
  serial: number;
  connection: string;
  inBytes: number;
  outBytes: number;
  id: string;
}

export class LibreswanError extends Error {}

function confValue(s: string): string {
  if (/["\n]/.test(s)) throw new LibreswanError(`libreswan config: value ${JSON.stringify(s)} contains a quote or newline`);
  return /\s/.test(s) ? `"${s}"` : s;
}

export function ipsecConf(dir: string, c: LibreswanConfig): string {
  const name = c.name ?? 'net';
  const conn: [string, string | number | undefined][] = [
    ['ikev2', 'insist'],
    ['authby', 'secret'],
    ['type', c.type ?? 'tunnel'],
    ['left', c.left],
    ['leftid', confValue(c.leftId)],
    ['leftsubnet', c.leftSubnet],
    ['right', c.right],
    ['rightid', c.rightId !== undefined ? confValue(c.rightId) : undefined],
    ['rightsubnet', c.rightSubnet],
    ['ike', c.ike ?? 'aes_gcm128-sha2_256-dh19'],
    ['esp', c.esp ?? 'aes_gcm128'],
    ['pfs', c.pfs ? 'yes' : 'no'],
    ['ikelifetime', c.ikeLifetime !== undefined ? `${c.ikeLifetime}s` : undefined],
    ['salifetime', c.ipsecLifetime !== undefined ? `${c.ipsecLifetime}s` : undefined],
    ['rekeymargin', c.rekeyMargin !== undefined ? `${c.rekeyMargin}s` : undefined],
    ['rekeyfuzz', `${c.rekeyFuzz ?? 0}%`],
    ['rekey', c.rekey === undefined ? undefined : c.rekey ? 'yes' : 'no'],
    ['dpddelay', c.dpdDelay !== undefined ? `${c.dpdDelay}s` : undefined],
    ['dpdtimeout', c.dpdTimeout !== undefined ? `${c.dpdTimeout}s` : undefined],
    ['encapsulation', c.encapsulation],
    ['fragmentation', c.fragmentation],
    ['ppk', c.ppk ? c.ppk.mode ?? 'propose' : undefined],
    ['leftupdown', '%disabled'],
    ['auto', c.auto ?? 'add'],
  ];
  return [
    'config setup',
    `\tlogfile=${dir}/pluto.log`,
    '\tlogappend=no',
    '\tlogtime=yes',
    `\tplutodebug=${c.plutoDebug ?? 'none'}`,
    '\tdnssec-enable=no',
    `\tdumpdir=${dir}/run`,
    '',
    `conn ${name}`,
    ...conn.filter(([, v]) => v !== undefined).map(([k, v]) => `\t${k}=${v}`),
    ...(c.extra ?? []).map((l) => `\t${l}`),
    '',
  ].join('\n');
}

/** `whack --showstates` -> IKE and Child SA states (with the ESP SPIs of Child SAs). */
export function parseShowStates(text: string): LibreswanState[] {
  const states = new Map<number, LibreswanState>();
  for (const line of text.split('\n')) {
    // 000 #2: "net":500 STATE_V2_ESTABLISHED_CHILD_SA (...); REKEY in 28524s; ...; IKE SA #1; idle;
    let m = line.match(/#(\d+): "([^"]+)"(?::\d+)?(?:\[\d+\])? (STATE_\w+)/);
    if (m) {
      const serial = Number(m[1]);
      const state = m[3]!;
      const ikeSa = line.match(/IKE SA #(\d+)/);
      const kind = /CHILD_SA|V2_IPSEC/.test(state) || ikeSa ? 'child' : 'ike';
      states.set(serial, {
        serial,
        connection: m[2]!,
        state,
        kind,
        ...(ikeSa ? { ikeSerial: Number(ikeSa[1]) } : {}),
        espSpis: states.get(serial)?.espSpis ?? [],
        line: line.trim(),
      });
      continue;
    }
    // 000 #2: "net" esp.c39b4f56@192.0.2.1 esp.c197321e@192.0.2.2 tun.0@... Traffic: ...
    m = line.match(/#(\d+): "([^"]+)"(?:\[\d+\])? (.*\besp\.[0-9a-f]+@.*)$/);
    if (m) {
      const serial = Number(m[1]);
      // pluto prints SPIs without leading zeros (esp.885f782@...): 8 hex digits, as everywhere else
      const spis = [...m[3]!.matchAll(/\besp\.([0-9a-f]+)@/g)].map((x) => x[1]!.padStart(8, '0'));
      const s = states.get(serial);
      if (s) s.espSpis = spis;
      else states.set(serial, { serial, connection: m[2]!, state: '', kind: 'child', espSpis: spis, line: line.trim() });
    }
  }
  return [...states.values()].sort((a, b) => a.serial - b.serial);
}

/** `whack --trafficstatus` lines. */
export function parseTrafficStatus(text: string): LibreswanTraffic[] {
  const out: LibreswanTraffic[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/#(\d+): "([^"]+)"(?:\[\d+\])?,.*\binBytes=(\d+), outBytes=(\d+)(?:.*\bid='([^']*)')?/);
    if (m) out.push({ serial: Number(m[1]), connection: m[2]!, inBytes: Number(m[3]), outBytes: Number(m[4]), id: m[5] ?? '' });
  }
  return out;
}

export class Libreswan extends PeerProcess {
  readonly name: string;

  constructor(
    netns: string,
    dir: string,
    readonly config: LibreswanConfig,
    readonly root: string,
    proc: ChildProcess,
    keepDir: boolean,
  ) {
    super(netns, dir, proc, keepDir);
    this.name = config.name ?? 'net';
  }

  protected get daemonName(): string {
    return 'pluto';
  }
  protected error(message: string): Error {
    return new LibreswanError(message);
  }

  get ctlSocket(): string {
    return join(this.dir, 'run', 'pluto.ctl');
  }
  get logFile(): string {
    return join(this.dir, 'pluto.log');
  }
  private bin(name: string): string {
    return join(this.root, 'usr/libexec/ipsec', name);
  }

  /** Run whack against this instance. */
  whack(args: string[], timeoutMs = 90_000): Promise<CommandResult> {
    return run(this.bin('whack'), ['--ctlsocket', this.ctlSocket, ...args], { timeoutMs });
  }

  private async must(args: string[], what: string, ok?: RegExp, timeoutMs?: number): Promise<string> {
    const r = await this.whack(args, timeoutMs);
    const out = r.stdout + r.stderr;
    if (r.code !== 0 || (ok && !ok.test(out))) {
      throw new LibreswanError(`Libreswan (${this.netns}) ${what} failed (whack exit ${r.code}):\n${out}\n--- pluto.log (tail) ---\n${tail(this.log(), 40)}`);
    }
    return out;
  }

  /** Add the connection from ipsec.conf and start listening (done by startLibreswan). */
  async load(): Promise<void> {
    const r = await run('ip', ['netns', 'exec', this.netns, this.bin('addconn'), '--config', join(this.dir, 'ipsec.conf'), '--ctlsocket', this.ctlSocket, this.name]);
    if (r.code !== 0) throw new LibreswanError(`addconn ${this.name} failed (exit ${r.code}):\n${r.stdout}${r.stderr}\n${tail(this.log(), 40)}`);
    await this.must(['--listen'], 'listen');
  }

  /** Initiate the connection and wait for the IKE SA + Child SA; throws unless established. */
  async initiate(timeoutSec = 60): Promise<string> {
    return this.must(['--name', this.name, '--initiate'], 'initiate', /established Child SA|STATE_V2_ESTABLISHED_CHILD_SA|IPsec SA established/, timeoutSec * 1000);
  }

  async rekey(what: 'ike' | 'child'): Promise<void> {
    await this.must(['--name', this.name, what === 'ike' ? '--rekey-ike' : '--rekey-ipsec'], `rekey ${what}`);
  }

  async terminate(): Promise<void> {
    await this.must(['--name', this.name, '--terminate'], 'terminate');
  }

  async listSas(): Promise<LibreswanState[]> {
    return parseShowStates(await this.must(['--showstates'], 'showstates'));
  }

  async trafficStatus(): Promise<LibreswanTraffic[]> {
    return parseTrafficStatus(await this.must(['--trafficstatus'], 'trafficstatus'));
  }

  /** whack --shutdown, then SIGTERM/SIGKILL if needed; removes the work directory. */
  stop(): Promise<void> {
    return this.stopProcess(() => (existsSync(this.ctlSocket) ? this.whack(['--shutdown'], 15_000) : Promise.resolve()), 5_000, 15_000);
  }
}

/** Start pluto in `netns` (which must exist and have the addresses) with `config` added. */
export async function startLibreswan(netns: string, config: LibreswanConfig, opts: { dir?: string; startTimeoutMs?: number } = {}): Promise<Libreswan> {
  const why = libreswanUnavailable();
  if (why) throw new LibreswanError(`Libreswan unavailable: ${why}`);
  const root = libreswanRoot()!;
  const dir = opts.dir ?? mkdtempSync(join(testRunDir(), `ikev2d-libreswan-${netns}-`));
  for (const d of ['run', 'nss', 'ipsec.d']) mkdirSync(join(dir, d), { recursive: true });
  if (join(dir, 'run', 'pluto.ctl').length > 100) throw new LibreswanError(`libreswan: path too long for a Unix socket: ${dir}`);
  const nss = await run('certutil', ['-N', '-d', `sql:${join(dir, 'nss')}`, '--empty-password']);
  if (nss.code !== 0) throw new LibreswanError(`certutil -N failed: ${nss.stdout}${nss.stderr}`);
  writeFileSync(join(dir, 'ipsec.conf'), ipsecConf(dir, config));
  const ids = [confValue(config.leftId), config.rightId !== undefined ? confValue(config.rightId) : '%any'].join(' ');
  const secrets = [`${ids} : PSK "${config.psk.replace(/"/g, '')}"`];
  if (config.ppk) secrets.push(`${ids} : PPKS "${config.ppk.id.replace(/"/g, '')}" "${config.ppk.secret.replace(/"/g, '')}"`);
  writeFileSync(join(dir, 'ipsec.secrets'), `${secrets.join('\n')}\n`, { mode: 0o600 });
  const pluto = join(root, 'usr/libexec/ipsec/pluto');
  const plutoArgs = [
    '--nofork',
    '--config', join(dir, 'ipsec.conf'),
    '--rundir', join(dir, 'run'),
    '--nssdir', join(dir, 'nss'),
    '--secretsfile', join(dir, 'ipsec.secrets'),
    '--ipsecdir', join(dir, 'ipsec.d'),
    '--no-dnssec',
  ];
  const argv =
    root === ''
      ? ['netns', 'exec', netns, pluto, ...plutoArgs]
      : [
          'netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c',
          'mount -t tmpfs -o mode=0755 ikev2d-libexec /usr/libexec && ln -s "$0" /usr/libexec/ipsec && exec "$@"',
          join(root, 'usr/libexec/ipsec'), pluto, ...plutoArgs,
        ];
  const proc = spawn('ip', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = captureStderr(proc);
  const ls = new Libreswan(netns, dir, config, root, proc, opts.dir !== undefined);
  await ls.waitForSocket(ls.ctlSocket, stderr, opts.startTimeoutMs ?? 60_000);
  try {
    await ls.load();
  } catch (e) {
    await ls.stop();
    throw e;
  }
  return ls;
}
