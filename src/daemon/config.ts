// The operator's configuration: one YAML file (docs/config.md documents every key) validated into
// the engine's EngineConfig plus the daemon's own settings.
//
// Two passes, both collecting every problem instead of stopping at the first:
//  1. structure (zod): known keys only, value types, durations/sizes/booleans/proposals parsed;
//  2. meaning: defaults, files (secrets, certificates), cross-key rules (psk needed, lifetimes).
// Each problem becomes "<file>:<line>: <key.path>: <what was expected>"; secrets never appear.
import { createHash, createHmac, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import * as z from 'zod';
import {
  connectionIdentity,
  DEFAULT_CODE_POINTS,
  type ChildConfig,
  type CodePointConfig,
  type ConnectionConfig,
  type EngineConfig,
  type IdentityConfig,
  type LifetimeConfig,
  type PpkConfig,
  type ProposalConfig,
  type TrafficSelectorConfig,
  type VirtualIpConfig,
} from '../ike/config.js';
import { dnEqual, encodeIdentity, parseDnDer, parseDnText } from '../ike/crypto/id.js';
import { certSubjectDer } from '../ike/crypto/x509.js';
import { ConfigError, parseProposal, type ProposalKind } from '../ike/proposal.js';
import { parsePoolRange } from '../ike/engine/virtual-ip.js';

export const DEFAULT_CONFIG_PATH = '/etc/ikev2d/ikev2d.yaml';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Settings of the I/O shell (not the protocol engine). */
export interface DaemonSettings {
  /** Unix control socket for `ikev2d ctl` (root-only). */
  controlSocket: string;
  logLevel: LogLevel;
  /** Write IKE/ESP keys for Wireshark here (debugging only), or undefined. */
  keylogFile?: string;
  /** Local addresses to bind UDP sockets on. */
  listen: string[];
  /** IKE port (500) and NAT-T port (4500). */
  port: number;
  nattPort: number;
  /** Where installed SAs/policies are recorded, so a restart can remove stale ones. */
  stateFile: string;
  /** First reqid the daemon hands out to children configured with reqid 0. */
  reqidBase: number;
}

export interface LoadedConfig {
  file: string;
  engine: EngineConfig;
  daemon: DaemonSettings;
  /** Non-fatal findings, formatted like errors ("file:line: key: ..."). */
  warnings: string[];
}

/** One problem in the configuration file. */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the file could not be read at all. */
  line: number;
  /** Dotted key path, e.g. "connections.site-a-b.ike.rekey_time" ('' for the whole file). */
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}` : i.file;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/** Thrown by loadConfigFile/parseConfig with every problem found. */
export class ConfigLoadError extends Error {
  override name = 'ConfigLoadError';
  constructor(
    readonly issues: ConfigIssue[],
    readonly warnings: string[] = [],
  ) {
    super(issues.map(formatIssue).join('\n'));
  }
}

// ---------------------------------------------------------------------------
// Defaults (docs/config.md lists them with their meaning)

export const DEFAULTS = {
  controlSocket: '/run/ikev2d/ctl.sock',
  logLevel: 'info' as LogLevel,
  listen: ['0.0.0.0', '::'],
  port: 500,
  nattPort: 4500,
  stateFile: '/var/lib/ikev2d/state.json',
  reqidBase: 1000,
  cookieThreshold: 10,
  rekeyGraceTime: 10,
  /** Matches the default cookie_threshold: a peer with defaults answers without COOKIE round trips. */
  initiateLimit: 10,
  ike: {
    proposals: ['default'],
    rekeyTime: 4 * 3600,
    reauthTime: 0,
    dpdDelay: 0,
    dpdTimeout: 150,
    retransmit: { timeout: 4, base: 1.8, tries: 5 },
    /** Attempts to establish when the peer does not answer: 0 = until it does. */
    keyingtries: 0,
    fragmentSize: 1280,
    fragmentation: true,
    forceEncap: false,
    windowSize: 1,
  },
  child: {
    espProposals: ['default'],
    rekeyTime: 3600,
    mode: 'tunnel' as const,
    startAction: 'none' as const,
    closeAction: 'none' as const,
    replayWindow: 32,
  },
  /** rand_time defaults to this fraction of rekey_time, life_time to rekey_time * (1 + it). */
  jitterFraction: 0.1,
  optimizedRekey: true,
  childPfsInfo: true,
} as const;

// ---------------------------------------------------------------------------
// Value parsers (exported: the CLI and tests use them too). Each throws ConfigError.

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "30s", "4h", "1d", "1h30m", "500ms", or plain seconds (number or digits) -> seconds. */
export function parseDuration(v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isFinite(v) && v >= 0) return v;
    throw new ConfigError(`expected a duration like "4h", "30s" or a number of seconds >= 0`);
  }
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
    let total = 0;
    let consumed = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
      consumed = re.lastIndex;
    }
    if (consumed > 0 && consumed === s.length) return Math.round(total * 1000) / 1000;
  }
  throw new ConfigError(`expected a duration like "4h", "30s", "1d" or a number of seconds, got ${describe(v)}`);
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Byte counts: 1000, "500k", "100M", "1G", "1GB", "1GiB" (binary multiples). */
export function parseByteSize(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v.trim());
    if (m) {
      const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
      if (Number.isSafeInteger(n)) return n;
    }
  }
  throw new ConfigError(`expected a byte size like "1G", "500M", "64k" or a number of bytes, got ${describe(v)}`);
}

/** Packet counts: 1000000, "1M", "500k" (decimal multiples). */
export function parseCount(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = /^(\d+)\s*([kmg]?)$/i.exec(v.trim());
    if (m) {
      const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase()]!;
      const n = Number(m[1]) * mult;
      if (Number.isSafeInteger(n)) return n;
    }
  }
  throw new ConfigError(`expected a packet count like 1000000 or "1M", got ${describe(v)}`);
}

/** yes/no, true/false, on/off (YAML 1.2 reads yes/no as strings). */
export function parseBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'yes' || s === 'true' || s === 'on') return true;
    if (s === 'no' || s === 'false' || s === 'off') return false;
  }
  throw new ConfigError(`expected yes or no, got ${describe(v)}`);
}

/**
 * An IKE identity (RFC 7296 §3.5). Explicit prefixes: ipv4:, ipv6:, fqdn:, rfc822: (or email:),
 * dn:, keyid: (hex). Otherwise: an IP literal is ipv4/ipv6, "@name" is the FQDN "name", "@#hex" a
 * key id, a value with '=' a distinguished name, with '@' an RFC 822 address, else an FQDN.
 */
export function parseIdentity(v: unknown): IdentityConfig {
  const id = inferIdentity(v);
  if ((id.type === 'fqdn' || id.type === 'rfc822') && !/^[\x21-\x7e]+$/.test(id.value)) {
    throw new ConfigError(`identity "${id.value}" must be printable ASCII without blanks (write an internationalized name in its xn-- form)`);
  }
  // Encode it now, as IKE_AUTH will: a DN with an unknown attribute is a configuration error.
  try {
    encodeIdentity(id);
  } catch (e) {
    throw new ConfigError(`identity "${id.value}": ${(e as Error).message}`);
  }
  return id;
}

function inferIdentity(v: unknown): IdentityConfig {
  if (typeof v !== 'string' || v.trim() === '') {
    throw new ConfigError(`expected an identity like "gw.example", "192.0.2.1", "user@example", "CN=gw, O=example" or "keyid:0a1b", got ${describe(v)}`);
  }
  const s = v.trim();
  const prefix = /^(ipv4|ipv6|fqdn|rfc822|email|dn|keyid):(.*)$/i.exec(s);
  if (prefix) {
    const kind = prefix[1]!.toLowerCase();
    const value = prefix[2]!.trim();
    if (value === '') throw new ConfigError(`empty identity after "${prefix[1]}:"`);
    switch (kind) {
      case 'ipv4':
        if (isIP(value) !== 4) throw new ConfigError(`"${value}" is not an IPv4 address`);
        return { type: 'ipv4', value };
      case 'ipv6':
        if (isIP(value) !== 6) throw new ConfigError(`"${value}" is not an IPv6 address`);
        return { type: 'ipv6', value };
      case 'fqdn':
        return { type: 'fqdn', value };
      case 'rfc822':
      case 'email':
        return { type: 'rfc822', value };
      case 'dn':
        if (!value.includes('=')) throw new ConfigError(`"${value}" is not a distinguished name like "C=CH, O=example, CN=gw"`);
        return { type: 'dn', value };
      default:
        return { type: 'keyid', value: parseKeyId(value) };
    }
  }
  const ipVersion = isIP(s);
  if (ipVersion === 4) return { type: 'ipv4', value: s };
  if (ipVersion === 6) return { type: 'ipv6', value: s };
  if (s.startsWith('@#')) return { type: 'keyid', value: parseKeyId(s.slice(2)) };
  if (s.startsWith('@') && !s.slice(1).includes('@')) {
    if (s.length === 1) throw new ConfigError(`empty FQDN identity "@"`);
    return { type: 'fqdn', value: s.slice(1) };
  }
  if (s.includes('=')) return { type: 'dn', value: s };
  if (s.includes('@')) return { type: 'rfc822', value: s };
  return { type: 'fqdn', value: s };
}

function parseKeyId(hex: string): string {
  const h = hex.replace(/^0x/i, '').replace(/:/g, '').toLowerCase();
  if (h === '' || h.length % 2 !== 0 || !/^[0-9a-f]+$/.test(h)) throw new ConfigError(`key id "${hex}" must be an even number of hex digits`);
  return h;
}

const PROTOCOLS: Record<string, number> = { any: 0, icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, 'ipv6-icmp': 58, sctp: 132 };

/**
 * A traffic selector: "10.1.0.0/16", "10.1.0.5", "10.1.0.1-10.1.0.9", optionally followed by
 * "[proto]" or "[proto/port]" / "[proto/lo-hi]" ("10.1.0.0/16[tcp/443]", "0.0.0.0/0[udp]").
 */
export function parseTrafficSelector(v: unknown): TrafficSelectorConfig {
  if (typeof v !== 'string' || v.trim() === '') {
    throw new ConfigError(`expected a traffic selector like "10.1.0.0/16" or "10.1.0.0/16[tcp/443]", got ${describe(v)}`);
  }
  const s = v.trim();
  const m = /^([^[\]]+?)(?:\[([^\]]*)\])?$/.exec(s);
  if (!m) throw new ConfigError(`"${s}" is not a traffic selector like "10.1.0.0/16" or "10.1.0.0/16[tcp/443]"`);
  const addr = m[1]!.trim();
  checkSelectorAddress(addr);
  let protocol = 0;
  let startPort = 0;
  let endPort = 65535;
  if (m[2] !== undefined) {
    const [protoText, portText, extra] = m[2].split('/').map((x) => x.trim());
    if (extra !== undefined) throw new ConfigError(`"${s}": expected [proto] or [proto/port] after the address`);
    const p = protoText!.toLowerCase();
    if (p === '' || p === '%any') protocol = 0;
    else if (p in PROTOCOLS) protocol = PROTOCOLS[p]!;
    else if (/^\d+$/.test(p) && Number(p) <= 255) protocol = Number(p);
    else throw new ConfigError(`unknown protocol "${protoText}" in "${s}": expected tcp, udp, icmp, icmpv6, sctp, gre or a number 0-255`);
    if (portText !== undefined && portText !== '' && portText !== '%any') {
      const pm = /^(\d+)(?:-(\d+))?$/.exec(portText);
      const lo = pm ? Number(pm[1]) : NaN;
      const hi = pm ? Number(pm[2] ?? pm[1]) : NaN;
      if (!pm || lo > 65535 || hi > 65535 || lo > hi) {
        throw new ConfigError(`invalid port "${portText}" in "${s}": expected a port 0-65535 or a range like 1000-2000`);
      }
      if (protocol === 0) throw new ConfigError(`a port in "${s}" needs a protocol, like [tcp/${portText}]`);
      startPort = lo;
      endPort = hi;
    }
  }
  return { cidr: addr, protocol, startPort, endPort };
}

function checkSelectorAddress(addr: string): void {
  const range = /^([^-\s]+)\s*-\s*([^-\s]+)$/.exec(addr);
  if (range) {
    const a = isIP(range[1]!);
    const b = isIP(range[2]!);
    if (a === 0 || b === 0 || a !== b) throw new ConfigError(`"${addr}" is not an address range like "10.1.0.1-10.1.0.9" (same family both ends)`);
    return;
  }
  const [ip, len, extra] = addr.split('/');
  const family = isIP(ip!);
  if (family === 0 || extra !== undefined) throw new ConfigError(`"${addr}" is not an address or CIDR like "10.1.0.0/16"`);
  if (len !== undefined) {
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(len) || Number(len) > max) throw new ConfigError(`invalid prefix length "/${len}" in "${addr}" (0-${max})`);
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

// ---------------------------------------------------------------------------
// Structure (pass 1)

type Ctx = { issues: { code: 'custom'; message: string; input: unknown }[] };

/** A leaf parsed by one of the value parsers; their ConfigError text becomes the issue. */
function leaf<T>(parse: (v: unknown) => T) {
  return z.unknown().transform((v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      (ctx as unknown as Ctx).issues.push({ code: 'custom', message: e instanceof ConfigError ? e.message : String(e), input: undefined });
      return z.NEVER;
    }
  });
}

function str(what: string) {
  return leaf((v) => {
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    throw new ConfigError(`expected ${what}, got ${describe(v)}`);
  });
}

/** A secret value: never echoed in messages. */
const secret = leaf((v) => {
  if (typeof v === 'string' && v !== '') return v;
  throw new ConfigError(`expected "file:/path/to/secret" (or an inline secret string; quote it)`);
});

function int(min: number, max: number, what = 'an integer') {
  return leaf((v) => {
    const n = typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v.trim()) ? Number(v.trim()) : v;
    if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return n;
    throw new ConfigError(`expected ${what} from ${min} to ${max}, got ${describe(v)}`);
  });
}

function oneOf<T extends string>(values: readonly T[]) {
  return leaf((v) => {
    if (typeof v === 'string' && (values as readonly string[]).includes(v.trim().toLowerCase())) return v.trim().toLowerCase() as T;
    throw new ConfigError(`expected one of ${values.join(', ')}, got ${describe(v)}`);
  });
}

/** A list, or a single value standing for a one-element list. Every bad item is reported. */
function listOf<T>(item: (v: unknown) => T, what: string) {
  return z.unknown().transform((v, ctx) => {
    const issues = (ctx as unknown as Ctx).issues;
    const items = Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
    if (items.length === 0) {
      issues.push({ code: 'custom', message: `expected ${what} (a value or a list), got an empty list`, input: undefined });
      return z.NEVER;
    }
    const out: T[] = [];
    let bad = false;
    items.forEach((x, i) => {
      try {
        out.push(item(x));
      } catch (e) {
        bad = true;
        const message = e instanceof ConfigError ? e.message : String(e);
        // "[i]: " is turned into a path element when the issue is reported.
        issues.push({ code: 'custom', message: Array.isArray(v) ? `[${i}]: ${message}` : message, input: undefined });
      }
    });
    return bad ? z.NEVER : out;
  });
}

function proposals(kind: ProposalKind) {
  return listOf((x) => {
    if (typeof x !== 'string') throw new ConfigError(`expected a proposal string like "${kind === 'ike' ? 'aes256gcm16-prfsha384-x25519' : 'aes256gcm16'}", got ${describe(x)}`);
    return parseProposal(x, kind);
  }, `${kind === 'ike' ? 'IKE' : 'ESP'} proposals`);
}

const duration = leaf(parseDuration);
const byteSize = leaf(parseByteSize);
const count = leaf(parseCount);
const bool = leaf(parseBool);

function obj<S extends z.ZodRawShape>(shape: S) {
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'invalid_type' ? `expected a mapping of ${Object.keys(shape).join(', ')}` : undefined),
  });
}

function addrEntry(allowAny: boolean) {
  return (x: unknown): string => {
    if (typeof x === 'string') {
      const s = x.trim();
      if (isIP(s) !== 0) return s;
      if (allowAny && s === '%any') return s;
    }
    throw new ConfigError(`expected an IPv4 or IPv6 address${allowAny ? ' (or %any)' : ''}, got ${describe(x)}`);
  };
}

const identity = leaf(parseIdentity);

/** An address pool for virtual IPs: "10.99.0.0/24", "10.99.0.10-10.99.0.20" or one address. */
export function parseAddressPool(v: unknown): string {
  if (typeof v === 'string' && v.trim() !== '') {
    try {
      parsePoolRange(v.trim());
      return v.trim();
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
  throw new ConfigError(`expected an address pool like "10.99.0.0/24", "10.99.0.10-10.99.0.20" or an address, got ${describe(v)}`);
}

const lifetimeShape = { rekey_time: duration.optional(), rand_time: duration.optional(), life_time: duration.optional() };

const localSchema = obj({
  addrs: listOf(addrEntry(false), 'local addresses').optional(),
  id: identity.optional(),
  auth: oneOf(['psk', 'pubkey'] as const).optional(),
  cert: listOf((x) => (typeof x === 'string' && x !== '' ? x : fail(`expected a certificate file path, got ${describe(x)}`)), 'certificate files').optional(),
  key: str('a private key file path').optional(),
  port: int(1, 65535, 'a UDP port').optional(),
  vips: listOf((x) => {
    if (typeof x === 'string' && isIP(x.trim()) !== 0) return x.trim();
    throw new ConfigError(`expected a virtual IP to ask for: 0.0.0.0 or "::" for any address of that IP version, or an address, got ${describe(x)}`);
  }, 'virtual IPs').optional(),
});

const remoteSchema = obj({
  addrs: listOf(addrEntry(true), 'remote addresses').optional(),
  id: identity.optional(),
  auth: oneOf(['psk', 'pubkey'] as const).optional(),
  ca: listOf((x) => (typeof x === 'string' && x !== '' ? x : fail(`expected a CA certificate file path, got ${describe(x)}`)), 'CA certificate files').optional(),
  port: int(1, 65535, 'a UDP port').optional(),
});

const ikeSchema = obj({
  proposals: proposals('ike').optional(),
  ...lifetimeShape,
  reauth_time: duration.optional(),
  dpd_delay: duration.optional(),
  dpd_timeout: duration.optional(),
  retransmit: obj({
    timeout: duration.optional(),
    base: leaf((v) => {
      if (typeof v === 'number' && v >= 1 && v <= 10) return v;
      throw new ConfigError(`expected a back-off base from 1 to 10 (e.g. 1.8), got ${describe(v)}`);
    }).optional(),
    tries: int(1, 100, 'a number of tries').optional(),
  }).optional(),
  keyingtries: int(0, 1_000_000, 'a number of attempts (0 = until the peer answers)').optional(),
  fragment_size: int(576, 65535, 'a size in bytes').optional(),
  fragmentation: bool.optional(),
  force_encap: bool.optional(),
  window_size: int(1, 1024, 'a window size').optional(),
});

const childSchema = obj({
  local_ts: listOf(parseTrafficSelector, 'traffic selectors').optional(),
  remote_ts: listOf(parseTrafficSelector, 'traffic selectors').optional(),
  esp_proposals: proposals('esp').optional(),
  mode: oneOf(['tunnel', 'transport'] as const).optional(),
  ...lifetimeShape,
  rekey_bytes: byteSize.optional(),
  life_bytes: byteSize.optional(),
  rekey_packets: count.optional(),
  life_packets: count.optional(),
  start_action: oneOf(['start', 'trap', 'none'] as const).optional(),
  close_action: oneOf(['none', 'trap', 'start'] as const).optional(),
  replay_window: int(0, 4096, 'a replay window in packets').optional(),
  tfc_padding: int(0, 65535, 'a TFC padding length in octets (0 = off)').optional(),
  single_pair: bool.optional(),
  reqid: int(0, 0xffffffff, 'a reqid').optional(),
  if_id: int(0, 0xffffffff, 'an XFRM interface id').optional(),
  mark: int(0, 0xffffffff, 'a mark').optional(),
});

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const connectionSchema = obj({
  local: localSchema,
  remote: remoteSchema,
  psk: secret.optional(),
  ike: ikeSchema.optional(),
  children: z.record(z.string(), childSchema, { error: () => 'expected a mapping of child names to child settings' }).optional(),
  optimized_rekey: bool.optional(),
  child_pfs_info: bool.optional(),
  ppk: obj({
    ids_and_keys_from: secret.optional(),
    keys: z.array(obj({ id: str('a PPK id'), key: secret }), { error: () => 'expected a list of { id, key }' }).optional(),
    required: bool.optional(),
    rfc9867: bool.optional(),
  }).optional(),
  require_pq: bool.optional(),
  vips: obj({
    request: bool.optional(),
    pool: listOf((x) => {
      if (typeof x === 'string') {
        try {
          checkSelectorAddress(x.trim());
          return x.trim();
        } catch {
          /* fall through */
        }
      }
      throw new ConfigError(`expected an address, CIDR or range, got ${describe(x)}`);
    }, 'address pools').optional(),
  }).optional(),
  pools: listOf(parseAddressPool, 'address pools').optional(),
  dns: listOf(addrEntry(false), 'DNS servers').optional(),
  passive: bool.optional(),
});

const daemonSchema = obj({
  control_socket: str('a socket path').optional(),
  log_level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const).optional(),
  keylog_file: str('a file path').optional(),
  listen: listOf(addrEntry(false), 'listen addresses').optional(),
  port: int(1, 65535, 'a UDP port').optional(),
  natt_port: int(1, 65535, 'a UDP port').optional(),
  state_file: str('a file path').optional(),
  reqid_base: int(1, 0x7fffffff, 'a reqid').optional(),
  cookie_threshold: int(0, 1_000_000, 'a number of half-open IKE SAs').optional(),
  initiate_limit: int(0, 1_000_000, 'a number of IKE SAs being set up at once (0 = no limit)').optional(),
  rekey_grace_time: duration.optional(),
  code_points: obj({
    optimized_rekey_supported: int(1, 65535, 'a notify type').optional(),
    optimized_rekey: int(1, 65535, 'a notify type').optional(),
    child_sa_pfs_info_supported: int(1, 65535, 'a notify type').optional(),
  }).optional(),
});

const fileSchema = obj({
  daemon: daemonSchema.optional(),
  connections: z.record(z.string(), connectionSchema, { error: () => 'expected a mapping of connection names to connection settings' }).optional(),
});

type RawFile = z.infer<typeof fileSchema>;
type RawConnection = z.infer<typeof connectionSchema>;
type RawChild = z.infer<typeof childSchema>;

function fail(message: string): never {
  throw new ConfigError(message);
}

/** Keys a mapping at `path` may hold, by walking the schema (for "did you mean"). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = fileSchema;
  const unwrap = (t: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = t._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) t = def.innerType;
      else if (def.type === 'pipe' && def.in) t = def.in;
      else return t;
    }
  };
  for (const seg of path) {
    if (!s) return [];
    const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; valueType?: z.core.$ZodType; element?: z.core.$ZodType };
    if (def.type === 'object') s = def.shape?.[String(seg)];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return [];
  }
  if (!s) return [];
  const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, unknown> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function didYouMean(key: string, known: string[]): string {
  const lower = key.toLowerCase().replace(/-/g, '_');
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const dist = lower === k ? 0 : editDistance(lower, k);
    if (dist < bestDist) {
      bestDist = dist;
      best = k;
    }
  }
  if (best !== undefined && bestDist <= Math.max(2, Math.floor(best.length / 4))) return `; did you mean "${best}"?`;
  return known.length > 0 ? `; expected one of ${known.join(', ')}` : '';
}

// ---------------------------------------------------------------------------
// Locating keys in the YAML source

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private lineOf(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  /** Line of the value at path, or of the nearest existing ancestor. */
  line(path: readonly PropertyKey[]): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n) as unknown[], true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        // For a mapping value, point at its key: that is the line the operator looks for.
        const keyLine = n > 0 ? this.keyLine(path.slice(0, n)) : undefined;
        return keyLine ?? this.lineOf(node.range[0]);
      }
    }
    return 1;
  }

  /** Line of the key `path[last]` inside the mapping at `path[..last]`. */
  keyLine(path: readonly PropertyKey[]): number | undefined {
    const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1) as unknown[], true);
    if (!isMap(parent)) return undefined;
    const last = path[path.length - 1];
    for (const pair of parent.items) {
      const k = pair.key;
      if (isScalar(k) && String(k.value) === String(last) && k.range) return this.lineOf(k.range[0]);
    }
    return undefined;
  }
}

function dotted(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Meaning (pass 2)

class Reporter {
  readonly issues: ConfigIssue[] = [];
  readonly warnings: string[] = [];
  constructor(
    readonly file: string,
    private readonly locator: Locator | undefined,
  ) {}

  private issue(path: readonly PropertyKey[], message: string, lineHint?: number): ConfigIssue {
    const line = lineHint ?? this.locator?.line(path) ?? 0;
    return { file: this.file, line, path: dotted(path), message };
  }

  error(path: readonly PropertyKey[], message: string, lineHint?: number): void {
    this.issues.push(this.issue(path, message, lineHint));
  }

  warn(path: readonly PropertyKey[], message: string): void {
    this.warnings.push(formatIssue(this.issue(path, message)));
  }

  keyLine(path: readonly PropertyKey[]): number | undefined {
    return this.locator?.keyLine(path);
  }
}

interface BuildContext {
  r: Reporter;
  baseDir: string;
}

function resolveFile(ctx: BuildContext, p: string): string {
  return isAbsolute(p) ? p : resolvePath(ctx.baseDir, p);
}

function readFile(ctx: BuildContext, path: readonly PropertyKey[], file: string, what: string, isSecret: boolean): Buffer | undefined {
  const full = resolveFile(ctx, file);
  try {
    const data = readFileSync(full);
    if (isSecret) {
      try {
        const mode = statSync(full).mode;
        if (mode & 0o077) {
          ctx.r.warn(path, `${what} "${full}" is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`);
        }
      } catch {
        /* stat after a successful read: ignore */
      }
    }
    return data;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'read error');
    ctx.r.error(path, `cannot read ${what} "${full}": ${why}`);
    return undefined;
  }
}

/** Strip the line break editors add at the end of a one-line secret file. */
function trimTrailingNewline(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && (b[end - 1] === 0x0a || b[end - 1] === 0x0d)) end--;
  return b.subarray(0, end);
}

/** "0x<hex>" and "0s<base64>" give binary secrets (strongSwan notation); anything else is the UTF-8 text. */
function decodeSecretText(text: string): Buffer | string {
  if (/^0x/i.test(text)) {
    const h = text.slice(2).replace(/[\s:]/g, '');
    if (h.length === 0 || h.length % 2 !== 0 || !/^[0-9a-f]+$/i.test(h)) return 'a "0x" secret must be followed by an even number of hex digits';
    return Buffer.from(h, 'hex');
  }
  if (/^0s/.test(text)) {
    const b = text.slice(2).replace(/\s/g, '');
    if (b.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b)) return 'a "0s" secret must be followed by base64';
    return Buffer.from(b, 'base64');
  }
  return Buffer.from(text, 'utf8');
}

/** Resolve `file:PATH` or an inline secret. Messages never contain the secret. */
function readSecret(ctx: BuildContext, path: readonly PropertyKey[], spec: string, what: string): Buffer | undefined {
  let text: string;
  if (spec.startsWith('file:')) {
    const file = spec.slice(5).trim();
    if (file === '') {
      ctx.r.error(path, `expected "file:/path/to/${what.replace(/ /g, '-')}" with a file name after "file:"`);
      return undefined;
    }
    const data = readFile(ctx, path, file, `${what} file`, true);
    if (!data) return undefined;
    text = trimTrailingNewline(data).toString('utf8');
  } else {
    ctx.r.warn(path, `inline ${what}: prefer "file:/path" with mode 600 so the secret stays out of the configuration`);
    text = spec;
  }
  const decoded = decodeSecretText(text);
  if (typeof decoded === 'string') {
    ctx.r.error(path, `invalid ${what}: ${decoded}`);
    return undefined;
  }
  if (decoded.length === 0) {
    ctx.r.error(path, `the ${what} is empty`);
    return undefined;
  }
  return decoded;
}

function splitPem(text: string, label: RegExp): string[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  const out: string[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) if (label.test(m[1]!)) out.push(m[0] + '\n');
  return out;
}

function readCertificates(ctx: BuildContext, path: readonly PropertyKey[], files: string[], what: string): string[] | undefined {
  const out: string[] = [];
  let ok = true;
  files.forEach((f, i) => {
    const p = files.length > 1 ? [...path, i] : path;
    const data = readFile(ctx, p, f, what, false);
    if (!data) {
      ok = false;
      return;
    }
    const pems = splitPem(data.toString('utf8'), /^CERTIFICATE$/);
    if (pems.length === 0) {
      ctx.r.error(p, `${what} "${resolveFile(ctx, f)}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
      ok = false;
      return;
    }
    for (const pem of pems) {
      try {
        new X509Certificate(pem);
        out.push(pem);
      } catch {
        ctx.r.error(p, `${what} "${resolveFile(ctx, f)}" holds a certificate that does not parse as X.509`);
        ok = false;
      }
    }
  });
  return ok ? out : undefined;
}

