import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_PROPOSAL_TEXT,
  formatProposal,
  parseProposal,
  parseProposals,
  proposalToTransforms,
  proposalsToSa,
  suiteName,
} from '../../../src/ike/proposal.js';

// IANA values written out here on purpose (RFC 7296 §3.3.2, RFC 9370, draft-ietf-ipsecme-ikev2-mlkem),
// so a wrong table in the module cannot make the test agree with itself.
const AES_CBC = 12;
const GCM8 = 18;
const GCM12 = 19;
const GCM16 = 20;
const CHACHA = 28;
const SHA1_96 = 2;
const SHA256_128 = 12;
const SHA384_192 = 13;
const SHA512_256 = 14;
const PRF_SHA1 = 2;
const PRF_SHA256 = 5;
const PRF_SHA384 = 6;
const PRF_SHA512 = 7;
const ECP256 = 19;
const ECP384 = 20;
const ECP521 = 21;
const X25519 = 31;
const X448 = 32;
const MLKEM512 = 35;
const MLKEM768 = 36;
const MLKEM1024 = 37;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseProposal: the operator examples', () => {
  it('aes256gcm16-prfsha384-x25519 (IKE)', () => {
    expect(parseProposal('aes256gcm16-prfsha384-x25519', 'ike')).toEqual({
      text: 'aes256gcm16-prfsha384-x25519',
      encr: [{ id: GCM16, keyBits: 256 }],
      integ: [],
      prf: [PRF_SHA384],
      ke: [X25519],
      addKe: [],
      esn: [],
    });
  });

  it('aes128-sha256-ecp256 implies PRF_HMAC_SHA2_256', () => {
    expect(parseProposal('aes128-sha256-ecp256', 'ike')).toEqual({
      text: 'aes128-sha256-ecp256',
      encr: [{ id: AES_CBC, keyBits: 128 }],
      integ: [SHA256_128],
      prf: [PRF_SHA256],
      ke: [ECP256],
      addKe: [],
      esn: [],
    });
  });

  it('aes256-sha384-ecp384-ke1_mlkem768 has one additional key exchange', () => {
    const p = parseProposal('aes256-sha384-ecp384-ke1_mlkem768', 'ike');
    expect(p.encr).toEqual([{ id: AES_CBC, keyBits: 256 }]);
    expect(p.integ).toEqual([SHA384_192]);
    expect(p.prf).toEqual([PRF_SHA384]);
    expect(p.ke).toEqual([ECP384]);
    expect(p.addKe).toEqual([[MLKEM768]]);
  });

  it('chacha20poly1305-prfsha256-curve25519: no key length, curve25519 alias', () => {
    const p = parseProposal('chacha20poly1305-prfsha256-curve25519', 'ike');
    expect(p.encr).toEqual([{ id: CHACHA }]);
    expect(p.encr[0]).not.toHaveProperty('keyBits');
    expect(p.ke).toEqual([X25519]);
    expect(p.prf).toEqual([PRF_SHA256]);
  });

  it('ESP aes256gcm16: no PFS, no ESN', () => {
    expect(parseProposal('aes256gcm16', 'esp')).toEqual({
      text: 'aes256gcm16',
      encr: [{ id: GCM16, keyBits: 256 }],
      integ: [],
      prf: [],
      ke: [],
      addKe: [],
      esn: [0],
    });
  });

  it('ESP aes128gcm16-x25519: the KE method is PFS', () => {
    const p = parseProposal('aes128gcm16-x25519', 'esp');
    expect(p.ke).toEqual([X25519]);
    expect(p.encr).toEqual([{ id: GCM16, keyBits: 128 }]);
  });

  it('ESP aes256-sha512-esn', () => {
    const p = parseProposal('aes256-sha512-esn', 'esp');
    expect(p.encr).toEqual([{ id: AES_CBC, keyBits: 256 }]);
    expect(p.integ).toEqual([SHA512_256]);
    expect(p.esn).toEqual([1]);
    expect(p.prf).toEqual([]);
  });

  it('ESP mlkem768 alone keeps the default AEAD ciphers', () => {
    const p = parseProposal('mlkem768', 'esp');
    expect(p.ke).toEqual([MLKEM768]);
    expect(p.encr).toEqual([{ id: GCM16, keyBits: 256 }, { id: GCM16, keyBits: 128 }, { id: CHACHA }]);
    expect(p.text).toBe('mlkem768');
  });

  it('ESP x25519-ke1_mlkem768-ke2_mlkem1024', () => {
    const p = parseProposal('x25519-ke1_mlkem768-ke2_mlkem1024', 'esp');
    expect(p.ke).toEqual([X25519]);
    expect(p.addKe).toEqual([[MLKEM768], [MLKEM1024]]);
  });

  it('ESP ...-noesn and esn-noesn keep the written order', () => {
    expect(parseProposal('aes128gcm16-noesn', 'esp').esn).toEqual([0]);
    expect(parseProposal('aes128gcm16-esn-noesn', 'esp').esn).toEqual([1, 0]);
    expect(parseProposal('aes128gcm16-noesn-esn', 'esp').esn).toEqual([0, 1]);
  });

  it('default expands to the built-in proposal but keeps its text', () => {
    const ike = parseProposal('default', 'ike');
    expect(ike.text).toBe('default');
    expect(formatProposal(ike)).toBe(DEFAULT_PROPOSAL_TEXT.ike);
    expect(ike.ke[0]).toBe(X25519);
    const esp = parseProposal('DEFAULT', 'esp');
    expect(formatProposal(esp)).toBe(DEFAULT_PROPOSAL_TEXT.esp.replace(/-noesn$/, ''));
    expect(esp.ke).toEqual([]);
    expect(esp.esn).toEqual([0]);
  });
});

