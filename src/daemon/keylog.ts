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

/** One line of Wireshark's IKEv2 decryption table. */
export function formatIkeKeylog(e: IkeKeylog): string {
  return [hex(e.spiI).padStart(16, '0'), hex(e.spiR).padStart(16, '0'), hex(e.skEi), hex(e.skEr), quote(e.encr), hex(e.skAi), hex(e.skAr), quote(e.integ)].join(',');
}

/** One line of Wireshark's ESP SA table. */
export function formatEspKeylog(e: EspKeylog): string {
  const proto = isIPv6(e.src) ? 'IPv6' : 'IPv4';
  const spi = /^0x/i.test(e.spi) ? e.spi.toLowerCase() : `0x${(Number(e.spi) >>> 0).toString(16).padStart(8, '0')}`;
  const key = (k: string) => (k ? `0x${hex(k)}` : '');
  return [quote(proto), quote(e.src), quote(e.dst), quote(spi), quote(e.encr), quote(key(e.encKey)), quote(e.integ), quote(key(e.integKey))].join(',');
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
