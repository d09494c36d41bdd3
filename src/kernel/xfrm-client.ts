// Typed client for the kernel's XFRM (IPsec SAD/SPD) over NETLINK_XFRM.
//
// Everything is validated here before it reaches the kernel: a wrong key
// length, an unknown algorithm, a malformed address or prefix, or mixed
// address families throw a TypeError naming the field. Kernel refusals reject
// with an XfrmError carrying errno, code (e.g. 'EEXIST') and the kernel's
// extended-ack message when it gave one.
import { EventEmitter } from 'node:events';
import {
  AF_INET,
  AF_INET6,
  loadAddon,
  type NativeAlgo,
  type NativeLifetime,
  type NativePolicy,
  type NativePolicyInfo,
  type NativeSa,
  type NativeSaInfo,
  type NativeSelector,
  type NativeSocket,
  type NativeTemplate,
} from './native.js';
import { AEAD_ALGORITHMS, AUTH_ALGORITHMS, COMP_ALGORITHMS, CRYPT_ALGORITHMS } from './algorithms.js';
import { parseAddress, parsePrefix, type IpVersion } from './address.js';

// ------------------------------------------------------------------ types ---

export type XfrmProto = 'esp' | 'ah' | 'comp';
export type XfrmMode = 'transport' | 'tunnel' | 'beet';
export type PolicyDir = 'in' | 'out' | 'fwd';

const PROTO_NUM: Record<XfrmProto, number> = { esp: 50, ah: 51, comp: 108 };
const MODE_NUM: Record<XfrmMode, number> = { transport: 0, tunnel: 1, beet: 4 };
const DIR_NUM: Record<PolicyDir, number> = { in: 0, out: 1, fwd: 2 };

/** SA flags (XFRM_STATE_*), combinable. */
export const SaFlags = {
  NOECN: 1,
  DECAP_DSCP: 2,
  NOPMTUDISC: 4,
  WILDRECV: 8,
  ICMP: 16,
  AF_UNSPEC: 32,
  ALIGN4: 64,
  ESN: 128,
} as const;

/** UDP encapsulation types (linux/udp.h). */
export const UDP_ENCAP_ESPINUDP = 2;

/** A selector: addresses as "addr" or "addr/prefix"; omitted = any of the family. */
export interface Selector {
  src: string;
  dst: string;
  /** IP protocol (0 = any). */
  proto?: number;
  /** Port and mask as XFRM matches them; a port without mask matches exactly. */
  sport?: number;
  sportMask?: number;
  dport?: number;
  dportMask?: number;
  ifindex?: number;
}

/** 0 (or omitted) = no limit. */
export interface Lifetime {
  softBytes?: number;
  hardBytes?: number;
  softPackets?: number;
  hardPackets?: number;
  softAddSeconds?: number;
  hardAddSeconds?: number;
  softUseSeconds?: number;
  hardUseSeconds?: number;
}

export interface Mark {
  value: number;
  mask?: number;
}

export interface SaSpec {
  /** Outer addresses. */
  src: string;
  dst: string;
  spi: number;
  proto?: XfrmProto;
  mode?: XfrmMode;
  reqid?: number;
  /** AEAD (key includes the salt); excludes crypt/auth. */
  aead?: { name: string; key: Buffer; icvBits?: number };
  crypt?: { name: string; key: Buffer };
  /** Truncated HMAC (XFRMA_ALG_AUTH_TRUNC); truncBits defaults to the RFC value. */
  auth?: { name: string; key: Buffer; truncBits?: number };
  comp?: { name: string };
  /** Anti-replay window in packets (0 = off; > 32 uses XFRMA_REPLAY_ESN_VAL). */
  replayWindow?: number;
  /** Extended sequence numbers (RFC 4304). */
  esn?: boolean;
  lifetime?: Lifetime;
  /** UDP encapsulation (NAT-T, RFC 3948): ports of this SA's packets. */
  encap?: { sport: number; dport: number; oa?: string; type?: number };
  selector?: Selector;
  flags?: number;
  extraFlags?: number;
  mark?: Mark;
  ifId?: number;
  tfcPad?: number;
  /** Output mark set on packets after transformation (XFRMA_SET_MARK). */
  setMark?: Mark;
}

export interface SaId {
  dst: string;
  spi: number;
  proto?: XfrmProto;
  /** Optional source address to disambiguate (XFRMA_SRCADDR). */
  src?: string;
  mark?: Mark;
}

export interface SaCounters {
  bytes: number;
  packets: number;
  /** Seconds since the epoch (0 = never). */
  addTime: number;
  useTime: number;
}

