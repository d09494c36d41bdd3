import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatEspKeylog, formatIkeKeylog, KeylogWriter, wiresharkEspEncr, wiresharkEspInteg, wiresharkIkeEncr, wiresharkIkeInteg } from '../../../src/daemon/keylog.js';

// Row 6 of Wireshark's ikev2_decryption_table test template (/work/shared/vectors/wireshark-ikev2_decryption_table.csv).
const WIRESHARK_ROW =
  '191ccd371a7a1f7b,bc123d15e4af593f,9096ddd2933620e8f48122c53a3f562cb0222c1cf97ce41fcc874ea2582a89ac,6718c6b2bbef2f234eac4c13832f885d87b574afd2af0111161e99b5dc61b4d4,"AES-CBC-256 [RFC3602]",12d532c3e83c757906af548dfe1ccf223ca5507af77898454e2d55c8ace57a17,30c4ead18c93024b58a86c1e3db60f550221801026853170b4cb0248d3a95329,"HMAC_SHA2_256_128 [RFC4868]"';

describe('keylog', () => {
  it('IKE lines match Wireshark\'s ikev2_decryption_table format', () => {
    const cols = WIRESHARK_ROW.replace(/"/g, '').split(',');
    const line = formatIkeKeylog({
      type: 'keylog-ike', spiI: cols[0]!.toUpperCase(), spiR: cols[1]!, skEi: cols[2]!, skEr: cols[3]!, encr: cols[4]!,
      skAi: cols[5]!, skAr: cols[6]!, integ: cols[7]!,
    });
    expect(line).toBe(WIRESHARK_ROW);
  });

  it('AEAD IKE lines leave the integrity keys empty', () => {
    expect(formatIkeKeylog({ type: 'keylog-ike', spiI: '1', spiR: 'ab', skEi: '00', skEr: '11', encr: 'AES-GCM-256 with 16 octet ICV [RFC5282]', skAi: '', skAr: '', integ: 'NONE [RFC4306]' }))
      .toBe('0000000000000001,00000000000000ab,00,11,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"');
  });

  it('ESP lines follow Wireshark\'s esp_sa table format', () => {
    expect(formatEspKeylog({ type: 'keylog-esp', src: '192.0.2.1', dst: '192.0.2.2', spi: '3405691582', encr: 'AES-GCM with 16 octet ICV [RFC4106]', encKey: 'AABB', integ: 'NULL', integKey: '' }))
      .toBe('"IPv4","192.0.2.1","192.0.2.2","0xcafebabe","AES-GCM with 16 octet ICV [RFC4106]","0xaabb","NULL",""');
    expect(formatEspKeylog({ type: 'keylog-esp', src: '2001:db8::1', dst: '2001:db8::2', spi: '0x0000ABCD', encr: 'AES-CBC [RFC3602]', encKey: '01', integ: 'HMAC-SHA-256-128 [RFC4868]', integKey: '02' }))
      .toBe('"IPv6","2001:db8::1","2001:db8::2","0x0000abcd","AES-CBC [RFC3602]","0x01","HMAC-SHA-256-128 [RFC4868]","0x02"');
  });

  it('the engine\'s transform ids become the same row Wireshark\'s own test table holds', () => {
    const cols = WIRESHARK_ROW.replace(/"/g, '').split(',');
    // ENCR 12 (AES-CBC) with a 32-octet SK_ei, INTEG 12 (HMAC-SHA2-256-128)
    const line = formatIkeKeylog({ type: 'keylog-ike', spiI: cols[0]!, spiR: cols[1]!, skEi: cols[2]!, skEr: cols[3]!, encr: '12', skAi: cols[5]!, skAr: cols[6]!, integ: '12' });
    expect(line).toBe(WIRESHARK_ROW);
  });

  it('maps every IKE ENCR id to Wireshark\'s name, key size from SK_ei without its salt', () => {
    const key = (octets: number) => 'ab'.repeat(octets);
    const cases: Array<[string, number, string | undefined]> = [
      ['3', 24, '3DES [RFC2451]'],
      ['11', 0, 'NULL [RFC2410]'],
      ['12', 16, 'AES-CBC-128 [RFC3602]'],
      ['12', 24, 'AES-CBC-192 [RFC3602]'],
      ['12', 32, 'AES-CBC-256 [RFC3602]'],
      ['13', 20, 'AES-CTR-128 [RFC5930]'],
      ['13', 28, 'AES-CTR-192 [RFC5930]'],
      ['13', 36, 'AES-CTR-256 [RFC5930]'],
      ['14', 19, 'AES-CCM-128 with 8 octet ICV [RFC5282]'],
      ['15', 27, 'AES-CCM-192 with 12 octet ICV [RFC5282]'],
      ['16', 35, 'AES-CCM-256 with 16 octet ICV [RFC5282]'],
      ['18', 20, 'AES-GCM-128 with 8 octet ICV [RFC5282]'],
      ['19', 28, 'AES-GCM-192 with 12 octet ICV [RFC5282]'],
      ['20', 20, 'AES-GCM-128 with 16 octet ICV [RFC5282]'],
      ['20', 36, 'AES-GCM-256 with 16 octet ICV [RFC5282]'],
      // Wireshark has no IKEv2 ChaCha20-Poly1305 decryption, nor AES with odd key sizes
      ['28', 36, undefined],
      ['12', 20, undefined],
      ['23', 16, undefined],
    ];
    for (const [id, octets, name] of cases) expect([id, octets, wiresharkIkeEncr(id, key(octets))]).toEqual([id, octets, name]);
  });

  it('maps IKE INTEG ids to Wireshark\'s names; unimplemented MACs of known length to its "ANY n-bits" choice', () => {
    expect(wiresharkIkeInteg('NONE')).toBe('NONE [RFC4306]');
    expect(wiresharkIkeInteg('0')).toBe('NONE [RFC4306]');
    expect(wiresharkIkeInteg('1')).toBe('HMAC_MD5_96 [RFC2403]');
    expect(wiresharkIkeInteg('2')).toBe('HMAC_SHA1_96 [RFC2404]');
    expect(wiresharkIkeInteg('7')).toBe('HMAC_SHA1_160 [RFC4595]');
    expect(wiresharkIkeInteg('12')).toBe('HMAC_SHA2_256_128 [RFC4868]');
    expect(wiresharkIkeInteg('13')).toBe('HMAC_SHA2_384_192 [RFC4868]');
    expect(wiresharkIkeInteg('14')).toBe('HMAC_SHA2_512_256 [RFC4868]');
    expect(wiresharkIkeInteg('5')).toBe('ANY 96-bits of Authentication [No Checking]');
    expect(wiresharkIkeInteg('9')).toBe('ANY 128-bits of Authentication [No Checking]');
    expect(wiresharkIkeInteg('3')).toBeUndefined(); // DES-MAC
  });

  it('maps ESP ENCR and INTEG ids to Wireshark\'s ESP SA table names', () => {
    expect(wiresharkEspEncr('3')).toBe('TripleDES-CBC [RFC2451]');
    expect(wiresharkEspEncr('11')).toBe('NULL');
    expect(wiresharkEspEncr('12')).toBe('AES-CBC [RFC3602]');
    expect(wiresharkEspEncr('13')).toBe('AES-CTR [RFC3686]');
    expect(wiresharkEspEncr('18')).toBe('AES-GCM with 8 octet ICV [RFC4106]');
    expect(wiresharkEspEncr('19')).toBe('AES-GCM with 12 octet ICV [RFC4106]');
    expect(wiresharkEspEncr('20')).toBe('AES-GCM with 16 octet ICV [RFC4106]');
    expect(wiresharkEspEncr('28')).toBe('ChaCha20 with Poly1305 [RFC7634]');
    expect(wiresharkEspEncr('16')).toBeUndefined(); // AES-CCM: Wireshark's ESP dissector has none
    expect(wiresharkEspInteg('NONE')).toBe('NULL');
    expect(wiresharkEspInteg('1')).toBe('HMAC-MD5-96 [RFC2403]');
    expect(wiresharkEspInteg('2')).toBe('HMAC-SHA-1-96 [RFC2404]');
    expect(wiresharkEspInteg('12')).toBe('HMAC-SHA-256-128 [RFC4868]');
    expect(wiresharkEspInteg('13')).toBe('HMAC-SHA-384-192 [RFC4868]');
    expect(wiresharkEspInteg('14')).toBe('HMAC-SHA-512-256 [RFC4868]');
    expect(wiresharkEspInteg('5')).toBe('ANY 96 bit authentication [no checking]');
    expect(wiresharkEspInteg('7')).toBeUndefined(); // HMAC-SHA1-160: no 160-bit choice in the ESP table
  });

  it('engine events become complete rows; algorithms Wireshark cannot decrypt become comment lines', () => {
    expect(formatEspKeylog({ type: 'keylog-esp', src: '192.0.2.1', dst: '192.0.2.2', spi: '0xc0000001', encr: '20', encKey: 'aa'.repeat(36), integ: 'NONE', integKey: '' }))
      .toBe(`"IPv4","192.0.2.1","192.0.2.2","0xc0000001","AES-GCM with 16 octet ICV [RFC4106]","0x${'aa'.repeat(36)}","NULL",""`);
    expect(formatEspKeylog({ type: 'keylog-esp', src: '192.0.2.1', dst: '192.0.2.2', spi: '0xc0000001', encr: '12', encKey: '01', integ: '12', integKey: '02' }))
      .toBe('"IPv4","192.0.2.1","192.0.2.2","0xc0000001","AES-CBC [RFC3602]","0x01","HMAC-SHA-256-128 [RFC4868]","0x02"');
    expect(formatEspKeylog({ type: 'keylog-esp', src: '192.0.2.1', dst: '192.0.2.2', spi: '0xc0000001', encr: '16', encKey: '01', integ: 'NONE', integKey: '' }))
      .toMatch(/^# .*0xc0000001.*cannot decrypt/);
    expect(formatIkeKeylog({ type: 'keylog-ike', spiI: '01', spiR: '02', skEi: 'aa'.repeat(36), skEr: 'bb'.repeat(36), encr: '28', skAi: '', skAr: '', integ: 'NONE' }))
      .toMatch(/^# 0000000000000001,0000000000000002: .*cannot decrypt/);
  });

  it('the writer keeps IKE and ESP tables in separate 0600 files and ignores other events', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ikev2d-keylog-'));
    try {
      const w = new KeylogWriter(join(dir, 'keys.csv'));
      expect(w.write({ type: 'ike-down', ikeSaId: '1', connection: 'c', reason: 'x' })).toBe(false);
      expect(w.write({ type: 'keylog-ike', spiI: '01', spiR: '02', skEi: 'aa', skEr: 'bb', encr: 'E', skAi: '', skAr: '', integ: 'I' })).toBe(true);
      expect(w.write({ type: 'keylog-esp', src: '192.0.2.1', dst: '192.0.2.2', spi: '1', encr: 'E', encKey: 'aa', integ: 'NULL', integKey: '' })).toBe(true);
      expect(readFileSync(join(dir, 'keys.csv'), 'utf8').trim().split('\n')).toHaveLength(1);
      expect(readFileSync(join(dir, 'keys.csv.esp'), 'utf8')).toContain('"0x00000001"');
      expect(statSync(join(dir, 'keys.csv')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