describe('parseProposal: every token', () => {
  const encrCases: [string, { id: number; keyBits?: number }][] = [
    ['aes128', { id: AES_CBC, keyBits: 128 }],
    ['aes192', { id: AES_CBC, keyBits: 192 }],
    ['aes256', { id: AES_CBC, keyBits: 256 }],
    ['aes', { id: AES_CBC, keyBits: 128 }],
    ['aes128gcm16', { id: GCM16, keyBits: 128 }],
    ['aes192gcm16', { id: GCM16, keyBits: 192 }],
    ['aes256gcm16', { id: GCM16, keyBits: 256 }],
    ['aes128gcm12', { id: GCM12, keyBits: 128 }],
    ['aes256gcm12', { id: GCM12, keyBits: 256 }],
    ['aes128gcm8', { id: GCM8, keyBits: 128 }],
    ['aes256gcm8', { id: GCM8, keyBits: 256 }],
    ['aes256gcm', { id: GCM16, keyBits: 256 }],
    ['aes256gcm128', { id: GCM16, keyBits: 256 }],
    ['aes128gcm96', { id: GCM12, keyBits: 128 }],
    ['aes128gcm64', { id: GCM8, keyBits: 128 }],
    ['chacha20poly1305', { id: CHACHA }],
  ];
  for (const [token, encr] of encrCases) {
    it(`cipher ${token}`, () => {
      const aead = encr.id !== AES_CBC;
      const p = parseProposal(aead ? `${token}-prfsha256-x25519` : `${token}-sha256-x25519`, 'ike');
      expect(p.encr).toEqual([encr]);
      const e = parseProposal(aead ? token : `${token}-sha256`, 'esp');
      expect(e.encr).toEqual([encr]);
    });
  }

  const integCases: [string, number, number][] = [
    ['sha1', SHA1_96, PRF_SHA1],
    ['sha', SHA1_96, PRF_SHA1],
    ['sha256', SHA256_128, PRF_SHA256],
    ['sha2_256', SHA256_128, PRF_SHA256],
    ['sha384', SHA384_192, PRF_SHA384],
    ['sha2_384', SHA384_192, PRF_SHA384],
    ['sha512', SHA512_256, PRF_SHA512],
    ['sha2_512', SHA512_256, PRF_SHA512],
  ];
  for (const [token, integ, prf] of integCases) {
    it(`integrity ${token} (and the PRF it implies for IKE)`, () => {
      const p = parseProposal(`aes128-${token}-ecp256`, 'ike');
      expect(p.integ).toEqual([integ]);
      expect(p.prf).toEqual([prf]);
      expect(parseProposal(`aes128-${token}`, 'esp').integ).toEqual([integ]);
    });
  }

  const prfCases: [string, number][] = [
    ['prfsha1', PRF_SHA1],
    ['prfsha256', PRF_SHA256],
    ['prfsha384', PRF_SHA384],
    ['prfsha512', PRF_SHA512],
  ];
  for (const [token, prf] of prfCases) {
    it(`prf ${token} overrides the implied PRF`, () => {
      const p = parseProposal(`aes128-sha256-${token}-ecp256`, 'ike');
      expect(p.prf).toEqual([prf]);
      expect(p.integ).toEqual([SHA256_128]);
    });
  }

  const keCases: [string, number][] = [
    ['ecp256', ECP256],
    ['ecp384', ECP384],
    ['ecp521', ECP521],
    ['x25519', X25519],
    ['curve25519', X25519],
    ['x448', X448],
    ['curve448', X448],
    ['mlkem512', MLKEM512],
    ['mlkem768', MLKEM768],
    ['mlkem1024', MLKEM1024],
    ['modp2048', 14],
    ['modp3072', 15],
    ['modp4096', 16],
  ];
  for (const [token, ke] of keCases) {
    it(`key exchange ${token}, as KE and as ADDKE`, () => {
      expect(parseProposal(`aes256gcm16-prfsha256-${token}`, 'ike').ke).toEqual([ke]);
      expect(parseProposal(`aes256gcm16-${token}`, 'esp').ke).toEqual([ke]);
      const base = ke === X25519 ? 'ecp256' : 'x25519';
      expect(parseProposal(`aes256gcm16-prfsha256-${base}-ke3_${token}`, 'ike').addKe).toEqual([[], [], [ke]]);
    });
  }

  it('ke1..ke7 and keN_none', () => {
    const p = parseProposal(
      'aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke2_mlkem1024-ke3_none-ke4_mlkem512-ke5_ecp256-ke6_x448-ke7_mlkem768',
      'ike',
    );
    expect(p.addKe).toEqual([[MLKEM768, 0], [MLKEM1024], [0], [MLKEM512], [ECP256], [X448], [MLKEM768]]);
  });

  it('several tokens of a type are alternatives in the written order; duplicates collapse', () => {
    const p = parseProposal('aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256-x25519', 'ike');
    expect(p.encr).toEqual([{ id: GCM16, keyBits: 256 }, { id: GCM16, keyBits: 128 }]);
    expect(p.prf).toEqual([PRF_SHA384, PRF_SHA256]);
    expect(p.ke).toEqual([X25519, ECP256]);
  });

  it('several integrity tokens imply several PRFs, in order', () => {
    const p = parseProposal('aes256-sha384-sha256-ecp256', 'ike');
    expect(p.integ).toEqual([SHA384_192, SHA256_128]);
    expect(p.prf).toEqual([PRF_SHA384, PRF_SHA256]);
  });

  it('IKE with AEAD: a sha* token implies the PRF and no integrity transform remains', () => {
    const p = parseProposal('aes256gcm16-sha384-x25519', 'ike');
    expect(p.prf).toEqual([PRF_SHA384]);
    expect(p.integ).toEqual([]);
  });

  it('is case-insensitive and ignores surrounding blanks', () => {
    const p = parseProposal('  AES256GCM16-PRFSHA384-X25519 ', 'ike');
    expect(p.encr).toEqual([{ id: GCM16, keyBits: 256 }]);
    expect(p.ke).toEqual([X25519]);
  });
});

