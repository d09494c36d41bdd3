// Virtual IPs through configuration payloads (RFC 7296 §2.19, §3.15): the CP(CFG_REQUEST) an
// initiator sends in IKE_AUTH, the CP(CFG_REPLY) a responder answers it with, and the address
// pools a responder leases from. Pure: the engine keeps the state and decides what to do.
//
// Leases follow strongSwan's in-memory pools in spirit: an address leased to a peer identity stays
// that identity's while any of its IKE SAs holds it, and is remembered after release, so the same
// peer gets the same address back; a remembered address is handed to somebody else only when the
// pool has no never-used address left.
import { isIP } from 'node:net';
import { CfgAttributeType, CfgType, PayloadType, TsType } from '../codec/constants.js';
import { cpPayload } from '../codec/helpers.js';
import type { AddressRangeSelector, CfgAttribute, CpPayload, Payload } from '../codec/types.js';

// ---------------------------------------------------------------------------------------------
// Addresses as numbers

type IpVersion = 4 | 6;

function toBytes(address: string): Buffer {
  const version = isIP(address);
  if (version === 4) return Buffer.from(address.split('.').map((o) => Number(o)));
  if (version !== 6) throw new TypeError(`'${address}' is not an IP address`);
  return bigToBytes(v6ToBig(address), 6);
}

