// The kernel sees the same make-before-break sequence for an optimized rekey as for a regular one, and
// the new SA's kernel spec equals the old one except for the identifiers.
import { describe, expect, it } from 'vitest';
import { kernelSpecOf, rekeyKernelActions, type KernelSpecBase } from '../../../src/ike/engine/rekey-exchange.js';
import { makePair, rekeyChild } from './rekey-pair.js';

const base: KernelSpecBase = {
  connection: 'site',
  child: 'net',
  reqid: 7,
  protocol: 'esp',
  local: '192.0.2.1',
  remote: '198.51.100.1',
  replayWindow: 32,
  softBytes: 0,
  hardBytes: 0,
  softPackets: 0,
  hardPackets: 0,
  hardSeconds: 3960,
  ifId: 0,
  mark: 0,
};

function actionsFor(optimized: boolean, esp = ['aes256-sha256-x25519']) {
  const { a, b } = makePair({ esp, childKeMethods: [31], mode: 'transport' });
  const old = a.children[0]!;
  const r = rekeyChild(a, b, old, optimized);
  if (!r.ok) throw new Error(r.reason);
  const oldSpec = kernelSpecOf(base, 1, old);
  const newSpec = kernelSpecOf(base, 2, r.initiatorChild);
  return { oldSpec, newSpec, ...rekeyKernelActions(oldSpec, newSpec, r.initiatorChild), r };
}

describe('kernel actions of a rekey', () => {
  it('optimized and regular rekeys produce the same ordered operations', () => {
    const opt = actionsFor(true);
    const reg = actionsFor(false);
    expect(opt.now.map((x) => x.op)).toEqual(['installInboundSa', 'installOutboundSa', 'updateOutboundPolicy', 'deleteOutboundSa']);
    expect(opt.later.map((x) => x.op)).toEqual(['deleteInboundSa']);
    expect(reg.now.map((x) => x.op)).toEqual(opt.now.map((x) => x.op));
    expect(reg.later.map((x) => x.op)).toEqual(opt.later.map((x) => x.op));
  });

  it('the new spec inherits every field but childId and SPIs; policy update names the old outbound SPI', () => {
    const { oldSpec, newSpec, now, later } = actionsFor(true);
    const strip = (s: typeof oldSpec) => ({ ...s, childId: 0, spiIn: 0, spiOut: 0 });
    expect(strip(newSpec)).toEqual(strip(oldSpec));
    expect(newSpec.mode).toBe('transport');
    expect(newSpec.encr).toEqual({ id: 12, keyBits: 256 });
    expect(newSpec.integ).toEqual({ id: 12 });
    expect(newSpec.localTs).toEqual([{ protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.1.0.0', endAddress: '10.1.255.255' }]);
    expect(newSpec.spiIn).not.toBe(oldSpec.spiIn);
    const upd = now[2]!;
    expect(upd.op === 'updateOutboundPolicy' && upd.previousSpiOut).toBe(oldSpec.spiOut);
    expect(later[0]!.op === 'deleteInboundSa' && later[0]!.spec.spiIn).toBe(oldSpec.spiIn);
    const inbound = now[0]!;
    expect(inbound.op === 'installInboundSa' && inbound.keys.integKey?.length).toBe(32);
  });
});