describe('parseProposal: errors name the token and what was expected', () => {
  const cases: [string, 'ike' | 'esp', RegExp][] = [
    ['aes257-sha256-ecp256', 'ike', /^unknown algorithm 'aes257': expected a cipher .* in proposal 'aes257-sha256-ecp256'$/],
    ['aes256gcm16-bogus', 'esp', /^unknown algorithm 'bogus': expected a cipher .*esn or noesn in proposal 'aes256gcm16-bogus'$/],
    ['aes128-sha256-modp1024', 'ike', /^unsupported algorithm 'modp1024': this MODP group is not supported .* in proposal 'aes128-sha256-modp1024'$/],
    ['3des-sha256-ecp256', 'ike', /^unsupported algorithm '3des': 3DES is not supported/],
    ['aes128-md5-ecp256', 'ike', /^unsupported algorithm 'md5'/],
    ['aes256gcm16-prfsha384', 'ike', /^no key exchange method: IKE proposals need one \(e\.g\. x25519, ecp256\) in proposal 'aes256gcm16-prfsha384'$/],
    ['aes256gcm16-x25519', 'ike', /^no PRF: an AEAD IKE proposal needs a prf token/],
    ['aes256-x25519', 'ike', /^no integrity algorithm: non-AEAD ciphers need sha256, sha384 or sha512 in proposal 'aes256-x25519'$/],
    ['aes256-prfsha256-x25519', 'ike', /^no integrity algorithm/],
    ['aes256', 'esp', /^no integrity algorithm/],
    ['sha256-x25519', 'esp', /^no encryption algorithm/],
    ['sha256-prfsha256-x25519', 'ike', /^no encryption algorithm \(expected e\.g\. aes256gcm16, aes256 or chacha20poly1305\)/],
    ['aes256gcm16-sha256', 'esp', /^AEAD cipher aes256gcm16 already authenticates; remove the integrity algorithm 'sha256' in proposal 'aes256gcm16-sha256'$/],
    ['aes256gcm16-aes256-sha256', 'esp', /^cannot mix AEAD \(aes256gcm16\) and non-AEAD \(aes256\) ciphers in one proposal; write them as separate proposals/],
    ['aes256gcm16-prfsha256', 'esp', /^'prfsha256' is a PRF, which ESP proposals do not have in proposal/],
    ['aes256gcm16-prfsha256-x25519-esn', 'ike', /^'esn' \(extended sequence numbers\) applies to ESP proposals only/],
    ['aes256gcm16-prfsha256-x25519-ke8_mlkem768', 'ike', /^invalid additional key exchange 'ke8_mlkem768': expected ke1_ \.\. ke7_/],
    ['aes256gcm16-prfsha256-x25519-ke0_mlkem768', 'ike', /^invalid additional key exchange 'ke0_mlkem768'/],
    ['aes256gcm16-prfsha256-x25519-ke1_mlkem769', 'ike', /^unknown key exchange method 'mlkem769' in 'ke1_mlkem769': expected none, x25519/],
    ['aes256gcm16-prfsha256-x25519-ke1_modp1536', 'ike', /^unsupported algorithm 'ke1_modp1536': this MODP group/],
    ['aes256gcm16-ke1_mlkem768', 'esp', /^additional key exchanges \(keN_\.\.\.\) need a key exchange method as well/],
    ['aes256gcm16-prfsha384-x25519-ke1_x25519', 'ike', /^ke1_x25519 repeats a key exchange method that an earlier round always uses; every key exchange must use a different method in proposal/],
    ['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768', 'ike', /^ke2_mlkem768 repeats a key exchange method/],
    ['aes256gcm16--x25519', 'esp', /^empty algorithm name \(stray '-'\) in proposal 'aes256gcm16--x25519'$/],
    ['aes256gcm16-none', 'esp', /^'none' is not a key exchange method/],
    ['aes256gcm16-default', 'esp', /^'default' must be the whole proposal/],
  ];
  for (const [text, kind, re] of cases) {
    it(`${kind} '${text}'`, () => {
      expect(errorOf(() => parseProposal(text, kind)).message).toMatch(re);
    });
  }

  it('empty proposal and empty list', () => {
    expect(errorOf(() => parseProposal('  ', 'ike')).message).toBe('empty IKE proposal');
    expect(errorOf(() => parseProposals([], 'esp')).message).toBe('at least one ESP proposal is required');
  });
});

