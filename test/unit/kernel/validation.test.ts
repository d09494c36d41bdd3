import { describe, expect, it } from 'vitest';
import { decodeEvent, encodePolicy, encodeSa, XfrmClient, type SaSpec } from '../../../src/kernel/xfrm-client.js';
import { policySpecsFor, saSpecFor, selectorPairs } from '../../../src/kernel/child-sa.js';
import type { ChildSaKernelSpec } from '../../../src/ike/engine/actions.js';
import { existsSync } from 'node:fs';
import { addonPath } from '../../../src/kernel/native.js';

const gcm = (len = 20) => ({ name: 'rfc4106(gcm(aes))', key: Buffer.alloc(len, 7), icvBits: 128 });
const base: SaSpec = { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1000, mode: 'tunnel', reqid: 1, aead: gcm() };

describe('XFRM input validation (before anything reaches the kernel)', () => {
  it('accepts a well-formed SA and encodes numbers the kernel uses', () => {
    const n = encodeSa({ ...base, replayWindow: 64, esn: true, encap: { sport: 4500, dport: 4501 }, mark: { value: 5 }, ifId: 9 });
    expect(n).toMatchObject({ family: 2, proto: 50, mode: 1, spi: 0x1000, reqid: 1, replayWindow: 64, esn: true, ifId: 9 });
    expect(n.encap).toEqual({ type: 2, sport: 4500, dport: 4501 });
    expect(n.mark).toEqual({ value: 5, mask: 0xffffffff });
    expect(n.aead).toEqual({ name: 'rfc4106(gcm(aes))', key: Buffer.alloc(20, 7), icvBits: 128 });
    expect(encodeSa({ ...base, src: '2001:db8::1', dst: '2001:db8::2' }).family).toBe(10);
  });

  it('rejects wrong key length for the algorithm', () => {
    expect(() => encodeSa({ ...base, aead: gcm(16) })).toThrow(/sa\.aead\.key: rfc4106\(gcm\(aes\)\) needs 20, 28 or 36 octets.*got 16/);
    expect(() => encodeSa({ ...base, aead: undefined, crypt: { name: 'cbc(aes)', key: Buffer.alloc(15) }, auth: { name: 'hmac(sha256)', key: Buffer.alloc(32) } }))
      .toThrow(/sa\.crypt\.key/);
    expect(() => encodeSa({ ...base, aead: undefined, crypt: { name: 'cbc(aes)', key: Buffer.alloc(16) }, auth: { name: 'hmac(sha256)', key: Buffer.alloc(20) } }))
      .toThrow(/sa\.auth\.key: hmac\(sha256\) needs 32 octets, got 20/);
    expect(() => encodeSa({ ...base, aead: { name: 'rfc7539esp(chacha20,poly1305)', key: Buffer.alloc(32) } })).toThrow(/36.*got 32/);
  });

  it('rejects unknown algorithms and bad combinations', () => {
    expect(() => encodeSa({ ...base, aead: { name: 'gcm(aes)', key: Buffer.alloc(20) } })).toThrow(/sa\.aead\.name: unknown AEAD algorithm 'gcm\(aes\)'/);
    expect(() => encodeSa({ ...base, aead: undefined, crypt: { name: 'cbc(aes)', key: Buffer.alloc(16) }, auth: { name: 'hmac(md4)', key: Buffer.alloc(16) } }))
      .toThrow(/sa\.auth\.name: unknown integrity/);
    expect(() => encodeSa({ ...base, aead: undefined, crypt: { name: 'cbc(aes)', key: Buffer.alloc(16) } })).toThrow(/sa\.auth: ESP with cbc\(aes\) needs/);
    expect(() => encodeSa({ ...base, aead: undefined })).toThrow(/ESP needs aead or crypt/);
    expect(() => encodeSa({ ...base, aead: { ...gcm(), icvBits: 100 } })).toThrow(/sa\.aead\.icvBits/);
    expect(() => encodeSa({ ...base, auth: { name: 'hmac(sha256)', key: Buffer.alloc(32), truncBits: 100 } })).toThrow(/cannot be combined|truncBits/);
  });

  it('rejects malformed addresses, prefixes and mixed families naming the field', () => {
    expect(() => encodeSa({ ...base, src: '192.0.2.300' })).toThrow(/sa\.src: '192\.0\.2\.300' is not/);
    expect(() => encodeSa({ ...base, dst: '2001:db8::2' })).toThrow(/sa: mixes IPv4 src and IPv6 dst/);
    expect(() => encodeSa({ ...base, selector: { src: '10.0.0.0/40', dst: '10.1.0.0/16' } })).toThrow(/sa\.selector\.src: prefix length '40'/);
    expect(() => encodeSa({ ...base, selector: { src: '10.0.0.0/8', dst: '2001:db8::/32' } })).toThrow(/sa\.selector: mixes/);
    expect(() => encodeSa({ ...base, mode: 'transport', selector: { src: '2001:db8::/64', dst: '2001:db8:1::/64' } })).toThrow(/transport mode selector family/);
    expect(() => encodeSa({ ...base, spi: 0 })).toThrow(/sa\.spi: must not be 0/);
    expect(() => encodeSa({ ...base, spi: 2 ** 32 })).toThrow(/sa\.spi/);
    expect(() => encodeSa({ ...base, mode: 'tunel' as never })).toThrow(/sa\.mode: must be one of/);
    expect(() => encodeSa({ ...base, replayWindow: 5000 })).toThrow(/sa\.replayWindow/);
    expect(() => encodeSa({ ...base, lifetime: { softBytes: 10, hardBytes: 5 } })).toThrow(/sa\.lifetime\.softBytes: must not exceed hardBytes/);
    expect(() => encodeSa({ ...base, encap: { sport: 0, dport: 4500 } })).toThrow(/sa\.encap/);
  });

  it('validates policies and templates', () => {
    const p = encodePolicy({
      selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16', proto: 17, dport: 53 },
      dir: 'out',
      priority: 10,
      templates: [{ src: '192.0.2.1', dst: '192.0.2.2', mode: 'tunnel', reqid: 3, spi: 0x1000 }],
    });
    expect(p).toMatchObject({ dir: 1, action: 0, priority: 10 });
    expect(p.selector).toMatchObject({ family: 2, prefixSrc: 16, prefixDst: 16, proto: 17, dport: 53, dportMask: 0xffff, sportMask: 0 });
    expect(p.templates[0]).toMatchObject({ family: 2, mode: 1, reqid: 3, spi: 0x1000, proto: 50 });
    // IPv6 inner over IPv4 outer is fine in tunnel mode
    expect(encodePolicy({ selector: { src: '2001:db8::/64', dst: '2001:db8:1::/64' }, dir: 'in', templates: [{ src: '192.0.2.2', dst: '192.0.2.1', mode: 'tunnel' }] }).templates[0]!.family).toBe(2);
    expect(() => encodePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'sideways' as never })).toThrow(/policy\.dir/);
    expect(() => encodePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out', templates: [{ mode: 'tunnel' }] })).toThrow(/policy\.templates\[0\]: tunnel mode needs src and dst/);
    expect(() => encodePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out', templates: [{ src: '2001:db8::1', dst: '2001:db8::2' }] })).toThrow(/transport mode template family/);
    expect(() => encodePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16', dport: 70000 }, dir: 'out' })).toThrow(/policy\.selector\.dport/);
  });

  it('decodes raw notifications into typed events', () => {
    const sel = { family: 2, src: '10.1.0.1', dst: '10.2.0.1', prefixSrc: 32, prefixDst: 32, proto: 1, sport: 0, sportMask: 0, dport: 0, dportMask: 0, ifindex: 0 };
    const ev = decodeEvent({
      type: 'acquire', reqid: 7, src: '192.0.2.1', dst: '192.0.2.2', proto: 50, seq: 1, selector: sel,
      policy: { selector: { ...sel, prefixSrc: 16, prefixDst: 16 }, dir: 1, action: 0, priority: 5, index: 9, flags: 0, share: 0, templates: [], lifetime: {}, current: {} },
    });
    expect(ev).toMatchObject({ type: 'acquire', reqid: 7, proto: 'esp', selector: { src: '10.1.0.1/32', dst: '10.2.0.1/32', proto: 1 } });
    expect(ev?.type === 'acquire' && ev.policy.dir).toBe('out');
    expect(decodeEvent({ type: 'mystery' })).toBeUndefined();
  });
});

const spec: ChildSaKernelSpec = {
  childId: 1, connection: 'c', child: 'n', reqid: 42, mode: 'tunnel', protocol: 'esp',
  local: '192.0.2.1', remote: '192.0.2.2',
  localTs: [{ protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.1.0.0', endAddress: '10.1.255.255' }],
  remoteTs: [
    { protocol: 0, startPort: 0, endPort: 65535, startAddress: '10.2.0.0', endAddress: '10.2.0.255' },
    { protocol: 0, startPort: 0, endPort: 65535, startAddress: '2001:db8::', endAddress: '2001:db8::ffff' },
  ],
  encr: { id: 20, keyBits: 256 }, esn: true, replayWindow: 128,
  softBytes: 1000, hardBytes: 2000, softPackets: 0, hardPackets: 0, hardSeconds: 3600,
  ifId: 0, mark: 0, spiIn: 0xc0000001, spiOut: 0xc0000002,
  encap: { localPort: 4500, remotePort: 14500 },
};

describe('Child SA -> XFRM objects', () => {
  it('builds inbound/outbound SAs in the right directions', () => {
    const keys = { encKey: Buffer.alloc(36, 1) };
    const i = saSpecFor(spec, 'in', keys);
    expect(i).toMatchObject({ src: '192.0.2.2', dst: '192.0.2.1', spi: 0xc0000001, reqid: 42, mode: 'tunnel', esn: true, replayWindow: 128 });
    expect(i.encap).toEqual({ sport: 14500, dport: 4500 });
    expect(i.lifetime).toMatchObject({ softBytes: 1000, hardBytes: 2000, hardAddSeconds: 3600 });
    const o = saSpecFor(spec, 'out', keys);
    expect(o).toMatchObject({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0xc0000002 });
    expect(o.encap).toEqual({ sport: 4500, dport: 14500 });
    expect(() => encodeSa(i)).not.toThrow();
  });

  it('pairs TS of the same family only and builds out/in/fwd policies', () => {
    expect(selectorPairs(spec)).toHaveLength(1);
    const ps = policySpecsFor(spec);
    expect(ps.map((p) => p.dir)).toEqual(['out', 'in', 'fwd']);
    expect(ps[0]!.selector).toMatchObject({ src: '10.1.0.0/16', dst: '10.2.0.0/24' });
    expect(ps[0]!.templates![0]).toMatchObject({ spi: 0xc0000002, reqid: 42, src: '192.0.2.1', dst: '192.0.2.2' });
    expect(ps[1]!.selector).toMatchObject({ src: '10.2.0.0/24', dst: '10.1.0.0/16' });
    expect(ps[1]!.templates![0]!.spi).toBeUndefined();
    for (const p of ps) expect(() => encodePolicy(p)).not.toThrow();
    expect(policySpecsFor({ ...spec, mode: 'transport' }).map((p) => p.dir)).toEqual(['out', 'in']);
  });
});

describe('XfrmClient rejects bad input before the kernel', () => {
  const built = existsSync(addonPath());
  if (!built) console.warn('SKIPPED: XFRM addon not built (npm run build:native)');
  it.skipIf(!built)('addSa/addPolicy reject with TypeError', async () => {
    let client: XfrmClient;
    try {
      client = XfrmClient.open();
    } catch (e) {
      console.warn(`SKIPPED: cannot open NETLINK_XFRM here: ${(e as Error).message}`);
      return;
    }
    try {
      await expect(client.addSa({ ...base, aead: gcm(17) })).rejects.toThrow(TypeError);
      await expect(client.addPolicy({ selector: { src: 'x', dst: '10.0.0.0/8' }, dir: 'out' })).rejects.toThrow(/policy\.selector\.src/);
      await expect(client.allocSpi({ src: '192.0.2.1', dst: '2001:db8::1', min: 1, max: 2 })).rejects.toThrow(/allocSpi: mixes/);
      expect(client.pending).toBe(0);
    } finally {
      client.close();
    }
  });
});
