// Optimized and regular rekeys between two peers over encrypted messages: flows, fallbacks, §5.1,
// inheritance field by field, collisions, multiple KEs with IKE_FOLLOWUP_KE, IKE SA rekeys.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CODE_POINTS } from '../../../src/ike/config.js';
import { ExchangeType, NotifyType, PayloadType } from '../../../src/ike/codec/constants.js';
import { encodePayload } from '../../../src/ike/codec/encode.js';
import { findNotify, notify } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import { shouldOptimizeChildRekey } from '../../../src/ike/engine/optimized-rekey.js';
import { redundantRekey, type RekeyChildSa } from '../../../src/ike/engine/rekey-exchange.js';
import { parseProposals } from '../../../src/ike/proposal.js';
import { makePair, rekeyChild, rekeyIke, type Peer } from './rekey-pair.js';

const cp = DEFAULT_CODE_POINTS;
const X25519 = 31;
const MLKEM768 = 36;

const types = (ps: Payload[]) => ps.map((p) => p.type);

function plan(peer: Peer, child: RekeyChildSa): boolean {
  return shouldOptimizeChildRekey({
    negotiated: peer.ike.optimizedNegotiated,
    enabled: peer.policy.optimizedEnabled,
    keMethods: child.keMethods,
    configChanged: peer.policy.configChanged,
    refusedOnce: false,
  });
}

/** The two ends of a Child SA agree: SPIs cross, keys cross. */
function expectPaired(x: RekeyChildSa, y: RekeyChildSa) {
  expect(x.spiOut).toBe(y.spiIn);
  expect(y.spiOut).toBe(x.spiIn);
  expect(x.keysOut).toEqual(y.keysIn);
  expect(x.keysIn).toEqual(y.keysOut);
  expect(x.keysOut.encKey).not.toEqual(x.keysIn.encKey);
}

/** Every non-key property inherited (§5), keys and SPIs fresh. */
function expectInherited(neu: RekeyChildSa, old: RekeyChildSa) {
  expect(neu.chosen).toEqual(old.chosen);
  expect(neu.chosen.encr).toEqual(old.chosen.encr);
  expect(neu.chosen.integ).toEqual(old.chosen.integ);
  expect(neu.chosen.esn).toEqual(old.chosen.esn);
  expect(neu.keMethods).toEqual(old.keMethods);
  expect(neu.localTs).toEqual(old.localTs);
  expect(neu.remoteTs).toEqual(old.remoteTs);
  expect(neu.mode).toBe(old.mode);
  expect(neu.tfcPaddingNotSupported).toBe(old.tfcPaddingNotSupported);
  expect(neu.ipcomp).toBe(old.ipcomp);
  expect(neu.spiIn).not.toBe(old.spiIn);
  expect(neu.spiOut).not.toBe(old.spiOut);
  expect(neu.keysIn.encKey).not.toEqual(old.keysIn.encKey);
  expect(neu.keysOut.encKey).not.toEqual(old.keysOut.encKey);
}

