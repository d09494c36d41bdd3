// Traffic Flow Confidentiality padding (RFC 4303 §2.7) and ESP_TFC_PADDING_NOT_SUPPORTED
// (RFC 7296 §3.10.1): configured padding reaches the kernel on the outbound SA only, is withheld from
// a peer that refuses it, and survives regular and optimized rekeys.
import { describe, expect, it } from 'vitest';
import type { KernelAction } from '../../../src/ike/engine/actions.js';
import { kernelSpecOf, type KernelSpecBase, type RekeyChildSa } from '../../../src/ike/engine/rekey-exchange.js';
import { saSpecFor } from '../../../src/kernel/child-sa.js';
import { configFor, EnginePair, kernelsMirror } from './pair.js';

const outboundInstalls = (log: KernelAction[]) => log.filter((a): a is Extract<KernelAction, { op: 'installOutboundSa' }> => a.op === 'installOutboundSa');

describe('TFC padding', () => {
  for (const optimized of [true, false]) {
    it(`configured on one side: its outbound SAs carry it through ${optimized ? 'optimized' : 'regular'} Child SA rekeys, the peer's do not`, () => {
      const p = new EnginePair(configFor('a', { optimized, childExtra: 'tfc_padding: 1200' }), configFor('b', { optimized }));
      p.apply('a', p.a.initiate(p.now, 'site'));
      p.run(2_000);
      for (let i = 0; i < 3; i++) {
        p.apply('a', p.a.rekeyChild(p.now, p.a.listSas(p.now)[0]!.children[0]!.childId));
        p.run(20_000);
      }
      expect(p.eventsOf('child-rekeyed', 'a')).toHaveLength(3);
      expect(p.eventsOf('child-rekeyed', 'a').every((e) => e.type === 'child-rekeyed' && e.optimized === optimized)).toBe(true);
      const ours = outboundInstalls(p.kernelA.log);
      expect(ours).toHaveLength(4);
      expect(ours.map((a) => a.spec.tfcPad)).toEqual([1200, 1200, 1200, 1200]);
      expect(outboundInstalls(p.kernelB.log).map((a) => a.spec.tfcPad)).toEqual([undefined, undefined, undefined, undefined]);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    });
  }

  it('a Child SA negotiated with ESP_TFC_PADDING_NOT_SUPPORTED gets no padding, and its rekeys inherit that', () => {
    const base = { connection: 'c', child: 'lan', reqid: 1, protocol: 'esp', local: '192.0.2.1', remote: '192.0.2.2', replayWindow: 32, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0, hardSeconds: 0, ifId: 0, mark: 0, tfcPad: 1000 } satisfies KernelSpecBase;
    const child = (tfcPaddingNotSupported: boolean): RekeyChildSa => ({
      spiIn: 0x1000, spiOut: 0x2000, chosen: { encr: { id: 20, keyBits: 256 } } as RekeyChildSa['chosen'], keMethods: [], localTs: [], remoteTs: [], mode: 'tunnel',
      tfcPaddingNotSupported, ipcomp: false, keysIn: { encKey: Buffer.alloc(36), integKey: Buffer.alloc(0) }, keysOut: { encKey: Buffer.alloc(36), integKey: Buffer.alloc(0) }, createdBy: 'create',
    });
    expect(kernelSpecOf(base, 1, child(false)).tfcPad).toBe(1000);
    expect(kernelSpecOf(base, 1, child(true)).tfcPad).toBeUndefined();
    // The XFRM side: only the outbound SA is padded.
    const spec = kernelSpecOf(base, 1, child(false));
    const keys = { encKey: Buffer.alloc(36, 1) };
    expect(saSpecFor(spec, 'out', keys).tfcPad).toBe(1000);
    expect(saSpecFor(spec, 'in', keys).tfcPad).toBeUndefined();
  });
});
