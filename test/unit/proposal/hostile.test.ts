import { describe, expect, it } from 'vitest';
import {
  ProposalMismatchError,
  checkAccepted,
  parseProposals,
  proposalsToSa,
  selectProposal,
  type OfferedProposal,
  type TransformSpec,
} from '../../../src/ike/proposal.js';

// Deterministic PRNG so a failure can be replayed.
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const interesting = [0, 1, 2, 5, 6, 7, 12, 13, 14, 18, 19, 20, 28, 31, 32, 35, 36, 37, 1024, 65535];

function randomOffer(r: () => number, num: number, base: TransformSpec[]): OfferedProposal {
  const transforms: TransformSpec[] = [];
  // Start from a plausible proposal and mutate it, so that matches happen often.
  for (const t of base) if (r() < 0.85) transforms.push({ ...t });
  const extra = Math.floor(r() * 12);
  for (let i = 0; i < extra; i++) {
    const type = r() < 0.9 ? 1 + Math.floor(r() * 12) : Math.floor(r() * 256);
    const id = r() < 0.7 ? interesting[Math.floor(r() * interesting.length)]! : Math.floor(r() * 65536);
    const keyLength = r() < 0.3 ? [128, 192, 256, 0, 65535][Math.floor(r() * 5)] : undefined;
    transforms.push(keyLength === undefined ? { type, id } : { type, id, keyLength });
  }
  // Shuffle.
  for (let i = transforms.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [transforms[i], transforms[j]] = [transforms[j]!, transforms[i]!];
  }
  return { num, protocol: r() < 0.9 ? (base === ikeBase ? 1 : 3) : Math.floor(r() * 256), transforms };
}

const ikeConfigured = parseProposals(
  ['aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256-ke1_mlkem768-ke1_mlkem1024-ke1_none-ke2_mlkem768-ke2_none', 'aes128-sha256-ecp256'],
  'ike',
);
const espConfigured = parseProposals(['aes256gcm16-x25519-ke1_mlkem768-ke1_none-esn-noesn', 'aes128-sha256'], 'esp');
const ikeBase = proposalsToSa(ikeConfigured, 'ike').flatMap((p) => p.transforms);
const espBase = proposalsToSa(espConfigured, 'esp').flatMap((p) => p.transforms);

describe('hostile and random offers', () => {
  for (const [kind, configured, base] of [
    ['ike', ikeConfigured, ikeBase],
    ['esp', espConfigured, espBase],
  ] as const) {
    it(`${kind}: selection never throws, answers a subset of one offer, and that answer passes checkAccepted`, () => {
      const r = rng(kind === 'ike' ? 7 : 11);
      let matched = 0;
      for (let round = 0; round < 3000; round++) {
        const offers = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => randomOffer(r, i + 1, base));
        const sel = selectProposal(offers, configured, kind, { preferKe: r() < 0.5 ? 31 : undefined });
        if (!sel) continue;
        matched++;
        const offer = offers.find((o) => o.num === sel.proposalNumber)!;
        for (const t of sel.transforms) {
          expect(offer.transforms.some((o) => o.type === t.type && o.id === t.id && o.keyLength === t.keyLength)).toBe(true);
        }
        expect(new Set(sel.transforms.map((t) => t.type)).size).toBe(sel.transforms.length);
        expect(checkAccepted([offer], [{ num: sel.proposalNumber, protocol: offer.protocol, transforms: sel.transforms }], kind)).toEqual(sel.chosen);
      }
      // The generator must exercise the accepting path, not only rejections.
      expect(matched).toBeGreaterThan(100);
    });

    it(`${kind}: checkAccepted on random answers throws only ProposalMismatchError`, () => {
      const r = rng(kind === 'ike' ? 13 : 17);
      const sent = proposalsToSa(configured, kind);
      for (let round = 0; round < 3000; round++) {
        const answers = Array.from({ length: Math.floor(r() * 3) }, () => randomOffer(r, 1 + Math.floor(r() * 3), base));
        try {
          checkAccepted(sent, answers, kind);
        } catch (e) {
          expect(e).toBeInstanceOf(ProposalMismatchError);
        }
      }
    });
  }

  it('a huge offer is handled quickly', () => {
    const transforms: TransformSpec[] = [];
    for (let type = 1; type <= 12; type++) for (let id = 0; id < 2000; id++) transforms.push({ type, id });
    const start = performance.now();
    const sel = selectProposal(
      Array.from({ length: 20 }, (_, i) => ({ num: i + 1, protocol: 1, transforms })),
      ikeConfigured,
      'ike',
    );
    expect(performance.now() - start).toBeLessThan(2000);
    // AES-GCM needs a Key Length, which none of these carry; the CBC proposal fails the same way.
    expect(sel).toBeNull();
  });
});
