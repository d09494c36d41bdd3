// Configuration keys for virtual IPs (RFC 7296 §2.19): local.vips on a road warrior, pools and dns
// on a gateway; every bad value is reported as file:line: key: problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigLoadError, parseConfig, type LoadedConfig } from '../../../src/daemon/config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ikev2d-vip-config-'));
  writeFileSync(join(dir, 'rw.psk'), 'road warriors need a long secret 0123\n', { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const F = () => join(dir, 'ikev2d.yaml');
const load = (yaml: string): LoadedConfig => parseConfig(yaml, F());
function errorsOf(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigLoadError);
    return (e as Error).message.split('\n');
  }
  throw new Error('expected a ConfigLoadError');
}

const roadWarrior = (vips: string, children = '') => `connections:
  home:
    local: { addrs: [192.0.2.10], id: alice.example, vips: ${vips} }
    remote: { addrs: [192.0.2.2], id: gw.example }
    psk: file:rw.psk
    children:
      lan:
        remote_ts: [10.2.0.0/24]
        start_action: start
${children}`;

const gateway = (extra: string) => `connections:
  rw:
    local: { addrs: [192.0.2.2], id: gw.example }
    remote: { addrs: ["%any"], id: alice.example }
    psk: file:rw.psk
${extra}    children:
      lan:
        local_ts: [10.2.0.0/24]
`;

describe('local.vips (initiator)', () => {
  it('asks for the listed addresses; local_ts defaults to any address of each version', () => {
    const c = load(roadWarrior('[0.0.0.0, "::"]')).engine.connections[0]!;
    expect(c.vips).toEqual({ request: true, addresses: ['0.0.0.0', '::'] });
    expect(c.children[0]!.localTs).toEqual([
      { cidr: '0.0.0.0/0', protocol: 0, startPort: 0, endPort: 65535 },
      { cidr: '::/0', protocol: 0, startPort: 0, endPort: 65535 },
    ]);
  });

  it('a single value stands for a one-element list; an explicit local_ts is kept', () => {
    const c = load(roadWarrior('0.0.0.0', '')).engine.connections[0]!;
    expect(c.vips).toEqual({ request: true, addresses: ['0.0.0.0'] });
    const explicit = load(roadWarrior('10.99.0.9').replace('remote_ts: [10.2.0.0/24]', 'remote_ts: [10.2.0.0/24]\n        local_ts: [10.99.0.0/24]')).engine.connections[0]!;
    expect(explicit.children[0]!.localTs.map((t) => t.cidr)).toEqual(['10.99.0.0/24']);
  });

  it('bad values name file, line and key', () => {
    expect(errorsOf(roadWarrior('[0.0.0.0, any]'))).toEqual([
      `${F()}:3: connections.home.local.vips[1]: expected a virtual IP to ask for: 0.0.0.0 or "::" for any address of that IP version, or an address, got "any"`,
    ]);
    expect(errorsOf(roadWarrior('[0.0.0.0, 10.99.0.9]'))).toEqual([
      `${F()}:3: connections.home.local.vips[1]: only one virtual IP per IP version can be asked for (10.99.0.9 is the second IPv4 one)`,
    ]);
    expect(errorsOf(roadWarrior('[]'))).toEqual([`${F()}:3: connections.home.local.vips: expected virtual IPs (a value or a list), got an empty list`]);
  });

  it('remote.vips is not a key', () => {
    const yaml = roadWarrior('0.0.0.0').replace('id: gw.example }', 'id: gw.example, vips: [0.0.0.0] }');
    expect(errorsOf(yaml)[0]).toMatch(new RegExp(`:4: connections\\.home\\.remote\\.vips: unknown key`));
  });
});