describe('formatProposal: canonical round trip', () => {
  const samples: [string, 'ike' | 'esp', string][] = [
    ['aes256gcm16-prfsha384-x25519', 'ike', 'aes256gcm16-prfsha384-x25519'],
    ['aes128-sha256-ecp256', 'ike', 'aes128-sha256-prfsha256-ecp256'],
    ['aes256gcm16-sha384-x25519', 'ike', 'aes256gcm16-prfsha384-x25519'],
    ['chacha20poly1305-prfsha256-curve25519', 'ike', 'chacha20poly1305-prfsha256-x25519'],
    ['aes256-sha384-ecp384-ke1_mlkem768', 'ike', 'aes256-sha384-prfsha384-ecp384-ke1_mlkem768'],
    ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke3_mlkem1024', 'ike', 'aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none-ke3_mlkem1024'],
    ['aes256gcm16', 'esp', 'aes256gcm16'],
    ['aes256gcm16-noesn', 'esp', 'aes256gcm16'],
    ['aes256-sha512-esn', 'esp', 'aes256-sha512-esn'],
    ['aes256-sha512-noesn-esn', 'esp', 'aes256-sha512-noesn-esn'],
    ['aes128gcm16-x25519', 'esp', 'aes128gcm16-x25519'],
    ['x25519-ke1_mlkem768-ke2_mlkem1024', 'esp', 'aes256gcm16-aes128gcm16-chacha20poly1305-x25519-ke1_mlkem768-ke2_mlkem1024'],
    ['AES', 'esp', ''],
  ];
  for (const [text, kind, canonical] of samples) {
    if (canonical === '') continue;
    it(`${kind} '${text}' -> '${canonical}'`, () => {
      const p = parseProposal(text, kind);
      const s = formatProposal(p);
      expect(s).toBe(canonical);
      const again = parseProposal(s, kind);
      expect({ ...again, text: '' }).toEqual({ ...p, text: '' });
      expect(formatProposal(again)).toBe(s);
    });
  }
});

