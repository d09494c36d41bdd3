// The test PKI of scripts/gen-test-certs.sh (a root CA, an intermediate, gateway certificates with
// P-256, P-384, Ed25519 and RSA-PSS keys, a rogue CA) built in a temporary directory for the tests of
// one file, and engine configurations that authenticate with it (RFC 7427 signatures).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import type { EngineConfig } from '../../src/ike/config.js';

const GEN_TEST_CERTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/gen-test-certs.sh');

/** A gateway of the PKI: its certificate chain (leaf first) and key, file names in the PKI directory. */
export interface PkiIdentity {
  crt: string[];
  key: string;
  id: string;
}

export const gw1: PkiIdentity = { crt: ['gw1.crt', 'int.crt'], key: 'gw1.key', id: 'gw1.example.org' }; // P-256 via an intermediate
export const gw2: PkiIdentity = { crt: ['gw2-rsa.crt'], key: 'gw2-rsa.key', id: 'gw2.example.org' }; // RSA-PSS
export const gw3: PkiIdentity = { crt: ['gw3-ed25519.crt'], key: 'gw3-ed25519.key', id: 'gw3.example.org' }; // Ed25519 (RFC 8420)
export const gw4: PkiIdentity = { crt: ['gw4-p384.crt'], key: 'gw4-p384.key', id: 'gw4.example.org' };

export interface TestPki {
  /** False when openssl could not build the PKI (the tests using it skip). */
  available: boolean;
  dir: string;
  /** A file of the PKI as text. */
  read(file: string): string;
  /** The first connection of `cfg` authenticates as `me` by certificate and trusts `peer.ca` for `peer.id`; no PSK. */
  pubkey(cfg: EngineConfig, me: PkiIdentity, peer: { id: string; ca: string[] }): EngineConfig;
}

/**
 * Builds the PKI in a fresh temporary directory, removed after the calling file's tests. Without
 * openssl, warns `SKIPPED: <what>: ...` and returns available: false.
 */
export function testPki(name: string, what: string): TestPki {
  const dir = mkdtempSync(join(tmpdir(), `ikev2d-${name}-pki-`));
  let available = true;
  try {
    execFileSync('bash', [GEN_TEST_CERTS, dir], { stdio: 'pipe' });
  } catch (e) {
    available = false;
    console.warn(`SKIPPED: ${what}: cannot build the test PKI with openssl (${(e as Error).message})`);
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const pubkey = (cfg: EngineConfig, me: PkiIdentity, peer: { id: string; ca: string[] }): EngineConfig => {
    const c = cfg.connections[0]!;
    c.local = { ...c.local, auth: 'pubkey', id: { type: 'fqdn', value: me.id }, certChainPem: me.crt.map(read), privateKeyPem: read(me.key) };
    c.remote = { ...c.remote, auth: 'pubkey', id: { type: 'fqdn', value: peer.id }, caPem: peer.ca.map(read) };
    delete c.psk;
    return cfg;
  };
  return { available, dir, read, pubkey };
}
