import { describe, expect, it } from 'vitest';
import {
  ProposalMismatchError,
  checkAccepted,
  chosenToTransforms,
  describeProposal,
  keMethodsOf,
  parseProposal,
  parseProposals,
  proposalsToSa,
  selectProposal,
  suiteName,
  withKeMethods,
  type OfferedProposal,
  type TransformSpec,
} from '../../../src/ike/proposal.js';

// RFC 7296 §3.3.2 / RFC 9370 numbers, independent of the module's tables.
const T = { ENCR: 1, PRF: 2, INTEG: 3, KE: 4, ESN: 5, ADDKE1: 6, ADDKE2: 7 };
const AES_CBC = 12;
const GCM16 = 20;
const CHACHA = 28;
const SHA256_128 = 12;
const SHA384_192 = 13;
const PRF_SHA256 = 5;
const PRF_SHA384 = 6;
const ECP256 = 19;
const ECP384 = 20;
const X25519 = 31;
const MLKEM768 = 36;
const MLKEM1024 = 37;

const ike = (...s: string[]) => parseProposals(s, 'ike');
const esp = (...s: string[]) => parseProposals(s, 'esp');
const offer = (num: number, protocol: number, transforms: TransformSpec[]): OfferedProposal => ({ num, protocol, transforms });

