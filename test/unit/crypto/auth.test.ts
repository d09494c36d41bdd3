import { createHmac, generateKeyPairSync, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  algorithmIdentifier,
  AUTH_METHOD,
  signLegacyAuth,
  verifyLegacyAuth,
  createPrf,
  encodeSignatureHashAlgorithms,
  HASH_ALG,
  intAuth,
  intAuthA,
  intAuthChunk,
  parseAlgorithmIdentifier,
  parseSignatureHashAlgorithms,
  PRF,
  pskAuth,
  selectSignatureHash,
  signAuth,
  signedOctets,
  SUPPORTED_SIGNATURE_HASHES,
  verifyAuth,
  verifyPskAuth,
} from '../../../src/ike/crypto/index.js';

const hmac = (hash: string, key: Buffer, ...data: Buffer[]) => createHmac(hash, key).update(Buffer.concat(data)).digest();

describe('signed octets and shared-key AUTH (RFC 7296 §2.15)', () => {
  const prf = createPrf(PRF.HMAC_SHA2_256);
  const realMessage = Buffer.from('IKE_SA_INIT request as sent');
  const nonceR = Buffer.alloc(32, 0x5a);
  const skPi = Buffer.alloc(32, 0x01);
  const idBody = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('gw.example.org')]);

  it('InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi body) [| IntAuth]', () => {
    const macedId = hmac('sha256', skPi, idBody);
    expect(signedOctets(realMessage, nonceR, prf, skPi, idBody)).toEqual(Buffer.concat([realMessage, nonceR, macedId]));
    const ia = Buffer.alloc(68, 3);
    expect(signedOctets(realMessage, nonceR, prf, skPi, idBody, ia)).toEqual(Buffer.concat([realMessage, nonceR, macedId, ia]));
  });

  it('AUTH = prf(prf(PSK, "Key Pad for IKEv2"), octets), 17-octet pad without NUL', () => {
    const psk = Buffer.from('correct horse battery staple');
    const octets = signedOctets(realMessage, nonceR, prf, skPi, idBody);
    const pad = Buffer.from('4b65792050616420666f7220494b457632', 'hex'); // "Key Pad for IKEv2"
    expect(pad).toHaveLength(17);
    const expected = hmac('sha256', hmac('sha256', psk, pad), octets);
    expect(pskAuth(prf, psk, octets)).toEqual(expected);
    expect(verifyPskAuth(prf, psk, octets, expected)).toBe(true);
    expect(verifyPskAuth(prf, Buffer.from('wrong'), octets, expected)).toBe(false);
    expect(verifyPskAuth(prf, psk, octets, expected.subarray(0, 31))).toBe(false);
    // SHA-512 PRF gives a 64-octet AUTH
    expect(pskAuth(createPrf(PRF.HMAC_SHA2_512), psk, octets)).toHaveLength(64);
  });
});