describe('optimized Child SA rekey (§5)', () => {
  it('with child-pfs-info (X25519 recorded): the first rekey is optimized, no SA/TS on the wire, everything inherited', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    const child = a.children[0]!;
    expect(plan(a, child)).toBe(true);
    const r = rekeyChild(a, b, child, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(false);
    const req = r.log.requests[0]!;
    expect(types(req)).toEqual([PayloadType.NOTIFY, PayloadType.NOTIFY, PayloadType.NONCE, PayloadType.KE]);
    expect(req.some((p) => p.type === PayloadType.SA || p.type === PayloadType.TSi || p.type === PayloadType.TSr)).toBe(false);
    const opt = findNotify(req, cp.optimizedRekey)!;
    expect([opt.protocol, opt.spi.length, opt.data.length]).toEqual([0, 0, 4]);
    expect(encodePayload(opt, 0).subarray(4, 8)).toEqual(Buffer.from([0, 0, 50401 >> 8, 50401 & 0xff]));
    expect(findNotify(req, NotifyType.REKEY_SA)!.spi.readUInt32BE(0)).toBe(child.spiIn);
    const res = r.log.responses[0]!;
    expect(types(res)).toEqual([PayloadType.NOTIFY, PayloadType.NONCE, PayloadType.KE]);
    expect(r.log.exchanges.map((e) => e.type)).toEqual([ExchangeType.CREATE_CHILD_SA]);
    expectPaired(r.initiatorChild, r.responderChild);
    expectInherited(r.initiatorChild, r.oldInitiator);
    expectInherited(r.responderChild, r.oldResponder);
    expect(r.initiatorChild.createdBy).toBe('optimized-rekey');
    expect(a.children).toEqual([r.initiatorChild]);
    expect(b.children).toEqual([r.responderChild]);
  });

  it('no PFS recorded: no KE payload either way, keys still fresh', () => {
    const { a, b } = makePair({ esp: ['aes256gcm16'], childKeMethods: [] });
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.log.requests[0]!.some((p) => p.type === PayloadType.KE)).toBe(false);
    expect(r.log.responses[0]!.some((p) => p.type === PayloadType.KE)).toBe(false);
    expectPaired(r.initiatorChild, r.responderChild);
    expectInherited(r.initiatorChild, r.oldInitiator);
  });

  it('transport mode and TFC are inherited without USE_TRANSPORT_MODE / ESP_TFC_PADDING_NOT_SUPPORTED on the wire', () => {
    const { a, b } = makePair({ childKeMethods: [X25519], mode: 'transport' });
    a.children[0]!.tfcPaddingNotSupported = true;
    b.children[0]!.tfcPaddingNotSupported = true;
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    for (const ps of [r.log.requests[0]!, r.log.responses[0]!]) {
      expect(findNotify(ps, NotifyType.USE_TRANSPORT_MODE)).toBeUndefined();
      expect(findNotify(ps, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED)).toBeUndefined();
    }
    expect(r.initiatorChild.mode).toBe('transport');
    expect(r.responderChild.mode).toBe('transport');
    expect(r.initiatorChild.tfcPaddingNotSupported).toBe(true);
    expectInherited(r.responderChild, r.oldResponder);
  });

  it('the responder can rekey too (roles swapped), and rekeys chain', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    const r1 = rekeyChild(b, a, b.children[0]!, true);
    if (!r1.ok) throw new Error(r1.reason);
    const r2 = rekeyChild(a, b, a.children[0]!, true);
    if (!r2.ok) throw new Error(r2.reason);
    expectPaired(a.children[0]!, b.children[0]!);
    expect(a.children[0]!.chosen).toEqual(r1.oldResponder.chosen);
  });
});

describe('initial Child SA rule (§5.1)', () => {
  it('without child-pfs-info: the first rekey is regular and records the KE method, the second is optimized', () => {
    const { a, b } = makePair({ childKeMethods: undefined });
    const initial = a.children[0]!;
    expect(initial.keMethods).toBeUndefined();
    expect(plan(a, initial)).toBe(false);
    const r1 = rekeyChild(a, b, initial, plan(a, initial));
    if (!r1.ok) throw new Error(r1.reason);
    expect(r1.log.requests[0]!.some((p) => p.type === PayloadType.SA)).toBe(true);
    expect(r1.log.requests[0]!.some((p) => p.type === PayloadType.TSi)).toBe(true);
    expect(r1.initiatorChild.keMethods).toEqual([X25519]);
    expect(r1.responderChild.keMethods).toEqual([X25519]);
    expectPaired(r1.initiatorChild, r1.responderChild);
    const second = a.children[0]!;
    expect(plan(a, second)).toBe(true);
    const r2 = rekeyChild(a, b, second, true);
    if (!r2.ok) throw new Error(r2.reason);
    expect(r2.fellBack).toBe(false);
    expect(r2.log.requests[0]!.some((p) => p.type === PayloadType.SA)).toBe(false);
    expectInherited(r2.initiatorChild, second);
  });

  it('an optimized rekey of an undetermined initial Child SA is refused with NO_PROPOSAL_CHOSEN; the initiator falls back at once', () => {
    const { a, b } = makePair({ childKeMethods: undefined });
    // the initiator believes the methods are known (as if it had seen child-pfs-info), the responder does not
    a.children[0]!.keMethods = [X25519];
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(true);
    expect(r.log.exchanges).toHaveLength(2);
    expect(findNotify(r.log.responses[0]!, NotifyType.NO_PROPOSAL_CHOSEN)).toBeDefined();
    expect(r.log.requests[1]!.some((p) => p.type === PayloadType.SA)).toBe(true);
    expect(findNotify(r.log.requests[1]!, NotifyType.REKEY_SA)!.spi.readUInt32BE(0)).toBe(r.oldInitiator.spiIn);
    expectPaired(r.initiatorChild, r.responderChild);
    expect(r.responderChild.keMethods).toEqual([X25519]);
  });
});

