// XfrmClient against the kernel, each test in a fresh network namespace.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSync, closeSync } from 'node:fs';
import { isXfrmError, XfrmClient, type SaSpec, type XfrmEvent } from '../../src/kernel/xfrm-client.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { espOk, netnsOk } from './env.js';

let ns: Netns;
let client: XfrmClient;

beforeEach(async () => {
  if (!netnsOk) return;
  ns = await createNetns('xfrmt');
  client = XfrmClient.open({ netns: ns.path });
});

afterEach(async () => {
  if (!netnsOk) return;
  // nothing of ours may be left in the kernel
  const [sas, pols] = await Promise.all([client.dumpSas(), client.dumpPolicies()]);
  client.close();
  await ns.delete();
  expect(sas).toEqual([]);
  expect(pols).toEqual([]);
});

/**
 * The events of one type. Not Extract<XfrmEvent, { type: T }>: one member covers
 * 'newpolicy' | 'updpolicy' | 'delpolicy', which Extract with a single name drops.
 */
type EventOf<T extends XfrmEvent['type']> = XfrmEvent & { type: T };

function waitFor<T extends XfrmEvent['type']>(c: XfrmClient, type: T, pred: (e: EventOf<T>) => boolean = () => true, ms = 10_000) {
  return new Promise<EventOf<T>>((resolve, reject) => {
    const t = setTimeout(() => { c.off('event', on); reject(new Error(`no ${type} event within ${ms} ms`)); }, ms);
    const on = (e: XfrmEvent) => {
      if (e.type === type && pred(e as EventOf<T>)) {
        clearTimeout(t);
        c.off('event', on);
        resolve(e as EventOf<T>);
      }
    };
    c.on('event', on);
  });
}

const gcmKey = Buffer.from('00112233445566778899aabbccddeeff0011223344556677'.slice(0, 40), 'hex');

