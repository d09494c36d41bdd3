// Simultaneous IKE SA rekeys (RFC 7296 §2.8.2, §2.25): both peers start a rekey of the same IKE SA
// before either request arrives. Both must end on one and the same new IKE SA carrying the Child SA.
import { describe, expect, it } from 'vitest';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

const CREATE_CHILD_SA = 36;
/** A CREATE_CHILD_SA datagram (IKE header: exchange type at octet 18, R flag 0x20 at octet 19). */
const isCreateChildSa = (d: Buffer, response: boolean) => d.length >= 28 && d[18] === CREATE_CHILD_SA && ((d[19]! & 0x20) !== 0) === response;

describe('simultaneous IKE SA rekeys', () => {
  for (const optimized of [true, false]) {
    for (const first of ['a', 'b'] as const) {
      it(`${optimized ? 'optimized' : 'regular'} (${first} first): both peers end on the same single IKE SA with the Child SA`, () => {
        const p = new EnginePair(configFor('a', { optimized }), configFor('b', { optimized }));
        p.apply('a', p.a.initiate(p.now, 'site'));
        p.run(2_000);
        const second = first === 'a' ? 'b' : 'a';
        for (let round = 0; round < 3; round++) {
          const s1 = p.engine(first).listSas(p.now)[0]!;
          const s2 = p.engine(second).listSas(p.now)[0]!;
          expect(s1.spiI + s1.spiR).toBe(s2.spiI + s2.spiR);
          p.apply(first, p.engine(first).rekeyIke(p.now, s1.ikeSaId));
          p.apply(second, p.engine(second).rekeyIke(p.now, s2.ikeSaId));
          p.run(120_000);
          const sasA = p.a.listSas(p.now);
          const sasB = p.b.listSas(p.now);
          expect(sasA, `round ${round}`).toHaveLength(1);
          expect(sasB).toHaveLength(1);
          expect(sasA[0]!.ikeSaId).not.toBe(s1.ikeSaId);
          expect(sasA[0]!.spiI + sasA[0]!.spiR).toBe(sasB[0]!.spiI + sasB[0]!.spiR);
          expect(sasA[0]!.children).toHaveLength(1);
          expect(sasB[0]!.children).toHaveLength(1);
          expect(p.kernelA.sas.size).toBe(2);
          expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
        }
        // Every round really collided and was settled by the nonce rule: one side found its own new
        // IKE SA redundant and deleted it, the other kept its own.
        const notices = (side: 'a' | 'b', re: RegExp) => p.eventsOf('notice', side).filter((e) => e.type === 'notice' && re.test(e.message)).length;
        const redundantOurs = notices('a', /ours holds the lowest nonce/) + notices('b', /ours holds the lowest nonce/);
        const keptOurs = notices('a', /the peer's holds the lowest nonce/) + notices('b', /the peer's holds the lowest nonce/);
        expect(redundantOurs).toBe(3);
        expect(keptOurs).toBe(3);
        expect(p.eventsOf('error')).toEqual([]);
        // The surviving IKE SA still works: a Child SA rekey over it succeeds on both sides.
        const before = p.eventsOf('child-rekeyed').length;
        p.apply('a', p.a.rekeyChild(p.now, p.a.listSas(p.now)[0]!.children[0]!.childId));
        p.run(20_000);
        expect(p.eventsOf('child-rekeyed').length).toBe(before + 2);
        expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
        expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
      });
    }
  }

  // One side does not see the collision because a message is lost: the other answered the peer's
  // rekey while its own was in flight. Both must still end on one common IKE SA (§2.8.2, §2.25.2).
  for (const lost of ["b's first request", "a's answer to b's request"] as const) {
    for (const optimized of [true, false]) {
      it(`${optimized ? 'optimized' : 'regular'}, ${lost} lost: both peers end on the same single IKE SA with the Child SA`, () => {
        const p = new EnginePair(configFor('a', { optimized }), configFor('b', { optimized }));
        p.apply('a', p.a.initiate(p.now, 'site'));
        p.run(2_000);
        const sa = p.a.listSas(p.now)[0]!;
        let dropped = false;
        p.dropIf = (from, d) => {
          if (dropped) return false;
          const hit = lost === "b's first request" ? from === 'b' && isCreateChildSa(d, false) : from === 'a' && isCreateChildSa(d, true) && d.subarray(0, 8).equals(Buffer.from(sa.spiI, 'hex'));
          if (hit) dropped = true;
          return hit;
        };
        p.apply('a', p.a.rekeyIke(p.now, sa.ikeSaId));
        p.apply('b', p.b.rekeyIke(p.now, p.b.listSas(p.now)[0]!.ikeSaId));
        p.run(120_000);
        expect(dropped).toBe(true);
        // Which path settled it: with b's request lost only b saw a collision, and a's Delete of the
        // old IKE SA moved b's Child SAs; with the answer lost, a applied the nonce rule, and b did too
        // (its retransmission answered from a's cache) unless a's Delete of the old SA came first.
        const messages = p.eventsOf('notice').map((e) => (e.type === 'notice' ? e.message : ''));
        if (lost === "b's first request") expect(messages.some((m) => /the peer deleted the IKE SA after its rekey won a collision/.test(m))).toBe(true);
        else expect(messages.filter((m) => /holds the lowest nonce/.test(m)).length).toBeGreaterThanOrEqual(1);
        const sasA = p.a.listSas(p.now);
        const sasB = p.b.listSas(p.now);
        expect(sasA).toHaveLength(1);
        expect(sasB).toHaveLength(1);
        expect(sasA[0]!.ikeSaId).not.toBe(sa.ikeSaId);
        expect(sasA[0]!.spiI + sasA[0]!.spiR).toBe(sasB[0]!.spiI + sasB[0]!.spiR);
        expect(sasA[0]!.children).toHaveLength(1);
        expect(sasB[0]!.children).toHaveLength(1);
        expect(p.kernelA.sas.size).toBe(2);
        expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
        // The surviving IKE SA carries a Child SA rekey.
        const before = p.eventsOf('child-rekeyed').length;
        p.apply('b', p.b.rekeyChild(p.now, sasB[0]!.children[0]!.childId));
        p.run(20_000);
        expect(p.eventsOf('child-rekeyed').length).toBe(before + 2);
        expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
        expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
      });
    }
  }
});

