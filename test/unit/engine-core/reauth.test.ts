// IKE SA reauthentication (RFC 7296 §2.8.3) between two engines back to back: a brand-new IKE SA
// with fresh authentication and no INITIAL_CONTACT, every Child SA re-created under it with the same
// selectors and reqids, traffic moved make-before-break (one UPDPOLICY per Child SA), the old IKE SA
// deleted only once all new Child SAs are installed, the old inbound SAs kept for the grace period.
import { describe, expect, it } from 'vitest';
import type { EngineConfig } from '../../../src/ike/config.js';
import type { IkeSaSnapshot } from '../../../src/ike/engine/api.js';
import { Engine } from '../../../src/ike/engine/engine.js';
import { EnginePairHarness, mirrored, peerConfig, seededRng, type PeerOptions } from '../../helpers/engine-pair.js';
import type { Host } from '../../helpers/lossy-link.js';
import { gw1, gw3, testPki } from '../../helpers/test-pki.js';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

const HOSTS: Host[] = ['a', 'b'];

function withIke(cfg: EngineConfig, o: { reauth?: number; rekey?: number; life?: number; rand?: number; passive?: boolean }): EngineConfig {
  const c = cfg.connections[0]!;
  if (o.reauth !== undefined) c.ike.reauthTime = o.reauth;
  if (o.rekey !== undefined) c.ike.lifetime.rekeyTime = o.rekey;
  if (o.life !== undefined) c.ike.lifetime.lifeTime = o.life;
  if (o.rand !== undefined) c.ike.lifetime.randTime = o.rand;
  if (o.passive !== undefined) c.passive = o.passive;
  return cfg;
}

function ikeSas(h: EnginePairHarness, host: Host): IkeSaSnapshot[] {
  return h.engines[host].listSas(h.now);
}

function only(h: EnginePairHarness, host: Host): IkeSaSnapshot {
  const sas = ikeSas(h, host);
  expect(sas, `${host} holds exactly one IKE SA`).toHaveLength(1);
  return sas[0]!;
}

function pair(a: PeerOptions, b: PeerOptions, cfgA: (c: EngineConfig) => EngineConfig = (c) => c, cfgB: (c: EngineConfig) => EngineConfig = (c) => c, link = {}, seed = 7): EnginePairHarness {
  return new EnginePairHarness(cfgA(peerConfig('a', a)), cfgB(peerConfig('b', b)), link, seed);
}

/** Bring up the IKE SA, plus the second Child SA `dmz` when asked. */
function up(h: EnginePairHarness, twoChildren = false): void {
  h.establish();
  if (twoChildren) {
    h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
    h.run(3_000);
  }
  for (const host of HOSTS) expect(only(h, host).children).toHaveLength(twoChildren ? 2 : 1);
  // Later than the window in which two IKE SAs of the connection count as twins of a simultaneous start.
  h.run(125_000);
}

/** After a reauthentication: one IKE SA with new SPIs on both sides, every Child SA re-created with new SPIs and the same selectors and reqids. */
function expectReauthenticated(h: EnginePairHarness, before: Record<Host, IkeSaSnapshot>): Record<Host, IkeSaSnapshot> {
  const after = {} as Record<Host, IkeSaSnapshot>;
  for (const host of HOSTS) {
    const sa = only(h, host);
    after[host] = sa;
    expect(sa.state).toBe('established');
    expect(sa.ikeSaId).not.toBe(before[host].ikeSaId);
    expect(sa.spiI).not.toBe(before[host].spiI);
    expect(sa.spiR).not.toBe(before[host].spiR);
    expect(sa.children).toHaveLength(before[host].children.length);
    const oldSpis = new Set(before[host].children.flatMap((c) => [c.spiIn, c.spiOut]));
    for (const c of sa.children) {
      expect(oldSpis.has(c.spiIn) || oldSpis.has(c.spiOut)).toBe(false);
      const prev = before[host].children.find((p) => p.name === c.name)!;
      expect(prev, `child ${c.name} existed before`).toBeDefined();
      expect(c.localTs).toEqual(prev.localTs);
      expect(c.remoteTs).toEqual(prev.remoteTs);
      expect(c.state).toBe('installed');
    }
  }
  // Both sides agree on the new SPIs.
  expect(after.a.spiI).toBe(after.b.spiI);
  expect(after.a.spiR).toBe(after.b.spiR);
  expect(h.allViolations()).toEqual([]);
  expect(h.thrown).toEqual([]);
  return after;
}