export interface SaInfo {
  src: string;
  dst: string;
  spi: number;
  proto: XfrmProto;
  mode: XfrmMode;
  reqid: number;
  flags: number;
  esn: boolean;
  replayWindow: number;
  selector: Selector;
  lifetime: Required<Lifetime>;
  current: SaCounters;
  stats: { replayWindow: number; replay: number; integrityFailed: number };
  replay?: { seq: number; oseq: number; seqHi?: number; oseqHi?: number };
  aead?: { name: string; key: Buffer; icvBits: number };
  crypt?: { name: string; key: Buffer };
  auth?: { name: string; key: Buffer; truncBits?: number };
  comp?: { name: string };
  encap?: { type: number; sport: number; dport: number; oa: string };
  extraFlags?: number;
  tfcPad?: number;
  setMark?: Required<Mark>;
  mark?: Required<Mark>;
  ifId?: number;
}

export interface TemplateSpec {
  /** Outer addresses (required in tunnel mode). */
  src?: string;
  dst?: string;
  /** 0 = any SPI. */
  spi?: number;
  proto?: XfrmProto;
  mode?: XfrmMode;
  reqid?: number;
  /** Level "use": the template may be skipped when no SA matches. */
  optional?: boolean;
}

export interface TemplateInfo {
  family: IpVersion;
  src: string;
  dst: string;
  spi: number;
  proto: XfrmProto;
  mode: XfrmMode;
  reqid: number;
  optional: boolean;
}

export interface PolicySpec {
  selector: Selector;
  dir: PolicyDir;
  action?: 'allow' | 'block';
  /** Lower value = preferred. */
  priority?: number;
  index?: number;
  templates?: TemplateSpec[];
  lifetime?: Lifetime;
  flags?: number;
  mark?: Mark;
  ifId?: number;
}

export type PolicyId =
  | { selector: Selector; dir: PolicyDir; mark?: Mark; ifId?: number }
  | { index: number; dir: PolicyDir; mark?: Mark; ifId?: number };

export interface PolicyInfo {
  selector: Selector;
  dir: PolicyDir;
  action: 'allow' | 'block';
  priority: number;
  index: number;
  flags: number;
  templates: TemplateInfo[];
  lifetime: Required<Lifetime>;
  current: SaCounters;
  mark?: Required<Mark>;
  ifId?: number;
  /** A per-socket policy (IP_XFRM_POLICY, e.g. an IKE socket's bypass); not deletable by netlink. */
  socket?: true;
}

export type XfrmEvent =
  | { type: 'acquire'; reqid: number; src: string; dst: string; proto: XfrmProto; selector: Selector; policy: PolicyInfo; seq: number }
  | { type: 'expire'; hard: boolean; sa: SaInfo }
  | { type: 'polexpire'; hard: boolean; policy: PolicyInfo }
  | { type: 'mapping'; dst: string; spi: number; proto: XfrmProto; reqid: number; oldSrc: string; newSrc: string; oldSport: number; newSport: number }
  | { type: 'report'; proto: number; selector: Selector; coaddr?: string }
  | { type: 'migrate'; selector: Selector; dir: PolicyDir; migrations: { oldSrc: string; oldDst: string; newSrc: string; newDst: string; proto: number; mode: number; reqid: number }[] }
  | { type: 'newsa' | 'updsa'; sa: SaInfo }
  | { type: 'delsa'; sa: Partial<SaInfo> & { dst: string; spi: number } }
  | { type: 'newpolicy' | 'updpolicy' | 'delpolicy'; policy: PolicyInfo }
  | { type: 'flushsa'; proto: number }
  | { type: 'flushpolicy' }
  | { type: 'aevent'; dst: string; spi: number; src: string; reqid: number; current?: SaCounters; replay?: { seq: number; oseq: number } }
  /** Notifications were dropped (socket buffer overflow): resynchronise by dumping. */
  | { type: 'overflow' };

export type XfrmGroup = 'acquire' | 'expire' | 'sa' | 'policy' | 'aevents' | 'report' | 'migrate' | 'mapping';
const GROUP_NUM: Record<XfrmGroup, number> = {
  acquire: 1, expire: 2, sa: 3, policy: 4, aevents: 5, report: 6, migrate: 7, mapping: 8,
};

/** A kernel refusal. */
export interface XfrmError extends Error {
  errno: number;
  code: string;
  extack?: string;
}

export function isXfrmError(e: unknown, code?: string): e is XfrmError {
  return e instanceof Error && typeof (e as XfrmError).errno === 'number' && (code === undefined || (e as XfrmError).code === code);
}

// ------------------------------------------------------------- validation ---