describe('IntAuth (RFC 9242 §3.3.2)', () => {
  const prf = createPrf(PRF.HMAC_SHA2_256);

  /** IKE header (IKE_INTERMEDIATE) + optional unprotected payload + SK/SKF header, with wire lengths for the encrypted form. */
  function message(opts: { fragment?: boolean; unprotected?: Buffer; wireBody: number }): Buffer {
    const h = Buffer.alloc(28);
    h.fill(0xab, 0, 16);
    h[17] = 0x20;
    h[18] = 43; // IKE_INTERMEDIATE
    h[19] = 0x08;
    h.writeUInt32BE(1, 20);
    const parts = [h];
    let nextField = 16;
    let off = 28;
    if (opts.unprotected) {
      h[16] = 43; // a Vendor ID payload before SK
      const u = Buffer.concat([Buffer.alloc(4), opts.unprotected]);
      u.writeUInt16BE(u.length, 2);
      parts.push(u);
      nextField = off;
      off += u.length;
    }
    const sk = Buffer.alloc(opts.fragment ? 8 : 4);
    sk[0] = 34; // first inner payload KE
    if (opts.fragment) {
      sk.writeUInt16BE(1, 4);
      sk.writeUInt16BE(3, 6);
    }
    sk.writeUInt16BE(sk.length + opts.wireBody, 2);
    const m = Buffer.concat([...parts, sk]);
    m[nextField] = opts.fragment ? 53 : 46;
    m.writeUInt32BE(m.length + opts.wireBody, 24);
    return m;
  }

  it('A has the unencrypted lengths: header Length = len(A)+len(P), SK Length = 4+len(P)', () => {
    const aad = message({ wireBody: 8 + 1200 + 1 + 16 });
    const a = intAuthA(aad, 1200);
    expect(a).toHaveLength(32);
    expect(a.readUInt32BE(24)).toBe(32 + 1200);
    expect(a.readUInt16BE(30)).toBe(4 + 1200);
    expect(a.subarray(0, 24)).toEqual(aad.subarray(0, 24));
    expect(a[16]).toBe(46);
    expect(a[28]).toBe(34);
  });

  it('a fragmented message is taken as if unfragmented (SKF -> SK, no fragment fields)', () => {
    const frag = intAuthA(message({ fragment: true, wireBody: 500 }), 1200);
    const whole = intAuthA(message({ wireBody: 1300 }), 1200);
    expect(frag).toEqual(whole);
  });

  it('unprotected payloads before SK stay in A, and the right Next Payload field is rewritten', () => {
    const vid = Buffer.from('vendor');
    const frag = intAuthA(message({ fragment: true, unprotected: vid, wireBody: 100 }), 50);
    const whole = intAuthA(message({ unprotected: vid, wireBody: 90 }), 50);
    expect(frag).toEqual(whole);
    expect(whole).toHaveLength(28 + 10 + 4);
    expect(whole[28]).toBe(46); // Vendor ID's Next Payload names SK
    expect(whole.readUInt32BE(24)).toBe(42 + 50);
  });

  it('rejects associated data that does not end with the SK/SKF header', () => {
    expect(() => intAuthA(Buffer.alloc(20), 0)).toThrow(/shorter/);
    const m = message({ wireBody: 10 });
    expect(() => intAuthA(Buffer.concat([m, Buffer.alloc(2)]), 0)).toThrow(/last part/);
  });

  it('chains IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | A | P) and IntAuth = i | r | IKE_AUTH MID', () => {
    const skPi1 = Buffer.alloc(32, 1);
    const skPi2 = Buffer.alloc(32, 2);
    const p1 = Buffer.from('inner payloads of request 1');
    const p2 = Buffer.from('inner payloads of request 2 with ML-KEM');
    const aad1 = message({ wireBody: 100 });
    const aad2 = message({ wireBody: 200 });
    const i1 = intAuthChunk(prf, skPi1, undefined, aad1, p1);
    expect(i1).toEqual(hmac('sha256', skPi1, intAuthA(aad1, p1.length), p1));
    const i2 = intAuthChunk(prf, skPi2, i1, aad2, p2);
    expect(i2).toEqual(hmac('sha256', skPi2, i1, intAuthA(aad2, p2.length), p2));
    const r = Buffer.alloc(32, 9);
    expect(intAuth(i2, r, 3)).toEqual(Buffer.concat([i2, r, Buffer.from([0, 0, 0, 3])]));
    // an empty SK payload: P omitted
    expect(intAuthChunk(prf, skPi1, undefined, aad1, Buffer.alloc(0))).toEqual(hmac('sha256', skPi1, intAuthA(aad1, 0)));
  });
});