describe('errors and fallback (§3)', () => {
  for (const [name, n] of [
    ['USE_TRANSPORT_MODE', NotifyType.USE_TRANSPORT_MODE],
    ['ESP_TFC_PADDING_NOT_SUPPORTED', NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED],
    ['ROHC_SUPPORTED', NotifyType.ROHC_SUPPORTED],
    ['USE_AGGFRAG', NotifyType.USE_AGGFRAG],
  ] as const) {
    it(`an optimized request carrying ${name} is refused, then the regular rekey succeeds`, () => {
      const { a, b } = makePair({ childKeMethods: [X25519] });
      let tampered = 0;
      const r = rekeyChild(a, b, a.children[0]!, true, { tamper: (req) => (tampered++ === 0 ? [...req, notify(n)] : req) });
      if (!r.ok) throw new Error(r.reason);
      expect(findNotify(r.log.responses[0]!, NotifyType.NO_PROPOSAL_CHOSEN)).toBeDefined();
      expect(r.fellBack).toBe(true);
      expectPaired(r.initiatorChild, r.responderChild);
    });
  }

  it('a peer without the extension (not negotiated): optimized requests refused, regular rekeys work', () => {
    const { a, b } = makePair({ childKeMethods: [X25519], negotiated: false });
    expect(plan(a, a.children[0]!)).toBe(false);
    const regular = rekeyChild(a, b, a.children[0]!, false);
    if (!regular.ok) throw new Error(regular.reason);
    expect(regular.log.exchanges).toHaveLength(1);
    const forced = rekeyChild(a, b, a.children[0]!, true);
    if (!forced.ok) throw new Error(forced.reason);
    expect(forced.fellBack).toBe(true);
    expect(findNotify(forced.log.responses[0]!, NotifyType.NO_PROPOSAL_CHOSEN)).toBeDefined();
  });

  it('a responder with optimized rekeys disabled refuses; regular rekeys are always accepted even when negotiated', () => {
    const { a, b } = makePair({ childKeMethods: [X25519], optimized: [true, false] });
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(true);
    const { a: a2, b: b2 } = makePair({ childKeMethods: [X25519] });
    const reg = rekeyChild(a2, b2, a2.children[0]!, false);
    if (!reg.ok) throw new Error(reg.reason);
    expect(reg.fellBack).toBe(false);
    expect(reg.log.requests[0]!.some((p) => p.type === PayloadType.SA)).toBe(true);
  });

  it('after a reconfiguration the responder refuses optimized and the regular rekey applies the new proposals', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    b.policy = { ...b.policy, configChanged: true, espProposals: parseProposals(['aes128gcm16-x25519'], 'esp') };
    a.policy = { ...a.policy, espProposals: parseProposals(['aes128gcm16-x25519', 'aes256gcm16-x25519'], 'esp') };
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(true);
    expect(r.initiatorChild.chosen.encr).toEqual({ id: 20, keyBits: 128 });
    expect(r.responderChild.chosen.encr).toEqual({ id: 20, keyBits: 128 });
    expectPaired(r.initiatorChild, r.responderChild);
  });

  it('an initiator that reloaded plans a regular rekey', () => {
    const { a } = makePair({ childKeMethods: [X25519] });
    a.policy.configChanged = true;
    expect(plan(a, a.children[0]!)).toBe(false);
  });

  it('a KE of another method than inherited is refused and the fallback negotiates afresh', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    a.children[0]!.keMethods = [19]; // the initiator's record is off: ECP-256
    a.policy.espProposals = parseProposals(['aes256gcm16-ecp256', 'aes256gcm16-x25519'], 'esp');
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(true);
    expect(findNotify(r.log.responses[0]!, NotifyType.NO_PROPOSAL_CHOSEN)).toBeDefined();
    // regular rekey with ECP-256 first: the responder only does X25519 and asks for it
    const ike = findNotify(r.log.responses[1]!, NotifyType.INVALID_KE_PAYLOAD)!;
    expect(ike.data.readUInt16BE(0)).toBe(X25519);
    expect(r.log.exchanges).toHaveLength(3);
    expect(r.initiatorChild.keMethods).toEqual([X25519]);
    expectPaired(r.initiatorChild, r.responderChild);
  });

  it('rekeying a Child SA the responder does not know gives CHILD_SA_NOT_FOUND (no fallback loop)', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    b.children = [];
    const r = rekeyChild(a, b, a.children[0]!, false);
    expect(r.ok).toBe(false);
    expect(findNotify(r.log.responses[0]!, NotifyType.CHILD_SA_NOT_FOUND)).toBeDefined();
  });
});

