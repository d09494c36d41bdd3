// Every class of malformed input is refused with the right error kind, notify and a reason naming it.
import { describe, expect, it } from 'vitest';
import {
  MAX_PAYLOADS_PER_CHAIN,
  NotifyType,
  PayloadType,
  decodeMessage,
  decodePayloadChain,
  encodeMessage,
  type DecodeError,
} from '../../../src/ike/codec/index.js';
import { ANDROID_IKE_SA_INIT } from './vectors.js';
import { ikeSaInitRequest } from './fixtures.js';

const HDR = Buffer.from('8f54bf6d8b48e6e1000000000000000000202208000000000000001c', 'hex');

interface RawPayload {
  type: number;
  body: Buffer | string;
  critical?: boolean;
  /** Override the Payload Length field. */
  length?: number;
  /** Override the Next Payload field. */
  next?: number;
}

/** A datagram from raw payload bodies, every length right unless overridden. */
function raw(payloads: RawPayload[], opts: { first?: number; trailing?: Buffer; headerLength?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  payloads.forEach((p, i) => {
    const body = typeof p.body === 'string' ? Buffer.from(p.body.replace(/\s+/g, ''), 'hex') : p.body;
    const h = Buffer.alloc(4);
    h[0] = p.next ?? (i + 1 < payloads.length ? payloads[i + 1]!.type : 0);
    h[1] = p.critical ? 0x80 : 0;
    h.writeUInt16BE(p.length ?? 4 + body.length, 2);
    parts.push(h, body);
  });
  if (opts.trailing) parts.push(opts.trailing);
  const header = Buffer.from(HDR);
  header[16] = opts.first ?? payloads[0]?.type ?? 0;
  const out = Buffer.concat([header, ...parts]);
  out.writeUInt32BE(opts.headerLength ?? out.length, 24);
  return out;
}

/** `notify` null = no notify expected. */
function expectError(buf: Buffer, kind: DecodeError['kind'], reason: RegExp, notify: number | null = NotifyType.INVALID_SYNTAX): DecodeError {
  const r = decodeMessage(buf);
  expect(r.ok).toBe(false);
  if (r.ok) throw new Error('decoded');
  expect(r.error.kind).toBe(kind);
  expect(r.error.reason).toMatch(reason);
  expect(r.error.notify).toBe(notify ?? undefined);
  return r.error;
}

const NONCE = '00'.repeat(32);
const syntax = (payloads: RawPayload[], reason: RegExp, opts?: Parameters<typeof raw>[1]) => () => {
  const e = expectError(raw(payloads, opts), 'syntax', reason);
  expect(e.header?.spiI.toString('hex')).toBe('8f54bf6d8b48e6e1');
};

describe('the base message of these tests is valid', () => {
  it('decodes', () => {
    expect(decodeMessage(raw([{ type: PayloadType.NONCE, body: NONCE }])).ok).toBe(true);
    expect(decodeMessage(raw([])).ok).toBe(true);
  });
});

describe('IKE header', () => {
  it('refuses datagrams shorter than the header', () => {
    for (const n of [0, 1, 27]) {
      const e = expectError(ANDROID_IKE_SA_INIT.subarray(0, n), 'header', /shorter than the 28-octet IKE header/, null);
      expect(e.header).toBeUndefined();
    }
  });
  it('answers a higher major version with INVALID_MAJOR_VERSION and ignores lower ones', () => {
    const v3 = Buffer.from(ANDROID_IKE_SA_INIT);
    v3[17] = 0x30;
    const e = expectError(v3, 'header', /major version 3/, NotifyType.INVALID_MAJOR_VERSION);
    expect(e.header?.majorVersion).toBe(3);
    const v1 = Buffer.from(ANDROID_IKE_SA_INIT);
    v1[17] = 0x10;
    expectError(v1, 'header', /major version 1/, null);
  });
  it('refuses a header Length different from the datagram', () => {
    expectError(raw([{ type: PayloadType.NONCE, body: NONCE }], { headerLength: 100 }), 'header', /Length 100 differs from the datagram length 64/, null);
    expectError(Buffer.concat([ANDROID_IKE_SA_INIT, Buffer.alloc(2)]), 'header', /differs/, null);
    expectError(ANDROID_IKE_SA_INIT.subarray(0, 300), 'header', /differs/, null);
  });
});

describe('payload chain', () => {
  it('refuses a Payload Length below 4', syntax([{ type: PayloadType.NONCE, body: NONCE, length: 3 }], /Payload Length 3 is below/));
  it('refuses a Payload Length that overruns the message', syntax([{ type: PayloadType.NONCE, body: NONCE, length: 37 }], /Payload Length 37 overruns the 36 octets left/));
  it('refuses octets after the last payload', syntax([{ type: PayloadType.NONCE, body: NONCE }], /4 octets after the last payload/, { trailing: Buffer.alloc(4) }));
  it('refuses a chain that names a next payload after the end', syntax([{ type: PayloadType.NONCE, body: NONCE, next: PayloadType.NOTIFY }], /only 0 octets left/));
  it('refuses a first payload with no octets at all', syntax([], /only 0 octets left/, { first: PayloadType.SA }));
  it('refuses more payloads than the chain limit', () => {
    const many = Array.from({ length: MAX_PAYLOADS_PER_CHAIN + 1 }, () => ({ type: PayloadType.VENDOR, body: Buffer.alloc(0) }));
    syntax(many, new RegExp(`more than ${MAX_PAYLOADS_PER_CHAIN} payloads`))();
    expect(decodeMessage(raw(many.slice(1))).ok).toBe(true);
  });
  it('refuses SK that is not last', syntax([{ type: PayloadType.SK, body: Buffer.alloc(32), next: PayloadType.IDi }, { type: PayloadType.NONCE, body: NONCE }], /must be the last payload/));
  it('refuses SK inside an SK plaintext', () => {
    const r = decodePayloadChain(PayloadType.SK, Buffer.from('0000000800000000', 'hex'));
    expect(!r.ok && r.error.reason).toMatch(/SK inside an encrypted payload/);
    expect(!r.ok && r.error.notify).toBe(NotifyType.INVALID_SYNTAX);
  });
});

describe('unknown payloads', () => {
  it('keeps an unknown non-critical payload and goes on', () => {
    const r = decodeMessage(raw([{ type: 211, body: 'abcd' }, { type: PayloadType.NONCE, body: NONCE }]));
    if (!r.ok) throw new Error(r.error.reason);
    expect(r.message.payloads[0]).toEqual({ type: PayloadType.UNKNOWN, critical: false, rawType: 211, data: Buffer.from('abcd', 'hex') });
    expect(r.message.payloads[1]!.type).toBe(PayloadType.NONCE);
  });
  it('answers an unknown critical payload with UNSUPPORTED_CRITICAL_PAYLOAD carrying its type', () => {
    const e = expectError(raw([{ type: PayloadType.NONCE, body: NONCE }, { type: 211, body: 'abcd', critical: true }]), 'critical', /unsupported payload type 211 marked critical/, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD);
    expect(e.notifyData).toEqual(Buffer.from([211]));
    expect(e.header?.exchangeType).toBe(34);
  });
  it('treats GSPM (not implemented) marked critical the same way', () => {
    const e = expectError(raw([{ type: PayloadType.GSPM, body: 'ab', critical: true }]), 'critical', /type 49/, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD);
    expect(e.notifyData).toEqual(Buffer.from([49]));
  });
  it('accepts the Critical bit on known payloads', () => {
    const r = decodeMessage(raw([{ type: PayloadType.NONCE, body: NONCE, critical: true }]));
    expect(r.ok && r.message.payloads[0]!.critical).toBe(true);
  });
  it('refuses an unknown critical payload inside an SK plaintext', () => {
    const r = decodePayloadChain(230, Buffer.from('00800005ff', 'hex'));
    expect(!r.ok && r.error.kind).toBe('critical');
    expect(!r.ok && r.error.notifyData).toEqual(Buffer.from([230]));
  });
});

// SA payload bodies: proposal header | transforms.
const T_ENCR_LAST = '0000000c 01000014 800e0100'; // AES-GCM-16, Key Length 256, last
const T_PRF_MORE = '03000008 02000007';
const T_PRF_LAST = '00000008 02000007';
const sa = (hex: string) => [{ type: PayloadType.SA, body: hex }];

describe('SA payload', () => {
  it('accepts a well-formed two-transform proposal', () => {
    expect(decodeMessage(raw(sa(`0000001c 01010002 ${T_PRF_MORE} ${T_ENCR_LAST}`))).ok).toBe(true);
  });
  it('refuses an empty SA payload', syntax(sa(''), /a proposal needs at least 8/));
  it('refuses a bad proposal Last Substruc', syntax(sa(`03000010 01010001 ${T_PRF_LAST}`), /Last Substruc 3, must be 0 \(last\) or 2/));
  it('refuses a proposal marked "more" at the end', syntax(sa(`02000010 01010001 ${T_PRF_LAST}`), /marked "more proposals" but the SA payload ends/));
  it('refuses a proposal marked last with more octets after it', syntax(sa(`00000010 01010001 ${T_PRF_LAST} 00000010 02010001 ${T_PRF_LAST}`), /marked last but 16 octets follow/));
  it('refuses a Proposal Length that overruns', syntax(sa(`00000030 01010001 ${T_PRF_LAST}`), /Proposal Length 48 overruns/));
  it('refuses a Proposal Length longer than its transforms', syntax(sa(`00000014 01010001 ${T_PRF_LAST} 00000000`), /Proposal Length 20 but its 1 transforms end 16 octets in/));
  it('refuses more Number of Transforms than present', syntax(sa(`00000010 01010002 ${T_PRF_MORE}`), /transform #2: 0 octets left/));
  it('refuses a transform Last Substruc that disagrees with the count', syntax(sa(`0000001c 01010002 ${T_PRF_LAST} ${T_ENCR_LAST}`), /transform #1: Last Substruc 0, expected 3/));
  it('refuses a Transform Length below 8', syntax(sa(`00000010 01010001 00000004 02000007`), /Transform Length 4 below 8/));
  it('refuses a Transform Length that overruns the proposal', syntax(sa(`00000010 01010001 00000010 02000007`), /Transform Length 16 overruns/));
  it('refuses a TLV attribute that overruns the transform', syntax(sa(`00000014 01010001 0000000c 01000014 0001 0009`), /attribute 1 Length 9 overruns/));
  it('refuses stray octets in the attribute area', syntax(sa(`00000012 01010001 0000000a 01000014 800e`), /2 stray octets/));
  it('refuses a Key Length in TLV format', syntax(sa(`00000016 01010001 0000000e 01000014 000e0002 0100`), /Key Length attribute in TLV format/));
  it('refuses two Key Length attributes', syntax(sa(`00000018 01010001 00000010 01000014 800e0100 800e0080`), /two Key Length attributes/));
  it('refuses an IKE proposal with SPI Size 4', syntax(sa(`00000014 01010401 aabbccdd ${T_PRF_LAST}`), /IKE proposal with SPI Size 4, must be 0 or 8/));
  it('refuses an ESP proposal with SPI Size 0', syntax(sa(`00000010 01030001 ${T_PRF_LAST}`), /ESP proposal with SPI Size 0, must be 4/));
  it('refuses a Proposal Length below 8 + SPI Size', syntax(sa(`0000000a 01030401 aabbccdd`), /Proposal Length 10 below 8 \+ SPI Size 4/));
});

describe('other payload bodies', () => {
  it('KE shorter than its 4-octet header', syntax([{ type: PayloadType.KE, body: '0013' }], /at least 4 needed \(Key Exchange Method/));
  it('ID shorter than its 4-octet header', syntax([{ type: PayloadType.IDi, body: '02' }], /at least 4 needed \(ID Type/));
  it('AUTH shorter than its 4-octet header', syntax([{ type: PayloadType.AUTH, body: '020000' }], /at least 4 needed \(Auth Method/));
  it('CERT without its Encoding octet', syntax([{ type: PayloadType.CERT, body: '' }], /Encoding octet is missing/));
  it('Nonce shorter than 16 octets', syntax([{ type: PayloadType.NONCE, body: '00'.repeat(15) }], /Nonce Data of 15 octets/));
  it('Nonce longer than 256 octets', syntax([{ type: PayloadType.NONCE, body: '00'.repeat(257) }], /Nonce Data of 257 octets/));
  it('Notify whose SPI Size overruns', syntax([{ type: PayloadType.NOTIFY, body: '0308 4009 aabbccdd' }], /SPI Size 8 overruns the 4 octets/));
  it('Notify shorter than its header', syntax([{ type: PayloadType.NOTIFY, body: '0000' }], /at least 4 needed \(Protocol ID/));
  it('IKE Delete with SPIs', syntax([{ type: PayloadType.DELETE, body: '01080001 0102030405060708' }], /IKE SA delete with SPI Size 8 and 1 SPIs/));
  it('ESP Delete with SPI Size 8', syntax([{ type: PayloadType.DELETE, body: '03080001 0102030405060708' }], /ESP delete with SPI Size 8, must be 4/));
  it('Delete whose SPI count disagrees with its length', syntax([{ type: PayloadType.DELETE, body: '03040002 01020304' }], /2 SPIs of 4 octets need 8 octets, the payload has 4/));
  it('Delete claiming SPIs of size 0', syntax([{ type: PayloadType.DELETE, body: '0700ffff' }], /65535 SPIs of size 0/));
  it('TS with an IPv4 range of the IPv6 length', syntax([{ type: PayloadType.TSi, body: `01000000 07000028 0000ffff ${'00'.repeat(32)}` }], /TS type 7 with Selector Length 40, must be 16/));
  it('TS with an IPv6 range of the IPv4 length', syntax([{ type: PayloadType.TSi, body: `01000000 08000010 0000ffff 00000000 ffffffff` }], /TS type 8 with Selector Length 16, must be 40/));
  it('TS claiming more selectors than present', syntax([{ type: PayloadType.TSr, body: `02000000 07000010 0000ffff 00000000 ffffffff` }], /traffic selector #2 of 2: 0 octets left/));
  it('TS with octets after the last selector', syntax([{ type: PayloadType.TSr, body: `01000000 07000010 0000ffff 00000000 ffffffff 00` }], /1 octets follow the last selector/));
  it('TS selector whose length overruns', syntax([{ type: PayloadType.TSr, body: `01000000 0a000030 0000` }], /Selector Length 48 overruns/));
  it('opaque TS selector shorter than its header', syntax([{ type: PayloadType.TSr, body: `01000000 0a000002` }], /Selector Length 2 below its 4-octet header/));
  it('CP attribute overrunning the payload', syntax([{ type: PayloadType.CP, body: '01000000 00010004 0a00' }], /configuration attribute 1 Length 4 overruns/));
  it('SKF with Fragment Number 0', syntax([{ type: PayloadType.SKF, body: '00000002 00', next: PayloadType.IDi }], /Fragment Number 0 \/ Total Fragments 2/));
  it('SKF with Fragment Number above Total Fragments', syntax([{ type: PayloadType.SKF, body: '00030002 00' }], /Fragment Number 3 \/ Total Fragments 2/));
});

describe('malformations in a full message keep the header for the answer', () => {
  it('a broken SA length in an IKE_SA_INIT request', () => {
    const bytes = Buffer.from(encodeMessage(ikeSaInitRequest()));
    // The SA payload follows N(COOKIE) (4 + 4 + 20 octets): bump its first proposal's length.
    const saAt = 28 + 28;
    expect(bytes[saAt - 28]).toBe(PayloadType.SA); // COOKIE's Next Payload names SA
    bytes.writeUInt16BE(bytes.readUInt16BE(saAt + 4 + 2) + 1, saAt + 4 + 2);
    const e = expectError(bytes, 'syntax', /SA payload #2 at offset 56: proposal #1/);
    expect(e.header?.messageId).toBe(0);
  });
});
