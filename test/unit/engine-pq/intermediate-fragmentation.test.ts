// RFC 7383 fragmentation of IKE_INTERMEDIATE (RFC 9242 §3.4): ML-KEM-1024 and further additional key
// exchanges (RFC 9370) over a 1280-octet fragment size, with fragments lost, duplicated and reordered;
// IntAuth (RFC 9242 §3.3.2) computed as if the messages were not fragmented; and a man in the middle who
// holds the IKE_SA_INIT keys (as one who broke the classic key exchange would) and alters a fragment
// makes AUTH fail.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { encodeFragments } from '../../../src/ike/codec/fragment.js';
import { notify, kePayload } from '../../../src/ike/codec/helpers.js';
import { aadOf, encodeProtected } from '../../../src/ike/codec/protect.js';
import type { IkeHeader, SkfPayload } from '../../../src/ike/codec/types.js';
import { createIkeSaProtections, createPrf, type IkeSaKeys } from '../../../src/ike/crypto/index.js';
import { IntAuthChain } from '../../../src/ike/engine/intermediate.js';
import { EnginePairHarness, mirrored, peerConfig, type PeerOptions } from '../../helpers/engine-pair.js';
import type { Host } from '../../helpers/lossy-link.js';

const IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke2_mlkem768-ke3_mlkem512';
/** The default fragment_size (1280, IPv4): 1280 - 20 (IP) - 8 (UDP) octets of IKE message. */
const MAX_IKE_MESSAGE = 1280 - 28;

/** `fragmentSize`: the configured IP datagram size above which messages are fragmented (default 1280). */
function pair(link: ConstructorParameters<typeof EnginePairHarness>[2] = {}, o: PeerOptions = {}, fragmentSize = 1280) {
  const opts: PeerOptions = { ike: IKE, esp: 'aes256gcm16-x25519', ...o };
  const [a, b] = [peerConfig('a', opts), peerConfig('b', opts)];
  for (const c of [a, b]) c.connections[0]!.ike.fragmentSize = fragmentSize;
  return new EnginePairHarness(a, b, link);
}

interface WireInfo {
  exchange: number;
  response: boolean;
  messageId: number;
  fragment?: { number: number; total: number };
}

function info(data: Buffer): WireInfo | undefined {
  const d = decodeMessage(data);
  if (!d.ok) return undefined;
  const last = d.message.payloads.at(-1);
  const h = d.message.header;
  return {
    exchange: h.exchangeType,
    response: h.flags.response,
    messageId: h.messageId,
    ...(last?.type === PayloadType.SKF ? { fragment: { number: last.fragmentNumber, total: last.totalFragments } } : {}),
  };
}

/** The IKE SA keys an engine holds (what an attacker who broke X25519 would know), read from its state. */
function ikeKeysOf(h: EnginePairHarness, host: Host): { keys: IkeSaKeys; originalInitiator: boolean } {
  const sas = (h.engines[host] as unknown as { sas: Map<string, { sa?: { keys: IkeSaKeys; originalInitiator: boolean } }> }).sas;
  const sa = [...sas.values()][0]?.sa;
  if (!sa) throw new Error(`${host} has no IKE SA keys yet`);
  return sa;
}

