// Initiating as an operator expects it: failed initiations tried again (ike.keyingtries), at most
// `initiate_limit` IKE SAs set up at once, and close_action when the peer deletes or goes dead.
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { ExchangeType } from '../../../src/ike/codec/constants.js';
import type { EngineConfig } from '../../../src/ike/config.js';
import { EnginePairHarness, mirrored, peerConfig, type PeerOptions, type WireRecord } from '../../helpers/engine-pair.js';

function pair(a: PeerOptions = {}, b: PeerOptions = {}): EnginePairHarness {
  return new EnginePairHarness(peerConfig('a', a), peerConfig('b', b));
}

/** The IKE_SA_INIT requests a sent, one per attempt (retransmissions carry the same SPI). */
function initAttempts(wire: WireRecord[], from: 'a' | 'b' = 'a'): string[] {
  const spis = new Set<string>();
  for (const w of wire) {
    if (w.from !== from) continue;
    const d = decodeMessage(w.data);
    if (d.ok && d.message.header.exchangeType === ExchangeType.IKE_SA_INIT && !d.message.header.flags.response) spis.add(d.message.header.spiI.toString('hex'));
  }
  return [...spis];
}

const FAST = { timeout: '1s', base: 2, tries: 1 }; // one attempt lasts 1 + 2 = 3 s

describe('ike.keyingtries: initiations the peer does not answer are tried again', () => {
  it('keyingtries 3: three attempts with growing, jittered pauses, then one error and nothing left', () => {
    const p = pair({ retransmit: FAST, keyingtries: 3 });
    p.link.cut = true;
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(600_000);
    expect(initAttempts(p.wire)).toHaveLength(3);
    const starts = [...new Set(initAttempts(p.wire))].map((spi) => p.wire.find((w) => w.from === 'a' && w.data.subarray(0, 8).toString('hex') === spi)!.at);
    // attempt k+1 starts 3 s (the attempt) + 2^(k-1) s .. 2^k s after attempt k
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(4_000);
    expect(starts[1]! - starts[0]!).toBeLessThanOrEqual(5_000);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(5_000);
    expect(starts[2]! - starts[1]!).toBeLessThanOrEqual(7_000);
    const errors = p.eventsOf('error', 'a');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/giving up establishing the connection after 3 attempts \(ike\.keyingtries 3\)/);
    expect(p.eventsOf('notice', 'a').map((n) => n.message)).toEqual([expect.stringMatching(/attempt 2 of 3 in \d/), expect.stringMatching(/attempt 3 of 3 in \d/)]);
    expect(p.engines.a.listSas(p.now)).toEqual([]);
    expect(p.engines.a.stats().initiations).toEqual({ waiting: 0, retrying: 0 });
  });

  it('keyingtries 0: tries until the peer answers, then the tunnel is up and the attempts stop', () => {
    const p = pair({ retransmit: FAST, keyingtries: 0 });
    p.link.cut = true;
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(300_000);
    const attempts = initAttempts(p.wire).length;
    expect(attempts).toBeGreaterThan(8);
    expect(p.engines.a.stats().initiations).toEqual({ waiting: 0, retrying: 1 });
    p.link.cut = false;
    p.run(70_000); // the longest pause is 64 s
    expect(p.eventsOf('ike-up', 'a')).toHaveLength(1);
    expect(p.eventsOf('child-up', 'a')).toHaveLength(1);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.engines.a.stats().initiations).toEqual({ waiting: 0, retrying: 0 });
    const after = initAttempts(p.wire).length;
    p.run(600_000);
    expect(initAttempts(p.wire)).toHaveLength(after);
    expect(p.allViolations()).toEqual([]);
  });

  it('a failure the peer states (authentication) is not tried again', () => {
    const p = pair({ retransmit: FAST, keyingtries: 0 }, { psk: 'a different key entirely 0123456789' });
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(300_000);
    expect(initAttempts(p.wire)).toHaveLength(1);
    expect(p.eventsOf('auth-failed', 'a').length + p.eventsOf('ike-down', 'a').length).toBeGreaterThan(0);
    expect(p.engines.a.stats().initiations?.retrying).toBe(0);
  });

  it('terminate CONN while an attempt waits stops the attempts; initiate starts counting again', () => {
    const p = pair({ retransmit: FAST, keyingtries: 2 });
    p.link.cut = true;
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(3_500); // the first attempt gave up, the second waits
    expect(p.engines.a.stats().initiations?.retrying).toBe(1);
    p.call('a', (e, now) => e.terminate(now, { connection: 'site' }));
    expect(p.eventsOf('notice', 'a').at(-1)!.message).toMatch(/no further attempts/);
    p.run(120_000);
    expect(initAttempts(p.wire)).toHaveLength(1);
    // a fresh initiate: two attempts again (keyingtries 2)
    p.call('a', (e, now) => e.initiate(now, 'site'));
    p.run(120_000);
    expect(initAttempts(p.wire)).toHaveLength(3);
    expect(() => p.call('a', (e, now) => e.terminate(now, { connection: 'site' }))).toThrow(/no IKE SA of connection 'site'/);
  });
});

