// Configuration payloads for virtual IPs on the wire (RFC 7296 §3.15, §3.15.1) and the pools
// leases come from.
import { describe, expect, it } from 'vitest';
import { CfgAttributeType, CfgType, ExchangeType, PayloadType } from '../../../src/ike/codec/constants.js';
import { decodeMessage } from '../../../src/ike/codec/decode.js';
import { encodeMessage, encodePayload } from '../../../src/ike/codec/encode.js';
import { cpPayload, ikeHeader } from '../../../src/ike/codec/helpers.js';
import type { Payload } from '../../../src/ike/codec/types.js';
import { AddressPool, AddressPools, parsePoolRange, parseVipReply, parseVipRequest, vipReplyPayload, vipRequestPayload } from '../../../src/ike/engine/virtual-ip.js';

/** Payloads through encodeMessage and decodeMessage (an unprotected message, for the codec only). */
function roundTrip(payloads: Payload[]): Payload[] {
  const header = ikeHeader({ spiI: Buffer.alloc(8, 1), spiR: Buffer.alloc(8, 2), exchangeType: ExchangeType.IKE_AUTH, messageId: 1, originalInitiator: true, response: false });
  const d = decodeMessage(encodeMessage({ header, payloads }));
  if (!d.ok) throw new Error('did not decode');
  return d.message.payloads;
}

/** CP body after the generic payload header: CFG Type, RESERVED, attributes. */
const body = (p: ReturnType<typeof vipRequestPayload>) => encodePayload(p, 0).subarray(4);

describe('CP(CFG_REQUEST) (§3.15.1)', () => {
  it('"0.0.0.0" asks for any IPv4 address: zero-length INTERNAL_IP4_ADDRESS, then INTERNAL_IP4_DNS', () => {
    expect(body(vipRequestPayload(['0.0.0.0'])).toString('hex')).toBe(
      '01000000' + // CFG_REQUEST, RESERVED
        '00010000' + // INTERNAL_IP4_ADDRESS, length 0
        '00030000', // INTERNAL_IP4_DNS, length 0
    );
  });

  it('"::" and a specific IPv4 address: 4-octet IPv4 value, zero-length IPv6, DNS of both versions', () => {
    expect(body(vipRequestPayload(['10.99.0.9', '::'])).toString('hex')).toBe('01000000' + '000100040a630009' + '00080000' + '00030000' + '000a0000');
  });

  it('a specific IPv6 address carries the prefix-length octet (17 octets)', () => {
    const b = body(vipRequestPayload(['fd00:99::5']));
    expect(b.readUInt16BE(4)).toBe(CfgAttributeType.INTERNAL_IP6_ADDRESS);
    expect(b.readUInt16BE(6)).toBe(17);
    expect(b.subarray(8, 25).toString('hex')).toBe('fd000099000000000000000000000005' + '80');
  });

  it('round trip through the codec, and what a responder reads from it', () => {
    const [decoded] = roundTrip([vipRequestPayload(['0.0.0.0', 'fd00:99::5'])]);
    expect(decoded!.type).toBe(PayloadType.CP);
    expect(parseVipRequest([decoded!])).toEqual({ addresses: ['0.0.0.0', 'fd00:99::5'] });
  });

  it('a responder ignores attributes of a wrong length, repeats, and CPs that are not requests', () => {
    const odd = cpPayload(CfgType.CFG_REQUEST, [
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(3) },
      { type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: Buffer.alloc(16) },
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.from([10, 0, 0, 1]) },
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(0) },
    ]);
    expect(parseVipRequest([odd])).toEqual({ addresses: ['10.0.0.1'] });
    expect(parseVipRequest([cpPayload(CfgType.CFG_SET, [{ type: 1, value: Buffer.alloc(0) }])])).toBeUndefined();
    expect(parseVipRequest([])).toBeUndefined();
  });
});

describe('CP(CFG_REPLY)', () => {
  it('addresses, then the DNS servers of the versions leased', () => {
    const hex = body(vipReplyPayload(['10.99.0.1', 'fd00:99::1'], ['10.2.0.53', '2001:db8::53'])).toString('hex');
    expect(hex).toBe(
      '02000000' +
        '000100040a630001' +
        '00080011fd00009900000000000000000000000180' +
        '000300040a020035' +
        '000a001020010db8000000000000000000000053',
    );
    // An IPv6 DNS server is not sent with an IPv4-only lease.
    expect(body(vipReplyPayload(['10.99.0.1'], ['2001:db8::53'])).toString('hex')).toBe('02000000000100040a630001');
  });

  it('an initiator reads addresses and DNS servers and reports what it ignored', () => {
    const reply = cpPayload(CfgType.CFG_REPLY, [
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.from([10, 99, 0, 1]) },
      { type: CfgAttributeType.INTERNAL_IP4_NETMASK, value: Buffer.from([255, 255, 255, 0]) },
      { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(4) },
      { type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value: Buffer.concat([Buffer.from('fd000099000000000000000000000001', 'hex'), Buffer.from([64])]) },
      { type: CfgAttributeType.INTERNAL_IP4_DNS, value: Buffer.from([10, 2, 0, 53]) },
      { type: CfgAttributeType.INTERNAL_IP6_DNS, value: Buffer.alloc(5) },
    ]);
    expect(parseVipReply([reply])).toEqual({
      addresses: ['10.99.0.1', 'fd00:99::1'],
      dns: ['10.2.0.53'],
      ignored: ['INTERNAL_IP4_ADDRESS 0.0.0.0', 'INTERNAL_IP6_DNS of 5 octets'],
    });
    expect(parseVipReply([vipRequestPayload(['0.0.0.0'])])).toBeUndefined();
  });
});