function uint(value: unknown, field: string, max: number, dflt = 0): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${field}: must be an integer 0..${max}, got ${String(value)}`);
  }
  return value;
}

const U32 = 0xffffffff;

function familyOf(v: IpVersion): number {
  return v === 4 ? AF_INET : AF_INET6;
}

function versionOfFamily(f: number): IpVersion {
  return f === AF_INET ? 4 : 6;
}

function oneOf<T extends string>(value: unknown, table: Record<T, number>, field: string, dflt: T): number {
  if (value === undefined) return table[dflt];
  if (typeof value !== 'string' || !(value in table)) {
    throw new TypeError(`${field}: must be one of ${Object.keys(table).join(', ')}, got ${String(value)}`);
  }
  return table[value as T];
}

function encodeSelector(sel: Selector, field: string): NativeSelector {
  if (typeof sel !== 'object' || sel === null) throw new TypeError(`${field}: must be an object`);
  const src = parsePrefix(sel.src, `${field}.src`);
  const dst = parsePrefix(sel.dst, `${field}.dst`);
  if (src.version !== dst.version) {
    throw new TypeError(`${field}: mixes IPv${src.version} src and IPv${dst.version} dst`);
  }
  const sport = uint(sel.sport, `${field}.sport`, 0xffff);
  const dport = uint(sel.dport, `${field}.dport`, 0xffff);
  return {
    family: familyOf(src.version),
    src: src.address,
    dst: dst.address,
    prefixSrc: src.prefix,
    prefixDst: dst.prefix,
    proto: uint(sel.proto, `${field}.proto`, 255),
    sport,
    sportMask: uint(sel.sportMask, `${field}.sportMask`, 0xffff, sport ? 0xffff : 0),
    dport,
    dportMask: uint(sel.dportMask, `${field}.dportMask`, 0xffff, dport ? 0xffff : 0),
    ifindex: uint(sel.ifindex, `${field}.ifindex`, 0x7fffffff),
  };
}

function encodeLifetime(l: Lifetime | undefined, field: string): NativeLifetime | undefined {
  if (l === undefined) return undefined;
  const f = (k: keyof Lifetime) => uint(l[k], `${field}.${k}`, Number.MAX_SAFE_INTEGER);
  const out: NativeLifetime = {
    softBytes: f('softBytes'),
    hardBytes: f('hardBytes'),
    softPackets: f('softPackets'),
    hardPackets: f('hardPackets'),
    softAddSeconds: f('softAddSeconds'),
    hardAddSeconds: f('hardAddSeconds'),
    softUseSeconds: f('softUseSeconds'),
    hardUseSeconds: f('hardUseSeconds'),
  };
  const pair = (soft: keyof NativeLifetime, hard: keyof NativeLifetime) => {
    if (out[soft] && out[hard] && out[soft] > out[hard]) {
      throw new TypeError(`${field}.${soft}: must not exceed ${hard}`);
    }
  };
  pair('softBytes', 'hardBytes');
  pair('softPackets', 'hardPackets');
  pair('softAddSeconds', 'hardAddSeconds');
  pair('softUseSeconds', 'hardUseSeconds');
  return out;
}

function encodeMark(m: Mark | undefined, field: string): { value: number; mask: number } | undefined {
  if (m === undefined) return undefined;
  return { value: uint(m.value, `${field}.value`, U32), mask: uint(m.mask, `${field}.mask`, U32, U32) };
}

function keyBuffer(key: unknown, field: string): Buffer {
  if (!Buffer.isBuffer(key)) throw new TypeError(`${field}: must be a Buffer`);
  return key;
}

function octetList(l: number[]): string {
  return l.length === 1 ? String(l[0]) : `${l.slice(0, -1).join(', ')} or ${l[l.length - 1]}`;
}

export function validateAlgorithms(sa: Pick<SaSpec, 'aead' | 'crypt' | 'auth' | 'comp' | 'proto'>, field = 'sa'): {
  aead?: NativeAlgo; crypt?: NativeAlgo; auth?: NativeAlgo; comp?: { name: string };
} {
  const proto = sa.proto ?? 'esp';
  const out: { aead?: NativeAlgo; crypt?: NativeAlgo; auth?: NativeAlgo; comp?: { name: string } } = {};
  if (sa.aead) {
    const a = AEAD_ALGORITHMS[sa.aead.name];
    if (!a) throw new TypeError(`${field}.aead.name: unknown AEAD algorithm '${sa.aead.name}' (known: ${Object.keys(AEAD_ALGORITHMS).join(', ')})`);
    const key = keyBuffer(sa.aead.key, `${field}.aead.key`);
    if (!a.keyOctets.includes(key.length)) {
      throw new TypeError(`${field}.aead.key: ${sa.aead.name} needs ${octetList(a.keyOctets)} octets (key + ${a.saltOctets}-octet salt), got ${key.length}`);
    }
    const icv = sa.aead.icvBits ?? 128;
    if (!a.icvBits.includes(icv)) throw new TypeError(`${field}.aead.icvBits: ${sa.aead.name} allows ${a.icvBits.join(', ')}, got ${icv}`);
    if (sa.crypt || sa.auth) throw new TypeError(`${field}.aead: cannot be combined with crypt/auth`);
    out.aead = { name: sa.aead.name, key, icvBits: icv };
  }
  if (sa.crypt) {
    const c = CRYPT_ALGORITHMS[sa.crypt.name];
    if (!c) throw new TypeError(`${field}.crypt.name: unknown cipher '${sa.crypt.name}' (known: ${Object.keys(CRYPT_ALGORITHMS).join(', ')})`);
    const key = keyBuffer(sa.crypt.key, `${field}.crypt.key`);
    if (!c.keyOctets.includes(key.length)) throw new TypeError(`${field}.crypt.key: ${sa.crypt.name} needs ${octetList(c.keyOctets)} octets, got ${key.length}`);
    out.crypt = { name: sa.crypt.name, key };
  }
  if (sa.auth) {
    const a = AUTH_ALGORITHMS[sa.auth.name];
    if (!a) throw new TypeError(`${field}.auth.name: unknown integrity algorithm '${sa.auth.name}' (known: ${Object.keys(AUTH_ALGORITHMS).join(', ')})`);
    const key = keyBuffer(sa.auth.key, `${field}.auth.key`);
    if (!a.keyOctets.includes(key.length)) throw new TypeError(`${field}.auth.key: ${sa.auth.name} needs ${octetList(a.keyOctets)} octets, got ${key.length}`);
    const trunc = sa.auth.truncBits ?? a.truncBits[0]!;
    if (!a.truncBits.includes(trunc)) throw new TypeError(`${field}.auth.truncBits: ${sa.auth.name} allows ${a.truncBits.join(', ')}, got ${trunc}`);
    out.auth = { name: sa.auth.name, key, truncBits: trunc };
  }
  if (sa.comp) {
    if (!COMP_ALGORITHMS[sa.comp.name]) throw new TypeError(`${field}.comp.name: unknown compression '${sa.comp.name}'`);
    out.comp = { name: sa.comp.name };
  }
  if (proto === 'esp' && !out.aead && !out.crypt) throw new TypeError(`${field}: ESP needs aead or crypt`);
  if (proto === 'esp' && out.crypt && !out.auth && out.crypt.name !== 'ecb(cipher_null)') {
    throw new TypeError(`${field}.auth: ESP with ${out.crypt.name} needs an integrity algorithm`);
  }
  if (proto === 'ah' && (!out.auth || out.aead || out.crypt)) throw new TypeError(`${field}: AH takes only auth`);
  if (proto === 'comp' && (!out.comp || out.aead || out.crypt || out.auth)) throw new TypeError(`${field}: IPComp takes only comp`);
  return out;
}

/** Validates an SA and turns it into the addon's shape. Exported for tests. */
export function encodeSa(sa: SaSpec, field = 'sa'): NativeSa {
  if (typeof sa !== 'object' || sa === null) throw new TypeError(`${field}: must be an object`);
  const src = parseAddress(sa.src, `${field}.src`);
  const dst = parseAddress(sa.dst, `${field}.dst`);
  if (src.version !== dst.version) throw new TypeError(`${field}: mixes IPv${src.version} src and IPv${dst.version} dst`);
  const proto = oneOf(sa.proto, PROTO_NUM, `${field}.proto`, 'esp');
  const mode = oneOf(sa.mode, MODE_NUM, `${field}.mode`, 'transport');
  const spi = uint(sa.spi, `${field}.spi`, U32);
  if (spi === 0) throw new TypeError(`${field}.spi: must not be 0`);
  if (proto === PROTO_NUM.comp && spi > 0xffff) throw new TypeError(`${field}.spi: IPComp CPIs are 16 bits`);
  const out: NativeSa = {
    family: familyOf(src.version),
    src: src.address,
    dst: dst.address,
    spi,
    proto,
    mode,
    reqid: uint(sa.reqid, `${field}.reqid`, U32),
    flags: uint(sa.flags, `${field}.flags`, 255),
    replayWindow: uint(sa.replayWindow, `${field}.replayWindow`, 4096),
    esn: sa.esn === true,
    ...validateAlgorithms(sa, field),
  };
  if (sa.esn !== undefined && typeof sa.esn !== 'boolean') throw new TypeError(`${field}.esn: must be a boolean`);
  if (out.esn && proto === PROTO_NUM.comp) throw new TypeError(`${field}.esn: IPComp has no sequence numbers`);
  if (sa.selector) {
    out.selector = encodeSelector(sa.selector, `${field}.selector`);
    if (mode === MODE_NUM.transport && out.selector.family !== out.family) {
      throw new TypeError(`${field}.selector: transport mode selector family must match the SA's (IPv${src.version})`);
    }
  }
  const lt = encodeLifetime(sa.lifetime, `${field}.lifetime`);
  if (lt) out.lifetime = lt;
  if (sa.encap) {
    if (proto !== PROTO_NUM.esp) throw new TypeError(`${field}.encap: only ESP can be UDP-encapsulated`);
    out.encap = {
      type: uint(sa.encap.type, `${field}.encap.type`, 0xffff, UDP_ENCAP_ESPINUDP),
      sport: uint(sa.encap.sport, `${field}.encap.sport`, 0xffff),
      dport: uint(sa.encap.dport, `${field}.encap.dport`, 0xffff),
    };
    if (!out.encap.sport || !out.encap.dport) throw new TypeError(`${field}.encap: sport and dport must be non-zero`);
    if (sa.encap.oa !== undefined) {
      const oa = parseAddress(sa.encap.oa, `${field}.encap.oa`);
      if (oa.version !== src.version) throw new TypeError(`${field}.encap.oa: must be IPv${src.version}`);
      out.encap.oa = oa.address;
    }
  }
  if (sa.extraFlags !== undefined) out.extraFlags = uint(sa.extraFlags, `${field}.extraFlags`, U32);
  if (sa.tfcPad !== undefined) out.tfcPad = uint(sa.tfcPad, `${field}.tfcPad`, U32);
  const mark = encodeMark(sa.mark, `${field}.mark`);
  if (mark) out.mark = mark;
  const setMark = encodeMark(sa.setMark, `${field}.setMark`);
  if (setMark) out.setMark = setMark;
  if (sa.ifId !== undefined) out.ifId = uint(sa.ifId, `${field}.ifId`, U32);
  return out;
}

