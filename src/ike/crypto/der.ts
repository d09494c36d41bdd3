// Minimal DER (X.690) encoding/decoding of the few ASN.1 structures IKEv2 puts on the wire itself:
// AlgorithmIdentifier in RFC 7427 AUTH data and X.501 Name in DER_ASN1_DN identities.
// Certificates and signatures are parsed by node:crypto.

export interface DerNode {
  /** Identifier octet (class, constructed bit, tag number < 31). */
  tag: number;
  /** Content octets. */
  content: Buffer;
  /** The whole TLV. */
  raw: Buffer;
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Read one TLV at `offset`; throws on malformed or non-minimal input (DER, not BER). */
export function readTlv(buf: Buffer, offset = 0): DerNode & { next: number } {
  if (offset + 2 > buf.length) throw new Error('DER: truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-octet tags not supported');
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new Error('DER: unsupported length encoding');
    if (offset + 2 + n > buf.length) throw new Error('DER: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[offset + 2 + i]!;
    if (len < 0x80 || (n > 1 && buf[offset + 2]! === 0)) throw new Error('DER: non-minimal length');
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > buf.length) throw new Error('DER: content runs past the end');
  return { tag, content: buf.subarray(offset + hdr, end), raw: buf.subarray(offset, end), next: end };
}

/** All TLVs inside a constructed node's content. */
export function readChildren(content: Buffer): DerNode[] {
  const out: DerNode[] = [];
  let off = 0;
  while (off < content.length) {
    const n = readTlv(content, off);
    out.push({ tag: n.tag, content: n.content, raw: n.raw });
    off = n.next;
  }
  return out;
}

export function encodeTlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let hdr: number[];
  if (len < 0x80) hdr = [tag, len];
  else if (len < 0x100) hdr = [tag, 0x81, len];
  else if (len < 0x10000) hdr = [tag, 0x82, len >> 8, len & 0xff];
  else hdr = [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from(hdr), content]);
}

export function encodeSequence(...items: Buffer[]): Buffer {
  return encodeTlv(TAG.SEQUENCE, Buffer.concat(items));
}

export function encodeOid(oid: string): Buffer {
  const parts = oid.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`invalid OID ${oid}`);
    return BigInt(p);
  });
  if (parts.length < 2) throw new Error(`invalid OID ${oid}`);
  const bytes: number[] = [];
  const first = parts[0]! * 40n + parts[1]!;
  for (const arc of [first, ...parts.slice(2)]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    let v = arc >> 7n;
    while (v > 0n) {
      chunk.unshift(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    bytes.push(...chunk);
  }
  return encodeTlv(TAG.OID, Buffer.from(bytes));
}

export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new Error('DER: empty OID');
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    } else if (i === content.length - 1) throw new Error('DER: truncated OID');
  }
  const first = arcs[0]!;
  const a = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a, first - a * 40n, ...arcs.slice(1)].join('.');
}

export function encodeInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new Error('encodeInteger: non-negative integers only');
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return encodeTlv(TAG.INTEGER, Buffer.from(bytes));
}

export function decodeSmallInteger(content: Buffer): number {
  if (content.length === 0 || content.length > 4) throw new Error('DER: unsupported INTEGER size');
  if (content[0]! & 0x80) throw new Error('DER: negative INTEGER');
  return content.readUIntBE(0, content.length);
}