describe('pools and dns (responder)', () => {
  it('hand out addresses; remote_ts defaults to the pools', () => {
    const c = load(gateway('    pools: [10.99.0.0/24, "fd00:99::/120"]\n    dns: [10.2.0.53, "2001:db8::53"]\n')).engine.connections[0]!;
    expect(c.vips).toEqual({ request: false, pool: ['10.99.0.0/24', 'fd00:99::/120'], dns: ['10.2.0.53', '2001:db8::53'] });
    expect(c.children[0]!.remoteTs.map((t) => t.cidr)).toEqual(['10.99.0.0/24', 'fd00:99::/120']);
  });

  it('ranges and single addresses are pools too', () => {
    const c = load(gateway('    pools: ["10.99.0.10-10.99.0.20", 10.99.1.7]\n')).engine.connections[0]!;
    expect(c.vips?.pool).toEqual(['10.99.0.10-10.99.0.20', '10.99.1.7']);
  });

  it('bad pools and DNS servers name file, line and key', () => {
    expect(errorsOf(gateway('    pools: [10.99.0.0/24, 10.99.0.0/33, "10.99.0.9-10.99.0.1", lan]\n'))).toEqual([
      `${F()}:6: connections.rw.pools[1]: pool "10.99.0.0/33": prefix length must be 0-32`,
      `${F()}:6: connections.rw.pools[2]: pool "10.99.0.9-10.99.0.1": the range ends before it starts`,
      `${F()}:6: connections.rw.pools[3]: pool "lan": expected a CIDR like "10.99.0.0/24", a range or an address`,
    ]);
    expect(errorsOf(gateway('    pools: 10.99.0.0/24\n    dns: [10.2.0.53, ns1.example]\n'))).toEqual([
      `${F()}:7: connections.rw.dns[1]: expected an IPv4 or IPv6 address, got "ns1.example"`,
    ]);
  });

  it('dns without pools is an error', () => {
    expect(errorsOf(gateway('    dns: [10.2.0.53]\n'))).toEqual([
      `${F()}:6: connections.rw.dns: DNS servers are sent with a virtual IP lease: add pools: [...]`,
      // Without pools there is nothing to default the peer's selectors from either.
      `${F()}:8: connections.rw.children.lan.remote_ts: expected remote traffic selectors like [10.2.0.0/24] (remote.addrs is %any)`,
    ]);
  });

  it('two connections share a pool by naming the same range; a partial overlap is an error', () => {
    const two = (poolB: string) => `connections:
  rw-a:
    local: { addrs: [192.0.2.2], id: gw.example }
    remote: { addrs: ["%any"], id: alice.example }
    psk: file:rw.psk
    pools: [10.99.0.0/24]
    children: { lan: { local_ts: [10.2.0.0/24] } }
  rw-b:
    local: { addrs: [192.0.2.2], id: gw.example }
    remote: { addrs: ["%any"], id: bob.example }
    psk: file:rw.psk
    pools: [${poolB}]
    children: { lan: { local_ts: [10.2.0.0/24] } }
`;
    expect(load(two('10.99.0.0/24')).engine.connections.map((c) => c.vips?.pool)).toEqual([['10.99.0.0/24'], ['10.99.0.0/24']]);
    // Same addresses written as a range: the same pool.
    expect(load(two('"10.99.0.1-10.99.0.254"')).engine.connections).toHaveLength(2);
    expect(errorsOf(two('10.99.0.128/25'))).toEqual([
      `${F()}:12: connections.rw-b.pools[0]: pool 10.99.0.128/25 overlaps pool 10.99.0.0/24 of connections.rw-a without being the same range; two connections share a pool only when they name the same range`,
    ]);
  });
});

describe('the older vips mapping', () => {
  it('still loads, with a warning naming the new keys', () => {
    const cfg = load(gateway('    vips: { pool: [10.99.0.0/24] }\n'));
    expect(cfg.engine.connections[0]!.vips).toEqual({ request: false, pool: ['10.99.0.0/24'] });
    expect(cfg.warnings).toEqual([
      `${F()}:6: connections.rw.vips: vips is the older form: write local.vips: [0.0.0.0] to ask for a virtual IP and pools: [...] to hand them out`,
    ]);
  });

  it('cannot be combined with the new keys', () => {
    expect(errorsOf(gateway('    vips: { pool: [10.99.0.0/24] }\n    pools: [10.98.0.0/24]\n'))).toEqual([
      `${F()}:6: connections.rw.vips: vips cannot be combined with local.vips, pools or dns; write local.vips and pools only`,
    ]);
  });
});