describe('RFC 7427 digital signatures', () => {
  const octets = Buffer.from('InitiatorSignedOctets: RealMessage1 | NonceRData | MACedIDForI');
  const keys: Record<string, { privateKey: KeyObject; publicKey: KeyObject }> = {
    'ECDSA P-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    'ECDSA P-384': generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    'ECDSA P-521': generateKeyPairSync('ec', { namedCurve: 'P-521' }),
    Ed25519: generateKeyPairSync('ed25519'),
    Ed448: generateKeyPairSync('ed448'),
    RSA: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  };

  it('AlgorithmIdentifier encodings are the canonical DER (RFC 7427 Appendix A, RFC 4055, RFC 8410)', () => {
    expect(algorithmIdentifier({ scheme: 'ecdsa', hash: HASH_ALG.SHA2_256 }).toString('hex')).toBe('300a06082a8648ce3d040302');
    expect(algorithmIdentifier({ scheme: 'ecdsa', hash: HASH_ALG.SHA2_384 }).toString('hex')).toBe('300a06082a8648ce3d040303');
    expect(algorithmIdentifier({ scheme: 'ed25519', hash: HASH_ALG.IDENTITY }).toString('hex')).toBe('300506032b6570');
    expect(algorithmIdentifier({ scheme: 'ed448', hash: HASH_ALG.IDENTITY }).toString('hex')).toBe('300506032b6571');
    expect(algorithmIdentifier({ scheme: 'rsa-pkcs1', hash: HASH_ALG.SHA2_256 }).toString('hex')).toBe('300d06092a864886f70d01010b0500');
    const pss = algorithmIdentifier({ scheme: 'rsa-pss', hash: HASH_ALG.SHA2_256 });
    expect(pss).toHaveLength(0x43);
    expect(pss.toString('hex')).toBe(
      '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120',
    );
    expect(parseAlgorithmIdentifier(pss)).toEqual({ scheme: 'rsa-pss', hash: HASH_ALG.SHA2_256, saltLength: 32 });
    expect(() => algorithmIdentifier({ scheme: 'ed25519', hash: HASH_ALG.SHA2_256 })).toThrow(/Identity/);
  });

  const cases: [string, string, number, 'rsa-pss' | 'rsa-pkcs1' | undefined][] = [
    ['ECDSA P-256', 'ecdsa', HASH_ALG.SHA2_256, undefined],
    ['ECDSA P-384', 'ecdsa', HASH_ALG.SHA2_384, undefined],
    ['ECDSA P-521', 'ecdsa', HASH_ALG.SHA2_512, undefined],
    ['Ed25519', 'ed25519', HASH_ALG.IDENTITY, undefined],
    ['Ed448', 'ed448', HASH_ALG.IDENTITY, undefined],
    ['RSA', 'rsa-pss', HASH_ALG.SHA2_256, 'rsa-pss'],
    ['RSA', 'rsa-pss', HASH_ALG.SHA2_384, 'rsa-pss'],
    ['RSA', 'rsa-pss', HASH_ALG.SHA2_512, 'rsa-pss'],
    ['RSA', 'rsa-pkcs1', HASH_ALG.SHA2_256, 'rsa-pkcs1'],
  ];
  for (const [keyName, scheme, hash, rsaScheme] of cases) {
    it(`${keyName} ${scheme} hash ${hash}: sign, verify, tamper`, () => {
      const { privateKey, publicKey } = keys[keyName]!;
      const auth = signAuth(privateKey, octets, hash, rsaScheme ? { rsaScheme } : {});
      const algLen = auth[0]!;
      expect(parseAlgorithmIdentifier(auth.subarray(1, 1 + algLen))).toMatchObject({ scheme, hash });
      const ok = verifyAuth(publicKey, auth, octets);
      expect(ok).toEqual({ ok: true, algorithm: { scheme, hash } });
      // PEM public key input works too
      expect(verifyAuth(publicKey.export({ type: 'spki', format: 'pem' }), auth, octets).ok).toBe(true);
      // other octets
      const other = Buffer.from(octets);
      other[0]! ^= 1;
      expect(verifyAuth(publicKey, auth, other)).toMatchObject({ ok: false, reason: 'signature does not verify' });
      // a flipped signature octet
      const bad = Buffer.from(auth);
      bad[bad.length - 2]! ^= 0x10;
      expect(verifyAuth(publicKey, bad, octets).ok).toBe(false);
      // the hash must be one we announced
      const notAnnounced = verifyAuth(publicKey, auth, octets, { acceptedHashes: SUPPORTED_SIGNATURE_HASHES.filter((h) => h !== hash) });
      expect(notAnnounced).toMatchObject({ ok: false });
      expect((notAnnounced as { reason: string }).reason).toMatch(/not announced/);
    });
  }

  it('PEM private keys are accepted for signing', () => {
    const pem = keys['ECDSA P-256']!.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const auth = signAuth(pem, octets, HASH_ALG.SHA2_256);
    expect(verifyAuth(keys['ECDSA P-256']!.publicKey, auth, octets).ok).toBe(true);
  });

  it('refuses an algorithm that does not match the key', () => {
    const ecAuth = signAuth(keys['ECDSA P-256']!.privateKey, octets, HASH_ALG.SHA2_256);
    const r = verifyAuth(keys.RSA!.publicKey, ecAuth, octets);
    expect(r.ok).toBe(false);
    expect((r as { reason: string }).reason).toMatch(/does not match the rsa public key/);
    const edAuth = signAuth(keys.Ed25519!.privateKey, octets, HASH_ALG.IDENTITY);
    expect(verifyAuth(keys.Ed448!.publicKey, edAuth, octets).ok).toBe(false);
    // an Ed25519 signature relabelled as ECDSA
    const relabelled = Buffer.concat([Buffer.from([12]), algorithmIdentifier({ scheme: 'ecdsa', hash: HASH_ALG.SHA2_256 }), edAuth.subarray(8)]);
    expect(verifyAuth(keys.Ed25519!.publicKey, relabelled, octets).ok).toBe(false);
  });

  it('refuses malformed AUTH data without throwing', () => {
    const pub = keys['ECDSA P-256']!.publicKey;
    expect(verifyAuth(pub, Buffer.alloc(0), octets).ok).toBe(false);
    expect(verifyAuth(pub, Buffer.from([200, 1, 2, 3]), octets).ok).toBe(false);
    expect(verifyAuth(pub, Buffer.from([3, 0x30, 0x01, 0x05, 9, 9]), octets).ok).toBe(false);
    const unknownOid = Buffer.concat([Buffer.from([7]), Buffer.from('300506032b6599', 'hex'), Buffer.alloc(64)]);
    expect(verifyAuth(pub, unknownOid, octets)).toMatchObject({ ok: false });
    // ECDSA identifier with parameters is not DER-canonical
    const withParams = Buffer.from('300c06082a8648ce3d0403020500', 'hex');
    expect(() => parseAlgorithmIdentifier(withParams)).toThrow(/must not have parameters/);
  });

  it('verifies a PSS signature made with another salt length, as declared', () => {
    const { privateKey, publicKey } = keys.RSA!;
    const sig = nodeSign('sha256', octets, { key: privateKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 20 });
    const algId = Buffer.from(
      '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020114',
      'hex',
    );
    const auth = Buffer.concat([Buffer.from([algId.length]), algId, sig]);
    expect(verifyAuth(publicKey, auth, octets).ok).toBe(true);
  });

  it('SIGNATURE_HASH_ALGORITHMS encoding and hash selection', () => {
    const data = encodeSignatureHashAlgorithms();
    expect(data.toString('hex')).toBe('0002000300040005');
    expect(parseSignatureHashAlgorithms(data)).toEqual([2, 3, 4, 5]);
    expect(parseSignatureHashAlgorithms(Buffer.from([0, 2, 0]))).toBeNull();
    expect(selectSignatureHash(keys.Ed25519!.privateKey, [2, 3, 4, 5])).toBe(HASH_ALG.IDENTITY);
    expect(selectSignatureHash(keys.Ed25519!.privateKey, [2, 3, 4])).toBeUndefined();
    expect(selectSignatureHash(keys['ECDSA P-384']!.privateKey, [2, 3, 4])).toBe(HASH_ALG.SHA2_384);
    expect(selectSignatureHash(keys['ECDSA P-384']!.privateKey, [2])).toBe(HASH_ALG.SHA2_256);
    expect(selectSignatureHash(keys.RSA!.privateKey, [4, 1])).toBe(HASH_ALG.SHA2_512);
    expect(selectSignatureHash(createPublicKey(keys.RSA!.privateKey), [1])).toBeUndefined();
  });
});