describe('selectProposal: RFC 7296 §2.7 / §3.3.6', () => {
  it('accepts a matching offer and echoes one transform of each type', () => {
    const sel = selectProposal(proposalsToSa(ike('aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256'), 'ike'), ike('aes128gcm16-prfsha256-ecp256'), 'ike');
    expect(sel).not.toBeNull();
    expect(sel!.proposalNumber).toBe(1);
    expect(sel!.chosen).toEqual({ encr: { id: GCM16, keyBits: 128 }, prf: PRF_SHA256, ke: ECP256, addKe: [] });
    expect(sel!.transforms).toEqual([
      { type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] },
      { type: T.PRF, id: PRF_SHA256, attributes: [] },
      { type: T.KE, id: ECP256, attributes: [] },
    ]);
    expect(suiteName(sel!.chosen)).toBe('AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256');
  });

  it("the responder's configured order wins within a type", () => {
    const offered = proposalsToSa(ike('aes128gcm16-aes256gcm16-prfsha256-prfsha384-ecp256-x25519'), 'ike');
    const sel = selectProposal(offered, ike('aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256'), 'ike');
    expect(sel!.chosen).toEqual({ encr: { id: GCM16, keyBits: 256 }, prf: PRF_SHA384, ke: X25519, addKe: [] });
  });

  it("the responder's proposal order wins across proposals; preferOffered swaps it", () => {
    const offered = proposalsToSa(ike('aes128-sha256-ecp256', 'aes256gcm16-prfsha384-x25519'), 'ike');
    const configured = ike('aes256gcm16-prfsha384-x25519', 'aes128-sha256-ecp256');
    const sel = selectProposal(offered, configured, 'ike');
    expect(sel!.proposalNumber).toBe(2);
    expect(sel!.configuredIndex).toBe(0);
    const selOffered = selectProposal(offered, configured, 'ike', { preferOffered: true });
    expect(selOffered!.proposalNumber).toBe(1);
    expect(selOffered!.configuredIndex).toBe(1);
    expect(selOffered!.chosen.integ).toBe(SHA256_128);
  });

  it('returns null when nothing matches (NO_PROPOSAL_CHOSEN)', () => {
    expect(selectProposal(proposalsToSa(ike('aes128-sha256-ecp256'), 'ike'), ike('aes256gcm16-prfsha384-x25519'), 'ike')).toBeNull();
    expect(selectProposal([], ike('aes256gcm16-prfsha384-x25519'), 'ike')).toBeNull();
  });

  it('key lengths must match exactly; a missing Key Length matches no AES', () => {
    const configured = ike('aes256gcm16-prfsha256-x25519');
    const base = [{ type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }];
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] }, ...base])], configured, 'ike')).toBeNull();
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: GCM16, attributes: [] }, ...base])], configured, 'ike')).toBeNull();
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, ...base])], configured, 'ike')).not.toBeNull();
    // ChaCha20-Poly1305 must come without a Key Length (RFC 7634).
    const chacha = ike('chacha20poly1305-prfsha256-x25519');
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: CHACHA, keyLength: 256, attributes: [] }, ...base])], chacha, 'ike')).toBeNull();
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: CHACHA, attributes: [] }, ...base])], chacha, 'ike')!.chosen.encr).toEqual({ id: CHACHA });
  });

  it('a transform with attributes other than Key Length is never chosen, nor accepted in an answer', () => {
    const configured = ike('aes256gcm16-prfsha256-x25519');
    const attr = { type: 17, tv: true, value: Buffer.alloc(2) };
    const base = [{ type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }];
    const withAttr = offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [attr] }, ...base]);
    expect(selectProposal([withAttr], configured, 'ike')).toBeNull();
    const both = offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [attr] }, { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, ...base]);
    expect(selectProposal([both], configured, 'ike')!.transforms[0]).toEqual({ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] });
    const sent = proposalsToSa(configured, 'ike');
    expect(() => checkAccepted(sent, [withAttr], 'ike')).toThrow(/type 1 id 20 with attributes we did not send/);
  });

  it('unknown transform ids are ignored, unknown transform types make the proposal unacceptable', () => {
    const configured = ike('aes256gcm16-prfsha256-x25519');
    const good = [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }];
    const withUnknownIds = offer(1, 1, [{ type: T.ENCR, id: 1024, attributes: [] }, ...good, { type: T.KE, id: 9999, attributes: [] }]);
    expect(selectProposal([withUnknownIds], configured, 'ike')!.transforms).toEqual(good);
    const withUnknownType = offer(1, 1, [...good, { type: 13, id: 1, attributes: [] }]);
    const fallback = offer(2, 1, good);
    const sel = selectProposal([withUnknownType, fallback], configured, 'ike');
    expect(sel!.proposalNumber).toBe(2);
    expect(selectProposal([withUnknownType], configured, 'ike')).toBeNull();
  });

  it('a proposal missing a mandatory type is skipped', () => {
    const configured = ike('aes256gcm16-prfsha256-x25519');
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }])], configured, 'ike')).toBeNull();
    expect(selectProposal([offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.PRF, id: PRF_SHA256, attributes: [] }])], configured, 'ike')).toBeNull();
    expect(selectProposal([offer(1, 1, [{ type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }])], configured, 'ike')).toBeNull();
  });

  it('proposals of another protocol are not considered', () => {
    const sa = proposalsToSa(esp('aes256gcm16'), 'esp');
    expect(selectProposal(sa.map((p) => ({ ...p, protocol: 2 })), esp('aes256gcm16'), 'esp')).toBeNull();
    expect(selectProposal(sa, esp('aes256gcm16'), 'esp')).not.toBeNull();
  });

  it('AEAD: INTEG NONE offered is echoed; a real INTEG with AEAD does not match an AEAD config', () => {
    const configured = ike('aes256gcm16-prfsha256-x25519');
    const withNone = offer(1, 1, [
      { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
      { type: T.PRF, id: PRF_SHA256, attributes: [] },
      { type: T.INTEG, id: 0, attributes: [] },
      { type: T.KE, id: X25519, attributes: [] },
    ]);
    const sel = selectProposal([withNone], configured, 'ike');
    expect(sel!.transforms).toContainEqual({ type: T.INTEG, id: 0, attributes: [] });
    expect(sel!.chosen.integ).toBeUndefined();
    const withInteg = offer(1, 1, [...withNone.transforms.filter((t) => t.type !== T.INTEG), { type: T.INTEG, id: SHA256_128, attributes: [] }]);
    expect(selectProposal([withInteg], configured, 'ike')).toBeNull();
  });

  it('non-AEAD needs INTEG, and ESP picks ESN from our list', () => {
    const sel = selectProposal(proposalsToSa(esp('aes128-aes256-sha384-sha256-esn-noesn'), 'esp'), esp('aes256-sha256-noesn'), 'esp');
    expect(sel!.chosen).toEqual({ encr: { id: AES_CBC, keyBits: 256 }, integ: SHA256_128, addKe: [], esn: false });
    expect(sel!.transforms).toEqual([
      { type: T.ENCR, id: AES_CBC, keyLength: 256, attributes: [] },
      { type: T.INTEG, id: SHA256_128, attributes: [] },
      { type: T.ESN, id: 0, attributes: [] },
    ]);
    const noInteg = offer(1, 3, [{ type: T.ENCR, id: AES_CBC, keyLength: 256, attributes: [] }, { type: T.ESN, id: 0, attributes: [] }]);
    expect(selectProposal([noInteg], esp('aes256-sha256'), 'esp')).toBeNull();
    expect(selectProposal(proposalsToSa(esp('aes256gcm16-esn'), 'esp'), esp('aes256gcm16-noesn'), 'esp')).toBeNull();
  });

  it('ESP offer without an ESN transform is read as no ESN', () => {
    const sel = selectProposal([offer(1, 3, [{ type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] }])], esp('aes128gcm16'), 'esp');
    expect(sel!.chosen.esn).toBe(false);
    expect(sel!.transforms).toEqual([{ type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] }]);
    expect(selectProposal([offer(1, 3, [{ type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] }])], esp('aes128gcm16-esn'), 'esp')).toBeNull();
  });
});