/** Once the grace period is over: kernels hold exactly the new Child SAs, mirrored, policies (same reqids) on the new outbound SPIs. */
function expectKernelsSettled(h: EnginePairHarness, after: Record<Host, IkeSaSnapshot>, policyKeys: Record<Host, string[]>): void {
  expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
  for (const host of HOSTS) {
    const k = h.kernels[host];
    const children = after[host].children;
    expect([...k.inbound.keys()].sort()).toEqual(children.map((c) => c.spiIn).sort());
    expect([...k.outbound.keys()].sort()).toEqual(children.map((c) => c.spiOut).sort());
    expect([...k.policies.keys()].sort()).toEqual(policyKeys[host]);
    expect([...k.policies.values()].sort()).toEqual(children.map((c) => c.spiOut).sort());
  }
  expect(h.allViolations()).toEqual([]);
}

function snapshot(h: EnginePairHarness): { before: Record<Host, IkeSaSnapshot>; policyKeys: Record<Host, string[]> } {
  return {
    before: { a: only(h, 'a'), b: only(h, 'b') },
    policyKeys: { a: [...h.kernels.a.policies.keys()].sort(), b: [...h.kernels.b.policies.keys()].sort() },
  };
}

/** Count the kernel actions of one kind since `from` in a host's kernel log. */
function ops(h: EnginePairHarness, host: Host, op: string, from = 0): number {
  return h.kernels[host].log.slice(from).filter((a) => a.op === op).length;
}

