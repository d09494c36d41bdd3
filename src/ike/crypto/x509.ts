// X.509 certificate chain validation for IKEv2 peers (RFC 7296 §3.6, §2.15; RFC 5280 path checks as far
// as node:crypto's X509Certificate exposes them).
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import type { IdentityConfig } from '../config.js';
import { readChildren, readTlv, TAG } from './der.js';
import { dnEqual, parseDnDer, parseDnText, parseIdentity, type IdData } from './id.js';

export type CertInput = Buffer | string | X509Certificate;

export type CertErrorReason =
  | 'malformed'
  | 'empty-chain'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-signature'
  | 'issuer-not-ca'
  | 'untrusted'
  | 'chain-too-long'
  | 'identity-mismatch';

export type CertValidation =
  | { ok: true; leaf: X509Certificate; publicKey: KeyObject; path: X509Certificate[] }
  | { ok: false; reason: CertErrorReason; message: string };

const MAX_PATH = 8;

/** All DER certificates in PEM text (any number of CERTIFICATE blocks). */
export function pemToDer(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

/** Parse certificates from DER, PEM (possibly several per string) or already-parsed objects. */
export function parseCertificates(inputs: readonly CertInput[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const c of inputs) {
    if (c instanceof X509Certificate) out.push(c);
    else if (typeof c === 'string') {
      const ders = pemToDer(c);
      if (!ders.length) throw new Error('no PEM CERTIFICATE block found');
      for (const d of ders) out.push(new X509Certificate(d));
    } else out.push(new X509Certificate(c));
  }
  return out;
}

/** The DER-encoded subject Name of a certificate (TBSCertificate.subject, RFC 5280 §4.1). */
export function certSubjectDer(cert: X509Certificate): Buffer {
  const top = readTlv(cert.raw);
  const [tbs] = readChildren(top.content);
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new Error('certificate without TBSCertificate');
  const fields = readChildren(tbs.content);
  // version [0] is optional; then serial, signature, issuer, validity, subject
  const start = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[start + 4];
  if (!subject || subject.tag !== TAG.SEQUENCE) throw new Error('certificate without subject');
  return Buffer.from(subject.raw);
}

function validity(cert: X509Certificate, now: number, role: string): CertValidation | undefined {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (Number.isNaN(from) || Number.isNaN(to)) return { ok: false, reason: 'malformed', message: `${role} certificate has unreadable validity dates` };
  if (now < from) return { ok: false, reason: 'not-yet-valid', message: `${role} certificate "${cert.subject.replace(/\n/g, ', ')}" is not valid before ${cert.validFrom}` };
  if (now > to) return { ok: false, reason: 'expired', message: `${role} certificate "${cert.subject.replace(/\n/g, ', ')}" expired ${cert.validTo}` };
  return undefined;
}

function identityOk(leaf: X509Certificate, expected: IdentityConfig): { ok: true } | { ok: false; message: string } {
  switch (expected.type) {
    case 'fqdn':
      // IKE identities are matched against subjectAltName dNSName exactly (no CN fallback, no wildcards).
      return leaf.checkHost(expected.value, { subject: 'never', wildcards: false }) !== undefined
        ? { ok: true }
        : { ok: false, message: `certificate has no subjectAltName DNS entry ${expected.value}` };
    case 'rfc822':
      return leaf.checkEmail(expected.value, { subject: 'never' }) !== undefined
        ? { ok: true }
        : { ok: false, message: `certificate has no subjectAltName email ${expected.value}` };
    case 'ipv4':
    case 'ipv6':
      return leaf.checkIP(expected.value) !== undefined ? { ok: true } : { ok: false, message: `certificate has no subjectAltName IP ${expected.value}` };
    case 'dn': {
      let same = false;
      try {
        same = dnEqual(parseDnDer(certSubjectDer(leaf)), parseDnText(expected.value));
      } catch {
        same = false;
      }
      return same ? { ok: true } : { ok: false, message: `certificate subject "${leaf.subject.replace(/\n/g, ', ')}" is not ${expected.value}` };
    }
    case 'keyid':
      return { ok: false, message: 'a KEY_ID identity cannot be bound to a certificate' };
  }
}

/**
 * Validate a peer's certificate chain (leaf first; intermediates in any order) against configured trust
 * anchors: each certificate is signed by the next issuer up to an anchor, every certificate (anchor
 * included) is inside its validity period at `now`, issuers are CAs (basicConstraints cA), and the leaf
 * carries `expectedId` (FQDN/RFC822/IP against subjectAltName, DN against the subject).
 * Not checked: name constraints, policy, pathLen, revocation (documented limits).
 */
export function validateCertChain(input: {
  chain: readonly CertInput[];
  trustAnchors: readonly CertInput[];
  now: Date | number;
  expectedId?: IdentityConfig | IdData;
}): CertValidation {
  const now = typeof input.now === 'number' ? input.now : input.now.getTime();
  let chain: X509Certificate[];
  let anchors: X509Certificate[];
  try {
    chain = parseCertificates(input.chain);
  } catch (e) {
    return { ok: false, reason: 'malformed', message: `peer certificate: ${(e as Error).message}` };
  }
  try {
    anchors = parseCertificates(input.trustAnchors);
  } catch (e) {
    return { ok: false, reason: 'malformed', message: `trust anchor: ${(e as Error).message}` };
  }
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: 'empty-chain', message: 'no peer certificate' };

  const leafValidity = validity(leaf, now, 'peer');
  if (leafValidity) return leafValidity;

  const path: X509Certificate[] = [leaf];
  let current = leaf;
  const unused = chain.slice(1);
  let signatureFailure: string | undefined;
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_PATH) return { ok: false, reason: 'chain-too-long', message: `no trust anchor within ${MAX_PATH} certificates` };
    // A configured anchor that issued (or is) the current certificate ends the path.
    const pinned = anchors.find((a) => a.fingerprint256 === current.fingerprint256);
    if (pinned) break;
    const anchor = anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
    if (anchor) {
      if (!anchor.ca) return { ok: false, reason: 'issuer-not-ca', message: `trust anchor "${anchor.subject.replace(/\n/g, ', ')}" is not a CA` };
      const v = validity(anchor, now, 'CA');
      if (v) return v;
      path.push(anchor);
      break;
    }
    const issuers = unused.filter((c) => current.checkIssued(c));
    const issuer = issuers.find((c) => current.verify(c.publicKey));
    if (!issuer) {
      if (issuers.length || anchors.some((a) => current.checkIssued(a))) signatureFailure = `signature of "${current.subject.replace(/\n/g, ', ')}" does not verify with its issuer's key`;
      return signatureFailure
        ? { ok: false, reason: 'bad-signature', message: signatureFailure }
        : { ok: false, reason: 'untrusted', message: `"${current.issuer.replace(/\n/g, ', ')}" is not a configured CA and no intermediate links to one` };
    }
    if (!issuer.ca) return { ok: false, reason: 'issuer-not-ca', message: `issuer "${issuer.subject.replace(/\n/g, ', ')}" is not a CA (basicConstraints)` };
    const v = validity(issuer, now, 'intermediate');
    if (v) return v;
    path.push(issuer);
    unused.splice(unused.indexOf(issuer), 1);
    current = issuer;
  }

  if (input.expectedId) {
    let expected: IdentityConfig;
    if ('data' in input.expectedId) {
      const parsed = parseIdentity(input.expectedId);
      if (!parsed.ok) return { ok: false, reason: 'identity-mismatch', message: `peer identity: ${parsed.reason}` };
      expected = parsed.identity;
    } else expected = input.expectedId;
    const m = identityOk(leaf, expected);
    if (!m.ok) return { ok: false, reason: 'identity-mismatch', message: m.message };
  }
  return { ok: true, leaf, publicKey: leaf.publicKey, path };
}

/**
 * Certification Authority entry of a CERTREQ payload (RFC 7296 §3.7): SHA-1 of the CA's
 * SubjectPublicKeyInfo (20 octets).
 */
export function caKeyHash(cert: CertInput): Buffer {
  const [c] = parseCertificates([cert]);
  const spki = c!.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spki).digest();
}

/** CERTREQ Certification Authority data for our trust anchors: their SHA-1 key hashes concatenated. */
export function certReqData(trustAnchors: readonly CertInput[]): Buffer {
  return Buffer.concat(trustAnchors.map(caKeyHash));
}

/** Split received CERTREQ Certification Authority data into 20-octet hashes; null if the length is not a multiple of 20. */
export function parseCertReqData(data: Buffer): Buffer[] | null {
  if (data.length % 20 !== 0) return null;
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += 20) out.push(Buffer.from(data.subarray(i, i + 20)));
  return out;
}