// One peer reloaded (new lifetimes): its rekeys are regular and it refuses optimized ones, while the
// other still sends optimized ones. Simultaneous rekeys then mix both kinds and must still converge.
describe('simultaneous rekeys, one optimized and one regular', () => {
  for (const what of ['IKE SA', 'Child SA'] as const) {
    it(`${what}: both peers end on the same single SA pair`, () => {
      const p = new EnginePair(configFor('a'), configFor('b'));
      p.apply('a', p.a.initiate(p.now, 'site'));
      p.run(2_000);
      const ikeA = p.a.listSas(p.now)[0]!;
      const ikeB = p.b.listSas(p.now)[0]!;
      const reloaded = configFor('b');
      reloaded.connections[0]!.ike.lifetime.rekeyTime += 60;
      reloaded.connections[0]!.children[0]!.lifetime.rekeyTime += 60;
      p.apply('b', p.b.reload(p.now, reloaded));
      // Only lifetimes changed: b keeps its SAs, with the next rekeys regular.
      expect(p.b.listSas(p.now)[0]!.ikeSaId).toBe(ikeB.ikeSaId);
      expect(p.b.listSas(p.now)[0]!.children[0]!.optimizedRekeyReady).toBe(false);
      if (what === 'IKE SA') {
        p.apply('a', p.a.rekeyIke(p.now, ikeA.ikeSaId));
        p.apply('b', p.b.rekeyIke(p.now, ikeB.ikeSaId));
      } else {
        p.apply('a', p.a.rekeyChild(p.now, ikeA.children[0]!.childId));
        p.apply('b', p.b.rekeyChild(p.now, ikeB.children[0]!.childId));
      }
      p.run(120_000);
      const kind = what === 'IKE SA' ? 'ike-rekeyed' : 'child-rekeyed';
      // b's own rekey was regular; a's optimized one was refused by b or lost the collision.
      expect(p.eventsOf(kind, 'b').length).toBeGreaterThanOrEqual(1);
      expect(p.eventsOf('error', 'b').some((e) => e.type === 'error' && /reconfigured; a regular rekey is required/.test(e.message))).toBe(true);
      const sasA = p.a.listSas(p.now);
      const sasB = p.b.listSas(p.now);
      expect(sasA).toHaveLength(1);
      expect(sasB).toHaveLength(1);
      expect(sasA[0]!.spiI + sasA[0]!.spiR).toBe(sasB[0]!.spiI + sasB[0]!.spiR);
      expect(sasA[0]!.children).toHaveLength(1);
      expect(sasB[0]!.children).toHaveLength(1);
      expect(sasA[0]!.children[0]!.spiIn).toBe(sasB[0]!.children[0]!.spiOut);
      if (what === 'Child SA') expect(sasA[0]!.children[0]!.spiIn).not.toBe(ikeA.children[0]!.spiIn);
      else expect(sasA[0]!.ikeSaId).not.toBe(ikeA.ikeSaId);
      expect(p.kernelA.sas.size).toBe(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
      expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
    });
  }
});
