// Simultaneous IKE SA rekeys (RFC 7296 §2.8.2, §2.25): both peers start a rekey of the same IKE SA
// before either request arrives. Both must end on one and the same new IKE SA carrying the Child SA.
import { describe, expect, it } from 'vitest';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

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
        // Every round really collided: the first request to arrive was refused with TEMPORARY_FAILURE.
        expect(p.eventsOf('error').filter((e) => e.type === 'error' && /TEMPORARY_FAILURE while ours is in flight/.test(e.message)).length).toBeGreaterThanOrEqual(3);
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
});
