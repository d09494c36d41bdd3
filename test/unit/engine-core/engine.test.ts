import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { encodeMessage } from '../../../src/ike/codec/encode.js';
import { ExchangeType, PayloadType } from '../../../src/ike/codec/constants.js';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

function establish(p: EnginePair): void {
  p.apply('a', p.a.initiate(p.now, 'site'));
  p.run(2_000);
}

describe('IKE_SA_INIT + IKE_AUTH with the initial Child SA', () => {
  for (const [ike, esp] of [
    ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-x25519'],
    ['aes128-sha256-ecp256', 'aes128-sha256'],
    ['chacha20poly1305-prfsha256-x25519', 'chacha20poly1305'],
    ['aes256-sha512-ecp384', 'aes256gcm16-ecp384'],
  ] as const) {
    it(`establishes ${ike} / ${esp} and both kernels get matching keys`, () => {
      const p = new EnginePair(configFor('a', { ike, esp }), configFor('b', { ike, esp }));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(p.eventsOf('child-up')).toHaveLength(2);
      expect(p.kernelA.sas.size).toBe(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
      expect(p.kernelA.outboundOk() && p.kernelB.outboundOk()).toBe(true);
      expect(p.kernelA.violations).toEqual([]);
      expect(p.kernelB.violations).toEqual([]);
      const [sa] = p.a.listSas(p.now);
      expect(sa?.state).toBe('established');
      expect(sa?.optimizedRekeyNegotiated).toBe(true);
      expect(sa?.childPfsInfoNegotiated).toBe(true);
    });
  }

  it('responder installs the inbound SA before its IKE_AUTH response is sent', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(6); // IKE_SA_INIT request delivered
    p.run(6); // response delivered, IKE_AUTH sent
    const authRequest = p.wire.at(-1)!.data;
    const actions = p.b.receive(p.now, authRequest, { address: '192.0.2.2', port: 500 }, { address: '192.0.2.1', port: 500 });
    const firstInstall = actions.findIndex((x) => x.kind === 'kernel' && x.action.op === 'installInboundSa');
    const send = actions.findIndex((x) => x.kind === 'send');
    expect(firstInstall).toBeGreaterThanOrEqual(0);
    expect(send).toBeGreaterThan(firstInstall);
  });

  it('wrong PSK: AUTHENTICATION_FAILED, no SA on either side, nothing in the kernels', () => {
    const p = new EnginePair(configFor('a', { psk: 'one secret one secret one secret' }), configFor('b', { psk: 'another secret another secret!!' }));
    establish(p);
    expect(p.eventsOf('auth-failed').length).toBeGreaterThan(0);
    expect(p.a.listSas(p.now)).toHaveLength(0);
    expect(p.b.listSas(p.now)).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });

  it('peer identity mismatch fails authentication', () => {
    const p = new EnginePair(configFor('a', { remoteId: 'someone-else.example' }), configFor('b'));
    establish(p);
    expect(p.eventsOf('auth-failed', 'a')).toHaveLength(1);
    expect(p.a.listSas(p.now)).toHaveLength(0);
  });

  it('INVALID_KE_PAYLOAD: the initiator retries with the responder group', () => {
    const p = new EnginePair(configFor('a', { ike: 'aes256gcm16-prfsha384-x25519-ecp256' }), configFor('b', { ike: 'aes256gcm16-prfsha384-ecp256' }));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(p.a.listSas(p.now)[0]?.suite).toContain('ECP_256');
  });

  it('converges when every 3rd datagram is lost (retransmission, cached responses)', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    p.dropEvery = 3;
    establish(p);
    p.run(30_000);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(p.eventsOf('child-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.a.stats().retransmits + p.b.stats().retransmits).toBeGreaterThan(0);
  });

  it('duplicated datagrams are answered from the cache and create nothing twice', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    p.duplicate = true;
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(p.eventsOf('child-up')).toHaveLength(2);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('COOKIE: above the half-open threshold the responder answers statelessly, and the handshake completes', () => {
    const cfgB = configFor('b');
    cfgB.cookieThreshold = 0;
    const p = new EnginePair(configFor('a'), cfgB);
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(6); // first IKE_SA_INIT request reaches the responder
    expect(p.b.listSas(p.now)).toHaveLength(0);
    const answer = decodeMessage(p.wire.at(-1)!.data);
    expect(answer.ok && answer.message.payloads.some((x) => x.type === PayloadType.NOTIFY && x.notifyType === 16390)).toBe(true);
    p.run(2_000);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('a forged COOKIE is refused with a fresh one and no state', () => {
    const cfgB = configFor('b');
    cfgB.cookieThreshold = 0;
    const p = new EnginePair(configFor('a'), cfgB);
    p.cut = true;
    p.apply('a', p.a.initiate(p.now, 'site'));
    const request = p.wire[0]!.data;
    // Put a wrong cookie in front: re-encode with an extra N(COOKIE) payload.
    const d = decodeMessage(request);
    if (!d.ok) throw new Error('bad request');
    const forged = encodeMessage({ header: d.message.header, payloads: [{ type: PayloadType.NOTIFY, critical: false, protocol: 0, spi: Buffer.alloc(0), notifyType: 16390, data: Buffer.alloc(36, 1) }, ...d.message.payloads] });
    p.inject('b', forged);
    expect(p.b.listSas(p.now)).toHaveLength(0);
    expect(p.b.stats().halfOpen).toBe(0);
  });

  it('transport mode is negotiated with USE_TRANSPORT_MODE', () => {
    const p = new EnginePair(configFor('a', { mode: 'transport' }), configFor('b', { mode: 'transport' }));
    establish(p);
    expect(p.a.listSas(p.now)[0]?.children[0]?.mode).toBe('transport');
    expect(p.b.listSas(p.now)[0]?.children[0]?.mode).toBe('transport');
  });
});

describe('Child SA and IKE SA rekeys', () => {
  it('first rekey of the initial Child SA is optimized when child-pfs-info was negotiated (§5.1), with zero-gap kernel order', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    const before = p.a.listSas(p.now)[0]!.children[0]!;
    expect(before.optimizedRekeyReady).toBe(true);
    const wireBefore = p.wire.length;
    p.apply('a', p.a.rekeyChild(p.now, before.childId));
    p.run(1_000);
    const rekeyed = p.eventsOf('child-rekeyed');
    expect(rekeyed).toHaveLength(2);
    expect(rekeyed.every((e) => e.type === 'child-rekeyed' && e.optimized)).toBe(true);
    // The request carried no SA and no TS payload.
    const request = p.wire[wireBefore]!;
    expect(request.from).toBe('a');
    // Old inbound SAs stay during the grace period, then go.
    expect(p.kernelA.sas.size).toBe(3);
    p.run(15_000);
    expect(p.kernelA.sas.size).toBe(2);
    expect(p.kernelB.sas.size).toBe(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.kernelA.outboundOk() && p.kernelB.outboundOk()).toBe(true);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
    const after = p.a.listSas(p.now)[0]!.children[0]!;
    expect(after.spiIn).not.toBe(before.spiIn);
    expect(after.keMethods).toEqual([31]);
  });

  it('without child-pfs-info the first rekey is regular, the second optimized', () => {
    const p = new EnginePair(configFor('a', { childPfsInfo: false }), configFor('b', { childPfsInfo: false }));
    establish(p);
    let child = p.a.listSas(p.now)[0]!.children[0]!;
    expect(child.optimizedRekeyReady).toBe(false);
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed', 'a').map((e) => e.type === 'child-rekeyed' && e.optimized)).toEqual([false]);
    child = p.a.listSas(p.now)[0]!.children[0]!;
    expect(child.optimizedRekeyReady).toBe(true);
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed', 'a').map((e) => e.type === 'child-rekeyed' && e.optimized)).toEqual([false, true]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('peers without optimized rekeys rekey regularly', () => {
    const p = new EnginePair(configFor('a', { optimized: false }), configFor('b'));
    establish(p);
    const child = p.a.listSas(p.now)[0]!.children[0]!;
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed').every((e) => e.type === 'child-rekeyed' && !e.optimized)).toBe(true);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('the responder can rekey too, and 20 alternating rekeys leave exactly one SA pair', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    for (let i = 0; i < 20; i++) {
      const side = i % 2 === 0 ? 'a' : 'b';
      const child = p.engine(side).listSas(p.now)[0]!.children[0]!;
      p.apply(side, p.engine(side).rekeyChild(p.now, child.childId));
      p.run(500);
    }
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed')).toHaveLength(40);
    expect(p.kernelA.sas.size).toBe(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
  });

  for (const optimized of [true, false]) {
    for (const first of ['a', 'b'] as const) {
      it(`simultaneous ${optimized ? 'optimized' : 'regular'} rekeys of the same Child SA (${first} first) end with one SA pair on both sides (RFC 7296 §2.8.1)`, () => {
        const p = new EnginePair(configFor('a', { optimized, childPfsInfo: optimized }), configFor('b', { optimized, childPfsInfo: optimized }));
        establish(p);
        for (let round = 0; round < 5; round++) {
          const second = first === 'a' ? 'b' : 'a';
          const c1 = p.engine(first).listSas(p.now)[0]!.children[0]!;
          const c2 = p.engine(second).listSas(p.now)[0]!.children[0]!;
          p.apply(first, p.engine(first).rekeyChild(p.now, c1.childId));
          p.apply(second, p.engine(second).rekeyChild(p.now, c2.childId));
          p.run(20_000);
          expect(p.kernelA.sas.size, `round ${round}`).toBe(2);
          expect(p.kernelB.sas.size).toBe(2);
          expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
          expect(p.kernelA.outboundOk() && p.kernelB.outboundOk()).toBe(true);
          expect(p.a.listSas(p.now)[0]!.children).toHaveLength(1);
          expect(p.b.listSas(p.now)[0]!.children).toHaveLength(1);
          expect(p.kernelA.policies.size + p.kernelB.policies.size).toBe(2);
        }
        expect(p.kernelA.violations.concat(p.kernelB.violations)).toEqual([]);
        // Every round really collided: one side found its own SA redundant and deleted it.
        expect(p.eventsOf('notice').filter((e) => e.type === 'notice' && /redundant/.test(e.message))).toHaveLength(5);
      });
    }
  }

  for (const optimized of [true, false]) {
    it(`IKE SA rekey (${optimized ? 'optimized' : 'regular'}) moves the Child SA and restarts message IDs`, () => {
      const p = new EnginePair(configFor('a', { optimized }), configFor('b', { optimized }));
      establish(p);
      const old = p.a.listSas(p.now)[0]!;
      p.apply('a', p.a.rekeyIke(p.now, old.ikeSaId));
      p.run(5_000);
      const sasA = p.a.listSas(p.now);
      const sasB = p.b.listSas(p.now);
      expect(sasA).toHaveLength(1);
      expect(sasB).toHaveLength(1);
      expect(sasA[0]!.ikeSaId).not.toBe(old.ikeSaId);
      expect(sasA[0]!.children).toHaveLength(1);
      expect(p.eventsOf('ike-rekeyed').every((e) => e.type === 'ike-rekeyed' && e.optimized === optimized)).toBe(true);
      // The new IKE SA works: a Child SA rekey over it succeeds.
      p.apply('b', p.b.rekeyChild(p.now, sasB[0]!.children[0]!.childId));
      p.run(20_000);
      expect(p.eventsOf('child-rekeyed')).toHaveLength(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    });
  }
});

describe('IKE_INTERMEDIATE with additional key exchanges (RFC 9242, RFC 9370)', () => {
  for (const ike of ['aes256gcm16-prfsha384-x25519-ke1_mlkem768', 'aes256gcm16-prfsha384-ecp256-ke1_mlkem768-ke2_mlkem1024', 'aes256gcm16-prfsha384-mlkem768']) {
    it(`${ike}: hybrid IKE SA, IntAuth in AUTH, matching Child SA keys`, () => {
      const p = new EnginePair(configFor('a', { ike }), configFor('b', { ike }));
      establish(p);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(p.eventsOf('child-up')).toHaveLength(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
      // Messages, not datagrams: an ML-KEM-1024 round travels as RFC 7383 fragments above 1280 octets.
      const intermediate = new Set<string>();
      for (const w of p.wire) {
        const d = decodeMessage(w.data);
        if (d.ok && d.message.header.exchangeType === ExchangeType.IKE_INTERMEDIATE) intermediate.add(`${d.message.header.messageId}:${d.message.header.flags.response}`);
      }
      const rounds = (ike.match(/ke\d_/g) ?? []).length;
      expect(intermediate.size).toBe(2 * rounds);
      // The hybrid IKE SA rekeys, and its follow-up key exchange runs in IKE_FOLLOWUP_KE.
      const old = p.a.listSas(p.now)[0]!;
      p.apply('a', p.a.rekeyIke(p.now, old.ikeSaId));
      p.run(5_000);
      expect(p.a.listSas(p.now)).toHaveLength(1);
      expect(p.a.listSas(p.now)[0]!.ikeSaId).not.toBe(old.ikeSaId);
      expect(p.b.listSas(p.now)).toHaveLength(1);
    });
  }

  it('a classic-only responder refuses a PQ-only initiator: no silent fallback', () => {
    const p = new EnginePair(configFor('a', { ike: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768' }), configFor('b', { ike: 'aes256gcm16-prfsha384-x25519' }));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.a.listSas(p.now)).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });
});

describe('post-quantum preshared keys in IKE_AUTH (RFC 8784)', () => {
  const ppkA = { id: Buffer.from([2, ...Buffer.from('ppk-1')]), key: Buffer.alloc(64, 0x5a) };
  const withPpk = (side: 'a' | 'b', keys: { id: Buffer; key: Buffer }[], required: boolean) => {
    const c = configFor(side);
    c.connections[0]!.ppk = { keys, required, rfc9867: false }; // RFC 8784 only; RFC 9867 is in engine-pq/ppk-9867.test.ts
    return c;
  };
  const childKeys = (p: EnginePair) => [...p.kernelA.sas.values()].map((x) => x.encKey).sort().join();

  it('both sides have the PPK (required): it is mixed in and the Child SA keys differ from a run without it', () => {
    const p = new EnginePair(withPpk('a', [ppkA], true), withPpk('b', [ppkA], true));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    // The PPK changes SK_d: rekeyed Child SA keys still agree.
    p.apply('a', p.a.rekeyChild(p.now, p.a.listSas(p.now)[0]!.children[0]!.childId));
    p.run(20_000);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(childKeys(p)).not.toBe('');
  });

  it('a required PPK the responder does not have fails authentication, nothing installed', () => {
    const other = { id: Buffer.from([2, ...Buffer.from('ppk-2')]), key: Buffer.alloc(64, 0x11) };
    const p = new EnginePair(withPpk('a', [ppkA], true), withPpk('b', [other], false));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });

  it('a required PPK against a peer without PPK support fails at once (no silent fallback)', () => {
    const p = new EnginePair(withPpk('a', [ppkA], true), configFor('b'));
    establish(p);
    expect(p.eventsOf('auth-failed', 'a')).toHaveLength(1);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });

  it('an optional PPK the responder lacks falls back to NO_PPK_AUTH and classic keys', () => {
    const other = { id: Buffer.from([2, ...Buffer.from('ppk-2')]), key: Buffer.alloc(64, 0x11) };
    const p = new EnginePair(withPpk('a', [ppkA], false), withPpk('b', [other], false));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('the PPK changes the keys: same nonces aside, PPK and no-PPK Child SAs cannot match (AUTH would fail with a wrong PPK value)', () => {
    const wrong = { id: ppkA.id, key: Buffer.alloc(64, 0x33) };
    const p = new EnginePair(withPpk('a', [ppkA], true), withPpk('b', [wrong], true));
    establish(p);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.eventsOf('auth-failed').length).toBeGreaterThan(0);
  });
});

describe('multiple key exchanges in Child SA rekeys (RFC 9370)', () => {
  const esp = 'aes256gcm16-x25519-ke1_mlkem768';
  it('child-pfs-info records X25519 + ML-KEM-768; the first rekey is optimized and continues with IKE_FOLLOWUP_KE', () => {
    const p = new EnginePair(configFor('a', { esp }), configFor('b', { esp }));
    establish(p);
    const child = p.a.listSas(p.now)[0]!.children[0]!;
    expect(child.keMethods).toEqual([31, 36]);
    const wireBefore = p.wire.length;
    p.apply('a', p.a.rekeyChild(p.now, child.childId));
    p.run(20_000);
    const exchanges = p.wire.slice(wireBefore).map((w) => {
      const d = decodeMessage(w.data);
      return d.ok ? d.message.header.exchangeType : -1;
    });
    expect(exchanges).toContain(ExchangeType.IKE_FOLLOWUP_KE);
    expect(p.eventsOf('child-rekeyed').map((e) => e.type === 'child-rekeyed' && e.optimized)).toEqual([true, true]);
    expect(p.kernelA.sas.size).toBe(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    const after = p.b.listSas(p.now)[0]!.children[0]!;
    expect(after.keMethods).toEqual([31, 36]);
    expect(after.spiOut).not.toBe(child.spiIn);
  });

  it('without child-pfs-info the regular first rekey negotiates both methods and runs IKE_FOLLOWUP_KE too', () => {
    const p = new EnginePair(configFor('a', { esp, childPfsInfo: false }), configFor('b', { esp, childPfsInfo: false }));
    establish(p);
    const child = p.b.listSas(p.now)[0]!.children[0]!;
    p.apply('b', p.b.rekeyChild(p.now, child.childId));
    p.run(20_000);
    expect(p.eventsOf('child-rekeyed').map((e) => e.type === 'child-rekeyed' && e.optimized)).toEqual([false, false]);
    expect(p.b.listSas(p.now)[0]!.children[0]!.keMethods).toEqual([31, 36]);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });
});

describe('additional Child SAs (CREATE_CHILD_SA)', () => {
  const twoChildren = (side: 'a' | 'b', start2: 'start' | 'none') => {
    const c = configFor(side);
    const conn = c.connections[0]!;
    const first = conn.children[0]!;
    const a = side === 'a';
    conn.children.push({
      ...first,
      name: 'dmz',
      reqid: 200,
      startAction: a ? start2 : 'none',
      localTs: [{ cidr: a ? '10.11.0.0/24' : '10.22.0.0/24', protocol: 0, startPort: 0, endPort: 65535 }],
      remoteTs: [{ cidr: a ? '10.22.0.0/24' : '10.11.0.0/24', protocol: 0, startPort: 0, endPort: 65535 }],
    });
    return c;
  };

  it('a second child with start_action start follows IKE_AUTH in a CREATE_CHILD_SA with PFS', () => {
    const p = new EnginePair(twoChildren('a', 'start'), twoChildren('b', 'none'));
    establish(p);
    const kids = p.a.listSas(p.now)[0]!.children;
    expect(kids.map((c) => c.name).sort()).toEqual(['dmz', 'lan']);
    expect(p.b.listSas(p.now)[0]!.children.map((c) => c.name).sort()).toEqual(['dmz', 'lan']);
    expect(p.kernelA.sas.size).toBe(4);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(kids.find((c) => c.name === 'dmz')!.keMethods).toEqual([31]);
    // The new child rekeys like any other.
    p.apply('b', p.b.rekeyChild(p.now, p.b.listSas(p.now)[0]!.children.find((c) => c.name === 'dmz')!.childId));
    p.run(20_000);
    expect(p.kernelA.sas.size).toBe(4);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('initiate(conn, child) on an established IKE SA creates just that child; a kernel ACQUIRE does too', () => {
    const p = new EnginePair(twoChildren('a', 'none'), twoChildren('b', 'none'));
    establish(p);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(1);
    p.apply('a', p.a.initiate(p.now, 'site', 'dmz'));
    p.run(1_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    expect(() => p.a.initiate(p.now, 'site', 'dmz')).toThrow(/already up/);
    // Tear the dmz child down from b, then traffic (ACQUIRE on its reqid) brings it back on a.
    const dmz = p.b.listSas(p.now)[0]!.children.find((c) => c.name === 'dmz')!;
    // The kernel's hard expiry of the dmz SA on b deletes the Child SA on both sides.
    p.apply('b', p.b.kernelEvent(p.now, { type: 'expire', spi: dmz.spiIn, destination: '192.0.2.2', hard: true }));
    p.run(1_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(1);
    p.apply('a', p.a.kernelEvent(p.now, { type: 'acquire', reqid: 200, local: '192.0.2.1', remote: '192.0.2.2' }));
    p.run(1_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
  });

  it('a request for selectors no child covers gets TS_UNACCEPTABLE and installs nothing', () => {
    const cfgA = twoChildren('a', 'none');
    const p = new EnginePair(cfgA, configFor('b'));
    establish(p);
    p.apply('a', p.a.initiate(p.now, 'site', 'dmz'));
    p.run(1_000);
    expect(p.a.listSas(p.now)[0]!.children).toHaveLength(1);
    expect(p.kernelA.sas.size).toBe(2);
    expect(p.kernelB.sas.size).toBe(2);
  });
});

describe('INFORMATIONAL and failure handling', () => {
  it('terminate deletes everything on both sides', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    p.apply('a', p.a.terminate(p.now, { connection: 'site' }));
    p.run(2_000);
    expect(p.a.listSas(p.now)).toHaveLength(0);
    expect(p.b.listSas(p.now)).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size + p.kernelA.policies.size + p.kernelB.policies.size).toBe(0);
  });

  it('DPD: a silent peer is given up on and its SAs are deleted', () => {
    const p = new EnginePair(configFor('a', { dpd: '10s' }), configFor('b'));
    establish(p);
    p.cut = true;
    p.run(600_000);
    expect(p.a.listSas(p.now)).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelA.policies.size).toBe(0);
    expect(p.eventsOf('ike-down', 'a')).toHaveLength(1);
  });

  it('dpd_timeout bounds the whole retransmission sequence', () => {
    const cfg = configFor('a', { dpd: '5s' });
    cfg.connections[0]!.ike.dpdTimeout = 20;
    const p = new EnginePair(cfg, configFor('b'));
    establish(p);
    p.cut = true;
    const cutAt = p.now;
    while (p.a.listSas(p.now).length > 0 && p.now - cutAt < 600_000) p.run(1_000);
    // dpd_delay (5 s) to notice the silence, then at most dpd_timeout (20 s) of retransmissions.
    expect(p.now - cutAt).toBeLessThanOrEqual(27_000);
    expect(p.kernelA.sas.size).toBe(0);
  });

  it('tampered ciphertext and replayed requests change nothing', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    const auth = p.wire.find((w) => w.from === 'a' && decodeMessage(w.data).ok && (decodeMessage(w.data) as { ok: true; message: { header: { exchangeType: number } } }).message.header.exchangeType === ExchangeType.IKE_AUTH)!;
    const tampered = Buffer.from(auth.data);
    tampered[tampered.length - 5]! ^= 0x40;
    const before = JSON.stringify(p.b.listSas(p.now));
    p.inject('b', tampered);
    p.inject('b', auth.data); // replay of an answered request: the cached answer, no new processing
    expect(JSON.stringify(p.b.listSas(p.now))).toBe(before);
    expect(p.kernelB.sas.size).toBe(2);
  });

  it('peer restart: INITIAL_CONTACT in a new IKE_AUTH clears the stale SAs of that peer', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    const stale = p.b.listSas(p.now)[0]!;
    // a "restarts": a fresh engine with the same configuration, while b still holds the old SAs.
    const restarted = new EnginePair(configFor('a'), configFor('b'));
    (restarted as unknown as { b: unknown }).b = p.b;
    for (const [k, v] of p.kernelB.sas) restarted.kernelB.sas.set(k, v);
    for (const [k, v] of p.kernelB.policies) restarted.kernelB.policies.set(k, v);
    restarted.now = p.now;
    establish(restarted);
    const now = restarted.b.listSas(restarted.now);
    expect(now).toHaveLength(1);
    expect(now[0]!.ikeSaId).not.toBe(stale.ikeSaId);
    expect(restarted.kernelB.sas.size).toBe(2);
    expect(kernelsMirror(restarted.kernelA, restarted.kernelB)).toBe(true);
  });

  it('shutdown sends a Delete and removes every kernel object', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    p.apply('a', p.a.shutdown(p.now));
    p.run(1_000);
    expect(p.kernelA.sas.size + p.kernelA.policies.size).toBe(0);
    expect(p.b.listSas(p.now)).toHaveLength(0);
    expect(p.kernelB.sas.size).toBe(0);
  });
});

describe('hostile input', () => {
  it('100,000 mutated and random datagrams neither throw nor change state', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    establish(p);
    const corpus = p.wire.map((w) => w.data);
    const before = JSON.stringify(p.b.listSas(p.now));
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 100_000; i++) {
      let d: Buffer;
      if (i % 10 === 0) {
        d = Buffer.alloc(rnd(200));
        for (let j = 0; j < d.length; j++) d[j] = rnd(256);
      } else {
        d = Buffer.from(corpus[rnd(corpus.length)]!);
        const flips = 1 + rnd(4);
        for (let j = 0; j < flips && d.length; j++) d[rnd(d.length)]! ^= 1 << rnd(8);
        if (rnd(4) === 0) d = d.subarray(0, rnd(d.length + 1));
      }
      // Keep the datagrams away from IKE_SA_INIT requests that are valid, which legitimately create half-open state.
      const decoded = decodeMessage(d);
      if (decoded.ok && decoded.message.header.exchangeType === ExchangeType.IKE_SA_INIT && !decoded.message.header.flags.response && decoded.message.payloads.some((x) => x.type === PayloadType.KE)) continue;
      expect(() => p.inject('b', d)).not.toThrow();
    }
    expect(JSON.stringify(p.b.listSas(p.now))).toBe(before);
    expect(p.kernelB.sas.size).toBe(2);
  });
});
