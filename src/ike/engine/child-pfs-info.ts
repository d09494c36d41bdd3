// child-pfs-info (draft-ietf-ipsecme-child-pfs-info, as in the seed design and strongSwan's branch):
// both IKE_SA_INIT messages carry N(CHILD_SA_PFS_INFO_SUPPORTED); then the Child SA proposals of
// IKE_AUTH keep their KE (type 4) and ADDKE (6-12) transforms and are negotiated exactly as in
// CREATE_CHILD_SA. No KE payload is exchanged in IKE_AUTH: the initial Child SA is still keyed
// prf+(SK_d, Ni | Nr); the selected methods are recorded and used by every rekey of that Child SA
// (which lets its first rekey be optimized, draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §5.1).
// Without the notify RFC 7296 §1.2 applies: no KE transform other than NONE in IKE_AUTH.
import type { ChildConfig, CodePointConfig } from '../config.js';
import { NotifyType } from '../codec/constants.js';
import { findNotify, notify } from '../codec/helpers.js';
import type { NotifyPayload, Payload } from '../codec/types.js';
import {
  checkAccepted,
  keMethodsOf,
  proposalsToSa,
  ProposalMismatchError,
  selectProposal,
  TRANSFORM_TYPE,
  type ChosenAlgorithms,
  type OfferedProposal,
  type ProposalSpec,
  type SelectedProposal,
} from '../proposal.js';

/** N(CHILD_SA_PFS_INFO_SUPPORTED): Protocol ID 0, SPI Size 0, no data. */
export function childPfsInfoSupportedNotify(cp: CodePointConfig): NotifyPayload {
  return notify(cp.childSaPfsInfoSupported);
}

export function announcesChildPfsInfo(payloads: readonly Payload[], cp: CodePointConfig): boolean {
  return findNotify(payloads, cp.childSaPfsInfoSupported) !== undefined;
}

/** Responder: whether to answer the IKE_SA_INIT request with the notify (only when asked, and enabled here). */
export function answerChildPfsInfo(requestPayloads: readonly Payload[], cp: CodePointConfig, enabled: boolean): boolean {
  return enabled && announcesChildPfsInfo(requestPayloads, cp);
}

/** The Child SA proposals for the IKE_AUTH request: KE transforms kept only when child-pfs-info is negotiated. */
export function ikeAuthChildProposals(child: ChildConfig, negotiated: boolean): ProposalSpec[] {
  return proposalsToSa(child.espProposals, 'esp', { omitKe: !negotiated });
}

/** KE methods as recorded for later rekeys: KE then ADDKE1..n, NONE rounds left out ([] = no PFS). */
export interface RecordedKe {
  keMethods: number[];
  /** The same split by transform type, to restrict a regular rekey's proposals (SelectOptions.keOverride). */
  ke: number[];
  addKe: number[][];
}

export function recordKe(chosen: ChosenAlgorithms): RecordedKe {
  return {
    keMethods: keMethodsOf(chosen),
    ke: chosen.ke !== undefined ? [chosen.ke] : [],
    addKe: chosen.addKe.map((a) => (a !== undefined ? [a] : [])),
  };
}

export type IkeAuthChildSelection =
  | { ok: true; selected: SelectedProposal; recorded?: RecordedKe }
  | { ok: false; notify: NotifyType.NO_PROPOSAL_CHOSEN; reason: string };

function hasKeTransform(p: OfferedProposal): boolean {
  return p.transforms.some((t) => (t.type === TRANSFORM_TYPE.KE || (t.type >= TRANSFORM_TYPE.ADDKE1 && t.type <= TRANSFORM_TYPE.ADDKE7)) && t.id !== 0);
}

/**
 * Responder: select the initial Child SA's proposal in IKE_AUTH.
 * Negotiated: like CREATE_CHILD_SA (KE/ADDKE must match, NONE where optional), methods recorded.
 * Not negotiated: a proposal with a KE transform other than NONE is unacceptable (RFC 7296 §1.2);
 * when nothing is left the Child SA gets NO_PROPOSAL_CHOSEN (docs/optimized-rekeys.md) and the
 * recorded methods stay undetermined (`recorded` absent), so the first rekey is regular.
 */
export function selectIkeAuthChildProposal(offered: readonly OfferedProposal[], child: ChildConfig, negotiated: boolean): IkeAuthChildSelection {
  const selected = selectProposal(offered, child.espProposals, 'esp', negotiated ? { allowKeInIkeAuth: true } : { forbidKe: true });
  if (!selected) {
    const reason =
      !negotiated && offered.some(hasKeTransform)
        ? 'IKE_AUTH Child SA proposals carry KE transforms without child-pfs-info (RFC 7296 §1.2)'
        : 'no acceptable Child SA proposal in IKE_AUTH';
    return { ok: false, notify: NotifyType.NO_PROPOSAL_CHOSEN, reason };
  }
  return negotiated ? { ok: true, selected, recorded: recordKe(selected.chosen) } : { ok: true, selected };
}

export type IkeAuthChildAnswer = { ok: true; chosen: ChosenAlgorithms; recorded?: RecordedKe } | { ok: false; reason: string };

/**
 * Initiator: check the responder's SAr2. With child-pfs-info the chosen KE/ADDKE transforms are
 * checked like any transform and recorded; without it a KE transform in the answer is a protocol
 * error (we sent none).
 */
export function checkIkeAuthChildAnswer(sent: readonly OfferedProposal[], received: readonly OfferedProposal[], negotiated: boolean): IkeAuthChildAnswer {
  try {
    const chosen = checkAccepted(sent, received, 'esp');
    if (!negotiated && (chosen.ke !== undefined || chosen.addKe.some((a) => a !== undefined))) {
      return { ok: false, reason: 'responder chose a KE method in IKE_AUTH without child-pfs-info' };
    }
    return negotiated ? { ok: true, chosen, recorded: recordKe(chosen) } : { ok: true, chosen };
  } catch (e) {
    if (e instanceof ProposalMismatchError) return { ok: false, reason: e.message };
    throw e;
  }
}
