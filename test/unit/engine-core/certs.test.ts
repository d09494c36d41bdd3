// Certificate authentication (RFC 7427 digital signatures, X.509 chains validated against the
// configured CAs, identity bound to the certificate) between two engines back to back.
import { describe, expect, it } from 'vitest';
import type { EngineConfig } from '../../../src/ike/config.js';
import { gw1, gw2, gw3, gw4, testPki } from '../../helpers/test-pki.js';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

const { available, pubkey } = testPki('engine', 'certificate engine tests');

describe.skipIf(!available)('certificate authentication', () => {
  for (const [a, b] of [[gw1, gw3], [gw4, gw2], [gw3, gw1]] as const) {
    it(`${a.id} <-> ${b.id}: chains validated, signatures verified, Child SA keys agree`, () => {
      const p = new EnginePair(pubkey(configFor('a'), a, { id: b.id, ca: ['ca.crt'] }), pubkey(configFor('b'), b, { id: a.id, ca: ['ca.crt'] }));
      p.apply('a', p.a.initiate(p.now, 'site'));
      p.run(2_000);
      expect(p.eventsOf('auth-failed')).toEqual([]);
      expect(p.eventsOf('ike-up')).toHaveLength(2);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    });
  }

  it('RFC 7383: with a 576-octet limit IKE_AUTH travels in SKF fragments, also over a lossy link', () => {
    const small = (cfg: EngineConfig) => {
      cfg.connections[0]!.ike.fragmentSize = 576;
      return cfg;
    };
    const p = new EnginePair(small(pubkey(configFor('a'), gw1, { id: gw3.id, ca: ['ca.crt'] })), small(pubkey(configFor('b'), gw3, { id: gw1.id, ca: ['ca.crt'] })));
    p.dropEvery = 7;
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(60_000);
    expect(p.eventsOf('ike-up')).toHaveLength(2);
    expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    // Fragments on the wire: next payload SKF (53) right after the header, none above the limit.
    const skf = p.wire.filter((w) => w.data[16] === 53);
    expect(skf.length).toBeGreaterThan(2);
    expect(Math.max(...skf.map((w) => w.data.length))).toBeLessThanOrEqual(576 - 28);
  });

  it('a chain from an untrusted CA fails authentication with no SA', () => {
    const rogue = { crt: ['rogue.crt'], key: 'rogue.key', id: 'gw1.example.org' };
    const p = new EnginePair(pubkey(configFor('a'), rogue, { id: gw3.id, ca: ['ca.crt'] }), pubkey(configFor('b'), gw3, { id: 'gw1.example.org', ca: ['ca.crt'] }));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });

  it('a certificate that does not name the claimed identity fails', () => {
    const liar = { ...gw4, id: 'gw1.example.org' };
    const p = new EnginePair(pubkey(configFor('a'), liar, { id: gw3.id, ca: ['ca.crt'] }), pubkey(configFor('b'), gw3, { id: 'gw1.example.org', ca: ['ca.crt'] }));
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.eventsOf('auth-failed').length).toBeGreaterThan(0);
  });

  it('an expired certificate fails (validity checked against the wall clock)', () => {
    const cfgB = pubkey(configFor('b'), gw3, { id: gw1.id, ca: ['ca.crt'] });
    const p = new EnginePair(pubkey(configFor('a'), gw1, { id: gw3.id, ca: ['ca.crt'] }), cfgB);
    // gw1's certificate is valid for 2 days; the responder's clock says 30 days from now.
    (p.b as unknown as { wallClock: () => number }).wallClock = () => Date.now() + 30 * 86_400_000;
    p.apply('a', p.a.initiate(p.now, 'site'));
    p.run(2_000);
    expect(p.eventsOf('ike-up')).toHaveLength(0);
    expect(p.kernelA.sas.size + p.kernelB.sas.size).toBe(0);
  });
});
