import { describe, expect, it } from 'vitest';
import { addressToBigInt, bigIntToAddress, parsePrefix, portRangeToMasks, rangeToPrefixes } from '../../../src/kernel/address.js';

describe('selector address helpers', () => {
  it('parses prefixes and rejects malformed ones naming the field', () => {
    expect(parsePrefix('10.1.0.0/16', 'f')).toEqual({ address: '10.1.0.0', prefix: 16, version: 4 });
    expect(parsePrefix('2001:db8::1', 'f')).toEqual({ address: '2001:db8::1', prefix: 128, version: 6 });
    expect(() => parsePrefix('10.1.0.0/33', 'sel.src')).toThrow(/sel\.src: prefix length '33'/);
    expect(() => parsePrefix('10.1.0/8', 'sel.src')).toThrow(/sel\.src: '10\.1\.0' is not/);
    expect(() => parsePrefix('2001:db8::/129', 'x')).toThrow(TypeError);
    expect(() => parsePrefix('1.2.3.4/a', 'x')).toThrow(TypeError);
  });

  it('round-trips addresses through bigint', () => {
    for (const a of ['0.0.0.0', '192.0.2.255', '255.255.255.255']) expect(bigIntToAddress(addressToBigInt(a), 4)).toBe(a);
    for (const a of ['::', '::1', '2001:db8::1', '2001:db8:0:1:2:3:4:5', 'fe80::1:0:0:1']) expect(bigIntToAddress(addressToBigInt(a), 6)).toBe(a);
    expect(addressToBigInt('::ffff:1.2.3.4')).toBe(0xffff01020304n);
  });

  it('splits ranges into exact prefixes', () => {
    expect(rangeToPrefixes('0.0.0.0', '255.255.255.255')).toEqual([{ address: '0.0.0.0', prefix: 0 }]);
    expect(rangeToPrefixes('10.0.0.0', '10.0.0.255')).toEqual([{ address: '10.0.0.0', prefix: 24 }]);
    expect(rangeToPrefixes('10.0.0.1', '10.0.0.6')).toEqual([
      { address: '10.0.0.1', prefix: 32 },
      { address: '10.0.0.2', prefix: 31 },
      { address: '10.0.0.4', prefix: 31 },
      { address: '10.0.0.6', prefix: 32 },
    ]);
    expect(rangeToPrefixes('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual([{ address: '::', prefix: 0 }]);
    expect(rangeToPrefixes('2001:db8::', '2001:db8::ffff')).toEqual([{ address: '2001:db8::', prefix: 112 }]);
    expect(() => rangeToPrefixes('10.0.0.2', '10.0.0.1')).toThrow(/empty/);
    expect(() => rangeToPrefixes('10.0.0.2', '::1')).toThrow(/mixes/);
  });

  it('splits port ranges into XFRM port/mask pairs', () => {
    expect(portRangeToMasks(0, 65535)).toEqual([{ port: 0, mask: 0 }]);
    expect(portRangeToMasks(500, 500)).toEqual([{ port: 500, mask: 0xffff }]);
    expect(portRangeToMasks(1024, 2047)).toEqual([{ port: 1024, mask: 0xfc00 }]);
    const pieces = portRangeToMasks(1000, 1100);
    const covered = new Set<number>();
    for (const p of pieces) for (let x = 0; x < 65536; x++) if ((x & p.mask) === p.port) covered.add(x);
    expect(covered.size).toBe(101);
    expect(Math.min(...covered)).toBe(1000);
    expect(Math.max(...covered)).toBe(1100);
  });
});