function v6ToBig(address: string): bigint {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = bytesToBig(toBytes(v4[1]!));
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bytesToBig(b: Buffer): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function bigToBytes(n: bigint, version: IpVersion): Buffer {
  const len = version === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Text form of a 4- or 16-octet address (RFC 5952 for IPv6). */
export function addressText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The address-range selector holding exactly `address` (any protocol and port). */
export function hostSelector(address: string): AddressRangeSelector {
  const b = toBytes(address);
  return { tsType: b.length === 4 ? TsType.IPV4_ADDR_RANGE : TsType.IPV6_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, startAddr: b, endAddr: Buffer.from(b) };
}

const ANY = { 4: '0.0.0.0', 6: '::' } as const;

// ---------------------------------------------------------------------------------------------
// Configuration payloads

/**
 * Initiator: CP(CFG_REQUEST) asking for an address of each requested IP version (an empty value
 * means any address, §3.15.1) and for the DNS servers of the same versions.
 */
export function vipRequestPayload(addresses: readonly string[]): CpPayload {
  const attributes: CfgAttribute[] = [];
  const versions = new Set<IpVersion>();
  for (const a of addresses) {
    const version = isIP(a) as IpVersion;
    if (version !== 4 && version !== 6) continue;
    if (versions.has(version)) continue;
    versions.add(version);
    const anyAddress = toBytes(a).every((x) => x === 0);
    if (version === 4) attributes.push({ type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: anyAddress ? Buffer.alloc(0) : toBytes(a) });
    // INTERNAL_IP6_ADDRESS carries the address and a prefix-length octet (§3.15.1).
    else attributes.push({ type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: anyAddress ? Buffer.alloc(0) : Buffer.concat([toBytes(a), Buffer.from([128])]) });
  }
  if (versions.has(4)) attributes.push({ type: CfgAttributeType.INTERNAL_IP4_DNS, value: Buffer.alloc(0) });
  if (versions.has(6)) attributes.push({ type: CfgAttributeType.INTERNAL_IP6_DNS, value: Buffer.alloc(0) });
  return cpPayload(CfgType.CFG_REQUEST, attributes);
}

/** What a CP(CFG_REQUEST) asks for: per IP version the address wanted ("0.0.0.0"/"::" = any). */
export interface VipRequest {
  /** Requested addresses, at most one per IP version, in the order asked. */
  addresses: string[];
}

/** Responder: the CP(CFG_REQUEST) among the request's payloads, if any. Attributes of a wrong length are ignored. */
export function parseVipRequest(payloads: readonly Payload[]): VipRequest | undefined {
  const cp = payloads.find((p): p is CpPayload => p.type === PayloadType.CP);
  if (!cp || cp.cfgType !== CfgType.CFG_REQUEST) return undefined;
  const out: VipRequest = { addresses: [] };
  const seen = new Set<IpVersion>();
  for (const a of cp.attributes) {
    let wanted: string | undefined;
    let version: IpVersion | undefined;
    if (a.type === CfgAttributeType.INTERNAL_IP4_ADDRESS && (a.value.length === 0 || a.value.length === 4)) {
      version = 4;
      wanted = a.value.length === 0 ? ANY[4] : addressText(a.value);
    } else if (a.type === CfgAttributeType.INTERNAL_IP6_ADDRESS && (a.value.length === 0 || a.value.length === 17)) {
      version = 6;
      wanted = a.value.length === 0 ? ANY[6] : addressText(a.value.subarray(0, 16));
    }
    if (version === undefined || wanted === undefined || seen.has(version)) continue;
    seen.add(version);
    out.addresses.push(wanted);
  }
  return out;
}

/** Responder: CP(CFG_REPLY) with the leased addresses and the DNS servers of their IP versions. */
export function vipReplyPayload(addresses: readonly string[], dns: readonly string[]): CpPayload {
  const attributes: CfgAttribute[] = [];
  const versions = new Set<number>();
  for (const a of addresses) {
    const b = toBytes(a);
    versions.add(b.length === 4 ? 4 : 6);
    if (b.length === 4) attributes.push({ type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: b });
    // One address, not a prefix: prefix length 128.
    else attributes.push({ type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: Buffer.concat([b, Buffer.from([128])]) });
  }
  for (const d of dns) {
    const b = toBytes(d);
    const version = b.length === 4 ? 4 : 6;
    if (!versions.has(version)) continue;
    attributes.push({ type: version === 4 ? CfgAttributeType.INTERNAL_IP4_DNS : CfgAttributeType.INTERNAL_IP6_DNS, value: b });
  }
  return cpPayload(CfgType.CFG_REPLY, attributes);
}

export interface VipReply {
  addresses: string[];
  dns: string[];
  /** Attributes that were ignored, and why (for the log). */
  ignored: string[];
}

/** Initiator: the addresses and DNS servers of the CP(CFG_REPLY) among the response's payloads. */
export function parseVipReply(payloads: readonly Payload[]): VipReply | undefined {
  const cp = payloads.find((p): p is CpPayload => p.type === PayloadType.CP);
  if (!cp || cp.cfgType !== CfgType.CFG_REPLY) return undefined;
  const out: VipReply = { addresses: [], dns: [], ignored: [] };
  const add = (list: string[], v: string) => {
    if (!list.includes(v)) list.push(v);
  };
  for (const a of cp.attributes) {
    switch (a.type) {
      case CfgAttributeType.INTERNAL_IP4_ADDRESS:
        if (a.value.length !== 4) out.ignored.push(`INTERNAL_IP4_ADDRESS of ${a.value.length} octets`);
        else if (a.value.equals(Buffer.alloc(4))) out.ignored.push('INTERNAL_IP4_ADDRESS 0.0.0.0');
        else add(out.addresses, addressText(a.value));
        break;
      case CfgAttributeType.INTERNAL_IP6_ADDRESS:
        if (a.value.length !== 17) out.ignored.push(`INTERNAL_IP6_ADDRESS of ${a.value.length} octets`);
        else if (a.value.subarray(0, 16).equals(Buffer.alloc(16))) out.ignored.push('INTERNAL_IP6_ADDRESS ::');
        else add(out.addresses, addressText(a.value.subarray(0, 16)));
        break;
      case CfgAttributeType.INTERNAL_IP4_DNS:
        if (a.value.length === 4) add(out.dns, addressText(a.value));
        else out.ignored.push(`INTERNAL_IP4_DNS of ${a.value.length} octets`);
        break;
      case CfgAttributeType.INTERNAL_IP6_DNS:
        if (a.value.length === 16) add(out.dns, addressText(a.value));
        else out.ignored.push(`INTERNAL_IP6_DNS of ${a.value.length} octets`);
        break;
      default:
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pools

/** A pool as written ("10.99.0.0/24", "10.99.0.10-10.99.0.20", "10.99.0.7"), as a first address and a size. */
export function parsePoolRange(text: string): { version: IpVersion; first: bigint; size: bigint; key: string } {
  const t = text.trim();
  let start: bigint;
  let end: bigint;
  let version: IpVersion;
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = t.slice(0, dash).trim();
    const b = t.slice(dash + 1).trim();
    const va = isIP(a);
    if (va === 0 || va !== isIP(b)) throw new TypeError(`pool "${text}": expected a range like "10.99.0.10-10.99.0.20" (same IP version both ends)`);
    version = va as IpVersion;
    start = bytesToBig(toBytes(a));
    end = bytesToBig(toBytes(b));
    if (end < start) throw new TypeError(`pool "${text}": the range ends before it starts`);
  } else {
    const [addr, lenText, extra] = t.split('/');
    const va = isIP(addr ?? '');
    if (va === 0 || extra !== undefined) throw new TypeError(`pool "${text}": expected a CIDR like "10.99.0.0/24", a range or an address`);
    version = va as IpVersion;
    const bits = version === 4 ? 32 : 128;
    const prefix = lenText === undefined ? bits : Number(lenText);
    if (!/^\d+$/.test(lenText ?? String(bits)) || prefix > bits) throw new TypeError(`pool "${text}": prefix length must be 0-${bits}`);
    const host = BigInt(bits - prefix);
    start = (bytesToBig(toBytes(addr!)) >> host) << host;
    end = start | ((1n << host) - 1n);
    // The network address (and for IPv4 the broadcast address) of a subnet is not handed out.
    if (bits - prefix >= 2) {
      start += 1n;
      if (version === 4) end -= 1n;
    }
  }
  const first = start;
  const size = end - start + 1n;
  return { version, first, size, key: `${addressText(bigToBytes(start, version))}-${addressText(bigToBytes(end, version))}` };
}

interface Lease {
  identity: string;
  /** IKE SAs using the address now; empty = released, remembered for `identity`. */
  holders: Set<string>;
}

/** One address pool: leases by peer identity, held by IKE SAs. */
export class AddressPool {
  readonly version: IpVersion;
  readonly key: string;
  private readonly first: bigint;
  private readonly size: bigint;
  /** Offsets below this were never leased. */
  private fresh = 0n;
  private readonly leases = new Map<bigint, Lease>();
  private readonly byIdentity = new Map<string, bigint>();
  /** Released leases, oldest release first (a Map keeps insertion order). */
  private readonly released = new Map<bigint, true>();

  constructor(text: string) {
    const r = parsePoolRange(text);
    this.version = r.version;
    this.key = r.key;
    this.first = r.first;
    this.size = r.size;
  }

  private address(offset: bigint): string {
    return addressText(bigToBytes(this.first + offset, this.version));
  }

  /** Lease an address to `identity` for IKE SA `holder`; undefined when the pool is exhausted. */
  acquire(identity: string, holder: string): string | undefined {
    let offset = this.byIdentity.get(identity);
    if (offset === undefined) {
      if (this.fresh < this.size) {
        offset = this.fresh++;
      } else {
        const oldest = this.released.keys().next();
        if (oldest.done) return undefined;
        offset = oldest.value;
        const previous = this.leases.get(offset);
        if (previous) this.byIdentity.delete(previous.identity);
        this.leases.delete(offset);
      }
      this.byIdentity.set(identity, offset);
      this.leases.set(offset, { identity, holders: new Set() });
    }
    this.released.delete(offset);
    this.leases.get(offset)!.holders.add(holder);
    return this.address(offset);
  }

  /** Whether `identity` has an address here (held or remembered). */
  knows(identity: string): boolean {
    return this.byIdentity.has(identity);
  }

  /** IKE SA `holder` is gone: its addresses become released (still remembered for their identity). */
  release(holder: string): string[] {
    const out: string[] = [];
    for (const [offset, lease] of this.leases) {
      if (!lease.holders.delete(holder)) continue;
      if (lease.holders.size === 0) this.released.set(offset, true);
      out.push(this.address(offset));
    }
    return out;
  }

  /** An IKE SA rekey: the leases of `from` now belong to `to`. */
  transfer(from: string, to: string): void {
    for (const lease of this.leases.values()) {
      if (lease.holders.delete(from)) lease.holders.add(to);
    }
  }

  /** Addresses held by some IKE SA now. */
  get online(): string[] {
    return [...this.leases].filter(([, l]) => l.holders.size > 0).map(([o]) => this.address(o));
  }
}

/** Every pool of the engine, shared by the connections that name the same range. */
export class AddressPools {
  private readonly pools = new Map<string, AddressPool>();

  private pool(text: string): AddressPool {
    const key = parsePoolRange(text).key;
    let p = this.pools.get(key);
    if (!p) {
      p = new AddressPool(text);
      this.pools.set(key, p);
    }
    return p;
  }

  /**
   * Lease one address per requested IP version from the connection's pools (in their order).
   * A requested specific address is a hint the RFC lets us ignore (§3.15.1); leases are per identity.
   */
  lease(pools: readonly string[], request: VipRequest, identity: string, holder: string): { addresses: string[]; missing: string[] } {
    const addresses: string[] = [];
    const missing: string[] = [];
    for (const wanted of request.addresses) {
      const version = isIP(wanted);
      let got: string | undefined;
      const candidates = pools.map((t) => this.pool(t)).filter((p) => p.version === version);
      // The identity's own address first, wherever it is; then the pools in their order.
      for (const p of [...candidates.filter((c) => c.knows(identity)), ...candidates]) {
        got = p.acquire(identity, holder);
        if (got) break;
      }
      if (got) addresses.push(got);
      else missing.push(wanted);
    }
    return { addresses, missing };
  }

  release(holder: string): string[] {
    return [...this.pools.values()].flatMap((p) => p.release(holder));
  }

  transfer(from: string, to: string): void {
    for (const p of this.pools.values()) p.transfer(from, to);
  }
}