describe('selectProposal: PFS and RFC 9370 additional key exchanges', () => {
  it('ESP PFS must agree: configured KE requires one offered, none configured refuses a KE-only offer', () => {
    expect(selectProposal(proposalsToSa(esp('aes256gcm16'), 'esp'), esp('aes256gcm16-x25519'), 'esp')).toBeNull();
    expect(selectProposal(proposalsToSa(esp('aes256gcm16-x25519'), 'esp'), esp('aes256gcm16'), 'esp')).toBeNull();
    const sel = selectProposal(proposalsToSa(esp('aes256gcm16-ecp256-x25519'), 'esp'), esp('aes256gcm16-x25519'), 'esp');
    expect(sel!.chosen.ke).toBe(X25519);
  });

  it('KE NONE offered alongside a method is chosen when we do not want PFS', () => {
    const o = offer(1, 3, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }, { type: T.KE, id: 0, attributes: [] }, { type: T.ESN, id: 0, attributes: [] }]);
    const sel = selectProposal([o], esp('aes256gcm16'), 'esp');
    expect(sel!.chosen.ke).toBeUndefined();
    expect(sel!.transforms).toContainEqual({ type: T.KE, id: 0, attributes: [] });
    expect(selectProposal([o], esp('aes256gcm16'), 'esp', { requireKe: true })).toBeNull();
    expect(selectProposal([o], esp('aes256gcm16-x25519'), 'esp', { requireKe: true })!.chosen.ke).toBe(X25519);
  });

  it('mandatory ADDKE: the offer must carry it', () => {
    const configured = ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768');
    expect(selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519'), 'ike'), configured, 'ike')).toBeNull();
    const sel = selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem1024-ke1_mlkem768'), 'ike'), configured, 'ike');
    expect(sel!.chosen).toEqual({ encr: { id: GCM16, keyBits: 256 }, prf: PRF_SHA384, ke: X25519, addKe: [MLKEM768] });
    expect(suiteName(sel!.chosen)).toBe('AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519+ML-KEM-768');
  });

  it('optional ADDKE (keN_none): taken when offered, skipped when absent or NONE only', () => {
    const configured = ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none');
    const classic = selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519'), 'ike'), configured, 'ike');
    expect(classic!.chosen.addKe).toEqual([]);
    const pq = selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768'), 'ike'), configured, 'ike');
    expect(pq!.chosen.addKe).toEqual([MLKEM768]);
    const noneOnly = selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_none'), 'ike'), configured, 'ike');
    expect(noneOnly!.chosen.addKe).toEqual([]);
    expect(noneOnly!.transforms).toContainEqual({ type: T.ADDKE1, id: 0, attributes: [] });
  });

  it('an initiator offering ADDKE with NONE is served by a responder without ADDKE', () => {
    const sel = selectProposal(
      proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none-ke2_none-ke2_mlkem1024'), 'ike'),
      ike('aes256gcm16-prfsha384-x25519'),
      'ike',
    );
    expect(sel!.chosen.addKe).toEqual([]);
    expect(sel!.transforms.filter((t) => t.type >= T.ADDKE1)).toEqual([
      { type: T.ADDKE1, id: 0, attributes: [] },
      { type: T.ADDKE2, id: 0, attributes: [] },
    ]);
    // Without NONE the responder that does not do ADDKE must refuse.
    expect(selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768'), 'ike'), ike('aes256gcm16-prfsha384-x25519'), 'ike')).toBeNull();
  });

  it('each key exchange round uses a different method (RFC 9370 §2.2.1)', () => {
    // Offer and configuration both allow ML-KEM-768 or ML-KEM-1024 in two rounds.
    const p = ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_mlkem1024-ke2_mlkem768-ke2_mlkem1024');
    const sel = selectProposal(proposalsToSa(p, 'ike'), p, 'ike');
    expect(sel!.chosen.addKe).toEqual([MLKEM768, MLKEM1024]);
    // Only one distinct method available for two mandatory rounds: no match.
    const offered = proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768-ke2_mlkem1024'), 'ike');
    expect(selectProposal(offered, ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem1024'), 'ike')!.chosen.addKe).toEqual([MLKEM768, MLKEM1024]);
    const sameTwice = offer(1, 1, [
      { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
      { type: T.PRF, id: PRF_SHA384, attributes: [] },
      { type: T.KE, id: X25519, attributes: [] },
      { type: T.ADDKE1, id: MLKEM768, attributes: [] },
      { type: T.ADDKE2, id: MLKEM768, attributes: [] },
    ]);
    expect(selectProposal([sameTwice], p, 'ike')).toBeNull();
    // A greedy pass would give ADDKE1 ML-KEM-768 and leave ADDKE2 (768 only) empty; the search
    // finds ADDKE1 = ML-KEM-1024, ADDKE2 = ML-KEM-768.
    const tricky = offer(1, 1, [
      ...sameTwice.transforms.slice(0, 3),
      { type: T.ADDKE1, id: MLKEM768, attributes: [] },
      { type: T.ADDKE1, id: MLKEM1024, attributes: [] },
      { type: T.ADDKE2, id: MLKEM768, attributes: [] },
    ]);
    expect(selectProposal([tricky], p, 'ike')!.chosen.addKe).toEqual([MLKEM1024, MLKEM768]);
    // The KE method itself is not reused by a round either.
    const reuseKe = offer(1, 1, [...sameTwice.transforms.slice(0, 3), { type: T.ADDKE1, id: X25519, attributes: [] }, { type: T.ADDKE1, id: MLKEM768, attributes: [] }]);
    const flexible = ike('aes256gcm16-prfsha384-x25519-ke1_x25519-ke1_mlkem768-ke1_none');
    expect(selectProposal([reuseKe], flexible, 'ike')!.chosen).toMatchObject({ ke: X25519, addKe: [MLKEM768] });
    // A responder answer that repeats a method is refused by the initiator.
    const sent = proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none-ke2_mlkem768-ke2_none'), 'ike');
    expect(() =>
      checkAccepted(sent, [
        offer(1, 1, [
          { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
          { type: T.PRF, id: PRF_SHA384, attributes: [] },
          { type: T.KE, id: X25519, attributes: [] },
          { type: T.ADDKE1, id: MLKEM768, attributes: [] },
          { type: T.ADDKE2, id: MLKEM768, attributes: [] },
        ]),
      ], 'ike'),
    ).toThrow(/ML-KEM-768 for more than one key exchange/);
  });

  it('a gap in ADDKE rounds is reported as undefined', () => {
    const p = ike('aes256gcm16-prfsha384-x25519-ke1_none-ke1_mlkem768-ke2_mlkem1024');
    const sel = selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_none-ke2_mlkem1024'), 'ike'), p, 'ike');
    expect(sel!.chosen.addKe).toEqual([undefined, MLKEM1024]);
  });

  it('forbidKe (IKE_AUTH without child-pfs-info): KE must be absent or NONE', () => {
    const configured = esp('aes256gcm16-x25519');
    const noKe = proposalsToSa(esp('aes256gcm16-x25519'), 'esp', { omitKe: true });
    const sel = selectProposal(noKe, configured, 'esp', { forbidKe: true });
    expect(sel!.chosen.ke).toBeUndefined();
    expect(sel!.transforms.some((t) => t.type === T.KE)).toBe(false);
    // Without forbidKe the same offer fails: our PFS requires a KE in CREATE_CHILD_SA.
    expect(selectProposal(noKe, configured, 'esp')).toBeNull();
    const withKe = proposalsToSa(esp('aes256gcm16-x25519'), 'esp');
    expect(selectProposal(withKe, configured, 'esp', { forbidKe: true })).toBeNull();
  });

  it('allowKeInIkeAuth (child-pfs-info): KE transforms are negotiated and recorded', () => {
    const configured = esp('aes256gcm16-x25519-ke1_mlkem768');
    const sel = selectProposal(proposalsToSa(configured, 'esp'), configured, 'esp', { allowKeInIkeAuth: true });
    expect(sel!.chosen.ke).toBe(X25519);
    expect(sel!.chosen.addKe).toEqual([MLKEM768]);
  });

  it('preferKe takes the method of the KE payload already sent, if acceptable', () => {
    const configured = ike('aes256gcm16-prfsha384-x25519-ecp384-ecp256');
    const offered = proposalsToSa(ike('aes256gcm16-prfsha384-ecp256-ecp384-x25519'), 'ike');
    expect(selectProposal(offered, configured, 'ike')!.chosen.ke).toBe(X25519);
    expect(selectProposal(offered, configured, 'ike', { preferKe: ECP256 })!.chosen.ke).toBe(ECP256);
    // Not acceptable to us (x448 not configured): our own preference applies.
    const withX448 = proposalsToSa(ike('aes256gcm16-prfsha384-x448-ecp384'), 'ike');
    expect(selectProposal(withX448, configured, 'ike', { preferKe: 32 })!.chosen.ke).toBe(ECP384);
    // Not offered in the proposal: ignored.
    expect(selectProposal(proposalsToSa(ike('aes256gcm16-prfsha384-ecp384'), 'ike'), configured, 'ike', { preferKe: ECP256 })!.chosen.ke).toBe(ECP384);
  });

  it('keOverride replaces the configured KE methods', () => {
    const configured = esp('aes256gcm16-x25519-ecp384');
    const offered = proposalsToSa(esp('aes256gcm16-ecp384-x25519'), 'esp');
    expect(selectProposal(offered, configured, 'esp')!.chosen.ke).toBe(X25519);
    expect(selectProposal(offered, configured, 'esp', { keOverride: { ke: [ECP384] } })!.chosen.ke).toBe(ECP384);
    expect(selectProposal(offered, configured, 'esp', { keOverride: { ke: [ECP256] } })).toBeNull();
    const rekey = withKeMethods(configured[0]!, [ECP384], [[MLKEM768]]);
    expect(rekey.ke).toEqual([ECP384]);
    expect(rekey.addKe).toEqual([[MLKEM768]]);
    expect(configured[0]!.ke).toEqual([X25519, ECP384]);
  });
});

describe('checkAccepted: the initiator validates the single answer', () => {
  const sent = proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ecp256-ke1_mlkem768-ke1_none', 'aes128-sha256-ecp256'), 'ike');

  function mismatch(received: OfferedProposal[]): string {
    try {
      checkAccepted(sent, received, 'ike');
    } catch (e) {
      expect(e).toBeInstanceOf(ProposalMismatchError);
      return (e as Error).message;
    }
    throw new Error('expected ProposalMismatchError');
  }

  it('accepts a proper subset and returns the chosen algorithms', () => {
    const chosen = checkAccepted(sent, [
      offer(1, 1, [
        { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
        { type: T.PRF, id: PRF_SHA384, attributes: [] },
        { type: T.KE, id: ECP256, attributes: [] },
        { type: T.ADDKE1, id: MLKEM768, attributes: [] },
      ]),
    ]);
    expect(chosen).toEqual({ encr: { id: GCM16, keyBits: 256 }, prf: PRF_SHA384, ke: ECP256, addKe: [MLKEM768] });
    const cbc = checkAccepted(sent, [
      offer(2, 1, [{ type: T.ENCR, id: AES_CBC, keyLength: 128, attributes: [] }, { type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.INTEG, id: SHA256_128, attributes: [] }, { type: T.KE, id: ECP256, attributes: [] }]),
    ]);
    expect(cbc.integ).toBe(SHA256_128);
  });

  it('the responder may leave out a type we offered with NONE', () => {
    const chosen = checkAccepted(sent, [
      offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.PRF, id: PRF_SHA384, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }]),
    ]);
    expect(chosen.addKe).toEqual([]);
  });

  it('agrees with what selectProposal answers', () => {
    const sel = selectProposal(sent, ike('aes128-sha256-ecp256'), 'ike')!;
    expect(checkAccepted(sent, [offer(sel.proposalNumber, 1, sel.transforms)], 'ike')).toEqual(sel.chosen);
    const espSent = proposalsToSa(esp('aes256gcm16-x25519-esn-noesn'), 'esp');
    const espSel = selectProposal(espSent, esp('aes256gcm16-x25519-esn'), 'esp')!;
    expect(checkAccepted(espSent, [offer(espSel.proposalNumber, 3, espSel.transforms)])).toEqual({
      encr: { id: GCM16, keyBits: 256 },
      ke: X25519,
      addKe: [],
      esn: true,
    });
  });

  it('rejects everything that is not a subset of the offer', () => {
    const good = [
      { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
      { type: T.PRF, id: PRF_SHA384, attributes: [] },
      { type: T.KE, id: X25519, attributes: [] },
    ];
    expect(mismatch([])).toMatch(/returned 0 proposals; exactly one/);
    expect(mismatch([offer(1, 1, good), offer(2, 1, good)])).toMatch(/returned 2 proposals/);
    expect(mismatch([offer(4, 1, good)])).toMatch(/proposal #4, which was not offered/);
    expect(mismatch([offer(1, 3, good)])).toMatch(/changed the protocol/);
    expect(mismatch([offer(1, 1, [...good, { type: T.KE, id: ECP256, attributes: [] }])])).toMatch(/2 transforms of type 4; exactly one/);
    expect(mismatch([offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 128, attributes: [] }, ...good.slice(1)])])).toMatch(/type 1 id 20 \(128 bits\), which we did not offer/);
    expect(mismatch([offer(1, 1, [...good.slice(0, 2), { type: T.KE, id: ECP384, attributes: [] }])])).toMatch(/type 4 id 20, which we did not offer/);
    expect(mismatch([offer(1, 1, [...good, { type: T.INTEG, id: SHA384_192, attributes: [] }])])).toMatch(/transform type 3, which we did not offer/);
    expect(mismatch([offer(1, 1, good.slice(0, 2))])).toMatch(/left out transform type 4/);
    expect(mismatch([offer(2, 1, [{ type: T.ENCR, id: AES_CBC, keyLength: 128, attributes: [] }, { type: T.PRF, id: PRF_SHA256, attributes: [] }, { type: T.KE, id: ECP256, attributes: [] }])])).toMatch(
      /left out transform type 3/,
    );
  });

  it('optional additional key exchanges come with a fallback proposal without them, last; mandatory ones do not', () => {
    // #1 has optional ADDKE1 -> #3 is #1 without type 6; #2 has none.
    expect(sent.map((p) => p.transforms.filter((t) => t.type === T.ADDKE1).length)).toEqual([2, 0, 0]);
    expect(sent[2]!.transforms).toEqual(sent[0]!.transforms.filter((t) => t.type !== T.ADDKE1));
    // A peer that knows no type 6 takes the fallback.
    const legacy = selectProposal(sent.slice(0, 1).concat(sent.slice(2)).map((p, i) => ({ ...p, num: i === 0 ? 1 : 3 })).filter((p) => !p.transforms.some((t) => t.type === T.ADDKE1)), ike('aes256gcm16-prfsha384-x25519'), 'ike')!;
    expect(legacy.proposalNumber).toBe(3);
    expect(checkAccepted(sent, [offer(3, 1, legacy.transforms)], 'ike').addKe).toEqual([]);
    expect(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768'), 'ike')).toHaveLength(1);
    // Already configured without ADDKE: not repeated.
    expect(proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', 'aes256gcm16-prfsha384-x25519'), 'ike')).toHaveLength(2);
  });

  it('rejects an answer without ADDKE when we offered it without NONE', () => {
    const strict = proposalsToSa(ike('aes256gcm16-prfsha384-x25519-ke1_mlkem1024'), 'ike');
    expect(() =>
      checkAccepted(strict, [offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.PRF, id: PRF_SHA384, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }])], 'ike'),
    ).toThrow(/left out transform type 6/);
    expect(
      checkAccepted(strict, [
        offer(1, 1, [{ type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] }, { type: T.PRF, id: PRF_SHA384, attributes: [] }, { type: T.KE, id: X25519, attributes: [] }, { type: T.ADDKE1, id: MLKEM1024, attributes: [] }]),
      ]).addKe,
    ).toEqual([MLKEM1024]);
  });
});