function encodeSaId(id: SaId, field = 'id'): Record<string, unknown> {
  if (typeof id !== 'object' || id === null) throw new TypeError(`${field}: must be an object`);
  const dst = parseAddress(id.dst, `${field}.dst`);
  const out: Record<string, unknown> = {
    family: familyOf(dst.version),
    dst: dst.address,
    spi: uint(id.spi, `${field}.spi`, U32),
    proto: oneOf(id.proto, PROTO_NUM, `${field}.proto`, 'esp'),
  };
  if (id.src !== undefined) {
    const src = parseAddress(id.src, `${field}.src`);
    if (src.version !== dst.version) throw new TypeError(`${field}: mixes IPv${src.version} src and IPv${dst.version} dst`);
    out.src = src.address;
  }
  const mark = encodeMark(id.mark, `${field}.mark`);
  if (mark) out.mark = mark;
  return out;
}

/** Validates a policy and turns it into the addon's shape. Exported for tests. */
export function encodePolicy(p: PolicySpec, field = 'policy'): NativePolicy {
  if (typeof p !== 'object' || p === null) throw new TypeError(`${field}: must be an object`);
  const selector = encodeSelector(p.selector, `${field}.selector`);
  const dir = oneOf(p.dir, DIR_NUM, `${field}.dir`, 'out');
  if (p.dir === undefined) throw new TypeError(`${field}.dir: must be one of in, out, fwd`);
  const action = oneOf<'allow' | 'block'>(p.action, { allow: 0, block: 1 }, `${field}.action`, 'allow');
  const templates: NativeTemplate[] = (p.templates ?? []).map((t, i) => {
    const f = `${field}.templates[${i}]`;
    const mode = oneOf(t.mode, MODE_NUM, `${f}.mode`, 'transport');
    const src = t.src !== undefined ? parseAddress(t.src, `${f}.src`) : undefined;
    const dst = t.dst !== undefined ? parseAddress(t.dst, `${f}.dst`) : undefined;
    if (src && dst && src.version !== dst.version) throw new TypeError(`${f}: mixes IPv${src.version} src and IPv${dst.version} dst`);
    if (mode !== MODE_NUM.transport && (!src || !dst)) throw new TypeError(`${f}: tunnel mode needs src and dst`);
    const version = src?.version ?? dst?.version ?? versionOfFamily(selector.family);
    if (mode === MODE_NUM.transport && version !== versionOfFamily(selector.family)) {
      throw new TypeError(`${f}: transport mode template family must match the selector's`);
    }
    const nt: NativeTemplate = {
      family: familyOf(version),
      spi: uint(t.spi, `${f}.spi`, U32),
      proto: oneOf(t.proto, PROTO_NUM, `${f}.proto`, 'esp'),
      reqid: uint(t.reqid, `${f}.reqid`, U32),
      mode,
      share: 0,
      optional: t.optional === true,
    };
    if (src) nt.src = src.address;
    if (dst) nt.dst = dst.address;
    return nt;
  });
  if (templates.length > 6) throw new TypeError(`${field}.templates: at most 6`);
  const out: NativePolicy = {
    selector,
    priority: uint(p.priority, `${field}.priority`, U32),
    index: uint(p.index, `${field}.index`, U32),
    dir,
    action,
    flags: uint(p.flags, `${field}.flags`, 255),
    share: 0,
    templates,
  };
  const lt = encodeLifetime(p.lifetime, `${field}.lifetime`);
  if (lt) out.lifetime = lt;
  const mark = encodeMark(p.mark, `${field}.mark`);
  if (mark) out.mark = mark;
  if (p.ifId !== undefined) out.ifId = uint(p.ifId, `${field}.ifId`, U32);
  return out;
}

