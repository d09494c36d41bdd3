// child-pfs-info: KE methods of the initial Child SA negotiated in IKE_AUTH (the cases of strongSwan's
// child-pfs-info branch tests, read for understanding), and RFC 7296 §1.2 without it.
import { describe, expect, it } from 'vitest';
import type { ChildConfig } from '../../../src/ike/config.js';
import { DEFAULT_CODE_POINTS } from '../../../src/ike/config.js';
import { NotifyType } from '../../../src/ike/codec/constants.js';
import { encodePayload } from '../../../src/ike/codec/encode.js';
import { notify } from '../../../src/ike/codec/helpers.js';
import {
  announcesChildPfsInfo,
  answerChildPfsInfo,
  checkIkeAuthChildAnswer,
  childPfsInfoSupportedNotify,
  ikeAuthChildProposals,
  selectIkeAuthChildProposal,
} from '../../../src/ike/engine/child-pfs-info.js';
import { parseProposals, TRANSFORM_TYPE, type OfferedProposal } from '../../../src/ike/proposal.js';

const cp = DEFAULT_CODE_POINTS;
const X25519 = 31;
const MLKEM768 = 36;

function child(proposals: string[], mutate?: (c: ChildConfig) => void): ChildConfig {
  const c: ChildConfig = {
    name: 'net',
    localTs: [{ cidr: '10.1.0.0/16', protocol: 0, startPort: 0, endPort: 65535 }],
    remoteTs: [{ cidr: '10.2.0.0/16', protocol: 0, startPort: 0, endPort: 65535 }],
    espProposals: parseProposals(proposals, 'esp'),
    mode: 'tunnel',
    lifetime: { rekeyTime: 3600, randTime: 0, lifeTime: 3960, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 },
    startAction: 'start',
    closeAction: 'none',
    replayWindow: 32,
    reqid: 0,
    ifId: 0,
    mark: 0,
  };
  mutate?.(c);
  return c;
}

/** "x25519 or none" (strongSwan's curve25519-none): an optional KE, which the grammar cannot write. */
const optionalX25519 = (c: ChildConfig) => {
  c.espProposals[0]!.ke = [X25519, 0];
};

const kes = (ps: readonly OfferedProposal[]) => ps.flatMap((p) => p.transforms.filter((t) => t.type === TRANSFORM_TYPE.KE || t.type >= TRANSFORM_TYPE.ADDKE1));

/** One side offers, the other selects, the first checks the answer: the IKE_AUTH SA negotiation end to end. */
function negotiate(initiator: ChildConfig, responder: ChildConfig, negotiated: boolean) {
  const offer = ikeAuthChildProposals(initiator, negotiated);
  const sel = selectIkeAuthChildProposal(offer, responder, negotiated);
  if (!sel.ok) return { offer, sel, answer: undefined };
  const answer = checkIkeAuthChildAnswer(offer, [{ num: sel.selected.proposalNumber, protocol: 3, transforms: sel.selected.transforms }], negotiated);
  return { offer, sel, answer };
}

describe('CHILD_SA_PFS_INFO_SUPPORTED in IKE_SA_INIT', () => {
  it('Protocol ID 0, SPI Size 0, no data, configured type (default 50600)', () => {
    expect(encodePayload(childPfsInfoSupportedNotify(cp), 0).subarray(4)).toEqual(Buffer.from([0, 0, 50600 >> 8, 50600 & 0xff]));
    expect(encodePayload(childPfsInfoSupportedNotify({ ...cp, childSaPfsInfoSupported: 50601 }), 0).subarray(6, 8)).toEqual(Buffer.from([50601 >> 8, 50601 & 0xff]));
  });
  it('the responder answers only when asked and enabled', () => {
    const req = [childPfsInfoSupportedNotify(cp)];
    expect(announcesChildPfsInfo(req, cp)).toBe(true);
    expect(answerChildPfsInfo(req, cp, true)).toBe(true);
    expect(answerChildPfsInfo(req, cp, false)).toBe(false);
    expect(answerChildPfsInfo([notify(NotifyType.NAT_DETECTION_SOURCE_IP)], cp, true)).toBe(false);
  });
});