function readPrivateKey(ctx: BuildContext, path: readonly PropertyKey[], file: string): { pem: string; key: KeyObject } | undefined {
  const data = readFile(ctx, path, file, 'private key file', true);
  if (!data) return undefined;
  const pems = splitPem(data.toString('utf8'), /PRIVATE KEY$/);
  if (pems.length !== 1) {
    ctx.r.error(path, `private key file "${resolveFile(ctx, file)}" must hold exactly one PEM private key (found ${pems.length})`);
    return undefined;
  }
  if (/ENCRYPTED PRIVATE KEY/.test(pems[0]!)) {
    ctx.r.error(path, `private key file "${resolveFile(ctx, file)}" is encrypted; store it unencrypted with mode 600`);
    return undefined;
  }
  try {
    return { pem: pems[0]!, key: createPrivateKey(pems[0]!) };
  } catch {
    ctx.r.error(path, `private key file "${resolveFile(ctx, file)}" does not hold a usable private key`);
    return undefined;
  }
}

function lifetime(ctx: BuildContext, path: readonly PropertyKey[], raw: RawChild | NonNullable<RawConnection['ike']> | undefined, defaultRekey: number, bytes?: RawChild): LifetimeConfig {
  const rekeyTime = raw?.rekey_time ?? defaultRekey;
  // Millisecond precision: short test lifetimes (rekey_time: 2s) keep life_time > rekey_time.
  const ms = (x: number) => Math.round(x * 1000) / 1000;
  const randTime = raw?.rand_time ?? ms(rekeyTime * DEFAULTS.jitterFraction);
  const lifeTime = raw?.life_time ?? ms(rekeyTime * (1 + DEFAULTS.jitterFraction));
  if (rekeyTime > 0 && lifeTime > 0 && lifeTime <= rekeyTime) {
    ctx.r.error([...path, raw?.life_time !== undefined ? 'life_time' : 'rekey_time'], `life_time (${lifeTime}s) must be longer than rekey_time (${rekeyTime}s)`);
  }
  if (rekeyTime > 0 && randTime >= rekeyTime) {
    ctx.r.error([...path, 'rand_time'], `rand_time (${randTime}s) must be shorter than rekey_time (${rekeyTime}s)`);
  }
  const rekeyBytes = bytes?.rekey_bytes ?? 0;
  const lifeBytes = bytes?.life_bytes ?? (rekeyBytes > 0 ? Math.floor(rekeyBytes * (1 + DEFAULTS.jitterFraction)) : 0);
  const rekeyPackets = bytes?.rekey_packets ?? 0;
  const lifePackets = bytes?.life_packets ?? (rekeyPackets > 0 ? Math.floor(rekeyPackets * (1 + DEFAULTS.jitterFraction)) : 0);
  if (rekeyBytes > 0 && lifeBytes > 0 && lifeBytes <= rekeyBytes) ctx.r.error([...path, 'life_bytes'], `life_bytes must be larger than rekey_bytes`);
  if (rekeyPackets > 0 && lifePackets > 0 && lifePackets <= rekeyPackets) ctx.r.error([...path, 'life_packets'], `life_packets must be larger than rekey_packets`);
  return { rekeyTime, randTime, lifeTime, rekeyBytes, lifeBytes, rekeyPackets, lifePackets };
}