function encodePolicyId(id: PolicyId, field = 'id'): Record<string, unknown> {
  if (typeof id !== 'object' || id === null) throw new TypeError(`${field}: must be an object`);
  const out: Record<string, unknown> = { dir: oneOf(id.dir, DIR_NUM, `${field}.dir`, 'out') };
  if (id.dir === undefined) throw new TypeError(`${field}.dir: must be one of in, out, fwd`);
  if ('index' in id && id.index !== undefined) out.index = uint(id.index, `${field}.index`, U32);
  else out.selector = encodeSelector((id as { selector: Selector }).selector, `${field}.selector`);
  const mark = encodeMark(id.mark, `${field}.mark`);
  if (mark) out.mark = mark;
  if (id.ifId !== undefined) out.ifId = uint(id.ifId, `${field}.ifId`, U32);
  return out;
}

// --------------------------------------------------------------- decoding ---

const PROTO_NAME: Record<number, XfrmProto> = { 50: 'esp', 51: 'ah', 108: 'comp' };
const MODE_NAME: Record<number, XfrmMode> = { 0: 'transport', 1: 'tunnel', 4: 'beet' };
const DIR_NAME: Record<number, PolicyDir> = { 0: 'in', 1: 'out', 2: 'fwd' };

function decodeSelector(s: NativeSelector): Selector {
  const out: Selector = { src: `${s.src}/${s.prefixSrc}`, dst: `${s.dst}/${s.prefixDst}` };
  out.proto = s.proto;
  out.sport = s.sport;
  out.sportMask = s.sportMask;
  out.dport = s.dport;
  out.dportMask = s.dportMask;
  out.ifindex = s.ifindex;
  return out;
}