describe('parse -> offer -> select -> check, for every operator example', () => {
  const examples: [string, 'ike' | 'esp'][] = [
    ['aes256gcm16-prfsha384-x25519', 'ike'],
    ['aes128-sha256-ecp256', 'ike'],
    ['aes256-sha384-ecp384-ke1_mlkem768', 'ike'],
    ['chacha20poly1305-prfsha256-curve25519', 'ike'],
    ['aes256gcm16', 'esp'],
    ['aes128gcm16-x25519', 'esp'],
    ['aes256-sha512-esn', 'esp'],
    ['mlkem768', 'esp'],
    ['x25519-ke1_mlkem768-ke2_mlkem1024', 'esp'],
    ['default', 'ike'],
    ['default', 'esp'],
  ];
  for (const [text, kind] of examples) {
    it(`${kind} ${text}`, () => {
      const p = [parseProposal(text, kind)];
      const sent = proposalsToSa(p, kind);
      const sel = selectProposal(sent, p, kind);
      expect(sel).not.toBeNull();
      expect(sel!.chosen.encr).toEqual(p[0]!.encr[0]);
      if (p[0]!.ke.length > 0) expect(sel!.chosen.ke).toBe(p[0]!.ke[0]);
      expect(checkAccepted(sent, [{ num: sel!.proposalNumber, protocol: kind === 'ike' ? 1 : 3, transforms: sel!.transforms }], kind)).toEqual(sel!.chosen);
    });
  }
});

