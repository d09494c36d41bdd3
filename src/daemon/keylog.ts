// Key log for Wireshark (only with --keylog FILE; debugging only, the file holds live keys).
//
// IKE lines use the "ikev2_decryption_table" UAT format:
//   SPIi,SPIr,SK_ei,SK_er,"encryption alg",SK_ai,SK_ar,"integrity alg"
// ESP lines use the "esp_sa" UAT format:
//   "IPv4|IPv6","src","dst","0xSPI","encryption alg","0xkey","authentication alg","0xkey"
// Both files are plain CSV; Wireshark reads each table from its own file, so the
// writer keeps IKE lines in FILE and ESP lines in FILE with ".esp" appended.
import { appendFileSync, openSync, closeSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { EngineEvent } from '../ike/engine/actions.js';

type IkeKeylog = Extract<EngineEvent, { type: 'keylog-ike' }>;
type EspKeylog = Extract<EngineEvent, { type: 'keylog-esp' }>;

function quote(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function hex(s: string): string {
  return s.replace(/^0x/i, '').toLowerCase();
}

// The engine reports algorithms as IKEv2 transform ids (RFC 7296 §3.3.2, IANA
// "IKEv2 Parameters"); Wireshark's tables want its own names, spelt exactly as in
// epan/dissectors/packet-isakmp.c (vs_ikev2_encr_algs, vs_ikev2_auth_algs) and
// packet-esp.c (esp_encryption_type_vals, esp_authentication_type_vals).
// An algorithm Wireshark cannot handle has no row at all (a '#' comment line in
// its place, which the UAT reader skips): a wrong name would make Wireshark
// "decrypt" into garbage. Integrity algorithms Wireshark does not know but whose
// ICV length is known map to Wireshark's own "ANY n bits [no checking]" choice.

/** IKE SA encryption: (transform id, key octets without salt) -> Wireshark name. */
const IKE_ENCR: Record<number, (keyBits: number) => string | undefined> = {
  3: () => '3DES [RFC2451]',
  11: () => 'NULL [RFC2410]',
  12: (b) => aesBits(b, (n) => `AES-CBC-${n} [RFC3602]`),
  13: (b) => aesBits(b, (n) => `AES-CTR-${n} [RFC5930]`),
  14: (b) => aesBits(b, (n) => `AES-CCM-${n} with 8 octet ICV [RFC5282]`),
  15: (b) => aesBits(b, (n) => `AES-CCM-${n} with 12 octet ICV [RFC5282]`),
  16: (b) => aesBits(b, (n) => `AES-CCM-${n} with 16 octet ICV [RFC5282]`),
  18: (b) => aesBits(b, (n) => `AES-GCM-${n} with 8 octet ICV [RFC5282]`),
  19: (b) => aesBits(b, (n) => `AES-GCM-${n} with 12 octet ICV [RFC5282]`),
  20: (b) => aesBits(b, (n) => `AES-GCM-${n} with 16 octet ICV [RFC5282]`),
};

/** Octets of salt/nonce at the end of SK_e (RFC 5930 §2 CTR: 4, RFC 5282 §7.1 CCM: 3, GCM: 4). */
const IKE_ENCR_SALT: Record<number, number> = { 13: 4, 14: 3, 15: 3, 16: 3, 18: 4, 19: 4, 20: 4 };

function aesBits(bits: number, name: (n: number) => string): string | undefined {
  return bits === 128 || bits === 192 || bits === 256 ? name(bits) : undefined;
}

const IKE_INTEG: Record<number, string> = {
  0: 'NONE [RFC4306]',
  1: 'HMAC_MD5_96 [RFC2403]',
  2: 'HMAC_SHA1_96 [RFC2404]',
  6: 'HMAC_MD5_128 [RFC4595]',
  7: 'HMAC_SHA1_160 [RFC4595]',
  12: 'HMAC_SHA2_256_128 [RFC4868]',
  13: 'HMAC_SHA2_384_192 [RFC4868]',
  14: 'HMAC_SHA2_512_256 [RFC4868]',
  // known ICV length, no Wireshark implementation: ICV not checked, payload still decrypted
  5: 'ANY 96-bits of Authentication [No Checking]', // AES-XCBC-96
  8: 'ANY 96-bits of Authentication [No Checking]', // AES-CMAC-96
  9: 'ANY 128-bits of Authentication [No Checking]', // AES-128-GMAC
  10: 'ANY 128-bits of Authentication [No Checking]', // AES-192-GMAC
  11: 'ANY 128-bits of Authentication [No Checking]', // AES-256-GMAC
};

const ESP_ENCR: Record<number, string> = {
  2: 'DES-CBC [RFC2405]',
  3: 'TripleDES-CBC [RFC2451]',
  6: 'CAST5-CBC [RFC2144]',
  7: 'BLOWFISH-CBC [RFC2451]',
  11: 'NULL',
  12: 'AES-CBC [RFC3602]',
  13: 'AES-CTR [RFC3686]',
  18: 'AES-GCM with 8 octet ICV [RFC4106]',
  19: 'AES-GCM with 12 octet ICV [RFC4106]',
  20: 'AES-GCM with 16 octet ICV [RFC4106]',
  28: 'ChaCha20 with Poly1305 [RFC7634]',
  30: 'AES-GCM with IIV and 16 octet ICV [RFC4106 & RFC8750]',
  31: 'ChaCha20 with Poly1305 and IIV [RFC7634 & RFC8750]',
};

const ESP_INTEG: Record<number, string> = {
  0: 'NULL',
  1: 'HMAC-MD5-96 [RFC2403]',
  2: 'HMAC-SHA-1-96 [RFC2404]',
  12: 'HMAC-SHA-256-128 [RFC4868]',
  13: 'HMAC-SHA-384-192 [RFC4868]',
  14: 'HMAC-SHA-512-256 [RFC4868]',
  5: 'ANY 96 bit authentication [no checking]', // AES-XCBC-96
  6: 'ANY 128 bit authentication [no checking]', // HMAC-MD5-128
  8: 'ANY 96 bit authentication [no checking]', // AES-CMAC-96
  9: 'ANY 128 bit authentication [no checking]', // AES-128-GMAC
  10: 'ANY 128 bit authentication [no checking]',
  11: 'ANY 128 bit authentication [no checking]',
};

/** A transform id as the engine reports it ("12"), or undefined for anything else. */
function transformId(s: string): number | undefined {
  if (/^(NONE|NULL)$/i.test(s)) return 0;
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/** Wireshark's IKEv2 decryption table name for an ENCR transform id and SK_ei (hex, salt included). */
export function wiresharkIkeEncr(encr: string, skEiHex: string): string | undefined {
  const id = transformId(encr);
  if (id === undefined) return encr; // already a Wireshark name
  const keyBits = (hex(skEiHex).length / 2 - (IKE_ENCR_SALT[id] ?? 0)) * 8;
  return IKE_ENCR[id]?.(keyBits);
}

/** Wireshark's IKEv2 decryption table name for an INTEG transform id ("NONE" or "0" for AEAD). */
export function wiresharkIkeInteg(integ: string): string | undefined {
  const id = transformId(integ);
  return id === undefined ? integ : IKE_INTEG[id];
}

/** Wireshark's ESP SA table name for an ENCR transform id. */
export function wiresharkEspEncr(encr: string): string | undefined {
  const id = transformId(encr);
  return id === undefined ? encr : ESP_ENCR[id];
}

/** Wireshark's ESP SA table name for an INTEG transform id ("NONE" or "0" for AEAD). */
export function wiresharkEspInteg(integ: string): string | undefined {
  const id = transformId(integ);
  return id === undefined ? integ : ESP_INTEG[id];
}

/** One line of Wireshark's IKEv2 decryption table (a comment line if Wireshark cannot decrypt the SA). */
export function formatIkeKeylog(e: IkeKeylog): string {
  const spiI = hex(e.spiI).padStart(16, '0');
  const spiR = hex(e.spiR).padStart(16, '0');
  const encr = wiresharkIkeEncr(e.encr, e.skEi);
  const integ = wiresharkIkeInteg(e.integ);
  if (encr === undefined || integ === undefined) {
    return `# ${spiI},${spiR}: Wireshark cannot decrypt this IKE SA (ENCR ${e.encr}, INTEG ${e.integ})`;
  }
  return [spiI, spiR, hex(e.skEi), hex(e.skEr), quote(encr), hex(e.skAi), hex(e.skAr), quote(integ)].join(',');
}

/** One line of Wireshark's ESP SA table (a comment line if Wireshark cannot decrypt the SA). */
export function formatEspKeylog(e: EspKeylog): string {
  const proto = isIPv6(e.src) ? 'IPv6' : 'IPv4';
  const spi = /^0x/i.test(e.spi) ? e.spi.toLowerCase() : `0x${(Number(e.spi) >>> 0).toString(16).padStart(8, '0')}`;
  const key = (k: string) => (k ? `0x${hex(k)}` : '');
  const encr = wiresharkEspEncr(e.encr);
  const integ = wiresharkEspInteg(e.integ);
  if (encr === undefined || integ === undefined) {
    return `# ${e.src} -> ${e.dst} SPI ${spi}: Wireshark cannot decrypt this ESP SA (ENCR ${e.encr}, INTEG ${e.integ})`;
  }
  return [quote(proto), quote(e.src), quote(e.dst), quote(spi), quote(encr), quote(key(e.encKey)), quote(integ), quote(key(e.integKey))].join(',');
}

export class KeylogWriter {
  readonly espFile: string;

  constructor(readonly file: string) {
    this.espFile = `${file}.esp`;
    // create both with 0600 up front: they will hold keys
    for (const f of [this.file, this.espFile]) closeSync(openSync(f, 'a', 0o600));
  }

  /** Writes keylog events; ignores every other event. Returns whether it wrote. */
  write(e: EngineEvent): boolean {
    if (e.type === 'keylog-ike') appendFileSync(this.file, formatIkeKeylog(e) + '\n', { mode: 0o600 });
    else if (e.type === 'keylog-esp') appendFileSync(this.espFile, formatEspKeylog(e) + '\n', { mode: 0o600 });
    else return false;
    return true;
  }
}