function decodeSa(n: NativeSaInfo): SaInfo {
  const out: SaInfo = {
    src: n.src,
    dst: n.dst,
    spi: n.spi,
    proto: PROTO_NAME[n.proto] ?? (String(n.proto) as XfrmProto),
    mode: MODE_NAME[n.mode] ?? (String(n.mode) as XfrmMode),
    reqid: n.reqid,
    flags: n.flags,
    esn: n.esn,
    replayWindow: n.replayWindow,
    selector: decodeSelector(n.selector),
    lifetime: n.lifetime,
    current: n.current,
    stats: n.stats,
  };
  if (n.replay) out.replay = n.replay;
  if (n.aead) out.aead = { name: n.aead.name, key: n.aead.key, icvBits: n.aead.icvBits ?? 0 };
  if (n.crypt) out.crypt = { name: n.crypt.name, key: n.crypt.key };
  if (n.auth) out.auth = n.auth.truncBits === undefined ? { name: n.auth.name, key: n.auth.key } : { name: n.auth.name, key: n.auth.key, truncBits: n.auth.truncBits };
  if (n.comp) out.comp = { name: n.comp.name };
  if (n.encap) out.encap = { type: n.encap.type, sport: n.encap.sport, dport: n.encap.dport, oa: n.encap.oa ?? '' };
  if (n.extraFlags !== undefined) out.extraFlags = n.extraFlags;
  if (n.tfcPad !== undefined) out.tfcPad = n.tfcPad;
  if (n.setMark) out.setMark = n.setMark;
  if (n.mark) out.mark = n.mark;
  if (n.ifId !== undefined) out.ifId = n.ifId;
  return out;
}

function decodePolicy(n: NativePolicyInfo): PolicyInfo {
  const out: PolicyInfo = {
    selector: decodeSelector(n.selector),
    dir: DIR_NAME[n.dir] ?? 'out',
    action: n.action === 1 ? 'block' : 'allow',
    priority: n.priority,
    index: n.index,
    flags: n.flags,
    templates: n.templates.map((t) => ({
      family: versionOfFamily(t.family),
      src: t.src ?? '',
      dst: t.dst ?? '',
      spi: t.spi,
      proto: PROTO_NAME[t.proto] ?? 'esp',
      mode: MODE_NAME[t.mode] ?? 'transport',
      reqid: t.reqid,
      optional: t.optional,
    })),
    lifetime: n.lifetime,
    current: n.current,
  };
  if (n.mark) out.mark = n.mark;
  if (n.ifId !== undefined) out.ifId = n.ifId;
  // socket policies are listed with dir + XFRM_POLICY_MAX
  if (n.dir >= 3) {
    out.dir = DIR_NAME[n.dir - 3] ?? 'out';
    out.socket = true;
  }
  return out;
}

