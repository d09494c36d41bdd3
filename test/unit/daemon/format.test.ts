import { describe, expect, it } from 'vitest';
import { formatListSas, formatStats, humanBytes, humanDuration, type ListedIkeSa } from '../../../src/daemon/format.js';
import { unwrapNatT, normalizeAddress, expandListen } from '../../../src/daemon/transport.js';
import { tsConfigToSpec } from '../../../src/daemon/kernel-port.js';

describe('ctl output', () => {
  it('list-sas table shows state, SPIs, suite, counters and time to rekey', () => {
    const sa: ListedIkeSa = {
      ikeSaId: '3', connection: 'site', state: 'established', initiator: true, spiI: 'a1b2c3d4e5f60718', spiR: '0102030405060708',
      local: { address: '192.0.2.1', port: 4500 }, remote: { address: '192.0.2.2', port: 4500 }, localId: 'a', remoteId: 'b',
      suite: 'AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519', natDetected: { local: true, remote: false }, optimizedRekeyNegotiated: true,
      childPfsInfoNegotiated: false, rekeyAt: 0, establishedAt: 0, rekeyInSeconds: 3725,
      children: [{
        childId: 9, name: 'lan', state: 'installed', mode: 'tunnel', spiIn: 0xc1, spiOut: 0xdeadbeef, suite: 'AES_GCM_16_256', localTs: ['10.1.0.0/24'],
        remoteTs: ['10.2.0.0/24'], rekeyAt: 0, expiresAt: 0, optimizedRekeyReady: true, rekeyInSeconds: 59,
        counters: { bytesIn: 1536, bytesOut: 100, packetsIn: 12, packetsOut: 1 },
      }],
    };
    const text = formatListSas([sa]);
    expect(text).toMatch(/^IKE SA\s+CONNECTION\s+STATE/);
    expect(text).toMatch(/3\s+site\s+established\s+initiator\s+192\.0\.2\.1\[4500\]\s+192\.0\.2\.2\[4500\]\s+a1b2c3d4e5f60718\s+0102030405060708\s+AES_GCM_16_256\/PRF_HMAC_SHA2_384\/X25519\s+1h02m/);
    expect(text).toMatch(/lan#9\s+site\s+3\s+installed\s+tunnel\s+000000c1\s+deadbeef\s+AES_GCM_16_256\s+1\.5 KiB\/100 B\s+12\/1\s+59s\s+10\.1\.0\.0\/24 === 10\.2\.0\.0\/24/);
    expect(formatListSas([])).toBe('no IKE SAs');
    expect(formatListSas([{ ...sa, children: [] }])).toMatch(/no Child SAs$/);
  });

  it('stats and units', () => {
    expect(formatStats({ ikeSas: 1, halfOpen: 0, childSas: 2, datagramsIn: 5, datagramsOut: 6, dropped: 0, retransmits: 1, rekeys: { ike: 1, child: 4, optimized: 3 }, uptimeSeconds: 61 }))
      .toMatch(/^uptime\s+1m01s\nIKE SAs\s+1\n/);
    expect(humanBytes(1023)).toBe('1023 B');
    expect(humanBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(humanDuration(null)).toBe('-');
    expect(humanDuration(0)).toBe('now');
  });
});

describe('transport helpers', () => {
  it('NAT-T: marker stripped, keepalives and ESP recognised', () => {
    expect(unwrapNatT(Buffer.from([0xff]))).toBe('keepalive');
    expect(unwrapNatT(Buffer.from([0, 0, 0]))).toBe('short');
    expect(unwrapNatT(Buffer.from([0, 0, 0, 1, 9]))).toBe('esp');
    expect(unwrapNatT(Buffer.from([0, 0, 0, 0, 9, 8]))).toEqual(Buffer.from([9, 8]));
  });

  it('addresses are normalised; listen entries expand', () => {
    expect(normalizeAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeAddress('FE80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress('2001:DB8:0:0::0:1')).toBe('2001:db8::1');
    expect(expandListen(['192.0.2.7', '2001:DB8::1'])).toEqual(['192.0.2.7', '2001:db8::1']);
    expect(expandListen(['0.0.0.0'])).toContain('127.0.0.1');
  });

  it('configured traffic selectors become address ranges for trap policies', () => {
    expect(tsConfigToSpec({ cidr: '10.1.0.77/24', protocol: 6, startPort: 80, endPort: 80 })).toEqual({ protocol: 6, startPort: 80, endPort: 80, startAddress: '10.1.0.0', endAddress: '10.1.0.255' });
    expect(tsConfigToSpec({ cidr: 'fd00:a::/64', protocol: 0, startPort: 0, endPort: 65535 })).toMatchObject({ startAddress: 'fd00:a::', endAddress: 'fd00:a::ffff:ffff:ffff:ffff' });
    expect(tsConfigToSpec({ cidr: '10.0.0.5-10.0.0.9', protocol: 0, startPort: 0, endPort: 65535 })).toMatchObject({ startAddress: '10.0.0.5', endAddress: '10.0.0.9' });
  });
});