/** `n` connections on each side, each with its own identities and selectors. */
function manyConnections(cfg: EngineConfig, side: 'a' | 'b', n: number): EngineConfig {
  const [base] = cfg.connections;
  const other = side === 'a' ? 'b' : 'a';
  cfg.connections = Array.from({ length: n }, (_, i) => ({
    ...base!,
    name: `site${i}`,
    local: { ...base!.local, id: { type: 'fqdn' as const, value: `gw-${side}${i}.example` } },
    remote: { ...base!.remote, id: { type: 'fqdn' as const, value: `gw-${other}${i}.example` } },
    children: base!.children.map((c) => ({
      ...c,
      reqid: 200 + i,
      localTs: [{ ...c.localTs[0]!, cidr: `10.${side === 'a' ? 1 : 2}.${i}.0/24` }],
      remoteTs: [{ ...c.remoteTs[0]!, cidr: `10.${side === 'a' ? 2 : 1}.${i}.0/24` }],
    })),
  }));
  return cfg;
}

describe('daemon.initiate_limit: at most this many IKE SAs set up at once', () => {
  it('six connections initiated together with a limit of 2: two IKE_SA_INITs at a time, all six up', () => {
    const cfgA = manyConnections(peerConfig('a', { initiateLimit: 2 }), 'a', 6);
    const cfgB = manyConnections(peerConfig('b'), 'b', 6);
    expect(cfgA.initiateLimit).toBe(2);
    const p = new EnginePairHarness(cfgA, cfgB);
    for (let i = 0; i < 6; i++) {
      p.call('a', (e, now) => e.initiate(now, `site${i}`));
      expect(initAttempts(p.wire)).toHaveLength(Math.min(i + 1, 2));
    }
    expect(p.engines.a.stats().initiations).toEqual({ waiting: 4, retrying: 0 });
    // never more than two of a's IKE SAs connecting at once
    let most = 0;
    for (let t = 0; t < 200; t++) {
      p.run(25);
      most = Math.max(most, p.engines.a.listSas(p.now).filter((s) => s.state === 'connecting').length);
    }
    p.run(5_000);
    expect(most).toBe(2);
    expect(p.eventsOf('ike-up', 'a')).toHaveLength(6);
    expect(p.eventsOf('child-up', 'a')).toHaveLength(6);
    expect(new Set(p.eventsOf('child-up', 'a').map((e) => e.connection))).toEqual(new Set(['site0', 'site1', 'site2', 'site3', 'site4', 'site5']));
    expect(p.engines.a.stats().initiations).toEqual({ waiting: 0, retrying: 0 });
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.allViolations()).toEqual([]);
  });
});