describe.skipIf(!netnsOk)('XFRM policies and ALLOCSPI (no ESP needed)', () => {
  it('ALLOCSPI reserves exactly the requested SPI and a range pick stays in range', async () => {
    const spi = await client.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', min: 0xc1234567, max: 0xc1234567, mode: 'tunnel', reqid: 5 });
    expect(spi).toBe(0xc1234567);
    const larval = await client.getSa({ dst: '192.0.2.1', spi });
    expect(larval).toMatchObject({ src: '192.0.2.2', dst: '192.0.2.1', spi, reqid: 5, mode: 'tunnel', proto: 'esp' });
    // the same SPI again is refused
    const taken = await client.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', min: spi, max: spi, reqid: 6 }).catch((e) => e);
    expect(isXfrmError(taken)).toBe(true);
    expect(taken.message).toMatch(/SPI 0xc1234567 is already in use/);
    const ranged = await client.allocSpi({ src: '2001:db8::2', dst: '2001:db8::1', min: 0x1000, max: 0x10ff });
    expect(ranged).toBeGreaterThanOrEqual(0x1000);
    expect(ranged).toBeLessThanOrEqual(0x10ff);
    // (a refused ALLOCSPI can leave a larval SPI-0 acquire state behind until acq_expire)
    expect((await client.dumpSas()).map((s) => s.spi).filter((s) => s !== 0).sort()).toEqual([ranged, spi].sort());
    await client.deleteSa({ dst: '192.0.2.1', spi });
    await client.flushSas();
    expect(await client.dumpSas()).toEqual([]);
  });

  it('policy add/get/update/delete round trip, field by field', async () => {
    const sel = { src: '198.51.100.0/24', dst: '203.0.113.0/25', proto: 17, sport: 0, dport: 4000 };
    await client.addPolicy({
      selector: sel, dir: 'out', priority: 1234, mark: { value: 7, mask: 0xff }, ifId: 3,
      lifetime: { hardAddSeconds: 3600 },
      templates: [{ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x2000, reqid: 9, mode: 'tunnel', proto: 'esp' }],
    });
    const got = await client.getPolicy({ selector: sel, dir: 'out', mark: { value: 7, mask: 0xff }, ifId: 3 });
    expect(got.selector).toEqual({ src: '198.51.100.0/24', dst: '203.0.113.0/25', proto: 17, sport: 0, sportMask: 0, dport: 4000, dportMask: 0xffff, ifindex: 0 });
    expect(got).toMatchObject({ dir: 'out', action: 'allow', priority: 1234, mark: { value: 7, mask: 0xff }, ifId: 3 });
    expect(got.lifetime.hardAddSeconds).toBe(3600);
    expect(got.templates).toEqual([{ family: 4, src: '192.0.2.1', dst: '192.0.2.2', spi: 0x2000, proto: 'esp', mode: 'tunnel', reqid: 9, optional: false }]);
    expect(got.current.addTime).toBeGreaterThan(0);

    // adding the same again is EEXIST; UPDPOLICY replaces in place (same index)
    const dup = await client.addPolicy({ selector: sel, dir: 'out', mark: { value: 7, mask: 0xff }, ifId: 3 }).catch((e) => e);
    expect(isXfrmError(dup, 'EEXIST')).toBe(true);
    expect(dup.errno).toBe(17);
    await client.updatePolicy({
      selector: sel, dir: 'out', priority: 1234, mark: { value: 7, mask: 0xff }, ifId: 3,
      templates: [{ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x2001, reqid: 9, mode: 'tunnel' }],
    });
    const upd = await client.getPolicy({ index: got.index, dir: 'out', mark: { value: 7, mask: 0xff }, ifId: 3 });
    expect(upd.index).toBe(got.index);
    expect(upd.templates[0]).toMatchObject({ spi: 0x2001, optional: false });
    await client.addPolicy({ selector: sel, dir: 'in', templates: [{ src: '192.0.2.2', dst: '192.0.2.1', mode: 'transport', optional: true, proto: 'comp' }, { reqid: 9 }] });
    const inPol = await client.getPolicy({ selector: sel, dir: 'in' });
    expect(inPol.templates.map((t) => [t.proto, t.optional, t.reqid])).toEqual([['comp', true, 0], ['esp', false, 9]]);
    await client.deletePolicy({ selector: sel, dir: 'in' });

    await client.addPolicy({ selector: { src: '2001:db8:1::/48', dst: '2001:db8:2::/48' }, dir: 'fwd', action: 'block' });
    const all = await client.dumpPolicies();
    expect(all.map((p) => `${p.dir}:${p.action}`).sort()).toEqual(['fwd:block', 'out:allow']);
    await client.deletePolicy({ selector: sel, dir: 'out', mark: { value: 7, mask: 0xff }, ifId: 3 });
    const gone = await client.getPolicy({ selector: sel, dir: 'out', mark: { value: 7, mask: 0xff }, ifId: 3 }).catch((e) => e);
    expect(isXfrmError(gone, 'ENOENT')).toBe(true);
    await client.flushPolicies();
  });

  it('kernel refusals carry errno, code and the extended-ack message', async () => {
    // ESN without an ESN replay state: refused while verifying the request,
    // before any algorithm lookup, so this holds with or without ESP modules
    const e = await client.addSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x9999, aead: { name: 'rfc4106(gcm(aes))', key: gcmKey }, flags: 128 })
      .then(() => undefined, (x) => x);
    expect(isXfrmError(e, 'EINVAL')).toBe(true);
    expect(e.errno).toBe(22);
    expect(typeof e.extack).toBe('string');
    expect(e.extack.length).toBeGreaterThan(0);
    expect(e.message).toContain(e.extack);
    const miss = await client.getSa({ dst: '192.0.2.9', spi: 0x4444 }).catch((x) => x);
    expect(isXfrmError(miss, 'ESRCH') || isXfrmError(miss, 'ENOENT')).toBe(true);
  });

  it('a namespace that does not exist is an error with errno and code', () => {
    let err: unknown;
    try {
      XfrmClient.open({ netns: '/var/run/netns/does-not-exist-ikev2d' });
    } catch (x) {
      err = x;
    }
    expect(isXfrmError(err, 'ENOENT')).toBe(true);
    expect((err as Error).message).toContain('does-not-exist-ikev2d');
  });

  it('ACQUIRE is delivered when a trap policy (template, no SA) sees a packet', async () => {
    await ns.exec(['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
    await ns.exec(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'd0']);
    await ns.exec(['ip', 'link', 'set', 'd0', 'up']);
    await ns.exec(['ip', 'link', 'set', 'd1', 'up']);
    client.subscribe(['acquire']);
    const sel = { src: '192.0.2.1/32', dst: '192.0.2.77/32' };
    await client.addPolicy({ selector: sel, dir: 'out', priority: 10, templates: [{ src: '192.0.2.1', dst: '192.0.2.77', reqid: 4242, mode: 'tunnel' }] });
    const got = waitFor(client, 'acquire', (e) => e.reqid === 4242);
    await ns.sh('ping -c 1 -W 1 192.0.2.77 >/dev/null 2>&1 || true');
    const ev = await got;
    expect(ev).toMatchObject({ reqid: 4242, src: '192.0.2.1', dst: '192.0.2.77', proto: 'esp' });
    expect(ev.selector).toMatchObject({ src: '192.0.2.1/32', dst: '192.0.2.77/32' });
    expect([1, 17]).toContain(ev.selector.proto);
    expect(ev.policy).toMatchObject({ dir: 'out', priority: 10, selector: { src: '192.0.2.1/32', dst: '192.0.2.77/32' } });
    await client.flushPolicies();
    await client.flushSas(); // the larval acquire state
  });

  it('policy notifications arrive as events; two namespaces stay separate in one process', async () => {
    const other = await createNetns('xfrmt2');
    const c2 = XfrmClient.open({ netns: other.path });
    // also by fd
    const fd = openSync(other.path, 'r');
    const c3 = XfrmClient.open({ netns: fd });
    closeSync(fd);
    try {
      client.subscribe(['policy']);
      const ev = waitFor(client, 'newpolicy');
      await client.addPolicy({ selector: { src: '198.51.100.1', dst: '203.0.113.1' }, dir: 'in' });
      expect((await ev).policy.selector.src).toBe('198.51.100.1/32');
      await c2.addPolicy({ selector: { src: '198.51.100.2', dst: '203.0.113.2' }, dir: 'in' });
      expect((await client.dumpPolicies()).map((p) => p.selector.src)).toEqual(['198.51.100.1/32']);
      expect((await c3.dumpPolicies()).map((p) => p.selector.src)).toEqual(['198.51.100.2/32']);
      await client.flushPolicies();
    } finally {
      c2.close();
      c3.close();
      await other.delete();
    }
  });

  it('pipelines many requests without blocking and matches replies', async () => {
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) =>
      client.addPolicy({ selector: { src: `198.51.100.${i % 250}`, dst: `203.0.113.${Math.floor(i / 250)}` }, dir: 'out', priority: i })));
    const all = await client.dumpPolicies();
    expect(all).toHaveLength(n);
    expect(new Set(all.map((p) => p.priority)).size).toBe(n);
    await client.flushPolicies();
  });

  it('closing rejects what is still pending', async () => {
    const c = XfrmClient.open({ netns: ns.path });
    const p = c.dumpPolicies();
    c.close();
    await expect(p).rejects.toThrow(/closed/);
  });
});

