// Removing what the daemon owns (SIGTERM teardown, stale state after a crash): exactly the SAs and
// policies of the given reqids, found with one dump of each table however many reqids there are.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushOwned, installInboundSa, installOutboundSa, installPolicies, listOwnedState } from '../../src/kernel/child-sa.js';
import { ENCR } from '../../src/kernel/ike-mapping.js';
import { espOk } from './env.js';
import { childPair, twoHosts, type Pair } from './topology.js';

const opts = { mode: 'tunnel' as const, encr: { id: ENCR.AES_GCM_16, keyBits: 128 } };

describe.skipIf(!espOk)('flushOwned', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await twoHosts(false);
  });
  afterAll(async () => {
    await p?.close();
  });

  it('removes the SAs and policies of the given reqids and nothing else', async () => {
    const reqids = [7001, 7002, 7003, 7004, 9000];
    for (const [i, reqid] of reqids.entries()) {
      const c = childPair(p, { ...opts, reqid }, 0x7100 + i, 0x7200 + i);
      // distinct selectors per Child SA, so each has its own policies
      const ts = (a: string) => ({ protocol: 0, startPort: 0, endPort: 65535, startAddress: a, endAddress: a });
      const spec = { ...c.specA, localTs: [ts(`10.77.${i}.1`)], remoteTs: [ts(`10.78.${i}.1`)] };
      await installInboundSa(p.a.client, spec, c.keysBA);
      await installOutboundSa(p.a.client, spec, c.keysAB);
      await installPolicies(p.a.client, spec);
    }
    const before = await listOwnedState(p.a.client, { reqids: [7001, 7003, 9000] });
    expect(before.sas).toHaveLength(6);
    expect(new Set(before.policies.map((x) => x.templates[0]!.reqid))).toEqual(new Set([7001, 7003, 9000]));

    const r = await flushOwned(p.a.client, { reqids: [7001, 7003, 9000, 123] });
    expect(r.sas).toBe(6);
    expect(r.policies).toBe(before.policies.length);
    const left = await p.a.client.dumpSas();
    expect(new Set(left.map((s) => s.reqid))).toEqual(new Set([7002, 7004]));
    expect(left).toHaveLength(4);
    const leftPolicies = await p.a.client.dumpPolicies();
    expect(new Set(leftPolicies.flatMap((x) => x.templates.map((t) => t.reqid)))).toEqual(new Set([7002, 7004]));

    // a range still works (the daemon's own reqid range)
    expect(await flushOwned(p.a.client, { reqidMin: 7000, reqidMax: 7999 })).toEqual({ sas: 4, policies: leftPolicies.length });
    expect(await p.a.client.dumpSas()).toEqual([]);
    expect(await p.a.client.dumpPolicies()).toEqual([]);
  });
});