describe('PPKs and optimized rekeys (§7.3)', () => {
  it('no PPK notify is ever sent, and PPK identities offered by a peer are not confirmed (no silent reuse)', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    const offered = notify(NotifyType.PPK_IDENTITY_KEY, Buffer.concat([Buffer.from('\x02gw'), Buffer.alloc(8, 1)]));
    const r = rekeyChild(a, b, a.children[0]!, true, { tamper: (req) => [...req, offered, notify(NotifyType.PPK_IDENTITY, Buffer.from('\x02gw'))] });
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(false);
    for (const n of [NotifyType.PPK_IDENTITY, NotifyType.PPK_IDENTITY_KEY, NotifyType.USE_PPK, NotifyType.NO_PPK_AUTH]) {
      expect(findNotify(r.log.responses[0]!, n)).toBeUndefined();
    }
    const clean = rekeyChild(a, b, a.children[0]!, true);
    if (!clean.ok) throw new Error(clean.reason);
    expect(clean.log.requests[0]!.some((p) => p.type === PayloadType.NOTIFY && p.notifyType >= NotifyType.USE_PPK && p.notifyType <= NotifyType.PPK_IDENTITY_KEY)).toBe(false);
    expectPaired(clean.initiatorChild, clean.responderChild);
  });
});

describe('collisions (RFC 7296 §2.8.1)', () => {
  function collide(aOptimized: boolean, bOptimized: boolean) {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    const childA = a.children[0]!;
    const childB = b.children[0]!;
    // both started before either saw the other's request: each side's old SA is still known to the peer
    const ra = rekeyChild(a, b, childA, aOptimized, { install: false });
    const rb = rekeyChild(b, a, childB, bOptimized, { install: false });
    if (!ra.ok || !rb.ok) throw new Error('collision rekeys failed');
    // each side decides from its own point of view; both must drop the same pair
    const aView = redundantRekey({ ni: ra.ni, nr: ra.nr }, { ni: rb.ni, nr: rb.nr });
    const bView = redundantRekey({ ni: rb.ni, nr: rb.nr }, { ni: ra.ni, nr: ra.nr });
    expect(aView === 'a').toBe(bView === 'b');
    const survivor = aView === 'a' ? rb : ra;
    expectPaired(survivor.initiatorChild, survivor.responderChild);
    expect(survivor.initiatorChild.chosen).toEqual(childA.chosen);
    return { ra, rb, loserIsA: aView === 'a' };
  }
  it('both optimized', () => {
    // random nonces: over several runs both sides must agree on the loser every time
    for (let i = 0; i < 8; i++) collide(true, true);
  });
  it('optimized against regular, in both orders', () => {
    collide(true, false);
    collide(false, true);
  });
  it('the lowest nonce loses', () => {
    const lo = Buffer.alloc(32, 0x01);
    const hi = Buffer.alloc(32, 0xf0);
    expect(redundantRekey({ ni: hi, nr: lo }, { ni: hi, nr: hi })).toBe('a');
    expect(redundantRekey({ ni: hi, nr: hi }, { ni: lo, nr: hi })).toBe('b');
  });
});