describe('pools', () => {
  it('CIDR pools skip the network address (and the IPv4 broadcast address); ranges and single addresses are used whole', () => {
    expect(parsePoolRange('10.99.0.0/24')).toMatchObject({ version: 4, size: 254n, key: '10.99.0.1-10.99.0.254' });
    expect(parsePoolRange('10.99.0.77/30')).toMatchObject({ size: 2n, key: '10.99.0.77-10.99.0.78' });
    expect(parsePoolRange('10.99.0.4/31')).toMatchObject({ size: 2n, key: '10.99.0.4-10.99.0.5' });
    expect(parsePoolRange('10.99.0.7')).toMatchObject({ size: 1n, key: '10.99.0.7-10.99.0.7' });
    expect(parsePoolRange('10.99.0.10 - 10.99.0.19')).toMatchObject({ size: 10n });
    expect(parsePoolRange('fd00:99::/120')).toMatchObject({ version: 6, size: 255n, key: 'fd00:99::1-fd00:99::ff' });
    expect(() => parsePoolRange('10.99.0.9-10.99.0.1')).toThrow(/ends before it starts/);
    expect(() => parsePoolRange('10.99.0.0/33')).toThrow(/prefix length/);
    expect(() => parsePoolRange('10.99.0.1-fd00::1')).toThrow(/same IP version/);
    expect(() => parsePoolRange('pool-a')).toThrow(/expected/);
  });

  it('leases by identity: same peer same address, another peer the next one, released addresses reclaimed oldest first', () => {
    const p = new AddressPool('10.0.0.1-10.0.0.3');
    expect(p.acquire('alice', 'sa1')).toBe('10.0.0.1');
    expect(p.acquire('bob', 'sa2')).toBe('10.0.0.2');
    expect(p.acquire('alice', 'sa3')).toBe('10.0.0.1'); // a second IKE SA of alice shares it
    expect(p.release('sa1')).toEqual(['10.0.0.1']);
    expect(p.online).toEqual(['10.0.0.1', '10.0.0.2']); // sa3 still holds it
    expect(p.release('sa3')).toEqual(['10.0.0.1']);
    expect(p.acquire('carol', 'sa4')).toBe('10.0.0.3'); // fresh addresses first
    expect(p.acquire('dave', 'sa5')).toBe('10.0.0.1'); // then alice's released one
    expect(p.acquire('alice', 'sa6')).toBeUndefined(); // exhausted: everything is held
    p.release('sa2');
    expect(p.acquire('alice', 'sa6')).toBe('10.0.0.2');
    p.transfer('sa6', 'sa7');
    expect(p.release('sa6')).toEqual([]);
    expect(p.release('sa7')).toEqual(['10.0.0.2']);
  });

  it('connections naming the same range share one pool; one address per requested IP version', () => {
    const pools = new AddressPools();
    expect(pools.lease(['10.0.0.5'], { addresses: ['0.0.0.0'] }, 'alice', 'sa1')).toEqual({ addresses: ['10.0.0.5'], missing: [] });
    expect(pools.lease(['10.0.0.5-10.0.0.5'], { addresses: ['0.0.0.0', '::'] }, 'bob', 'sa2')).toEqual({ addresses: [], missing: ['0.0.0.0', '::'] });
    expect(pools.lease(['10.0.0.5', '10.0.1.0/30', 'fd00::/126'], { addresses: ['::', '0.0.0.0'] }, 'bob', 'sa2')).toEqual({ addresses: ['fd00::1', '10.0.1.1'], missing: [] });
    expect(pools.release('sa1')).toEqual(['10.0.0.5']);
  });
});

describe('hostile CP payloads', () => {
  it('random attributes never throw and only well-formed addresses come out', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const attributes = Array.from({ length: rnd(6) }, () => ({
        type: [1, 2, 3, 8, 10, 13, 14, rnd(0x8000)][rnd(8)]!,
        value: Buffer.from(Array.from({ length: [0, 1, 4, 5, 16, 17, 18][rnd(7)]! }, () => rnd(256))),
      }));
      const cfgType = 1 + rnd(4);
      const payload = cpPayload(cfgType, attributes);
      const req = parseVipRequest([payload]);
      const rep = parseVipReply([payload]);
      if (cfgType !== CfgType.CFG_REQUEST) expect(req).toBeUndefined();
      if (cfgType !== CfgType.CFG_REPLY) expect(rep).toBeUndefined();
      for (const a of [...(req?.addresses ?? []), ...(rep?.addresses ?? []), ...(rep?.dns ?? [])]) {
        expect(a).toMatch(/^(\d+\.\d+\.\d+\.\d+|[0-9a-f:]+)$/);
      }
      expect(req?.addresses.length ?? 0).toBeLessThanOrEqual(2);
    }
  });
});
