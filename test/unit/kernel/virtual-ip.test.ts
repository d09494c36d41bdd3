// Child SAs whose selectors are of another IP version than the outer addresses (an IPv6 virtual IP
// over IPv4): the SAs must be flagged AF_UNSPEC, with no selector, so the kernel takes either inner
// family; same-family SAs stay as they were.
import { describe, expect, it } from 'vitest';
import type { ChildSaKernelSpec, TrafficSelectorSpec } from '../../../src/ike/engine/actions.js';
import { saSpecFor } from '../../../src/kernel/child-sa.js';
import { SaFlags } from '../../../src/kernel/xfrm-client.js';

const ts = (a: string, b = a): TrafficSelectorSpec => ({ protocol: 0, startPort: 0, endPort: 65535, startAddress: a, endAddress: b });
const spec = (localTs: TrafficSelectorSpec[], remoteTs: TrafficSelectorSpec[], mode: 'tunnel' | 'transport' = 'tunnel'): ChildSaKernelSpec => ({
  childId: 1, connection: 'home', child: 'lan', reqid: 1000, mode, protocol: 'esp', local: '192.0.2.1', remote: '192.0.2.2', localTs, remoteTs,
  encr: { id: 20, keyBits: 256 }, esn: false, replayWindow: 32, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0, hardSeconds: 0,
  ifId: 0, mark: 0, spiIn: 0x1001, spiOut: 0x2002,
});
const keys = { encKey: Buffer.alloc(36, 7) };

describe('inner IP version other than the outer one', () => {
  it('IPv6 selectors over IPv4: both SAs flagged AF_UNSPEC, without a selector', () => {
    const s = spec([ts('10.99.0.1'), ts('fd00:99::1')], [ts('10.2.0.0', '10.2.0.255'), ts('fd00:2::', 'fd00:2::ffff')]);
    for (const dir of ['in', 'out'] as const) {
      const sa = saSpecFor(s, dir, keys);
      expect(sa.flags).toBe(SaFlags.AF_UNSPEC);
      expect(sa.selector).toBeUndefined();
    }
  });

  it('same-family tunnels and transport mode are unchanged', () => {
    expect(saSpecFor(spec([ts('10.99.0.1')], [ts('10.2.0.0', '10.2.0.255')]), 'out', keys).flags).toBeUndefined();
    expect(saSpecFor(spec([ts('192.0.2.1')], [ts('192.0.2.2')], 'transport'), 'in', keys).flags).toBeUndefined();
  });
});