describe.skipIf(!espOk)('XFRM SAs (ESP)', () => {
  const variants: [string, SaSpec][] = [
    ['tunnel IPv4 AES-GCM-256, ESN, window 128, lifetimes, NAT-T, mark, if_id', {
      src: '192.0.2.1', dst: '192.0.2.2', spi: 0xc0000010, mode: 'tunnel', reqid: 11,
      aead: { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(36, 0x42), icvBits: 128 },
      esn: true, replayWindow: 128,
      lifetime: { softBytes: 1000000, hardBytes: 2000000, softPackets: 1000, hardPackets: 2000, softAddSeconds: 100, hardAddSeconds: 200, softUseSeconds: 50, hardUseSeconds: 60 },
      encap: { sport: 4500, dport: 14500 }, mark: { value: 0x10, mask: 0xf0 }, ifId: 77,
    }],
    ['transport IPv6 cbc(aes)+hmac(sha512) trunc 256, window 32, selector', {
      src: '2001:db8::1', dst: '2001:db8::2', spi: 0x1234, mode: 'transport', reqid: 12,
      crypt: { name: 'cbc(aes)', key: Buffer.alloc(32, 1) }, auth: { name: 'hmac(sha512)', key: Buffer.alloc(64, 2), truncBits: 256 },
      replayWindow: 32, selector: { src: '2001:db8::1/128', dst: '2001:db8::2/128', proto: 17, dport: 53 },
    }],
    ['AH transport IPv4 hmac(sha256) trunc 128', {
      src: '192.0.2.1', dst: '192.0.2.2', spi: 0x6001, mode: 'transport', reqid: 14, proto: 'ah',
      auth: { name: 'hmac(sha256)', key: Buffer.alloc(32, 4), truncBits: 128 }, replayWindow: 32,
    }],
    ['IPComp transport IPv6 deflate', {
      src: '2001:db8::1', dst: '2001:db8::2', spi: 0x6002, mode: 'transport', reqid: 15, proto: 'comp',
      comp: { name: 'deflate' },
    }],
    ['tunnel IPv4 chacha20-poly1305, no replay', {
      src: '192.0.2.1', dst: '192.0.2.2', spi: 0x5678, mode: 'tunnel', reqid: 13,
      aead: { name: 'rfc7539esp(chacha20,poly1305)', key: Buffer.alloc(36, 3), icvBits: 128 },
    }],
  ];
  for (const [name, sa] of variants) {
    it(`get after add returns what was added: ${name}`, async () => {
      await client.addSa(sa);
      const id = { dst: sa.dst, spi: sa.spi, proto: sa.proto ?? 'esp', ...(sa.mark ? { mark: sa.mark } : {}) };
      const got = await client.getSa(id);
      expect(got.src).toBe(sa.src);
      expect(got.dst).toBe(sa.dst);
      expect(got.spi).toBe(sa.spi);
      expect(got.proto).toBe(sa.proto ?? 'esp');
      expect(got.mode).toBe(sa.mode);
      expect(got.reqid).toBe(sa.reqid);
      expect(got.esn).toBe(sa.esn === true);
      expect(got.replayWindow).toBe(sa.replayWindow ?? 0);
      if (sa.aead) expect(got.aead).toEqual({ name: sa.aead.name, key: sa.aead.key, icvBits: sa.aead.icvBits });
      else expect(got.aead).toBeUndefined();
      if (sa.crypt) expect(got.crypt).toEqual(sa.crypt);
      if (sa.auth) expect(got.auth).toEqual(sa.auth);
      if (sa.comp) expect(got.comp).toEqual(sa.comp);
      for (const [k, v] of Object.entries(sa.lifetime ?? {})) expect(got.lifetime[k as keyof typeof got.lifetime]).toBe(v);
      if (sa.encap) expect(got.encap).toMatchObject({ type: 2, sport: sa.encap.sport, dport: sa.encap.dport });
      else expect(got.encap).toBeUndefined();
      if (sa.mark) expect(got.mark).toEqual({ value: sa.mark.value, mask: sa.mark.mask });
      if (sa.ifId) expect(got.ifId).toBe(sa.ifId);
      if (sa.selector) expect(got.selector).toMatchObject({ src: sa.selector.src, dst: sa.selector.dst, proto: 17, dport: 53, dportMask: 0xffff });
      expect(got.current).toMatchObject({ bytes: 0, packets: 0, useTime: 0 });
      expect(got.current.addTime).toBeGreaterThan(1_600_000_000);
      const dump = await client.dumpSas();
      expect(dump).toHaveLength(1);
      expect(dump[0]!.spi).toBe(sa.spi);
      // update in place, then delete
      await client.updateSa({ ...sa, lifetime: { hardAddSeconds: 999 } });
      expect((await client.getSa(id)).lifetime.hardAddSeconds).toBe(999);
      await client.deleteSa(id);
      expect(await client.dumpSas()).toEqual([]);
    });
  }

  it('ALLOCSPI larval state completed by UPDSA keeps the SPI', async () => {
    const spi = await client.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', min: 0xc0de0001, max: 0xc0de0001, mode: 'tunnel', reqid: 21 });
    await client.updateSa({ src: '192.0.2.2', dst: '192.0.2.1', spi, mode: 'tunnel', reqid: 21, aead: { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(20, 9) }, replayWindow: 64 });
    const got = await client.getSa({ dst: '192.0.2.1', spi });
    expect(got.aead?.name).toBe('rfc4106(gcm(aes))');
    expect(got.replayWindow).toBe(64);
    expect(await client.dumpSas()).toHaveLength(1);
    await client.flushSas('esp');
  });
});