describe('fragmented IKE_INTERMEDIATE', () => {
  it('over a 1280-octet fragment size the ML-KEM-1024 round travels as fragments of at most 1252 octets, and both engines agree on every key', () => {
    const h = pair();
    h.establish();
    expect(h.thrown).toEqual([]);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    const fragments = h.wire.map((w) => ({ from: w.from, len: w.data.length, i: info(w.data) })).filter((w) => w.i?.exchange === ExchangeType.IKE_INTERMEDIATE);
    // Round 1 (ML-KEM-1024, 1568-octet key and ciphertext) is fragmented both ways; ML-KEM-768 and
    // -512 messages fit 1252 octets whole and are not (RFC 7383 §2.5: fragment only what does not fit).
    const kinds = new Set(fragments.filter((f) => f.i?.fragment).map((f) => `${f.from}:${f.i!.messageId}`));
    expect(kinds).toEqual(new Set(['a:1', 'b:1']));
    expect(fragments.filter((f) => !f.i?.fragment).map((f) => `${f.from}:${f.i!.messageId}`).sort()).toEqual(['a:2', 'a:3', 'b:2', 'b:3']);
    for (const w of h.wire) expect(w.data.length).toBeLessThanOrEqual(MAX_IKE_MESSAGE);
    // ML-KEM-1024: an encapsulation key of 1568 octets needs two fragments.
    expect(fragments.find((f) => f.from === 'a' && f.i!.messageId === 1)!.i!.fragment!.total).toBe(2);
    // The IKE SA keys agree (key log of each side) and so do the Child SA keys in the two kernels.
    const [ka, kb] = [h.eventsOf('keylog-ike', 'a')[0]!, h.eventsOf('keylog-ike', 'b')[0]!];
    expect(ka.skEi).toBe(kb.skEi);
    expect(ka.skEr).toBe(kb.skEr);
    expect(h.kernels.a.inbound.size).toBe(1);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.allViolations()).toEqual([]);
    expect(h.eventsOf('ike-up', 'a')[0]!.suite).toContain('ML-KEM-1024');
  });

  it('at the minimum fragment size (576) every round is fragmented, and all exchanges still agree', () => {
    const h = pair({}, {}, 576);
    h.establish();
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    const kinds = new Set(h.wire.map((w) => ({ from: w.from, i: info(w.data) })).filter((w) => w.i?.exchange === ExchangeType.IKE_INTERMEDIATE && w.i.fragment).map((w) => `${w.from}:${w.i!.messageId}`));
    expect(kinds).toEqual(new Set(['a:1', 'b:1', 'a:2', 'b:2', 'a:3', 'b:3']));
    for (const w of h.wire) expect(w.data.length).toBeLessThanOrEqual(576 - 28);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.kernels.a.inbound.size).toBe(1);
  });

  it('loses the first transmission of a fragment in each direction and of a whole fragmented response, and still completes', () => {
    const h = pair({}, {}, 576);
    const seen = new Map<string, number>();
    h.link.dropIf = (from, data) => {
      const i = info(data);
      if (i?.exchange !== ExchangeType.IKE_INTERMEDIATE || !i.fragment) return false;
      const key = `${from}:${i.messageId}:${i.fragment.number}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      if (n > 1) return false;
      // Round 1: the request's second fragment; round 2: the response's first fragment; round 3: the whole response.
      return (i.messageId === 1 && from === 'a' && i.fragment.number === 2) || (i.messageId === 2 && from === 'b' && i.fragment.number === 1) || (i.messageId === 3 && from === 'b');
    };
    h.establish(60_000);
    expect(h.thrown).toEqual([]);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    expect(h.engines.a.stats().retransmits).toBeGreaterThanOrEqual(3);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.kernels.a.inbound.size).toBe(1);
    expect(h.allViolations()).toEqual([]);
  });

  it.each([1, 2, 3, 4, 5, 6])('random loss (15%%), duplication and reordering of fragments, seed %i: the SA comes up with agreeing keys', (seed) => {
    const h = pair({ seed, lossRate: 0.15, duplicateRate: 0.1, jitterMs: 40 }, { retransmit: { timeout: '1s', base: 1.5, tries: 10 } });
    h.establish(120_000);
    expect(h.thrown).toEqual([]);
    expect(h.link.lost).toBeGreaterThan(0);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    const [ka, kb] = [h.eventsOf('keylog-ike', 'a')[0]!, h.eventsOf('keylog-ike', 'b')[0]!];
    expect(ka.skAi + ka.skEi).toBe(kb.skAi + kb.skEi);
    expect(h.kernels.a.inbound.size).toBe(1);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.allViolations()).toEqual([]);
  });

  it('delivers fragment 1 of every IKE_INTERMEDIATE message last', () => {
    const h = pair({ latencyMs: 5 }, {}, 576);
    // Hold back fragment 1 of every IKE_INTERMEDIATE message by 30 ms: fragment 2 always arrives first.
    const send = h.link.send.bind(h.link);
    let reversed = 0;
    h.link.send = (now, from, local, remote, data) => {
      const i = info(data);
      if (i?.exchange === ExchangeType.IKE_INTERMEDIATE && i.fragment?.number === 1 && i.fragment.total > 1) {
        reversed++;
        return send(now + 30, from, local, remote, data);
      }
      return send(now, from, local, remote, data);
    };
    h.establish(10_000);
    expect(reversed).toBe(6);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    expect(h.engines.a.stats().retransmits).toBe(0);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
  });

  it('a fragment with a flipped bit fails its integrity check, is dropped, and the retransmission completes the exchange', () => {
    const h = pair();
    let flipped = 0;
    const send = h.link.send.bind(h.link);
    h.link.send = (now, from, local, remote, data) => {
      const i = info(data);
      if (flipped === 0 && i?.exchange === ExchangeType.IKE_INTERMEDIATE && from === 'a' && i.fragment?.number === 2) {
        flipped++;
        const bad = Buffer.from(data);
        bad[bad.length - 20]! ^= 0x01;
        return send(now, from, local, remote, bad);
      }
      return send(now, from, local, remote, data);
    };
    h.establish(30_000);
    expect(flipped).toBe(1);
    expect(h.engines.b.stats().dropped).toBeGreaterThanOrEqual(1);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
  });

  it('forged fragments of an IKE_INTERMEDIATE request (bad ICV, absurd Total Fragments) hold no memory and do not disturb the exchange', () => {
    const h = pair();
    let forged = 0;
    const send = h.link.send.bind(h.link);
    h.link.send = (now, from, local, remote, data) => {
      const i = info(data);
      if (forged === 0 && i?.exchange === ExchangeType.IKE_INTERMEDIATE && from === 'a' && i.fragment?.number === 1) {
        // Ahead of the real fragments: 500 copies of fragment 1 with a corrupted body, and 500 claiming
        // 65535 fragments, all for the Message ID the responder expects.
        for (let n = 0; n < 1000; n++) {
          const bad = Buffer.from(data);
          if (n % 2 === 0) bad[bad.length - 1 - (n % 16)]! ^= 0xff;
          else bad.writeUInt16BE(0xffff, 28 + 6);
          send(now, from, local, remote, bad);
          forged++;
        }
      }
      return send(now, from, local, remote, data);
    };
    h.establish(30_000);
    expect(forged).toBe(1000);
    expect(h.thrown).toEqual([]);
    expect(h.engines.b.stats().dropped).toBeGreaterThanOrEqual(1000);
    const reassembler = (h.engines.b as unknown as { sas: Map<string, { reassembler: { bytesHeld: number; messagesPending: number } }> }).sas;
    for (const sa of reassembler.values()) expect([sa.reassembler.bytesHeld, sa.reassembler.messagesPending]).toEqual([0, 0]);
    expect(h.eventsOf('ike-up')).toHaveLength(2);
    expect(h.engines.a.stats().retransmits).toBe(0);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
  });

  it('an attacker holding the current keys re-seals an altered fragment: IKE_INTERMEDIATE completes, AUTH fails, nothing is installed', () => {
    const h = pair();
    let altered = 0;
    const send = h.link.send.bind(h.link);
    h.link.send = (now, from, local, remote, data) => {
      const i = info(data);
      if (altered === 0 && i?.exchange === ExchangeType.IKE_INTERMEDIATE && from === 'a' && i.messageId === 1 && i.fragment?.number === 2) {
        // The man in the middle sets the Version flag (ignored on receipt, RFC 7296 §3.1) of the
        // request's second fragment and protects it again with the IKE_SA_INIT keys it holds.
        const { keys, originalInitiator } = ikeKeysOf(h, 'a');
        const prot = createIkeSaProtections({ encrId: keys.encr, ...(keys.keyBits !== undefined ? { keyBits: keys.keyBits } : {}) }, keys, originalInitiator).outbound;
        const d = decodeMessage(data);
        if (!d.ok) throw new Error('fragment does not decode');
        const skf = d.message.payloads.at(-1) as SkfPayload;
        const plain = prot.open(aadOf(data, skf), skf.body);
        if (!plain) throw new Error('attacker could not open the fragment');
        const aad = Buffer.from(aadOf(data, skf));
        aad[19] = aad[19]! | 0x10;
        altered++;
        return send(now, from, local, remote, Buffer.concat([aad, prot.seal(aad, plain)]));
      }
      return send(now, from, local, remote, data);
    };
    h.establish(30_000);
    expect(altered).toBe(1);
    expect(h.thrown).toEqual([]);
    // All three ADDKE rounds were answered (the altered fragment decrypted fine) ...
    const responses = new Set(h.wire.filter((w) => w.from === 'b').map((w) => info(w.data)).filter((i) => i?.exchange === ExchangeType.IKE_INTERMEDIATE).map((i) => i!.messageId));
    expect(responses).toEqual(new Set([1, 2, 3]));
    // ... but the responder's IntAuth differs from the initiator's, so AUTH does not verify.
    expect(h.eventsOf('auth-failed', 'b')).toHaveLength(1);
    expect(h.eventsOf('ike-up')).toHaveLength(0);
    const authAnswer = h.wire.filter((w) => w.from === 'b' && info(w.data)?.exchange === ExchangeType.IKE_AUTH);
    expect(authAnswer.length).toBeGreaterThanOrEqual(1);
    expect(h.kernels.a.empty && h.kernels.b.empty).toBe(true);
    expect(h.engines.a.listSas(h.now)).toEqual([]);
  });
});

describe('IntAuth over a fragmented message (RFC 9242 §3.3.2)', () => {
  const prf = createPrf(7);
  const keys = { skEi: randomBytes(36), skEr: randomBytes(36), skAi: Buffer.alloc(0), skAr: Buffer.alloc(0) };
  const prot = createIkeSaProtections({ encrId: 20, keyBits: 256 }, keys, true).outbound;
  const header: IkeHeader = {
    spiI: randomBytes(8),
    spiR: randomBytes(8),
    nextPayload: 0,
    majorVersion: 2,
    minorVersion: 0,
    exchangeType: ExchangeType.IKE_INTERMEDIATE,
    flags: { initiator: true, response: false, version: false },
    messageId: 1,
    length: 0,
  };
  const inner = [kePayload(37, randomBytes(1568)), notify(NotifyType.USE_PPK_INT)];
  const skP = randomBytes(64);

  function value(message: Buffer): Buffer {
    const c = new IntAuthChain();
    c.addMessage(prf, skP, message, inner, false);
    c.addMessage(prf, skP, message, inner, true);
    return c.value(2)!;
  }

  it('is the same for the whole message and for any one of its fragments', () => {
    const whole = encodeProtected(header, inner, prot);
    const frags = encodeFragments(header, inner, prot, 600);
    expect(frags.length).toBeGreaterThanOrEqual(3);
    const expected = value(whole);
    for (const f of frags) expect(value(f).equals(expected)).toBe(true);
  });

  it('changes when a header field covered by A differs', () => {
    const frags = encodeFragments(header, inner, prot, 600);
    const other = encodeFragments({ ...header, flags: { ...header.flags, version: true } }, inner, prot, 600);
    expect(value(frags[0]!).equals(value(other[0]!))).toBe(false);
  });
});
