// ID payload data (RFC 7296 §3.5) to and from the configuration's IdentityConfig, including a small
// DER writer/reader for X.501 Names (DER_ASN1_DN) in OpenSSL's one-line text form ("C=CH, O=example, CN=gw").
import { isIPv4, isIPv6 } from 'node:net';
import type { IdentityConfig } from '../config.js';
import { ID_TYPE } from './constants.js';
import { decodeOid, encodeOid, encodeTlv, readChildren, readTlv, TAG } from './der.js';

export interface IdData {
  /** ID Type (RFC 7296 §3.5). */
  type: number;
  /** Identification Data. */
  data: Buffer;
}

// ---------------------------------------------------------------------------------------------
// Addresses

export function ipv4ToBytes(text: string): Buffer {
  if (!isIPv4(text)) throw new Error(`invalid IPv4 address "${text}"`);
  return Buffer.from(text.split('.').map((p) => Number(p)));
}

export function ipv6ToBytes(text: string): Buffer {
  if (!isIPv6(text)) throw new Error(`invalid IPv6 address "${text}"`);
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded dotted IPv4 tail becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = ipv4ToBytes(v4[1]!);
    s = s.slice(0, v4.index) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) throw new Error(`invalid IPv6 address "${text}"`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 5952 text form (lower case, longest zero run compressed). */
export function ipv6FromBytes(b: Buffer): string {
  if (b.length !== 16) throw new Error('IPv6 address must be 16 octets');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------------
// Distinguished names

const DN_ATTRS: { name: string; aliases?: string[]; oid: string; tag?: number }[] = [
  { name: 'C', oid: '2.5.4.6', tag: TAG.PRINTABLE_STRING },
  { name: 'ST', aliases: ['S'], oid: '2.5.4.8' },
  { name: 'L', oid: '2.5.4.7' },
  { name: 'O', oid: '2.5.4.10' },
  { name: 'OU', oid: '2.5.4.11' },
  { name: 'CN', oid: '2.5.4.3' },
  { name: 'SN', oid: '2.5.4.4' },
  { name: 'serialNumber', oid: '2.5.4.5', tag: TAG.PRINTABLE_STRING },
  { name: 'title', oid: '2.5.4.12' },
  { name: 'GN', aliases: ['givenName'], oid: '2.5.4.42' },
  { name: 'emailAddress', aliases: ['E', 'Email'], oid: '1.2.840.113549.1.9.1', tag: TAG.IA5_STRING },
  { name: 'DC', oid: '0.9.2342.19200300.100.1.25', tag: TAG.IA5_STRING },
  { name: 'UID', oid: '0.9.2342.19200300.100.1.1' },
];

function attrByName(name: string) {
  const n = name.trim().toLowerCase();
  return DN_ATTRS.find((a) => a.name.toLowerCase() === n || a.aliases?.some((x) => x.toLowerCase() === n));
}

/** Split on an unescaped separator, honouring backslash escapes and double quotes. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!;
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (!quoted && c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new Error('unterminated quote in DN');
  out.push(cur);
  return out;
}

function unescapeValue(v: string): string {
  let s = v.trim();
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1);
  return s.replace(/\\([0-9a-fA-F]{2}|.)/g, (_m, x: string) => (x.length === 2 ? String.fromCharCode(parseInt(x, 16)) : x));
}

export type Rdn = { oid: string; value: string }[];

/** Parse a DN in one-line form ("C=CH, O=example, CN=gw"; also "/C=CH/O=example/CN=gw"), in the written order. */
export function parseDnText(text: string): Rdn[] {
  const t = text.trim();
  if (!t) throw new Error('empty distinguished name');
  const parts = t.startsWith('/') ? t.slice(1).split('/') : splitUnescaped(t, ',');
  return parts.map((part) =>
    splitUnescaped(part, '+').map((ava) => {
      const eq = ava.indexOf('=');
      if (eq <= 0) throw new Error(`DN component "${ava.trim()}" is not attribute=value`);
      const key = ava.slice(0, eq).trim();
      const oid = /^\d+(\.\d+)+$/.test(key) ? key : attrByName(key)?.oid;
      if (!oid) throw new Error(`unknown DN attribute "${key}"`);
      return { oid, value: unescapeValue(ava.slice(eq + 1)) };
    }),
  );
}

/**
 * DER Name (RFC 5280 §4.1.2.4) from the DN text. String types follow OpenSSL's default (utf8only) so a
 * name written like a certificate's subject encodes to the same octets: C and serialNumber
 * PrintableString, emailAddress and DC IA5String, everything else UTF8String (RFC 5280 §4.1.2.6).
 */
export function dnTextToDer(text: string): Buffer {
  const rdns = parseDnText(text).map((rdn) => {
    const avas = rdn.map(({ oid, value }) => {
      const def = DN_ATTRS.find((a) => a.oid === oid);
      const tag = def?.tag ?? TAG.UTF8_STRING;
      return encodeTlv(TAG.SEQUENCE, Buffer.concat([encodeOid(oid), encodeTlv(tag, Buffer.from(value, 'utf8'))]));
    });
    // DER orders SET OF members by their encodings.
    avas.sort(Buffer.compare);
    return encodeTlv(TAG.SET, Buffer.concat(avas));
  });
  return encodeTlv(TAG.SEQUENCE, Buffer.concat(rdns));
}

/** Parse a DER Name into RDNs (attribute OID and string value). Throws on malformed input. */
export function parseDnDer(der: Buffer): Rdn[] {
  const top = readTlv(der);
  if (top.tag !== TAG.SEQUENCE || top.next !== der.length) throw new Error('Name is not a single DER SEQUENCE');
  return readChildren(top.content).map((set) => {
    if (set.tag !== TAG.SET) throw new Error('RDN is not a SET');
    return readChildren(set.content).map((seq) => {
      const [o, v] = readChildren(seq.content);
      if (seq.tag !== TAG.SEQUENCE || !o || o.tag !== TAG.OID || !v) throw new Error('malformed AttributeTypeAndValue');
      let value: string;
      if (v.tag === 0x1e) {
        // BMPString: UTF-16BE
        const sw = Buffer.from(v.content);
        value = sw.swap16().toString('utf16le');
      } else value = v.content.toString(v.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
      return { oid: decodeOid(o.content), value };
    });
  });
}

function escapeValue(v: string): string {
  let s = v.replace(/([\\,+"<>;=])/g, '\\$1');
  if (s.startsWith(' ') || s.startsWith('#')) s = '\\' + s;
  if (s.endsWith(' ')) s = s.slice(0, -1) + '\\ ';
  return s;
}

/** One-line text form of a DER Name ("C=CH, O=example, CN=gw"). */
export function dnDerToText(der: Buffer): string {
  return parseDnDer(der)
    .map((rdn) => rdn.map(({ oid, value }) => `${DN_ATTRS.find((a) => a.oid === oid)?.name ?? oid}=${escapeValue(value)}`).join(' + '))
    .join(', ');
}

function normalizeDnValue(v: string): string {
  // RFC 5280 §7.1 (simplified RFC 4518 preparation): case-insensitive, runs of spaces collapsed, trimmed.
  return v.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

/** Whether two Names are the same DN (same RDN order and attributes; values compared case-insensitively). */
export function dnEqual(a: Rdn[], b: Rdn[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((rdn, i) => {
    const other = b[i]!;
    if (rdn.length !== other.length) return false;
    const key = (x: { oid: string; value: string }) => `${x.oid}=${normalizeDnValue(x.value)}`;
    const sa = rdn.map(key).sort();
    const sb = other.map(key).sort();
    return sa.every((k, j) => k === sb[j]);
  });
}

// ---------------------------------------------------------------------------------------------
// IdentityConfig <-> ID payload data

/** ID Type and Identification Data for a configured identity. */
export function encodeIdentity(id: IdentityConfig): IdData {
  switch (id.type) {
    case 'ipv4':
      return { type: ID_TYPE.IPV4_ADDR, data: ipv4ToBytes(id.value) };
    case 'ipv6':
      return { type: ID_TYPE.IPV6_ADDR, data: ipv6ToBytes(id.value) };
    case 'fqdn':
      if (!id.value) throw new Error('empty FQDN identity');
      return { type: ID_TYPE.FQDN, data: Buffer.from(id.value, 'ascii') };
    case 'rfc822':
      if (!id.value) throw new Error('empty RFC822 identity');
      return { type: ID_TYPE.RFC822_ADDR, data: Buffer.from(id.value, 'ascii') };
    case 'dn':
      return { type: ID_TYPE.DER_ASN1_DN, data: dnTextToDer(id.value) };
    case 'keyid': {
      const hex = id.value.replace(/^0x/i, '').replace(/[:\s]/g, '');
      if (!hex || hex.length % 2 || !/^[0-9a-fA-F]+$/.test(hex)) throw new Error(`KEY_ID "${id.value}" is not hex`);
      return { type: ID_TYPE.KEY_ID, data: Buffer.from(hex, 'hex') };
    }
  }
}

/** IDType | RESERVED(3) | Identification Data: the ID payload body that MACedIDFor* covers (RFC 7296 §2.15). */
export function idPayloadBody(id: IdData): Buffer {
  return Buffer.concat([Buffer.from([id.type, 0, 0, 0]), id.data]);
}

/** Text identity from received ID data, or an error naming what is wrong. */
export function parseIdentity(id: IdData): { ok: true; identity: IdentityConfig } | { ok: false; reason: string } {
  const { type, data } = id;
  try {
    switch (type) {
      case ID_TYPE.IPV4_ADDR:
        if (data.length !== 4) return { ok: false, reason: `ID_IPV4_ADDR with ${data.length} octets` };
        return { ok: true, identity: { type: 'ipv4', value: [...data].join('.') } };
      case ID_TYPE.IPV6_ADDR:
        if (data.length !== 16) return { ok: false, reason: `ID_IPV6_ADDR with ${data.length} octets` };
        return { ok: true, identity: { type: 'ipv6', value: ipv6FromBytes(data) } };
      case ID_TYPE.FQDN:
      case ID_TYPE.RFC822_ADDR: {
        if (data.length === 0) return { ok: false, reason: 'empty identity' };
        // Printable ASCII only: these are compared and logged as text.
        if (![...data].every((c) => c > 0x20 && c < 0x7f)) return { ok: false, reason: 'identity contains non-printable or non-ASCII octets' };
        return { ok: true, identity: { type: type === ID_TYPE.FQDN ? 'fqdn' : 'rfc822', value: data.toString('ascii') } };
      }
      case ID_TYPE.DER_ASN1_DN:
        return { ok: true, identity: { type: 'dn', value: dnDerToText(data) } };
      case ID_TYPE.KEY_ID:
        return { ok: true, identity: { type: 'keyid', value: data.toString('hex') } };
      default:
        return { ok: false, reason: `unsupported ID type ${type}` };
    }
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** Whether received ID data names the configured identity (FQDN/RFC822 case-insensitive, DN semantically). */
export function identityMatches(expected: IdentityConfig, received: IdData): boolean {
  let want: IdData;
  try {
    want = encodeIdentity(expected);
  } catch {
    return false;
  }
  if (want.type !== received.type) return false;
  switch (expected.type) {
    case 'fqdn':
    case 'rfc822':
      return want.data.toString('ascii').toLowerCase() === received.data.toString('latin1').toLowerCase();
    case 'dn':
      try {
        return dnEqual(parseDnDer(want.data), parseDnDer(received.data));
      } catch {
        return false;
      }
    default:
      return want.data.equals(received.data);
  }
}