/** Whether a certificate names an identity, as a peer checking IDi/IDr against it would see it. */
function certificateNamesIdentity(cert: X509Certificate, id: IdentityConfig): boolean {
  try {
    switch (id.type) {
      case 'fqdn':
        return cert.checkHost(id.value, { subject: 'never' }) !== undefined || cert.checkHost(id.value) !== undefined;
      case 'rfc822':
        return cert.checkEmail(id.value) !== undefined;
      case 'ipv4':
      case 'ipv6':
        return cert.checkIP(id.value) !== undefined;
      case 'dn':
        return dnEqual(parseDnText(id.value), parseDnDer(certSubjectDer(cert)));
      case 'keyid':
        return true; // opaque: nothing in the certificate to compare with
    }
  } catch {
    return false;
  }
}

const PQ_METHODS = new Set([35, 36, 37]);

/** Whether every SA negotiated from this proposal has a post-quantum key exchange. */
function guaranteesPq(p: ProposalConfig): boolean {
  if (p.ke.length > 0 && p.ke.every((k) => PQ_METHODS.has(k))) return true;
  return p.addKe.some((slot) => slot.length > 0 && slot.every((k) => PQ_METHODS.has(k)));
}

function defaultSelector(addr: string | undefined): TrafficSelectorConfig | undefined {
  if (!addr || addr === '%any') return undefined;
  return { cidr: `${addr}/${isIP(addr) === 6 ? 128 : 32}`, protocol: 0, startPort: 0, endPort: 65535 };
}