describe('shutdown', () => {
  it('sends every peer its Delete before removing any kernel state', () => {
    const p = new EnginePairHarness(manyConnections(peerConfig('a'), 'a', 3), manyConnections(peerConfig('b'), 'b', 3));
    for (let i = 0; i < 3; i++) p.call('a', (e, now) => e.initiate(now, `site${i}`));
    p.run(5_000);
    expect(p.eventsOf('child-up', 'a')).toHaveLength(3);
    const acts = p.call('a', (e, now) => e.shutdown(now));
    const sends = acts.flatMap((x, i) => (x.kind === 'send' ? [i] : []));
    const kernel = acts.flatMap((x, i) => (x.kind === 'kernel' ? [i] : []));
    expect(sends).toHaveLength(3);
    expect(kernel.length).toBeGreaterThanOrEqual(9);
    expect(Math.max(...sends)).toBeLessThan(Math.min(...kernel));
    expect(p.kernels.a.inbound.size + p.kernels.a.outbound.size + p.kernels.a.policies.size).toBe(0);
  });
});

describe('close_action', () => {
  it('start: the peer deletes the IKE SA; the Child SA is negotiated again in a new IKE SA', () => {
    const p = pair({ closeAction: 'start' });
    p.establish();
    const first = p.engines.a.listSas(p.now)[0]!.ikeSaId;
    p.call('b', (e, now) => e.terminate(now, { connection: 'site' }));
    p.run(10_000);
    const sas = p.engines.a.listSas(p.now);
    expect(sas).toHaveLength(1);
    expect(sas[0]!.ikeSaId).not.toBe(first);
    expect(sas[0]!.state).toBe('established');
    expect(sas[0]!.children.map((c) => c.name)).toEqual(['lan']);
    expect(p.eventsOf('notice', 'a').some((n) => /close_action start: establishing lan again/.test(n.message))).toBe(true);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
    expect(p.allViolations()).toEqual([]);
  });

  it('none: the peer deletes the IKE SA and nothing is started again', () => {
    const p = pair({ closeAction: 'none' });
    p.establish();
    p.call('b', (e, now) => e.terminate(now, { connection: 'site' }));
    p.run(60_000);
    expect(p.engines.a.listSas(p.now)).toEqual([]);
    expect(initAttempts(p.wire)).toHaveLength(1);
    expect(p.eventsOf('trap-again')).toEqual([]);
  });

  it('trap: the peer deletes the IKE SA; the daemon is told to put the trap back, nothing is initiated', () => {
    const p = pair({ closeAction: 'trap' });
    p.establish();
    p.call('b', (e, now) => e.terminate(now, { connection: 'site' }));
    p.run(60_000);
    expect(p.eventsOf('trap-again', 'a')).toEqual([{ type: 'trap-again', connection: 'site', child: 'lan' }]);
    expect(initAttempts(p.wire)).toHaveLength(1);
    expect(p.kernels.a.inbound.size + p.kernels.a.policies.size).toBe(0);
  });

  it('start after a dead peer (DPD unanswered): tried until the peer is back, then up again', () => {
    const p = pair({ closeAction: 'start', dpd: '10s', retransmit: FAST, keyingtries: 0 });
    p.establish();
    p.link.cut = true;
    p.run(60_000);
    // the established IKE SA is declared dead, then each new attempt gives up in turn
    const downs = p.eventsOf('ike-down', 'a');
    expect(downs[0]!.reason).toMatch(/did not answer/);
    expect(p.eventsOf('child-down', 'a')).toHaveLength(1);
    expect(initAttempts(p.wire).length).toBeGreaterThan(2);
    // one for the dead IKE SA, one per new attempt that gave up (the newest may still be running)
    expect(downs.length).toBeGreaterThanOrEqual(initAttempts(p.wire).length - 1);
    expect(downs.length).toBeLessThanOrEqual(initAttempts(p.wire).length);
    // b still holds its old IKE SA: the new one from a carries INITIAL_CONTACT and replaces it
    p.link.cut = false;
    p.run(70_000);
    const sas = p.engines.a.listSas(p.now);
    expect(sas.filter((s) => s.state === 'established')).toHaveLength(1);
    expect(sas[0]!.children).toHaveLength(1);
    expect(p.engines.b.listSas(p.now).filter((s) => s.state === 'established')).toHaveLength(1);
    expect(mirrored(p.kernels.a, p.kernels.b)).toEqual([]);
  });
});
