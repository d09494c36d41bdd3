// Address, prefix and range helpers for XFRM selectors.
import { isIP } from 'node:net';

export type IpVersion = 4 | 6;

/** Validates an IP literal; throws a TypeError naming `field`. */
export function parseAddress(value: unknown, field: string): { address: string; version: IpVersion } {
  if (typeof value !== 'string') throw new TypeError(`${field}: must be an IP address string`);
  const v = isIP(value);
  if (v === 0) throw new TypeError(`${field}: '${value}' is not an IPv4 or IPv6 address`);
  return { address: value, version: v as IpVersion };
}

/** Parses "addr" (host prefix) or "addr/len"; throws a TypeError naming `field`. */
export function parsePrefix(value: unknown, field: string): { address: string; prefix: number; version: IpVersion } {
  if (typeof value !== 'string') throw new TypeError(`${field}: must be an address or address/prefix string`);
  const slash = value.indexOf('/');
  const addrPart = slash < 0 ? value : value.slice(0, slash);
  const { address, version } = parseAddress(addrPart, field);
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, version };
  const lenText = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new TypeError(`${field}: prefix length '${lenText}' must be an integer 0..${max}`);
  }
  return { address, prefix: Number(lenText), version };
}

export function addressToBigInt(address: string): bigint {
  const version = isIP(address);
  if (version === 4) {
    return address.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  }
  if (version !== 6) throw new TypeError(`'${address}' is not an IP address`);
  let text = address;
  // embedded IPv4 tail (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = addressToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function bigIntToAddress(n: bigint, version: IpVersion): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Smallest list of prefixes exactly covering [start, end] (inclusive). */
export function rangeToPrefixes(start: string, end: string): { address: string; prefix: number }[] {
  const a = parseAddress(start, 'startAddress');
  const b = parseAddress(end, 'endAddress');
  if (a.version !== b.version) throw new TypeError(`traffic selector mixes IPv${a.version} and IPv${b.version}`);
  const bits = a.version === 4 ? 32 : 128;
  let lo = addressToBigInt(a.address);
  const hi = addressToBigInt(b.address);
  if (lo > hi) throw new TypeError(`traffic selector range ${start}-${end} is empty`);
  const out: { address: string; prefix: number }[] = [];
  while (lo <= hi) {
    // largest aligned block starting at lo that stays within hi
    let size = 0;
    while (size < bits) {
      const block = 1n << BigInt(size + 1);
      if ((lo & (block - 1n)) !== 0n || lo + block - 1n > hi) break;
      size++;
    }
    out.push({ address: bigIntToAddress(lo, a.version), prefix: bits - size });
    lo += 1n << BigInt(size);
  }
  return out;
}

/**
 * A port range as XFRM (port, mask) pairs. XFRM matches `(port & mask) == value`,
 * so any range decomposes like a prefix range over 16 bits.
 */
export function portRangeToMasks(start: number, end: number): { port: number; mask: number }[] {
  if (start === 0 && end === 65535) return [{ port: 0, mask: 0 }];
  const out: { port: number; mask: number }[] = [];
  let lo = start;
  while (lo <= end) {
    let size = 0;
    while (size < 16) {
      const block = 1 << (size + 1);
      if ((lo & (block - 1)) !== 0 || lo + block - 1 > end) break;
      size++;
    }
    out.push({ port: lo, mask: (0xffff << size) & 0xffff });
    lo += 1 << size;
  }
  return out;
}