function parsePpkFile(ctx: BuildContext, path: readonly PropertyKey[], text: string): PpkConfig[] {
  const out: PpkConfig[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = /^(\S+)\s+(\S+)$/.exec(t);
    if (!m) {
      ctx.r.error(path, `PPK file line ${i + 1}: expected "<ppk-id> <key>" (key as 0x<hex> or 0s<base64>)`);
      return;
    }
    const key = decodeSecretText(m[2]!);
    if (typeof key === 'string' || !/^0[xs]/i.test(m[2]!)) {
      ctx.r.error(path, `PPK file line ${i + 1}: the key must be 0x<hex> or 0s<base64>`);
      return;
    }
    out.push({ id: ppkId(m[1]!), key });
  });
  return out;
}

/** RFC 8784 §3: PPK_ID = type octet | id; we send PPK_ID_FIXED (2), the type libreswan accepts. */
function ppkId(text: string): Buffer {
  return Buffer.concat([Buffer.from([2]), Buffer.from(text, 'utf8')]);
}

function buildConnection(ctx: BuildContext, name: string, raw: RawConnection): ConnectionConfig | undefined {
  const base = ['connections', name];
  const r = ctx.r;
  const before = r.issues.length;
  if (!NAME_RE.test(name)) r.error(base, `connection name "${name}" must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);

  const localAddrs = raw.local.addrs ?? [];
  if (localAddrs.length === 0) r.error([...base, 'local', 'addrs'], `expected at least one local address`);
  const remoteAddrs = raw.remote.addrs ?? [];
  if (remoteAddrs.length === 0) r.error([...base, 'remote', 'addrs'], `expected at least one remote address (or %any for a responder-only connection)`);
  const remoteAny = remoteAddrs.includes('%any');
  if (remoteAny && remoteAddrs.length > 1) r.error([...base, 'remote', 'addrs'], `%any cannot be combined with other addresses`);
  if (!remoteAny && localAddrs.length > 0 && remoteAddrs.length > 0) {
    const families = new Set(localAddrs.map((a) => isIP(a)));
    if (!remoteAddrs.some((a) => families.has(isIP(a)))) {
      r.error([...base, 'remote', 'addrs'], `no remote address of the same IP version as a local address (${localAddrs.join(', ')})`);
    }
  }

  const localId = raw.local.id ?? (localAddrs[0] ? parseIdentity(localAddrs[0]) : undefined);
  let remoteId = raw.remote.id;
  if (!remoteId) {
    if (remoteAddrs[0] && !remoteAny) remoteId = parseIdentity(remoteAddrs[0]);
    else if (remoteAny) r.error([...base, 'remote', 'id'], `a remote with addrs %any needs an explicit id`);
  }

  const localAuth = raw.local.auth ?? 'psk';
  const remoteAuth = raw.remote.auth ?? 'psk';
  let psk: Buffer | undefined;
  if (localAuth === 'psk' || remoteAuth === 'psk') {
    if (raw.psk === undefined) r.error([...base, 'psk'], `expected psk: "file:/path/to/secret" because ${localAuth === 'psk' ? 'local' : 'remote'}.auth is psk`);
    else psk = readSecret(ctx, [...base, 'psk'], raw.psk, 'pre-shared key');
    if (psk && psk.length < 16) r.warn([...base, 'psk'], `the pre-shared key is shorter than 16 octets; use a long random key`);
  } else if (raw.psk !== undefined) {
    r.warn([...base, 'psk'], `psk is ignored: neither side uses auth: psk`);
  }

  const local: ConnectionConfig['local'] = { auth: localAuth, addrs: localAddrs, id: localId ?? { type: 'fqdn', value: '' } };
  if (raw.local.port !== undefined) local.port = raw.local.port;
  if (localAuth === 'pubkey') {
    if (!raw.local.cert) r.error([...base, 'local', 'cert'], `expected the certificate file (PEM, leaf first) because local.auth is pubkey`);
    if (!raw.local.key) r.error([...base, 'local', 'key'], `expected the private key file (PEM) because local.auth is pubkey`);
    const chain = raw.local.cert ? readCertificates(ctx, [...base, 'local', 'cert'], raw.local.cert, 'certificate file') : undefined;
    const key = raw.local.key ? readPrivateKey(ctx, [...base, 'local', 'key'], raw.local.key) : undefined;
    if (chain && key) {
      if (!new X509Certificate(chain[0]!).checkPrivateKey(key.key)) {
        r.error([...base, 'local', 'key'], `the private key does not belong to the first certificate in local.cert`);
      }
      local.certChainPem = chain;
      local.privateKeyPem = key.pem;
      const leaf = new X509Certificate(chain[0]!);
      if (!certificateNamesIdentity(leaf, local.id)) {
        r.warn([...base, 'local', 'id'], `the certificate in local.cert does not contain the identity "${local.id.value}" (subject or subjectAltName); peers that check it will refuse authentication`);
      }
    }
  } else if (raw.local.cert || raw.local.key) {
    r.warn([...base, 'local', raw.local.cert ? 'cert' : 'key'], `ignored: local.auth is psk`);
  }

  const remote: ConnectionConfig['remote'] = { auth: remoteAuth, addrs: remoteAddrs, id: remoteId ?? { type: 'fqdn', value: '' } };
  if (raw.remote.port !== undefined) remote.port = raw.remote.port;
  if (remoteAuth === 'pubkey') {
    if (!raw.remote.ca) r.error([...base, 'remote', 'ca'], `expected the CA certificate file(s) (PEM) that anchor the peer's certificate because remote.auth is pubkey`);
    else {
      const ca = readCertificates(ctx, [...base, 'remote', 'ca'], raw.remote.ca, 'CA certificate file');
      if (ca) remote.caPem = ca;
    }
  } else if (raw.remote.ca) {
    r.warn([...base, 'remote', 'ca'], `ignored: remote.auth is psk`);
  }

  const ikeRaw = raw.ike;
  const ikeProposals = ikeRaw?.proposals ?? DEFAULTS.ike.proposals.map((t) => parseProposal(t, 'ike'));
  const ike: ConnectionConfig['ike'] = {
    proposals: ikeProposals,
    lifetime: lifetime(ctx, [...base, 'ike'], ikeRaw, DEFAULTS.ike.rekeyTime),
    reauthTime: ikeRaw?.reauth_time ?? DEFAULTS.ike.reauthTime,
    dpdDelay: ikeRaw?.dpd_delay ?? DEFAULTS.ike.dpdDelay,
    dpdTimeout: ikeRaw?.dpd_timeout ?? DEFAULTS.ike.dpdTimeout,
    retransmit: {
      timeout: ikeRaw?.retransmit?.timeout ?? DEFAULTS.ike.retransmit.timeout,
      base: ikeRaw?.retransmit?.base ?? DEFAULTS.ike.retransmit.base,
      tries: ikeRaw?.retransmit?.tries ?? DEFAULTS.ike.retransmit.tries,
    },
    keyingtries: ikeRaw?.keyingtries ?? DEFAULTS.ike.keyingtries,
    fragmentSize: ikeRaw?.fragment_size ?? DEFAULTS.ike.fragmentSize,
    fragmentation: ikeRaw?.fragmentation ?? DEFAULTS.ike.fragmentation,
    forceEncap: ikeRaw?.force_encap ?? DEFAULTS.ike.forceEncap,
    windowSize: ikeRaw?.window_size ?? DEFAULTS.ike.windowSize,
  };
  if (ike.retransmit.timeout <= 0) r.error([...base, 'ike', 'retransmit', 'timeout'], `expected a duration greater than 0`);

  const passive = raw.passive ?? false;

  // Virtual IPs (RFC 7296 §2.19): local.vips asks the peer for addresses, pools/dns hand them out.
  const localVips = raw.local.vips;
  if (localVips) {
    const seen = new Set<number>();
    localVips.forEach((a, i) => {
      const v = isIP(a);
      if (seen.has(v)) r.error([...base, 'local', 'vips', ...(localVips.length > 1 ? [i] : [])], `only one virtual IP per IP version can be asked for (${a} is the second IPv${v} one)`);
      seen.add(v);
    });
  }
  if (raw.dns && !raw.pools) r.error([...base, 'dns'], `DNS servers are sent with a virtual IP lease: add pools: [...]`);
  if (raw.vips && (localVips || raw.pools || raw.dns)) {
    r.error([...base, 'vips'], `vips cannot be combined with local.vips, pools or dns; write local.vips and pools only`);
  }
  let vips: VirtualIpConfig | undefined;
  if (raw.vips) {
    vips = { request: raw.vips.request ?? false, ...(raw.vips.pool ? { pool: raw.vips.pool } : {}) };
    r.warn([...base, 'vips'], `vips is the older form: write local.vips: [0.0.0.0] to ask for a virtual IP and pools: [...] to hand them out`);
  } else if (localVips || raw.pools) {
    vips = { request: localVips !== undefined, ...(localVips ? { addresses: localVips } : {}), ...(raw.pools ? { pool: raw.pools } : {}), ...(raw.dns ? { dns: raw.dns } : {}) };
  }
  // Selectors that default from the virtual IPs: ours is whatever the peer assigns (it narrows
  // TSi to it), the peer's is its lease from one of the pools.
  const vipLocalTs = localVips?.map((a): TrafficSelectorConfig => ({ cidr: isIP(a) === 6 ? '::/0' : '0.0.0.0/0', protocol: 0, startPort: 0, endPort: 65535 }));
  const vipRemoteTs = (raw.pools ?? raw.vips?.pool)?.map((p): TrafficSelectorConfig => ({ cidr: p, protocol: 0, startPort: 0, endPort: 65535 }));

  const children: ChildConfig[] = [];
  for (const [childName, c] of Object.entries(raw.children ?? {})) {
    const cp = [...base, 'children', childName];
    if (!NAME_RE.test(childName)) r.error(cp, `child name "${childName}" must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    const localTs = c.local_ts ?? vipLocalTs ?? [defaultSelector(localAddrs[0])].filter((x): x is TrafficSelectorConfig => !!x);
    const remoteTs = c.remote_ts ?? vipRemoteTs ?? [defaultSelector(remoteAddrs[0])].filter((x): x is TrafficSelectorConfig => !!x);
    if (localTs.length === 0) r.error([...cp, 'local_ts'], `expected local traffic selectors like [10.1.0.0/24]`);
    if (remoteTs.length === 0) r.error([...cp, 'remote_ts'], `expected remote traffic selectors like [10.2.0.0/24] (remote.addrs is %any)`);
    const startAction = c.start_action ?? DEFAULTS.child.startAction;
    if (startAction === 'start' && (remoteAny || passive)) {
      r.error([...cp, 'start_action'], `start needs a connection that can initiate (remote.addrs is not %any and passive is no)`);
    }
    const espProposals = c.esp_proposals ?? DEFAULTS.child.espProposals.map((t) => parseProposal(t, 'esp'));
    children.push({
      name: childName,
      localTs,
      remoteTs,
      espProposals,
      mode: c.mode ?? DEFAULTS.child.mode,
      lifetime: lifetime(ctx, cp, c, DEFAULTS.child.rekeyTime, c),
      startAction,
      closeAction: c.close_action ?? DEFAULTS.child.closeAction,
      replayWindow: c.replay_window ?? DEFAULTS.child.replayWindow,
      ...(c.tfc_padding ? { tfcPadding: c.tfc_padding } : {}),
      ...(c.single_pair ? { singlePair: true } : {}),
      reqid: c.reqid ?? 0,
      ifId: c.if_id ?? 0,
      mark: c.mark ?? 0,
    });
  }

  let ppk: ConnectionConfig['ppk'];
  if (raw.ppk) {
    const pp = [...base, 'ppk'];
    const keys: PpkConfig[] = [];
    if (raw.ppk.ids_and_keys_from !== undefined) {
      const spec = raw.ppk.ids_and_keys_from;
      if (!spec.startsWith('file:') || spec.slice(5).trim() === '') {
        r.error([...pp, 'ids_and_keys_from'], `expected "file:/path/to/ppks" (one "<ppk-id> <key>" per line)`);
      } else {
        const data = readFile(ctx, [...pp, 'ids_and_keys_from'], spec.slice(5).trim(), 'PPK file', true);
        if (data) keys.push(...parsePpkFile(ctx, [...pp, 'ids_and_keys_from'], data.toString('utf8')));
      }
    }
    (raw.ppk.keys ?? []).forEach((k, i) => {
      const key = readSecret(ctx, [...pp, 'keys', i, 'key'], k.key, 'PPK');
      if (key) keys.push({ id: ppkId(k.id), key });
    });
    if (keys.length === 0 && r.issues.length === before) r.error(pp, `expected at least one PPK (ids_and_keys_from: file:... or keys: [...])`);
    keys.forEach((k) => {
      if (k.key.length < 32) r.warn(pp, `PPK "${k.id.subarray(1).toString('utf8')}" is shorter than 32 octets; RFC 8784 asks for at least 256 bits of entropy`);
    });
    const seen = new Set<string>();
    for (const k of keys) {
      const hex = k.id.toString('hex');
      if (seen.has(hex)) r.error(pp, `PPK id "${k.id.subarray(1).toString('utf8')}" appears twice`);
      seen.add(hex);
    }
    ppk = { keys, required: raw.ppk.required ?? false, ...(raw.ppk.rfc9867 === false ? { rfc9867: false } : {}) };
  }

  const requirePq = raw.require_pq ?? false;
  if (requirePq && !(ppk?.required ?? false)) {
    ikeProposals.forEach((p, i) => {
      if (!guaranteesPq(p)) {
        r.error(
          [...base, 'ike', 'proposals', ...(ikeRaw?.proposals ? [i] : [])],
          `require_pq is yes but proposal '${p.text}' can be negotiated without ML-KEM; add a mandatory keN_mlkem* or set ppk.required: yes`,
        );
      }
    });
  }

  if (r.issues.length > before) return undefined;
  const conn: ConnectionConfig = {
    name,
    local,
    remote,
    ike,
    children,
    optimizedRekey: raw.optimized_rekey ?? DEFAULTS.optimizedRekey,
    childPfsInfo: raw.child_pfs_info ?? DEFAULTS.childPfsInfo,
    requirePq,
    passive,
  };
  if (psk) conn.psk = psk;
  if (ppk) conn.ppk = ppk;
  if (vips) conn.vips = vips;
  return conn;
}

function buildDaemon(ctx: BuildContext, raw: RawFile['daemon']): { daemon: DaemonSettings; codePoints: CodePointConfig; cookieThreshold: number; rekeyGraceTime: number; initiateLimit: number } {
  const d = raw ?? {};
  const daemon: DaemonSettings = {
    controlSocket: d.control_socket ?? DEFAULTS.controlSocket,
    logLevel: d.log_level ?? DEFAULTS.logLevel,
    listen: d.listen ?? [...DEFAULTS.listen],
    port: d.port ?? DEFAULTS.port,
    nattPort: d.natt_port ?? DEFAULTS.nattPort,
    stateFile: d.state_file ?? DEFAULTS.stateFile,
    reqidBase: d.reqid_base ?? DEFAULTS.reqidBase,
  };
  if (d.keylog_file !== undefined) {
    daemon.keylogFile = resolveFile(ctx, d.keylog_file);
    ctx.r.warn(['daemon', 'keylog_file'], `IKE and ESP keys will be written to "${daemon.keylogFile}": for debugging only`);
  }
  if (daemon.port === daemon.nattPort) ctx.r.error(['daemon', 'natt_port'], `natt_port must differ from port (${daemon.port})`);
  const codePoints: CodePointConfig = {
    optimizedRekeySupported: d.code_points?.optimized_rekey_supported ?? DEFAULT_CODE_POINTS.optimizedRekeySupported,
    optimizedRekey: d.code_points?.optimized_rekey ?? DEFAULT_CODE_POINTS.optimizedRekey,
    childSaPfsInfoSupported: d.code_points?.child_sa_pfs_info_supported ?? DEFAULT_CODE_POINTS.childSaPfsInfoSupported,
  };
  const values = Object.values(codePoints);
  if (new Set(values).size !== values.length) ctx.r.error(['daemon', 'code_points'], `the notify code points must be distinct`);
  return {
    daemon,
    codePoints,
    cookieThreshold: d.cookie_threshold ?? DEFAULTS.cookieThreshold,
    rekeyGraceTime: d.rekey_grace_time ?? DEFAULTS.rekeyGraceTime,
    initiateLimit: d.initiate_limit ?? DEFAULTS.initiateLimit,
  };
}

// ---------------------------------------------------------------------------
// Entry points

export interface ParseOptions {
  /** Directory relative file names are resolved against (default: the config file's directory). */
  baseDir?: string;
}

/** Validate YAML text; `file` names it in messages. Throws ConfigLoadError with every problem. */
export function parseConfig(text: string, file: string, opts: ParseOptions = {}): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const locator = new Locator(doc, lineCounter);
  const r = new Reporter(file, locator);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = lineCounter.linePos(e.pos[0]).line;
      r.error([], `YAML syntax: ${e.message.split('\n')[0]}`, line);
    }
    throw new ConfigLoadError(r.issues);
  }
  for (const w of doc.warnings) r.warnings.push(`${file}:${lineCounter.linePos(w.pos[0]).line}: YAML: ${w.message.split('\n')[0]}`);
  const input = doc.toJS({ maxAliasCount: 100 }) ?? {};
  dropNullValues(input);
  // Top-level "x-..." keys hold YAML anchors for merge keys (<<: *common); they are not settings.
  if (input && typeof input === 'object' && !Array.isArray(input)) {
    for (const k of Object.keys(input)) if (k.startsWith('x-')) delete (input as Record<string, unknown>)[k];
  }

  const parsed = fileSchema.safeParse(input);
  const ctx: BuildContext = { r, baseDir: opts.baseDir ?? dirname(resolvePath(file)) };
  if (!parsed.success) {
    const broken = new Set<string>();
    for (const iss of parsed.error.issues) {
      if (iss.path[0] === 'connections' && iss.path.length >= 2) broken.add(String(iss.path[1]));
      else if (iss.path[0] === 'daemon') broken.add('\0daemon');
      else broken.add('\0file');
      if (iss.code === 'unrecognized_keys') {
        const known = knownKeysAt(iss.path);
        for (const key of iss.keys) {
          const path = [...iss.path, key];
          r.error(path, `unknown key${didYouMean(key, known)}`, r.keyLine(path));
        }
      } else if (iss.code === 'invalid_type' && valueAt(input, iss.path) === undefined) {
        const path = iss.path;
        const parentLine = path.length > 1 ? r.keyLine(path.slice(0, -1)) : undefined;
        r.error(path, `missing; expected ${describeExpected(path)}`, parentLine);
      } else {
        // List items report "[i]: ..."; point at the item itself.
        const item = /^\[(\d+)\]: /.exec(iss.message);
        if (item) r.error([...iss.path, Number(item[1])], iss.message.slice(item[0].length));
        else r.error(iss.path, iss.message);
      }
    }
    // Check the meaning of the parts that are well-formed too, so one run reports everything.
    if (!broken.has('\0file')) {
      const top = input as { daemon?: unknown; connections?: Record<string, unknown> };
      if (!broken.has('\0daemon')) {
        const d = daemonSchema.optional().safeParse(top.daemon);
        if (d.success) buildDaemon(ctx, d.data);
      }
      for (const [name, c] of Object.entries(top.connections ?? {})) {
        if (broken.has(name)) continue;
        const one = connectionSchema.safeParse(c);
        if (one.success) buildConnection(ctx, name, one.data);
      }
    }
    throw new ConfigLoadError(sortIssues(r.issues), r.warnings);
  }

  const raw = parsed.data;
  const d = buildDaemon(ctx, raw.daemon);
  const connections: ConnectionConfig[] = [];
  for (const [name, c] of Object.entries(raw.connections ?? {})) {
    const conn = buildConnection(ctx, name, c);
    if (conn) connections.push(conn);
  }
  // Explicit reqids name kernel policies: two children cannot share one.
  const reqids = new Map<number, string>();
  for (const conn of connections) {
    for (const child of conn.children) {
      if (child.reqid === 0) continue;
      const other = reqids.get(child.reqid);
      const here = `connections.${conn.name}.children.${child.name}`;
      if (other) r.error(['connections', conn.name, 'children', child.name, 'reqid'], `reqid ${child.reqid} is already used by ${other}`);
      else reqids.set(child.reqid, here);
    }
  }
  // Connections naming the same pool share its leases; pools that only partly overlap would hand
  // the same address out twice.
  const pools: { range: ReturnType<typeof parsePoolRange>; where: string; path: PropertyKey[] }[] = [];
  for (const conn of connections) {
    (conn.vips?.pool ?? []).forEach((p, i) => {
      const range = parsePoolRange(p);
      const path = ['connections', conn.name, ...(raw.connections?.[conn.name]?.vips ? ['vips', 'pool'] : ['pools']), i];
      const clash = pools.find((o) => o.range.version === range.version && o.range.key !== range.key && o.range.first < range.first + range.size && range.first < o.range.first + o.range.size);
      if (clash) r.error(path, `pool ${p} overlaps pool ${clash.where} without being the same range; two connections share a pool only when they name the same range`);
      else pools.push({ range, where: `${p} of connections.${conn.name}`, path });
    });
  }
  if (r.issues.length > 0) throw new ConfigLoadError(sortIssues(r.issues), r.warnings);
  return {
    file,
    engine: { connections, codePoints: d.codePoints, cookieThreshold: d.cookieThreshold, rekeyGraceTime: d.rekeyGraceTime, initiateLimit: d.initiateLimit },
    daemon: d.daemon,
    warnings: r.warnings,
  };
}

/** A key written without a value ("children:") means the same as leaving the key out. */
function dropNullValues(v: unknown): void {
  if (Array.isArray(v)) {
    v.forEach(dropNullValues);
  } else if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (o[k] === null) delete o[k];
      else dropNullValues(o[k]);
    }
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function describeExpected(path: readonly PropertyKey[]): string {
  const last = String(path[path.length - 1]);
  if (last === 'local' || last === 'remote') return `the ${last} endpoint: { addrs: [...], id: ..., auth: psk|pubkey }`;
  if (last === 'key') return 'a secret ("file:/path")';
  if (last === 'id') return 'an identity';
  return 'a value';
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line);
}

/** Read and validate a configuration file (default /etc/ikev2d/ikev2d.yaml). */
export function loadConfigFile(file: string = DEFAULT_CONFIG_PATH, opts: ParseOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'read error');
    throw new ConfigLoadError([{ file, line: 0, path: '', message: `cannot read the configuration: ${why}` }]);
  }
  return parseConfig(text, file, opts);
}

// ---------------------------------------------------------------------------
// Reload support

/** Per-process key for secrets in fingerprints: a logged fingerprint must not allow guessing a PSK offline. */
const FINGERPRINT_SECRET_KEY = randomBytes(32);

function canonical(value: unknown, secretKey: string | undefined): unknown {
  if (Buffer.isBuffer(value)) {
    return secretKey ? `secret:${createHmac('sha256', FINGERPRINT_SECRET_KEY).update(value).digest('hex')}` : `hex:${value.toString('hex')}`;
  }
  if (Array.isArray(value)) return value.map((v) => canonical(v, secretKey));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v === undefined) continue;
      // The proposal text is how it was written; its meaning is in the parsed fields.
      if (k === 'text' && 'encr' in (value as object)) continue;
      out[k] = canonical(v, k === 'psk' || k === 'key' || k === 'privateKeyPem' ? k : secretKey);
    }
    return out;
  }
  if (typeof value === 'string' && secretKey) return `secret:${createHmac('sha256', FINGERPRINT_SECRET_KEY).update(value).digest('hex')}`;
  return value;
}

/**
 * A hash of everything that defines a connection: equal fingerprints mean a reload can leave its
 * SAs alone. Stable within one daemon process (secrets enter through a per-process keyed hash).
 */
export function configFingerprint(conn: ConnectionConfig): string {
  return createHash('sha256').update(JSON.stringify(canonical(conn, undefined))).digest('hex');
}

export interface ConfigDiff {
  added: ConnectionConfig[];
  removed: ConnectionConfig[];
  /** The new versions of connections whose peers, authentication or Child SAs changed: re-established. */
  changed: ConnectionConfig[];
  /** The new versions of connections where only proposals, lifetimes or timers changed: their SAs stay. */
  updated: ConnectionConfig[];
  unchanged: ConnectionConfig[];
}

/** Compare connection sets by name and fingerprint (for `ikev2d ctl reload`). */
export function diffConfigs(oldConfig: EngineConfig | readonly ConnectionConfig[], newConfig: EngineConfig | readonly ConnectionConfig[]): ConfigDiff {
  const list = (c: EngineConfig | readonly ConnectionConfig[]) => ('connections' in c ? c.connections : c) as readonly ConnectionConfig[];
  const before = new Map(list(oldConfig).map((c) => [c.name, c]));
  const after = list(newConfig);
  const diff: ConfigDiff = { added: [], removed: [], changed: [], updated: [], unchanged: [] };
  const afterNames = new Set(after.map((c) => c.name));
  for (const c of after) {
    const old = before.get(c.name);
    if (!old) diff.added.push(c);
    else if (configFingerprint(old) === configFingerprint(c)) diff.unchanged.push(c);
    else if (connectionIdentity(old) === connectionIdentity(c)) diff.updated.push(c);
    else diff.changed.push(c);
  }
  for (const c of before.values()) if (!afterNames.has(c.name)) diff.removed.push(c);
  return diff;
}