/** Decodes a multicast notification from the addon into a typed event. Exported for tests. */
export function decodeEvent(raw: Record<string, unknown>): XfrmEvent | undefined {
  const r = raw as Record<string, never>;
  switch (raw.type) {
    case 'acquire':
      return {
        type: 'acquire',
        reqid: r.reqid,
        src: r.src,
        dst: r.dst,
        proto: PROTO_NAME[r.proto] ?? 'esp',
        selector: decodeSelector(r.selector),
        policy: decodePolicy({ ...(r.policy as NativePolicyInfo) }),
        seq: r.seq,
      };
    case 'expire':
      return { type: 'expire', hard: r.hard, sa: decodeSa(raw as unknown as NativeSaInfo) };
    case 'polexpire':
      return { type: 'polexpire', hard: r.hard, policy: decodePolicy(raw as unknown as NativePolicyInfo) };
    case 'mapping':
      return {
        type: 'mapping', dst: r.dst, spi: r.spi, proto: PROTO_NAME[r.proto] ?? 'esp', reqid: r.reqid,
        oldSrc: r.oldSrc, newSrc: r.newSrc, oldSport: r.oldSport, newSport: r.newSport,
      };
    case 'report': {
      const ev: XfrmEvent = { type: 'report', proto: r.proto, selector: decodeSelector(r.selector) };
      if (raw.coaddr !== undefined) ev.coaddr = r.coaddr;
      return ev;
    }
    case 'migrate':
      return { type: 'migrate', selector: decodeSelector(r.selector), dir: DIR_NAME[r.dir] ?? 'out', migrations: r.migrations };
    case 'newsa':
    case 'updsa':
      return { type: raw.type, sa: decodeSa(raw as unknown as NativeSaInfo) };
    case 'delsa':
      return { type: 'delsa', sa: raw.selector ? decodeSa(raw as unknown as NativeSaInfo) : { dst: r.dst, spi: r.spi } };
    case 'newpolicy':
    case 'updpolicy':
      return { type: raw.type, policy: decodePolicy(raw as unknown as NativePolicyInfo) };
    case 'delpolicy':
      return {
        type: 'delpolicy',
        policy: raw.lifetime
          ? decodePolicy(raw as unknown as NativePolicyInfo)
          : ({ selector: decodeSelector(r.selector), dir: DIR_NAME[r.dir] ?? 'out', index: r.index } as unknown as PolicyInfo),
      };
    case 'flushsa':
      return { type: 'flushsa', proto: r.proto };
    case 'flushpolicy':
      return { type: 'flushpolicy' };
    case 'aevent': {
      const ev: XfrmEvent = { type: 'aevent', dst: r.dst, spi: r.spi, src: r.src, reqid: r.reqid };
      if (raw.current) ev.current = r.current;
      if (raw.replay) ev.replay = r.replay;
      return ev;
    }
    case 'overflow':
      return { type: 'overflow' };
    default:
      return undefined;
  }
}

// ----------------------------------------------------------------- client ---

export interface XfrmClientOptions {
  /** Network namespace: a path such as /var/run/netns/NAME, or an open fd. Default: the process's. */
  netns?: string | number;
}

export interface XfrmClientEvents {
  event: [XfrmEvent];
  acquire: [Extract<XfrmEvent, { type: 'acquire' }>];
  expire: [Extract<XfrmEvent, { type: 'expire' }>];
  polexpire: [Extract<XfrmEvent, { type: 'polexpire' }>];
  mapping: [Extract<XfrmEvent, { type: 'mapping' }>];
  report: [Extract<XfrmEvent, { type: 'report' }>];
  migrate: [Extract<XfrmEvent, { type: 'migrate' }>];
}

/**
 * One NETLINK_XFRM connection (in one network namespace). Requests are
 * pipelined; each resolves when the kernel acknowledged it. Events arrive as
 * 'event' (every kind) and as their own name ('acquire', 'expire', ...).
 */
export class XfrmClient extends EventEmitter<XfrmClientEvents> {
  private sock: NativeSocket | undefined;

  private constructor(opts: XfrmClientOptions) {
    super();
    if (opts.netns !== undefined && typeof opts.netns !== 'string' && typeof opts.netns !== 'number') {
      throw new TypeError('netns: must be a path or an fd');
    }
    const addon = loadAddon();
    this.sock = new addon.XfrmSocket({
      ...(opts.netns !== undefined ? { netns: opts.netns } : {}),
      onEvent: (raw) => {
        const ev = decodeEvent(raw);
        if (!ev) return;
        this.emit('event', ev);
        if (['acquire', 'expire', 'polexpire', 'mapping', 'report', 'migrate'].includes(ev.type)) {
          (this.emit as (name: string, e: XfrmEvent) => boolean)(ev.type, ev);
        }
      },
    });
  }

  static open(opts: XfrmClientOptions = {}): XfrmClient {
    return new XfrmClient(opts);
  }

  get closed(): boolean {
    return this.sock === undefined;
  }

  /** Requests not yet answered by the kernel. */
  get pending(): number {
    return this.sock?.pending ?? 0;
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }

  private get s(): NativeSocket {
    if (!this.sock) throw new Error('XfrmClient is closed');
    return this.sock;
  }

  /** Joins XFRM multicast groups; default: acquire, expire, mapping, migrate, report. */
  subscribe(groups: XfrmGroup[] = ['acquire', 'expire', 'mapping', 'migrate', 'report']): void {
    this.s.subscribe(groups.map((g) => {
      const n = GROUP_NUM[g];
      if (n === undefined) throw new TypeError(`groups: unknown XFRM group '${String(g)}'`);
      return n;
    }));
  }

  // -- SAs --