describe('IKE SA reauthentication (RFC 7296 §2.8.3)', () => {
  for (const [who, twoChildren] of [['a', false], ['b', false], ['a', true], ['b', true]] as const) {
    it(`reauthenticate() from ${who === 'a' ? 'the original initiator' : 'the original responder'} with ${twoChildren ? 'two Child SAs' : 'one Child SA'}: new IKE SA, Child SAs moved make-before-break, zero loss`, () => {
      const h = pair({ extraChild: twoChildren }, { extraChild: twoChildren });
      up(h, twoChildren);
      const { before, policyKeys } = snapshot(h);
      const logA = h.kernels.a.log.length;
      const logB = h.kernels.b.log.length;
      h.call(who, (e, now) => e.reauthenticate(now, before[who].ikeSaId));
      h.run(3_000);
      const after = expectReauthenticated(h, before);
      const n = before.a.children.length;
      for (const host of HOSTS) {
        // One UPDPOLICY per Child SA, no new policies, none deleted: the per-reqid policies stayed.
        expect(ops(h, host, 'updateOutboundPolicy', host === 'a' ? logA : logB)).toBe(n);
        expect(ops(h, host, 'installPolicies', host === 'a' ? logA : logB)).toBe(0);
        expect(ops(h, host, 'deletePolicies', host === 'a' ? logA : logB)).toBe(0);
      }
      // The reauthenticating side is the initiator of the new IKE SA.
      expect(after[who].initiator).toBe(true);
      expect(after[who === 'a' ? 'b' : 'a'].initiator).toBe(false);
      // Without INITIAL_CONTACT the peer kept the old IKE SA until its Delete.
      const peer = who === 'a' ? 'b' : 'a';
      const downs = h.eventsOf('ike-down', peer);
      expect(downs.map((d) => d.ikeSaId)).toEqual([before[peer].ikeSaId]);
      expect(downs[0]!.reason).toBe('deleted by the peer');
      expect(h.eventsOf('ike-down', who).map((d) => d.reason)).toEqual(['reauthenticated']);
      expect(h.eventsOf('child-down')).toEqual([]);
      expect(h.eventsOf('error')).toEqual([]);
      // The old inbound SAs are still there for the grace period, then gone.
      for (const host of HOSTS) expect(h.kernels[host].inbound.size).toBe(2 * n);
      h.run(15_000);
      expectKernelsSettled(h, after, policyKeys);
    });
  }

  it('the new IKE_AUTH carries no INITIAL_CONTACT (checked by what the responder keeps) and authenticates afresh', () => {
    const h = pair({}, {});
    up(h);
    const { before } = snapshot(h);
    const authFailedBefore = h.eventsOf('auth-failed').length;
    h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
    // Right after IKE_AUTH the responder holds both IKE SAs established: the old one was not dropped
    // as it would have been for INITIAL_CONTACT (RFC 7296 §2.4).
    let both = false;
    for (let i = 0; i < 500 && !both; i++) {
      h.run(1);
      const sasB = ikeSas(h, 'b');
      both = sasB.length === 2 && sasB.every((s) => s.state === 'established');
    }
    expect(both).toBe(true);
    expect(h.eventsOf('ike-down', 'b')).toEqual([]);
    h.run(3_000);
    expectReauthenticated(h, before);
    expect(h.eventsOf('auth-failed').length).toBe(authFailedBefore);
    expect(h.eventsOf('ike-up').length).toBe(4);
  });

  it('by the timer: jittered within [reauth - rand, reauth], before the hard lifetime; re-armed on the new IKE SA; the peer needs no timer', () => {
    const reauth = 3_000;
    const rand = 300;
    const h = pair({ childRekey: '3h' }, { childRekey: '3h' }, (c) => withIke(c, { reauth, rand, rekey: 4 * 3600, life: 5 * 3600 }));
    up(h);
    const { before, policyKeys } = snapshot(h);
    const at = before.a.reauthAt!;
    expect(at).toBeGreaterThanOrEqual(before.a.establishedAt + (reauth - rand) * 1000);
    expect(at).toBeLessThanOrEqual(before.a.establishedAt + reauth * 1000);
    expect(before.b.reauthAt ?? 0).toBe(0);
    h.run(at - h.now - 1);
    expect(only(h, 'a').ikeSaId).toBe(before.a.ikeSaId);
    h.run(5_000);
    const after = expectReauthenticated(h, before);
    expect(after.a.reauthAt!).toBeGreaterThanOrEqual(after.a.establishedAt + (reauth - rand) * 1000);
    expect(after.a.reauthAt!).toBeLessThanOrEqual(after.a.establishedAt + reauth * 1000);
    h.run(15_000);
    expectKernelsSettled(h, after, policyKeys);
    // And again, one reauth interval later.
    h.run(reauth * 1000);
    const again = expectReauthenticated(h, after);
    h.run(15_000);
    expectKernelsSettled(h, again, policyKeys);
  });

  it('the responder may reauthenticate by its timer too (either peer), and a passive connection never does', () => {
    const h = pair({}, {}, (c) => c, (c) => withIke(c, { reauth: 1_800, rand: 100 }));
    up(h);
    const { before } = snapshot(h);
    expect(before.b.reauthAt).toBeGreaterThan(0);
    h.run(1_805_000);
    const after = expectReauthenticated(h, before);
    expect(after.b.initiator).toBe(true);

    const p = pair({}, {}, (c) => c, (c) => withIke(c, { reauth: 1_800, passive: true }));
    up(p);
    const snap = only(p, 'b');
    expect(snap.reauthAt ?? 0).toBe(0);
    expect(() => p.engines.b.reauthenticate(p.now, snap.ikeSaId)).toThrow(/passive/);
    p.run(2_000_000);
    expect(only(p, 'b').ikeSaId).toBe(snap.ikeSaId);
  });

  it('when rekey and reauthentication are both due, the reauthentication wins (no IKE SA rekey)', () => {
    const h = pair({ childRekey: '3h' }, { childRekey: '3h' }, (c) => withIke(c, { reauth: 3_600, rekey: 3_600, rand: 360 }));
    up(h);
    const { before } = snapshot(h);
    h.run(3_700_000);
    expectReauthenticated(h, before);
    expect(h.eventsOf('ike-rekeyed')).toEqual([]);
    expect(h.engines.a.stats().rekeys.ike).toBe(0);
  });

  it('never after the hard lifetime: with reauth_time beyond life_time and no rekey, it is pulled before the hard lifetime', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const h = pair({}, {}, (c) => withIke(c, { reauth: 20_000, rekey: 0, life: 7_200, rand: 600 }), (c) => c, {}, seed);
      up(h);
      const sa = only(h, 'a');
      expect(sa.reauthAt!).toBeGreaterThan(h.now);
      expect(sa.reauthAt!).toBeLessThan(sa.establishedAt + 7_200 * 1000);
    }
  });

  it('an IKE SA rekey does not reset the reauthentication time (a rekey does not authenticate)', () => {
    const h = pair({ childRekey: '3h' }, { childRekey: '3h' }, (c) => withIke(c, { reauth: 5_000, rekey: 1_800, life: 2_000, rand: 100 }));
    up(h);
    const first = only(h, 'a');
    const due = first.reauthAt!;
    h.run(1_850_000);
    expect(h.eventsOf('ike-rekeyed').length).toBeGreaterThan(0);
    const rekeyed = only(h, 'a');
    expect(rekeyed.ikeSaId).not.toBe(first.ikeSaId);
    expect(rekeyed.reauthAt).toBe(due);
  });

  it('reauthentication fails (the peer rejects the new authentication): the old IKE SA stays until its hard lifetime, the failure is an error event, a retry follows', () => {
    const h = pair({}, {}, (c) => withIke(c, { reauth: 1_000, rekey: 0, life: 3_000, rand: 0 }), (c) => withIke(c, { rekey: 0, life: 0 }));
    up(h);
    const { before } = snapshot(h);
    // The peer's PSK changes: the reauthentication's IKE_AUTH no longer verifies.
    const bConn = (h.engines.b as unknown as { config: EngineConfig }).config.connections[0]!;
    bConn.psk = Buffer.from('another secret, not the one a uses, 42');
    h.run(1_000_000 + 10_000);
    const errors = h.eventsOf('error', 'a').map((e) => e.message);
    expect(errors.some((m) => m.includes(`reauthentication of IKE SA ${before.a.ikeSaId} failed`))).toBe(true);
    expect(h.eventsOf('auth-failed', 'a').length).toBeGreaterThan(0);
    // The old IKE SA and its Child SA carry on, kernels untouched.
    expect(only(h, 'a').ikeSaId).toBe(before.a.ikeSaId);
    expect(only(h, 'b').ikeSaId).toBe(before.b.ikeSaId);
    expect(mirrored(h.kernels.a, h.kernels.b)).toEqual([]);
    expect(h.kernels.a.policies.size).toBe(1);
    // A retry is scheduled before the hard lifetime.
    const retryAt = only(h, 'a').reauthAt!;
    expect(retryAt).toBeGreaterThan(h.now);
    expect(retryAt).toBeLessThan(before.a.establishedAt + 3_000 * 1000);
    h.run(retryAt - h.now + 10_000);
    expect(h.eventsOf('error', 'a').filter((e) => e.message.includes('reauthentication of IKE SA')).length).toBeGreaterThanOrEqual(2);
    // At the hard lifetime the old IKE SA is gone, on both sides, kernels clean.
    h.run(before.a.establishedAt + 3_000 * 1000 - h.now + 10_000);
    expect(ikeSas(h, 'a')).toEqual([]);
    expect(ikeSas(h, 'b')).toEqual([]);
    expect(h.kernels.a.empty).toBe(true);
    expect(h.kernels.b.empty).toBe(true);
    expect(h.allViolations()).toEqual([]);
  });

  it('reauthentication fails (the peer is gone): retransmissions give up, the old IKE SA keeps running, error reported', () => {
    const h = pair({}, {});
    up(h);
    const { before } = snapshot(h);
    h.link.cut = true;
    h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
    h.run(300_000);
    expect(h.eventsOf('error', 'a').some((e) => e.message.includes(`reauthentication of IKE SA ${before.a.ikeSaId} failed`))).toBe(true);
    expect(only(h, 'a').ikeSaId).toBe(before.a.ikeSaId);
    expect(h.kernels.a.policies.size).toBe(1);
    expect(h.allViolations()).toEqual([]);
    // Back online: a reauthentication now succeeds.
    h.link.cut = false;
    h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
    h.run(5_000);
    expectReauthenticated(h, before);
  });

  it('under 5% loss (8 seeds, two Child SAs): converges to one IKE SA with mirrored kernels and no violations', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const h = pair({ extraChild: true }, { extraChild: true }, (c) => c, (c) => c, { lossRate: 0.05, seed }, seed);
      h.establish(60_000);
      h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
      h.run(125_000);
      const { before, policyKeys } = snapshot(h);
      expect(before.a.children).toHaveLength(2);
      h.call(seed % 2 ? 'a' : 'b', (e, now) => e.reauthenticate(now, before[seed % 2 ? 'a' : 'b'].ikeSaId));
      h.run(120_000);
      const after = expectReauthenticated(h, before);
      h.run(20_000);
      expectKernelsSettled(h, after, policyKeys);
    }
  });

  for (const who of ['a', 'b'] as const) {
    it(`behind a NAT (initiator inside), reauthenticated by ${who === 'a' ? 'the host behind the NAT' : 'the host outside (whose remote is %any)'}: the new IKE SA runs over 4500 with UDP encapsulation`, () => {
      const h = pair({}, { remoteAddrs: '%any' });
      h.link.nat = { inside: 'a', publicAddress: '198.51.100.7', portMap: new Map([[500, 31500], [4500, 34500]]) };
      up(h);
      const { before, policyKeys } = snapshot(h);
      h.call(who, (e, now) => e.reauthenticate(now, before[who].ikeSaId));
      h.run(3_000);
      const after = expectReauthenticated(h, before);
      expect(after.a.natDetected.local).toBe(true);
      expect(after.b.natDetected.remote).toBe(true);
      expect(after.b.remote).toEqual({ address: '198.51.100.7', port: 34500 });
      const last = (host: Host) => h.kernels[host].log.filter((k) => k.op === 'installOutboundSa').at(-1)!.spec;
      expect(last('a').encap).toEqual({ localPort: 4500, remotePort: 4500 });
      expect(last('b').encap).toEqual({ localPort: 4500, remotePort: 34500 });
      h.run(15_000);
      expectKernelsSettled(h, after, policyKeys);
    });
  }

  for (const who of ['a', 'b'] as const) {
    it(`a Child SA rekey by ${who} in flight when a reauthenticates (its answer lost): the reauthentication still moves the traffic without loss`, () => {
      const h = pair({}, {});
      up(h);
      const { before, policyKeys } = snapshot(h);
      // Lose the first answer to the Child SA rekey, so that it is still open when the new IKE SA takes over.
      const responder = who === 'a' ? 'b' : 'a';
      let dropped = 0;
      // IKE header: octet 18 is the exchange type (36 = CREATE_CHILD_SA), octet 19 the flags (0x20 = response).
      h.link.dropIf = (from, data) => from === responder && data[18] === 36 && (data[19]! & 0x20) !== 0 && dropped++ === 0;
      h.call(who, (e, now) => e.rekeyChild(now, before[who].children[0]!.childId));
      h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
      h.run(30_000);
      expect(dropped).toBeGreaterThan(0);
      const after = expectReauthenticated(h, before);
      h.run(15_000);
      expectKernelsSettled(h, after, policyKeys);
    });
  }

  for (const delay of [0, 5, 12]) {
    it(`the peer rekeys the IKE SA while it is reauthenticated (${delay} ms later): the reauthentication follows the Child SAs to the rekeyed IKE SA and ends with one IKE SA`, () => {
      const h = pair({}, {});
      up(h);
      const { before, policyKeys } = snapshot(h);
      h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
      h.run(delay);
      h.call('b', (e, now) => e.rekeyIke(now, before.b.ikeSaId));
      h.run(30_000);
      const after = expectReauthenticated(h, before);
      expect(h.eventsOf('notice', 'a').some((e) => e.message.includes('reauthenticated as'))).toBe(true);
      h.run(15_000);
      expectKernelsSettled(h, after, policyKeys);
    });
  }

  it('asked of the original responder right after the IKE SA came up (inside the window of simultaneous starts): deferred until after it, then done', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const h = pair({}, {}, (c) => c, (c) => c, {}, seed);
      h.establish();
      const { before, policyKeys } = snapshot(h);
      h.call('b', (e, now) => e.reauthenticate(now, before.b.ikeSaId));
      expect(h.eventsOf('notice', 'b').some((e) => e.message.includes('deferred'))).toBe(true);
      h.run(60_000);
      expect(only(h, 'b').ikeSaId).toBe(before.b.ikeSaId);
      h.run(120_000);
      const after = expectReauthenticated(h, before);
      expect(h.eventsOf('notice').some((e) => e.message.includes('both peers initiated'))).toBe(false);
      h.run(15_000);
      expectKernelsSettled(h, after, policyKeys);
    }
  });

  it('12 h soak at 5% loss with DPD, Child SA rekeys, two Child SAs, reauthentication every 2 h (on both sides for some seeds): one IKE SA, mirrored kernels, no violations', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const both = seed % 2 === 0;
      const h = pair({ dpd: '30s', extraChild: true }, { dpd: '30s', extraChild: true }, (c) => withIke(c, { reauth: 7_200 }), (c) => (both ? withIke(c, { reauth: 5_000 }) : c), { lossRate: 0.05, seed }, seed);
      h.establish(60_000);
      h.call('a', (e, now) => e.initiate(now, 'site', 'dmz'));
      h.run(60_000);
      const { policyKeys } = snapshot(h);
      for (let i = 0; i < 24; i++) h.run(1_800_000);
      h.run(60_000);
      const reauths = h.eventsOf('notice').filter((e) => e.message.includes('reauthenticated as')).length;
      expect(reauths).toBeGreaterThanOrEqual(5);
      const after = { a: only(h, 'a'), b: only(h, 'b') };
      expect(after.a.children).toHaveLength(2);
      expect(h.thrown).toEqual([]);
      expectKernelsSettled(h, after, policyKeys);
    }
  });

  it('also with the engine-core harness (FakeKernel): policies re-pointed, never left on a missing outbound SA', () => {
    const p = new EnginePair(configFor('a'), configFor('b'));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(135_000);
    const old = p.a.listSas(p.now)[0]!;
    const outboundChecks: boolean[] = [];
    const apply = p.apply.bind(p);
    p.apply = (side, actions) => {
      apply(side, actions);
      outboundChecks.push(p.kernelA.outboundOk(), p.kernelB.outboundOk());
    };
    p.apply('b', p.b.reauthenticate(p.now, p.b.listSas(p.now)[0]!.ikeSaId));
    p.run(20_000);
    expect(p.kernelA.violations).toEqual([]);
    expect(p.kernelB.violations).toEqual([]);
    expect(outboundChecks.length).toBeGreaterThan(4);
    expect(outboundChecks.every(Boolean)).toBe(true);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    const now = p.a.listSas(p.now);
    expect(now).toHaveLength(1);
    expect(now[0]!.ikeSaId).not.toBe(old.ikeSaId);
    expect(now[0]!.children[0]!.spiIn).not.toBe(old.children[0]!.spiIn);
    expect(p.kernelA.policies.get(100)).toBe(now[0]!.children[0]!.spiOut);
  });
});

