import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatEspKeylog, formatIkeKeylog, KeylogWriter } from '../../../src/daemon/keylog.js';

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