  /** XFRM_MSG_ALLOCSPI: reserve an SPI in [min, max] as a larval SA (src -> dst); complete it with updateSa. */
  async allocSpi(a: { src: string; dst: string; min: number; max: number; proto?: XfrmProto; mode?: XfrmMode; reqid?: number; mark?: Mark; ifId?: number }): Promise<number> {
    if (typeof a !== 'object' || a === null) throw new TypeError('allocSpi: must be an object');
    const src = parseAddress(a.src, 'allocSpi.src');
    const dst = parseAddress(a.dst, 'allocSpi.dst');
    if (src.version !== dst.version) throw new TypeError(`allocSpi: mixes IPv${src.version} src and IPv${dst.version} dst`);
    const min = uint(a.min, 'allocSpi.min', U32);
    const max = uint(a.max, 'allocSpi.max', U32);
    if (min > max) throw new TypeError('allocSpi.min: must not exceed max');
    if (min === 0) throw new TypeError('allocSpi.min: must not be 0');
    const arg: Record<string, unknown> = {
      family: familyOf(src.version), src: src.address, dst: dst.address, min, max,
      proto: oneOf(a.proto, PROTO_NUM, 'allocSpi.proto', 'esp'),
      mode: oneOf(a.mode, MODE_NUM, 'allocSpi.mode', 'transport'),
      reqid: uint(a.reqid, 'allocSpi.reqid', U32),
    };
    const mark = encodeMark(a.mark, 'allocSpi.mark');
    if (mark) arg.mark = mark;
    if (a.ifId !== undefined) arg.ifId = uint(a.ifId, 'allocSpi.ifId', U32);
    let r: NativeSaInfo | undefined;
    try {
      r = await this.s.request('allocspi', arg);
    } catch (e) {
      // the kernel says ENOENT when no SPI of the range is free
      if (isXfrmError(e, 'ENOENT')) {
        const range = min === max ? `SPI 0x${min.toString(16)} is` : `every SPI in 0x${min.toString(16)}..0x${max.toString(16)} is`;
        e.message = `allocspi: ${range} already in use (${e.message})`;
      }
      throw e;
    }
    if (!r) throw new Error('allocSpi: the kernel answered without an SA');
    return r.spi;
  }

  /** XFRM_MSG_NEWSA (fails with EEXIST if present). */
  async addSa(sa: SaSpec): Promise<void> {
    return this.s.request('newsa', encodeSa(sa));
  }

  /** XFRM_MSG_UPDSA: replace an SA (e.g. complete a larval one from allocSpi). */
  async updateSa(sa: SaSpec): Promise<void> {
    return this.s.request('updsa', encodeSa(sa));
  }

  /** XFRM_MSG_GETSA; rejects with code ESRCH/ENOENT when absent. */
  async getSa(id: SaId): Promise<SaInfo> {
    const r = await this.s.request('getsa', encodeSaId(id));
    if (!r) throw new Error('getSa: the kernel answered without an SA');
    return decodeSa(r);
  }

  async deleteSa(id: SaId): Promise<void> {
    return this.s.request('delsa', encodeSaId(id));
  }

  async dumpSas(): Promise<SaInfo[]> {
    return (await this.s.request('dumpsa')).map(decodeSa);
  }

  /** XFRM_MSG_FLUSHSA: every SA of `proto` (default: all). */
  async flushSas(proto?: XfrmProto): Promise<void> {
    return this.s.request('flushsa', { proto: proto === undefined ? 255 : oneOf(proto, PROTO_NUM, 'proto', 'esp') });
  }

  // -- policies --

  async addPolicy(p: PolicySpec): Promise<void> {
    return this.s.request('newpolicy', encodePolicy(p));
  }

  /** XFRM_MSG_UPDPOLICY: create or replace atomically (same selector, dir, mark, if_id). */
  async updatePolicy(p: PolicySpec): Promise<void> {
    return this.s.request('updpolicy', encodePolicy(p));
  }

  async getPolicy(id: PolicyId): Promise<PolicyInfo> {
    const r = await this.s.request('getpolicy', encodePolicyId(id));
    if (!r) throw new Error('getPolicy: the kernel answered without a policy');
    return decodePolicy(r);
  }

  async deletePolicy(id: PolicyId): Promise<void> {
    return this.s.request('delpolicy', encodePolicyId(id));
  }

  /** The SPD; per-socket policies (IP_XFRM_POLICY) only with includeSocket. */
  async dumpPolicies(opts: { includeSocket?: boolean } = {}): Promise<PolicyInfo[]> {
    const all = (await this.s.request('dumppolicy')).map(decodePolicy);
    return opts.includeSocket ? all : all.filter((p) => !p.socket);
  }

  async flushPolicies(): Promise<void> {
    return this.s.request('flushpolicy', {});
  }
}

// ------------------------------------------------------- socket helpers ---

/** Kernel ESP-in-UDP decapsulation on a bound UDP socket (NAT-T port 4500). */
export function enableEspInUdp(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('fd: must be a file descriptor');
  loadAddon().enableEspInUdp(fd);
}

/** Per-socket IPsec bypass in both directions so IKE itself is never caught by policies. */
export function bypassIpsec(fd: number, family: 4 | 6): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('fd: must be a file descriptor');
  if (family !== 4 && family !== 6) throw new TypeError('family: must be 4 or 6');
  loadAddon().bypassIpsec(fd, family);
}