describe('helpers for rekeys and logs', () => {
  it('chosenToTransforms re-offers exactly the negotiated suite', () => {
    const configured = esp('aes256gcm16-aes128gcm16-x25519-ecp256-ke2_mlkem768-ke2_none-esn-noesn');
    const sel = selectProposal(proposalsToSa(configured, 'esp'), configured, 'esp')!;
    const again = chosenToTransforms(sel.chosen, 'esp');
    expect(again).toEqual([
      { type: T.ENCR, id: GCM16, keyLength: 256, attributes: [] },
      { type: T.KE, id: X25519, attributes: [] },
      { type: T.ESN, id: 1, attributes: [] },
      { type: T.ADDKE2, id: MLKEM768, attributes: [] },
    ]);
    // The single re-offered proposal is accepted by the same configuration, with the same result.
    expect(selectProposal([offer(1, 3, again)], configured, 'esp')!.chosen).toEqual(sel.chosen);
    const ikeSel = { encr: { id: AES_CBC, keyBits: 128 }, integ: SHA256_128, prf: PRF_SHA256, ke: ECP256, addKe: [] };
    expect(chosenToTransforms(ikeSel, 'ike')).toEqual([
      { type: T.ENCR, id: AES_CBC, keyLength: 128, attributes: [] },
      { type: T.PRF, id: PRF_SHA256, attributes: [] },
      { type: T.INTEG, id: SHA256_128, attributes: [] },
      { type: T.KE, id: ECP256, attributes: [] },
    ]);
  });

  it('keMethodsOf lists the rounds that run', () => {
    expect(keMethodsOf({ encr: { id: GCM16, keyBits: 128 }, ke: X25519, addKe: [undefined, MLKEM1024], esn: false })).toEqual([X25519, MLKEM1024]);
    expect(keMethodsOf({ encr: { id: GCM16, keyBits: 128 }, addKe: [], esn: false })).toEqual([]);
  });

  it('describeProposal names every transform, unknown ones by number', () => {
    const sa = proposalsToSa(ike('aes256gcm16-aes128gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none'), 'ike')[0]!;
    expect(describeProposal(sa)).toBe('#1 AES_GCM_16_256/AES_GCM_16_128/PRF_HMAC_SHA2_384/X25519/KE1_ML-KEM-768/KE1_NONE');
    expect(describeProposal(offer(2, 3, [{ type: T.ENCR, id: AES_CBC, keyLength: 128, attributes: [] }, { type: T.INTEG, id: 99, attributes: [] }, { type: T.ESN, id: 0, attributes: [] }, { type: 200, id: 7, attributes: [] }]))).toBe(
      '#2 AES_CBC_128/INTEG_99/NO_ESN/TRANSFORM_200_7',
    );
  });
});
