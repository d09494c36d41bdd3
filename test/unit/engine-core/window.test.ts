// IKE message window (RFC 7296 §2.3): SET_WINDOW_SIZE announces how many requests a side takes at
// once; the other keeps at most that many outstanding, message IDs within lowest + window; the
// responder takes requests anywhere in its window and answers retransmissions from its cache; IKE SA
// rekeys run alone so no Child SA exchange straddles the switch.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import type { EngineConfig } from '../../../src/ike/config.js';
import { EnginePair, kernelsMirror } from './pair.js';

const CREATE_CHILD_SA = 36;

function config(side: 'a' | 'b', window: number, children = 4): EngineConfig {
  const a = side === 'a';
  let kids = '';
  for (let i = 0; i < children; i++) {
    kids += `
      c${i}:
        local_ts: [${a ? `10.1.${i}.0/24` : `10.2.${i}.0/24`}]
        remote_ts: [${a ? `10.2.${i}.0/24` : `10.1.${i}.0/24`}]
        esp_proposals: [aes256gcm16]
        start_action: ${a ? 'start' : 'none'}`;
  }
  const yaml = `
connections:
  site:
    local: { addrs: [${a ? '192.0.2.1' : '192.0.2.2'}], id: ${a ? 'gw-a.example' : 'gw-b.example'}, auth: psk }
    remote: { addrs: [${a ? '192.0.2.2' : '192.0.2.1'}], id: ${a ? 'gw-b.example' : 'gw-a.example'}, auth: psk }
    psk: "a shared secret of some length 0123"
    ike: { proposals: [aes256gcm16-prfsha384-x25519], window_size: ${window} }
    children:${kids}
`;
  const engine = parseConfig(yaml, `${side}.yaml`).engine;
  engine.connections.forEach((c) => c.children.forEach((ch, i) => (ch.reqid = ch.reqid || 100 + i)));
  return engine;
}

interface WireMessage { from: 'a' | 'b'; response: boolean; messageId: number; exchange: number; spiI: string }
function messages(p: EnginePair): WireMessage[] {
  return p.wire.filter((w) => w.data.length >= 28).map((w) => ({
    from: w.from, response: (w.data[19]! & 0x20) !== 0, messageId: w.data.readUInt32BE(20), exchange: w.data[18]!, spiI: w.data.subarray(0, 8).toString('hex'),
  }));
}

/** The most requests of `side` on one IKE SA that were on the wire unanswered at the same time. */
function maxOutstanding(p: EnginePair, side: 'a' | 'b', filter: (m: WireMessage) => boolean = () => true): number {
  const open = new Set<string>();
  let max = 0;
  for (const m of messages(p).filter(filter)) {
    const key = `${m.spiI}:${m.messageId}`;
    if (m.from === side && !m.response) open.add(key);
    if (m.from !== side && m.response) open.delete(key);
    max = Math.max(max, open.size);
  }
  return max;
}

describe('IKE message window (SET_WINDOW_SIZE)', () => {
  it('both sides announce 4: the three extra Child SAs are requested at once and all come up', () => {
    const p = new EnginePair(config('a', 4), config('b', 4));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(p.b.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(maxOutstanding(p, 'a', (m) => m.exchange === CREATE_CHILD_SA)).toBe(3);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
  });

  it('the peer announces nothing (window 1): one request at a time, whatever our own window', () => {
    const p = new EnginePair(config('a', 4), config('b', 1));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(maxOutstanding(p, 'a')).toBe(1);
  });

  it('the peer announces 2: never more than 2 outstanding', () => {
    const p = new EnginePair(config('a', 8), config('b', 2));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(maxOutstanding(p, 'a', (m) => m.exchange === CREATE_CHILD_SA)).toBe(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('the first of several requests is lost: the responder answers the later ones, then the retransmitted one, and a duplicate from its cache', () => {
    const p = new EnginePair(config('a', 4), config('b', 4));
    let dropped = false;
    p.dropIf = (from, d) => {
      if (dropped || from !== 'a' || d[18] !== CREATE_CHILD_SA || (d[19]! & 0x20) !== 0) return false;
      dropped = true;
      return true;
    };
    p.duplicate = true;
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(30_000);
    expect(dropped).toBe(true);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(p.b.listSas(p.now)[0]!.children).toHaveLength(4);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
    // The responses of b to a's CREATE_CHILD_SA requests: the lost request's ID answered last.
    const answers = messages(p).filter((m) => m.from === 'b' && m.response && m.exchange === CREATE_CHILD_SA).map((m) => m.messageId);
    const first = Math.min(...answers);
    expect(answers[0]).not.toBe(first);
    expect(new Set(answers).size).toBe(3);
  });

  // With window 1 too: the Delete of the old Child SA that a Child SA rekey queued before the IKE
  // SA rekey goes out on the old IKE SA, and the peer must act on it where the Child SAs moved.
  for (const W of [1, 4]) it(`window ${W}: an IKE SA rekey between colliding Child SA rekeys runs alone, and everything lands on the new IKE SA`, () => {
    const p = new EnginePair(config('a', W, 1), config('b', W, 1));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    const ike = p.a.listSas(p.now)[0]!;
    const child = ike.children[0]!.childId;
    p.apply('a', p.a.rekeyChild(p.now, child));
    p.apply('a', p.a.rekeyIke(p.now, ike.ikeSaId));
    p.apply('b', p.b.rekeyChild(p.now, p.b.listSas(p.now)[0]!.children[0]!.childId));
    p.run(60_000);
    const rekeyRequests = messages(p).filter((m) => !m.response && m.exchange === CREATE_CHILD_SA && m.spiI === ike.spiI);
    expect(rekeyRequests.length).toBeGreaterThanOrEqual(2);
    // On the old IKE SA, a's requests never overlapped.
    expect(maxOutstanding(p, 'a', (m) => m.spiI === ike.spiI)).toBe(1);
    const sasA = p.a.listSas(p.now);
    const sasB = p.b.listSas(p.now);
    expect(sasA).toHaveLength(1);
    expect(sasA[0]!.ikeSaId).not.toBe(ike.ikeSaId);
    expect(sasA[0]!.children).toHaveLength(1);
    expect(sasB[0]!.children).toHaveLength(1);
    expect(p.kernelA.sas.size).toBe(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
  });

  it('a peer announcing a huge window gets at most 32 of our requests at once', () => {
    const p = new EnginePair(config('a', 1, 40), config('b', 1024, 40));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(5_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(40);
    expect(maxOutstanding(p, 'a', (m) => m.exchange === CREATE_CHILD_SA)).toBe(32);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('window_size 0 is rejected by the config loader', () => {
    expect(() => config('a', 0)).toThrow(/window_size/);
  });
});
