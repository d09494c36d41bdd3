import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  caKeyHash,
  certReqData,
  parseCertReqData,
  certSubjectDer,
  dnDerToText,
  dnTextToDer,
  encodeIdentity,
  HASH_ALG,
  parseCertificates,
  pemToDer,
  signAuth,
  validateCertChain,
  verifyAuth,
} from '../../../src/ike/crypto/index.js';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../../scripts/gen-test-certs.sh');

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = haveOpenssl();
if (!available) console.warn('SKIPPED: X.509 validation tests need the openssl CLI to generate test certificates');

describe.skipIf(!available)('X.509 chain validation', () => {
  let dir = '';
  const pem = (name: string) => readFileSync(join(dir, `${name}.crt`), 'utf8');
  const key = (name: string) => readFileSync(join(dir, `${name}.key`), 'utf8');
  const now = () => Date.now();
  const DAY = 86_400_000;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ikev2d-pki-'));
    execFileSync('bash', [script, dir], { stdio: 'ignore' });
  }, 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a leaf via an intermediate up to a configured root, and exposes the leaf key', () => {
    const r = validateCertChain({ chain: [pem('gw1'), pem('int')], trustAnchors: [pem('ca')], now: now(), expectedId: { type: 'fqdn', value: 'gw1.example.org' } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.path.map((c) => c.subject.split('\n').pop())).toEqual(['CN=gw1.example.org', 'CN=Test Intermediate CA', 'CN=Test Root CA']);
    // the whole AUTH path: sign with the leaf's key, verify with the validated certificate's key
    const octets = Buffer.from('signed octets');
    expect(verifyAuth(r.publicKey, signAuth(key('gw1'), octets, HASH_ALG.SHA2_256), octets).ok).toBe(true);
  });

  it('accepts DER input and intermediates in any order; the intermediate may be an anchor itself', () => {
    const [leafDer] = pemToDer(pem('gw1'));
    const [intDer] = pemToDer(pem('int'));
    expect(validateCertChain({ chain: [leafDer!, pem('other-ca'), intDer!], trustAnchors: [pem('ca')], now: now() }).ok).toBe(true);
    expect(validateCertChain({ chain: [leafDer!], trustAnchors: [pem('int')], now: now() }).ok).toBe(true);
  });

  it.each(['gw2-rsa', 'gw3-ed25519', 'gw4-p384'])('%s: chain and signature with its key type', (name) => {
    const host = `${name.slice(0, 3)}.example.org`;
    const r = validateCertChain({ chain: [pem(name)], trustAnchors: [pem('ca'), pem('other-ca')], now: now(), expectedId: { type: 'fqdn', value: host } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const hash = name.includes('ed25519') ? HASH_ALG.IDENTITY : HASH_ALG.SHA2_384;
    const octets = Buffer.from('octets');
    expect(verifyAuth(r.publicKey, signAuth(key(name), octets, hash), octets).ok).toBe(true);
  });

  it('refuses a leaf whose validity ended (expired) or has not begun', () => {
    const chain = [pem('gw1'), pem('int')];
    const expired = validateCertChain({ chain, trustAnchors: [pem('ca')], now: now() + 3 * DAY });
    expect(expired).toMatchObject({ ok: false, reason: 'expired' });
    const early = validateCertChain({ chain, trustAnchors: [pem('ca')], now: new Date(now() - 2 * DAY) });
    expect(early).toMatchObject({ ok: false, reason: 'not-yet-valid' });
    // the CA is checked too: far in the future everything has expired
    expect(validateCertChain({ chain: [pem('gw2-rsa')], trustAnchors: [pem('ca')], now: now() + 4000 * DAY })).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a chain to the wrong CA', () => {
    const r = validateCertChain({ chain: [pem('rogue')], trustAnchors: [pem('ca')], now: now(), expectedId: { type: 'fqdn', value: 'gw1.example.org' } });
    expect(r).toMatchObject({ ok: false, reason: 'untrusted' });
    // missing intermediate
    expect(validateCertChain({ chain: [pem('gw1')], trustAnchors: [pem('ca')], now: now() })).toMatchObject({ ok: false, reason: 'untrusted' });
  });

  it('refuses a certificate whose issuer is not a CA', () => {
    const r = validateCertChain({ chain: [pem('undernotca'), pem('notca')], trustAnchors: [pem('ca')], now: now() });
    expect(r).toMatchObject({ ok: false, reason: 'issuer-not-ca' });
  });

  it('refuses a certificate whose signature does not verify with its issuer', () => {
    // corrupt the leaf's signature octets (the names still link it to the root)
    const der = Buffer.from(pemToDer(pem('gw2-rsa'))[0]!);
    der[der.length - 5]! ^= 0xff;
    const r = validateCertChain({ chain: [der], trustAnchors: [pem('ca')], now: now() });
    expect(r).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('matches identities: FQDN, RFC822, IPv4, IPv6 against SAN; DN against the subject', () => {
    const base = { chain: [pem('gw1'), pem('int')], trustAnchors: [pem('ca')], now: now() };
    const ok = (expectedId: any) => validateCertChain({ ...base, expectedId }).ok;
    expect(ok({ type: 'fqdn', value: 'gw1.example.org' })).toBe(true);
    expect(ok({ type: 'fqdn', value: 'GW1.Example.Org' })).toBe(true);
    expect(ok({ type: 'rfc822', value: 'admin@example.org' })).toBe(true);
    expect(ok({ type: 'ipv4', value: '192.0.2.1' })).toBe(true);
    expect(ok({ type: 'ipv6', value: '2001:db8::1' })).toBe(true);
    expect(ok({ type: 'dn', value: 'C=CH, O=ikev2d test, CN=gw1.example.org' })).toBe(true);
    expect(ok({ type: 'dn', value: 'c=ch,o=IKEV2D TEST,cn=gw1.example.org' })).toBe(true);
    // received ID payload data form
    expect(ok(encodeIdentity({ type: 'dn', value: 'C=CH, O=ikev2d test, CN=gw1.example.org' }))).toBe(true);
    expect(ok(encodeIdentity({ type: 'ipv6', value: '2001:0db8:0:0::1' }))).toBe(true);
  });

  it('refuses identity mismatches', () => {
    const base = { chain: [pem('gw1'), pem('int')], trustAnchors: [pem('ca')], now: now() };
    for (const expectedId of [
      { type: 'fqdn', value: 'gw2.example.org' },
      { type: 'fqdn', value: 'example.org' },
      { type: 'rfc822', value: 'root@example.org' },
      { type: 'ipv4', value: '192.0.2.2' },
      { type: 'ipv6', value: '2001:db8::2' },
      { type: 'dn', value: 'C=CH, O=ikev2d test, CN=gw2.example.org' },
      { type: 'dn', value: 'O=ikev2d test, C=CH, CN=gw1.example.org' }, // RDN order matters
      { type: 'keyid', value: '0102' },
    ] as const) {
      const r = validateCertChain({ ...base, expectedId });
      expect(r, JSON.stringify(expectedId)).toMatchObject({ ok: false, reason: 'identity-mismatch' });
    }
  });

  it('reports malformed input and empty chains', () => {
    expect(validateCertChain({ chain: [], trustAnchors: [pem('ca')], now: now() })).toMatchObject({ ok: false, reason: 'empty-chain' });
    expect(validateCertChain({ chain: [Buffer.from('not a certificate')], trustAnchors: [pem('ca')], now: now() })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(validateCertChain({ chain: ['no pem here'], trustAnchors: [pem('ca')], now: now() })).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('CERTREQ authority data is the SHA-1 of each CA SubjectPublicKeyInfo (RFC 7296 §3.7)', () => {
    const spki = parseCertificates([pem('ca')])[0]!.publicKey.export({ type: 'spki', format: 'der' });
    expect(caKeyHash(pem('ca'))).toEqual(createHash('sha1').update(spki).digest());
    const data = certReqData([pem('ca'), pem('other-ca')]);
    expect(data).toHaveLength(40);
    expect(parseCertReqData(data)).toEqual([caKeyHash(pem('ca')), caKeyHash(pem('other-ca'))]);
    expect(parseCertReqData(data.subarray(0, 30))).toBeNull();
    // the issuer of a chain is found by its key hash
    const wanted = parseCertReqData(data)!;
    expect(wanted.some((h) => h.equals(caKeyHash(pem('int'))))).toBe(false);
  });

  it('extracts the DER subject as the DER_ASN1_DN identity of a certificate', () => {
    const [leaf] = parseCertificates([pem('gw1')]);
    const der = certSubjectDer(leaf!);
    expect(dnDerToText(der)).toBe('C=CH, O=ikev2d test, CN=gw1.example.org');
    // our DN writer produces the same octets as OpenSSL for the same name
    expect(dnTextToDer('C=CH, O=ikev2d test, CN=gw1.example.org')).toEqual(der);
    expect(encodeIdentity({ type: 'dn', value: 'C=CH, O=ikev2d test, CN=gw1.example.org' }).data).toEqual(der);
  });
});