describe('pre-RFC 7427 signature methods (RFC 7296 §3.8 RSA, RFC 4754 ECDSA)', () => {
  const octets = Buffer.from('ResponderSignedOctets');
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it.each([
    [AUTH_METHOD.ECDSA_SHA256_P256, p256, 64],
    [AUTH_METHOD.ECDSA_SHA384_P384, p384, 96],
    [AUTH_METHOD.ECDSA_SHA512_P521, p521, 132],
    [AUTH_METHOD.RSA_SIG, rsa, 256],
  ] as const)('method %i: fixed-size signature, verifies, detects tampering', (method, kp, size) => {
    const sig = signLegacyAuth(method, kp.privateKey, octets);
    expect(sig).toHaveLength(size);
    expect(verifyLegacyAuth(method, kp.publicKey, sig, octets)).toEqual({ ok: true });
    const bad = Buffer.from(sig);
    bad[5]! ^= 1;
    expect(verifyLegacyAuth(method, kp.publicKey, bad, octets).ok).toBe(false);
    expect(verifyLegacyAuth(method, kp.publicKey, sig, Buffer.from('other')).ok).toBe(false);
  });

  it('binds the method to the curve and key type', () => {
    expect(() => signLegacyAuth(AUTH_METHOD.ECDSA_SHA256_P256, p384.privateKey, octets)).toThrow(/prime256v1/);
    const sig = signLegacyAuth(AUTH_METHOD.ECDSA_SHA384_P384, p384.privateKey, octets);
    expect(verifyLegacyAuth(AUTH_METHOD.ECDSA_SHA256_P256, p384.publicKey, sig, octets).ok).toBe(false);
    expect(verifyLegacyAuth(AUTH_METHOD.RSA_SIG, p256.publicKey, sig, octets).ok).toBe(false);
    expect(verifyLegacyAuth(AUTH_METHOD.DIGITAL_SIGNATURE, p256.publicKey, sig, octets).ok).toBe(false);
  });
});