describe('negotiated: KE transforms in the IKE_AUTH proposals', () => {
  it('the proposals keep their KE and ADDKE transforms', () => {
    const offer = ikeAuthChildProposals(child(['aes256gcm16-x25519-ke1_mlkem768']), true);
    expect(kes(offer).map((t) => [t.type, t.id])).toEqual([
      [TRANSFORM_TYPE.KE, X25519],
      [TRANSFORM_TYPE.ADDKE1, MLKEM768],
    ]);
  });

  it('same KE on both sides: selected and recorded for rekeys', () => {
    const r = negotiate(child(['aes256gcm16-x25519']), child(['aes256gcm16-x25519']), true);
    expect(r.sel.ok && r.sel.recorded?.keMethods).toEqual([X25519]);
    expect(r.answer).toMatchObject({ ok: true, recorded: { keMethods: [X25519] } });
  });

  it('multiple KEs recorded in round order', () => {
    const r = negotiate(child(['aes256gcm16-x25519-ke1_mlkem768']), child(['aes256gcm16-x25519-ke1_mlkem768']), true);
    expect(r.answer).toMatchObject({ ok: true, recorded: { keMethods: [X25519, MLKEM768], ke: [X25519], addKe: [[MLKEM768]] } });
  });

  it('"x25519" against no KE is a mismatch: NO_PROPOSAL_CHOSEN for the Child SA (both directions)', () => {
    const a = negotiate(child(['aes256gcm16-x25519']), child(['aes256gcm16']), true);
    expect(a.sel).toMatchObject({ ok: false, notify: NotifyType.NO_PROPOSAL_CHOSEN });
    const b = negotiate(child(['aes256gcm16']), child(['aes256gcm16-x25519']), true);
    expect(b.sel).toMatchObject({ ok: false, notify: NotifyType.NO_PROPOSAL_CHOSEN });
  });

  it('optional x25519 against no KE selects no PFS, recorded as []', () => {
    const r = negotiate(child(['aes256gcm16-x25519'], optionalX25519), child(['aes256gcm16']), true);
    expect(r.sel.ok && r.sel.recorded?.keMethods).toEqual([]);
    expect(r.answer).toMatchObject({ ok: true, recorded: { keMethods: [] } });
  });

  it('different KE methods do not match', () => {
    expect(negotiate(child(['aes256gcm16-ecp256']), child(['aes256gcm16-x25519']), true).sel.ok).toBe(false);
  });
});

describe('not negotiated: RFC 7296 §1.2', () => {
  it('the initiator strips KE transforms; methods stay undetermined', () => {
    const r = negotiate(child(['aes256gcm16-x25519-ke1_mlkem768']), child(['aes256gcm16-x25519']), false);
    expect(kes(r.offer)).toEqual([]);
    expect(r.sel.ok).toBe(true);
    expect(r.sel.ok && r.sel.recorded).toBeUndefined();
    expect(r.answer).toMatchObject({ ok: true });
    expect(r.answer?.ok && r.answer.recorded).toBeUndefined();
  });

  it('a peer that sends KE transforms anyway gets NO_PROPOSAL_CHOSEN with a reason naming it', () => {
    const offer = ikeAuthChildProposals(child(['aes256gcm16-x25519']), true); // as if child-pfs-info were on
    const sel = selectIkeAuthChildProposal(offer, child(['aes256gcm16-x25519']), false);
    expect(sel).toMatchObject({ ok: false, notify: NotifyType.NO_PROPOSAL_CHOSEN });
    expect(!sel.ok && sel.reason).toMatch(/KE transforms without child-pfs-info/);
  });

  it('an answer with a KE transform is refused by the initiator', () => {
    const offer = ikeAuthChildProposals(child(['aes256gcm16-x25519']), true);
    expect(offer[0]!.transforms.map((t) => t.type)).toEqual([TRANSFORM_TYPE.ENCR, TRANSFORM_TYPE.KE, TRANSFORM_TYPE.ESN]);
    const answer = checkIkeAuthChildAnswer(offer, [{ num: 1, protocol: 3, transforms: offer[0]!.transforms }], false);
    expect(answer).toMatchObject({ ok: false, reason: expect.stringMatching(/KE method in IKE_AUTH without child-pfs-info/) });
  });
});
