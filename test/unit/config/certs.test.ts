import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigLoadError, parseConfig } from '../../../src/daemon/config.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = haveOpenssl();
if (!available) console.warn('SKIPPED: certificate configuration tests need the openssl command to create test certificates');

let dir: string;
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

beforeAll(() => {
  if (!available) return;
  dir = mkdtempSync(join(tmpdir(), 'ikev2d-certs-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Test CA', '-days', '30');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'gw.key', '-out', 'gw.csr', '-subj', '/CN=gw-a.example');
  openssl('x509', '-req', '-in', 'gw.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'gw.pem', '-days', '30');
  openssl('genpkey', '-algorithm', 'ed25519', '-out', 'other.key');
  for (const k of ['ca.key', 'gw.key', 'other.key']) chmodSync(join(dir, k), 0o600);
  writeFileSync(join(dir, 'chain.pem'), readFileSync(join(dir, 'gw.pem'), 'utf8') + readFileSync(join(dir, 'ca.pem'), 'utf8'));
  writeFileSync(join(dir, 'garbage.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  writeFileSync(join(dir, 'empty.pem'), 'nothing here\n');
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const yaml = (local: string, remote: string) => `connections:
  c:
    local: { addrs: [192.0.2.1], id: gw-a.example, auth: pubkey, ${local} }
    remote: { addrs: [192.0.2.2], id: gw-b.example, auth: pubkey, ${remote} }
`;

describe.skipIf(!available)('certificate authentication', () => {
  it('loads the chain, the key and the CA', () => {
    const cfg = parseConfig(yaml('cert: chain.pem, key: gw.key', 'ca: ca.pem'), join(dir, 'ikev2d.yaml'));
    const c = cfg.engine.connections[0]!;
    expect(c.local.certChainPem).toHaveLength(2);
    expect(c.local.certChainPem![0]).toBe(readFileSync(join(dir, 'gw.pem'), 'utf8').trim() + '\n');
    expect(c.local.privateKeyPem).toContain('PRIVATE KEY');
    expect(c.remote.caPem).toEqual([readFileSync(join(dir, 'ca.pem'), 'utf8').trim() + '\n']);
    expect(c.psk).toBeUndefined();
    expect(cfg.warnings).toEqual([]);
  });

  it('the example certificate configuration is valid with real files', () => {
    const text = readFileSync(join(repo, 'configs/cert-site-a.yaml'), 'utf8')
      .replace('/etc/ikev2d/certs/gw-a.pem', join(dir, 'gw.pem'))
      .replace('/etc/ikev2d/private/gw-a.key', join(dir, 'gw.key'))
      .replace('/etc/ikev2d/cacerts/example-ca.pem', join(dir, 'ca.pem'));
    const c = parseConfig(text, 'cert.yaml').engine.connections[0]!;
    expect(c.ike.proposals.map((p) => p.text)).toEqual(['aes256gcm16-prfsha384-ecp384', 'aes256-sha384-ecp384']);
    expect(c.local.auth).toBe('pubkey');
  });

  it('reports a key that does not belong to the certificate, unreadable and malformed files', () => {
    let err: ConfigLoadError | undefined;
    try {
      parseConfig(yaml('cert: [gw.pem, missing.pem], key: other.key', 'ca: [garbage.pem, empty.pem]'), join(dir, 'ikev2d.yaml'));
    } catch (e) {
      err = e as ConfigLoadError;
    }
    expect(err).toBeInstanceOf(ConfigLoadError);
    const f = join(dir, 'ikev2d.yaml');
    expect(err!.message.split('\n')).toEqual([
      `${f}:3: connections.c.local.cert[1]: cannot read certificate file "${join(dir, 'missing.pem')}": no such file`,
      `${f}:4: connections.c.remote.ca[0]: CA certificate file "${join(dir, 'garbage.pem')}" holds a certificate that does not parse as X.509`,
      `${f}:4: connections.c.remote.ca[1]: CA certificate file "${join(dir, 'empty.pem')}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    let mismatch: Error | undefined;
    try {
      parseConfig(yaml('cert: gw.pem, key: other.key', 'ca: ca.pem'), join(dir, 'ikev2d.yaml'));
    } catch (e) {
      mismatch = e as Error;
    }
    expect(mismatch?.message).toBe(`${f}:3: connections.c.local.key: the private key does not belong to the first certificate in local.cert`);
    // Key material never appears in messages.
    expect(mismatch?.message).not.toContain('PRIVATE KEY');
  });

  it('warns when the certificate does not name the local identity', () => {
    const f = join(dir, 'ikev2d.yaml');
    const withId = (id: string) =>
      parseConfig(yaml('cert: gw.pem, key: gw.key', 'ca: ca.pem').replace('id: gw-a.example', `id: "${id}"`), f).warnings;
    expect(withId('gw-a.example')).toEqual([]);
    expect(withId('CN=gw-a.example')).toEqual([]);
    expect(withId('gw-x.example')).toEqual([
      `${f}:3: connections.c.local.id: the certificate in local.cert does not contain the identity "gw-x.example" (subject or subjectAltName); peers that check it will refuse authentication`,
    ]);
    expect(withId('CN=other')).toHaveLength(1);
    expect(withId('192.0.2.1')).toHaveLength(1);
  });

  it('a key file without a key, and a group-readable key file', () => {
    let err: Error | undefined;
    try {
      parseConfig(yaml('cert: gw.pem, key: ca.pem', 'ca: ca.pem'), join(dir, 'ikev2d.yaml'));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toBe(`${join(dir, 'ikev2d.yaml')}:3: connections.c.local.key: private key file "${join(dir, 'ca.pem')}" must hold exactly one PEM private key (found 0)`);
    chmodSync(join(dir, 'gw.key'), 0o640);
    const cfg = parseConfig(yaml('cert: gw.pem, key: gw.key', 'ca: ca.pem'), join(dir, 'ikev2d.yaml'));
    expect(cfg.warnings).toEqual([
      `${join(dir, 'ikev2d.yaml')}:3: connections.c.local.key: private key file "${join(dir, 'gw.key')}" is readable by group or others (mode 0640); chmod 600 it`,
    ]);
    chmodSync(join(dir, 'gw.key'), 0o600);
  });
});
