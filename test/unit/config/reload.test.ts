import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFingerprint, diffConfigs, parseConfig } from '../../../src/daemon/config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ikev2d-reload-'));
  writeFileSync(join(dir, 'a.psk'), 'first-pre-shared-key-0123456789\n', { mode: 0o600 });
  writeFileSync(join(dir, 'b.psk'), 'second-pre-shared-key-987654321\n', { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const conn = (name: string, opts: { psk?: string; rekey?: string; proposal?: string; ts?: string } = {}) => `  ${name}:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:${opts.psk ?? 'a.psk'}
    ike: { proposals: [${opts.proposal ?? 'aes256gcm16-prfsha384-x25519'}], rekey_time: ${opts.rekey ?? '4h'} }
    children:
      lan: { local_ts: [10.1.0.0/24], remote_ts: [${opts.ts ?? '10.2.0.0/24'}] }
`;
const load = (body: string) => parseConfig(`connections:\n${body}`, join(dir, 'ikev2d.yaml')).engine;

describe('configFingerprint', () => {
  it('is stable for the same configuration loaded twice and independent of key order', () => {
    const a = load(conn('x')).connections[0]!;
    const b = load(conn('x')).connections[0]!;
    expect(a).not.toBe(b);
    expect(configFingerprint(a)).toBe(configFingerprint(b));
    expect(configFingerprint(a)).toMatch(/^[0-9a-f]{64}$/);
    const reordered = parseConfig(
      `connections:
  x:
    children:
      lan: { remote_ts: [10.2.0.0/24], local_ts: [10.1.0.0/24] }
    ike: { rekey_time: 4h, proposals: [aes256gcm16-prfsha384-x25519] }
    psk: file:a.psk
    remote: { addrs: [192.0.2.2] }
    local: { addrs: [192.0.2.1] }
`,
      join(dir, 'ikev2d.yaml'),
    ).engine.connections[0]!;
    expect(configFingerprint(reordered)).toBe(configFingerprint(a));
  });

  it('ignores how a proposal was spelled, not what it means', () => {
    const a = load(conn('x', { proposal: 'aes256gcm16-prfsha384-x25519' })).connections[0]!;
    const b = load(conn('x', { proposal: 'AES256GCM16-sha384-curve25519' })).connections[0]!;
    expect(configFingerprint(b)).toBe(configFingerprint(a));
    const c = load(conn('x', { proposal: 'aes128gcm16-prfsha384-x25519' })).connections[0]!;
    expect(configFingerprint(c)).not.toBe(configFingerprint(a));
  });

  it('changes with every setting that matters, including the secret', () => {
    const base = configFingerprint(load(conn('x')).connections[0]!);
    expect(configFingerprint(load(conn('x', { rekey: '3h' })).connections[0]!)).not.toBe(base);
    expect(configFingerprint(load(conn('x', { ts: '10.3.0.0/24' })).connections[0]!)).not.toBe(base);
    expect(configFingerprint(load(conn('x', { psk: 'b.psk' })).connections[0]!)).not.toBe(base);
  });

  it('does not expose the secret, even as a plain hash of it', () => {
    const c = load(conn('x')).connections[0]!;
    const fp = configFingerprint(c);
    expect(fp).not.toContain(c.psk!.toString('hex'));
    // Replacing the PSK by a different one of the same length changes the fingerprint (it is covered),
    // while the fingerprint computed from a copy with the same PSK does not change.
    const copy = { ...c, psk: Buffer.from(c.psk!) };
    expect(configFingerprint(copy)).toBe(fp);
    const other = { ...c, psk: Buffer.alloc(c.psk!.length, 0x41) };
    expect(configFingerprint(other)).not.toBe(fp);
  });
});

describe('diffConfigs', () => {
  it('sorts connections into added, removed, changed (re-established), updated (SAs kept) and unchanged', () => {
    const before = load(conn('keep') + conn('edit') + conn('tune') + conn('prop') + conn('drop'));
    const after = load(conn('keep') + conn('edit', { ts: '10.3.0.0/24' }) + conn('tune', { rekey: '2h' }) + conn('prop', { proposal: 'aes128gcm16-prfsha256-ecp256' }) + conn('new'));
    const d = diffConfigs(before, after);
    expect(d.added.map((c) => c.name)).toEqual(['new']);
    expect(d.removed.map((c) => c.name)).toEqual(['drop']);
    expect(d.changed.map((c) => c.name)).toEqual(['edit']);
    expect(d.updated.map((c) => c.name)).toEqual(['tune', 'prop']);
    expect(d.updated[0]!.ike.lifetime.rekeyTime).toBe(7200);
    expect(d.unchanged.map((c) => c.name)).toEqual(['keep']);
    // A new secret is a change of authentication: re-established.
    expect(diffConfigs(load(conn('x')), load(conn('x', { psk: 'b.psk' }))).changed.map((c) => c.name)).toEqual(['x']);
  });

  it('accepts connection lists and reports nothing changed for identical input', () => {
    const a = load(conn('a') + conn('b'));
    const d = diffConfigs(a.connections, load(conn('b') + conn('a')).connections);
    expect(d.added).toEqual([]);
    expect(d.removed).toEqual([]);
    expect(d.changed).toEqual([]);
    expect(d.unchanged.map((c) => c.name).sort()).toEqual(['a', 'b']);
  });
});