describe('multiple key exchanges (§7.1, RFC 9370)', () => {
  it('optimized Child SA rekey with X25519 + ML-KEM-768 continues with one IKE_FOLLOWUP_KE', () => {
    const { a, b } = makePair({ esp: ['aes256gcm16-x25519-ke1_mlkem768'], childKeMethods: [X25519, MLKEM768] });
    const r = rekeyChild(a, b, a.children[0]!, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.log.exchanges.map((e) => e.type)).toEqual([ExchangeType.CREATE_CHILD_SA, ExchangeType.IKE_FOLLOWUP_KE]);
    expect(findNotify(r.log.responses[0]!, NotifyType.ADDITIONAL_KEY_EXCHANGE)).toBeDefined();
    expect(r.log.requests[1]!.find((p) => p.type === PayloadType.KE)).toMatchObject({ group: MLKEM768 });
    expect(r.initiatorChild.keMethods).toEqual([X25519, MLKEM768]);
    expectPaired(r.initiatorChild, r.responderChild);
    expectInherited(r.initiatorChild, r.oldInitiator);
    expect(b.childFollowups.size).toBe(0);
  });

  it('the regular rekey negotiates the same chain', () => {
    const { a, b } = makePair({ esp: ['aes256gcm16-x25519-ke1_mlkem768'], childKeMethods: undefined });
    const r = rekeyChild(a, b, a.children[0]!, false);
    if (!r.ok) throw new Error(r.reason);
    expect(r.log.exchanges.map((e) => e.type)).toEqual([ExchangeType.CREATE_CHILD_SA, ExchangeType.IKE_FOLLOWUP_KE]);
    expect(r.responderChild.keMethods).toEqual([X25519, MLKEM768]);
    expectPaired(r.initiatorChild, r.responderChild);
  });
});

describe('optimized IKE SA rekey (§4)', () => {
  it('N(OPTIMIZED_REKEY, 8-octet SPI), Ni, KEi; no SA; new SPIs from the notifies; algorithms inherited', () => {
    const { a, b } = makePair({ childKeMethods: [X25519] });
    const old = a.ike;
    const r = rekeyIke(a, b, true);
    if (!r.ok) throw new Error(r.reason);
    const req = r.log.requests[0]!;
    expect(types(req)).toEqual([PayloadType.NOTIFY, PayloadType.NONCE, PayloadType.KE]);
    const n = findNotify(req, cp.optimizedRekey)!;
    expect([n.protocol, n.spi.length, n.data.length]).toEqual([0, 0, 8]);
    expect(r.initiatorIke.spiI).toEqual(n.data);
    expect(r.initiatorIke.spiR).toEqual(findNotify(r.log.responses[0]!, cp.optimizedRekey)!.data);
    expect(r.initiatorIke.spiI).toEqual(r.responderIke.spiI);
    expect(r.initiatorIke.spiR).toEqual(r.responderIke.spiR);
    expect(r.initiatorIke.keys).toEqual(r.responderIke.keys);
    expect(r.initiatorIke.keys.skD).not.toEqual(old.keys.skD);
    expect(r.initiatorIke.chosen).toEqual(old.chosen);
    expect(r.initiatorIke.keMethods).toEqual(old.keMethods);
    expect(r.initiatorIke.originalInitiator).toBe(true);
    expect(r.responderIke.originalInitiator).toBe(false);
    expect(r.initiatorIke.optimizedNegotiated).toBe(true);
    // the Child SA moves to the new IKE SA and keeps being rekeyed optimized under it
    const c = rekeyChild(a, b, a.children[0]!, true);
    if (!c.ok) throw new Error(c.reason);
    expect(c.fellBack).toBe(false);
    expectPaired(c.initiatorChild, c.responderChild);
  });

  it('initiated by the original responder: it becomes the new original initiator', () => {
    const { a, b } = makePair();
    const r = rekeyIke(b, a, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.initiatorIke.originalInitiator).toBe(true);
    expect(a.ike.originalInitiator).toBe(false);
    expect(a.ike.keys).toEqual(b.ike.keys);
  });

  it('refused without negotiation; the regular IKE rekey follows', () => {
    const { a, b } = makePair({ negotiated: false });
    const r = rekeyIke(a, b, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.fellBack).toBe(true);
    expect(r.log.requests[1]!.some((p) => p.type === PayloadType.SA)).toBe(true);
    expect(r.initiatorIke.keys).toEqual(r.responderIke.keys);
  });

  it('with ML-KEM-768 as ADDKE1 the IKE rekey continues with IKE_FOLLOWUP_KE', () => {
    const { a, b } = makePair({ ike: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'] });
    const r = rekeyIke(a, b, true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.log.exchanges.map((e) => e.type)).toEqual([ExchangeType.CREATE_CHILD_SA, ExchangeType.IKE_FOLLOWUP_KE]);
    expect(r.initiatorIke.keMethods).toEqual([X25519, MLKEM768]);
    expect(r.initiatorIke.keys).toEqual(r.responderIke.keys);
  });
});