// Certificates: the reauthentication validates the peer's certificate again against the CAs in force.
const { available, pubkey } = testPki('reauth', 'reauthentication with certificates');

describe.skipIf(!available)('reauthentication with certificates', () => {
  const certPair = (o: { reauth?: number; life?: number } = {}) =>
    pair({}, {}, (c) => withIke(pubkey(c, gw1, { id: gw3.id, ca: ['ca.crt'] }), { ...(o.reauth ? { reauth: o.reauth, rand: 0 } : {}), ...(o.life ? { life: o.life, rekey: 0 } : {}) }), (c) => withIke(pubkey(c, gw3, { id: gw1.id, ca: ['ca.crt'] }), o.life ? { life: 0, rekey: 0 } : {}));

  it('succeeds with valid certificates, with fresh signatures', () => {
    const h = certPair();
    up(h);
    const { before, policyKeys } = snapshot(h);
    h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
    h.run(3_000);
    const after = expectReauthenticated(h, before);
    expect(h.eventsOf('auth-failed')).toEqual([]);
    h.run(15_000);
    expectKernelsSettled(h, after, policyKeys);
  });

  for (const side of ['a', 'b'] as const) {
    it(`the CA removed at ${side === 'a' ? 'the reauthenticating side' : 'the peer'}: the certificate is re-checked, reauthentication fails, the old IKE SA stays until its hard lifetime, then is gone`, () => {
      const h = certPair({ reauth: 1_000, life: 3_000 });
      up(h);
      const { before } = snapshot(h);
      // The CA is withdrawn (e.g. a new configuration without it): a's reauthentication must not pass.
      const conn = (h.engines[side] as unknown as { config: EngineConfig }).config.connections[0]!;
      conn.remote.caPem = [];
      h.run(1_010_000);
      const failed = h.eventsOf('auth-failed', side).map((e) => e.reason);
      expect(failed.some((r) => /certificate|trust|anchor|CA/i.test(r))).toBe(true);
      expect(h.eventsOf('error', 'a').some((e) => e.message.includes(`reauthentication of IKE SA ${before.a.ikeSaId} failed`))).toBe(true);
      expect(only(h, 'a').ikeSaId).toBe(before.a.ikeSaId);
      expect(h.kernels.a.policies.size).toBe(1);
      expect(h.allViolations()).toEqual([]);
      h.run(before.a.establishedAt + 3_000 * 1000 - h.now + 60_000);
      expect(ikeSas(h, 'a')).toEqual([]);
      expect(h.kernels.a.empty).toBe(true);
      expect(h.allViolations()).toEqual([]);
    });
  }

  it('an expired peer certificate at reauthentication time (wall clock moved on) fails the reauthentication', () => {
    const h = certPair();
    let wall = Date.now();
    const cfgA = (h.engines.a as unknown as { config: EngineConfig }).config;
    h.engines.a = new Engine(cfgA, { rng: seededRng(101), wallClock: () => wall });
    up(h);
    const { before } = snapshot(h);
    wall += 200 * 365 * 24 * 3600 * 1000;
    h.call('a', (e, now) => e.reauthenticate(now, before.a.ikeSaId));
    h.run(5_000);
    expect(h.eventsOf('auth-failed', 'a').some((e) => /certificate/i.test(e.reason))).toBe(true);
    expect(h.eventsOf('error', 'a').some((e) => e.message.includes('failed'))).toBe(true);
    expect(only(h, 'a').ikeSaId).toBe(before.a.ikeSaId);
    expect(h.allViolations()).toEqual([]);
  });
});