describe('proposalToTransforms / proposalsToSa', () => {
  it('IKE: ENCR with Key Length, PRF, KE, ADDKE; no INTEG for AEAD', () => {
    const p = parseProposal('aes256gcm16-aes128gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none', 'ike');
    expect(proposalToTransforms(p, 'ike')).toEqual([
      { type: 1, id: GCM16, keyLength: 256, attributes: [] },
      { type: 1, id: GCM16, keyLength: 128, attributes: [] },
      { type: 2, id: PRF_SHA384, attributes: [] },
      { type: 4, id: X25519, attributes: [] },
      { type: 6, id: MLKEM768, attributes: [] },
      { type: 6, id: 0, attributes: [] },
    ]);
  });

  it('IKE CBC: INTEG present; ChaCha20-Poly1305 has no Key Length attribute', () => {
    expect(proposalToTransforms(parseProposal('aes128-sha256-ecp256', 'ike'), 'ike')).toEqual([
      { type: 1, id: AES_CBC, keyLength: 128, attributes: [] },
      { type: 2, id: PRF_SHA256, attributes: [] },
      { type: 3, id: SHA256_128, attributes: [] },
      { type: 4, id: ECP256, attributes: [] },
    ]);
    const chacha = proposalToTransforms(parseProposal('chacha20poly1305-prfsha256-x25519', 'ike'), 'ike');
    expect(chacha[0]).toEqual({ type: 1, id: CHACHA, attributes: [] });
    expect(chacha[0]).not.toHaveProperty('keyLength');
  });

  it('ESP: ESN always present; KE only for PFS; omitKe for IKE_AUTH', () => {
    const p = parseProposal('aes128gcm16-x25519-ke2_mlkem768', 'esp');
    expect(proposalToTransforms(p, 'esp')).toEqual([
      { type: 1, id: GCM16, keyLength: 128, attributes: [] },
      { type: 4, id: X25519, attributes: [] },
      { type: 5, id: 0, attributes: [] },
      { type: 7, id: MLKEM768, attributes: [] },
    ]);
    expect(proposalToTransforms(p, 'esp', { omitKe: true })).toEqual([
      { type: 1, id: GCM16, keyLength: 128, attributes: [] },
      { type: 5, id: 0, attributes: [] },
    ]);
  });

  it('several configured proposals become proposals 1..n with the protocol id', () => {
    const list = parseProposals(['aes256gcm16', 'aes128-sha256-esn-noesn'], 'esp');
    const sa = proposalsToSa(list, 'esp');
    expect(sa.map((s) => [s.num, s.protocol])).toEqual([
      [1, 3],
      [2, 3],
    ]);
    expect(sa[1]!.transforms).toEqual([
      { type: 1, id: AES_CBC, keyLength: 128, attributes: [] },
      { type: 3, id: SHA256_128, attributes: [] },
      { type: 5, id: 1, attributes: [] },
      { type: 5, id: 0, attributes: [] },
    ]);
    expect(proposalsToSa(parseProposals(['default'], 'ike'), 'ike')[0]!.protocol).toBe(1);
  });
});

describe('suiteName', () => {
  it('IKE hybrid suite', () => {
    expect(suiteName({ encr: { id: GCM16, keyBits: 256 }, prf: PRF_SHA384, ke: X25519, addKe: [MLKEM768] })).toBe(
      'AES_GCM_16_256/PRF_HMAC_SHA2_384/X25519+ML-KEM-768',
    );
  });
  it('IKE CBC suite with a skipped (NONE) ADDKE round', () => {
    expect(
      suiteName({ encr: { id: AES_CBC, keyBits: 128 }, integ: SHA256_128, prf: PRF_SHA256, ke: ECP256, addKe: [undefined, MLKEM1024] }),
    ).toBe('AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256+ML-KEM-1024');
  });
  it('MODP names', () => {
    expect(suiteName({ encr: { id: AES_CBC, keyBits: 256 }, integ: SHA256_128, prf: PRF_SHA256, ke: 14, addKe: [] })).toBe(
      'AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048',
    );
  });
  it('ESP without and with PFS', () => {
    expect(suiteName({ encr: { id: GCM16, keyBits: 256 }, addKe: [], esn: false })).toBe('AES_GCM_16_256/ESN=no');
    expect(suiteName({ encr: { id: CHACHA }, addKe: [], esn: true, ke: X448 })).toBe('CHACHA20_POLY1305/ESN=yes/X448');
  });
});
