import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigLoadError, loadConfigFile, parseConfig, type LoadedConfig } from '../../../src/daemon/config.js';
import { parseProposal } from '../../../src/ike/proposal.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
let dir: string;
const PSK_TEXT = 'correct-horse-battery-staple-7f3a9c';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ikev2d-config-'));
  writeFileSync(join(dir, 'site.psk'), `${PSK_TEXT}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'site.psk'), 0o600);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Parse YAML text as if it were <dir>/ikev2d.yaml; returns the ConfigLoadError lines or the result. */
function load(yaml: string): LoadedConfig {
  return parseConfig(yaml, join(dir, 'ikev2d.yaml'));
}
function errorsOf(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigLoadError);
    return (e as Error).message.split('\n');
  }
  throw new Error('expected a ConfigLoadError');
}
const F = () => join(dir, 'ikev2d.yaml');

const minimal = (extra = '') => `connections:
  c1:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:site.psk
${extra}`;

describe('loading the demo configuration', () => {
  it('configs/site-a.yaml produces exactly the expected EngineConfig', () => {
    const text = readFileSync(join(repo, 'configs/site-a.yaml'), 'utf8').replace('/etc/ikev2d/secrets/site-a-b.psk', join(dir, 'site.psk'));
    const cfg = parseConfig(text, '/etc/ikev2d/ikev2d.yaml');
    expect(cfg.warnings).toEqual([]);
    expect(cfg.daemon).toEqual({
      controlSocket: '/run/ikev2d/ctl.sock',
      logLevel: 'info',
      listen: ['0.0.0.0', '::'],
      port: 500,
      nattPort: 4500,
      stateFile: '/var/lib/ikev2d/state.json',
      reqidBase: 1000,
    });
    expect(cfg.engine).toEqual({
      codePoints: { optimizedRekeySupported: 50400, optimizedRekey: 50401, childSaPfsInfoSupported: 50600 },
      cookieThreshold: 10,
      rekeyGraceTime: 10,
      initiateLimit: 10,
      connections: [
        {
          name: 'site-a-b',
          local: { auth: 'psk', addrs: ['192.0.2.1'], id: { type: 'fqdn', value: 'gw-a.example' } },
          remote: { auth: 'psk', addrs: ['192.0.2.2'], id: { type: 'fqdn', value: 'gw-b.example' } },
          psk: Buffer.from(PSK_TEXT),
          ike: {
            proposals: [
              { text: 'aes256gcm16-prfsha384-x25519', encr: [{ id: 20, keyBits: 256 }], integ: [], prf: [6], ke: [31], addKe: [], esn: [] },
            ],
            lifetime: { rekeyTime: 14400, randTime: 1440, lifeTime: 15840, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 },
            reauthTime: 0,
            dpdDelay: 30,
            dpdTimeout: 150,
            retransmit: { timeout: 4, base: 1.8, tries: 5 },
            keyingtries: 0,
            fragmentSize: 1280,
            fragmentation: true,
            forceEncap: false,
            windowSize: 1,
          },
          children: [
            {
              name: 'lan',
              localTs: [{ cidr: '10.1.0.0/24', protocol: 0, startPort: 0, endPort: 65535 }],
              remoteTs: [{ cidr: '10.2.0.0/24', protocol: 0, startPort: 0, endPort: 65535 }],
              espProposals: [{ text: 'aes256gcm16-x25519', encr: [{ id: 20, keyBits: 256 }], integ: [], prf: [], ke: [31], addKe: [], esn: [0] }],
              mode: 'tunnel',
              lifetime: { rekeyTime: 3600, randTime: 360, lifeTime: 3960, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 },
              startAction: 'start',
              closeAction: 'start',
              replayWindow: 32,
              reqid: 0,
              ifId: 0,
              mark: 0,
            },
          ],
          optimizedRekey: true,
          childPfsInfo: true,
          requirePq: false,
          passive: false,
        },
      ],
    });
  });

  it('site-b mirrors site-a', () => {
    const text = readFileSync(join(repo, 'configs/site-b.yaml'), 'utf8').replace('/etc/ikev2d/secrets/site-a-b.psk', join(dir, 'site.psk'));
    const b = parseConfig(text, 'site-b.yaml').engine.connections[0]!;
    expect(b.local.addrs).toEqual(['192.0.2.2']);
    expect(b.remote.id).toEqual({ type: 'fqdn', value: 'gw-a.example' });
    expect(b.children[0]!.localTs[0]!.cidr).toBe('10.2.0.0/24');
    expect(b.children[0]!.startAction).toBe('trap');
  });

  it('configs/pq-site-a.yaml: hybrid proposals, PPKs from a file, require_pq', () => {
    const ppkFile = join(dir, 'site.ppks');
    writeFileSync(ppkFile, `# id key\nsite-a-b-2026 0x${'ab'.repeat(32)}\nspare 0s${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    const text = readFileSync(join(repo, 'configs/pq-site-a.yaml'), 'utf8')
      .replace('/etc/ikev2d/secrets/site-a-b.psk', join(dir, 'site.psk'))
      .replaceAll('/etc/ikev2d/secrets/site-a-b.ppks', ppkFile);
    const c = parseConfig(text, 'pq.yaml').engine.connections[0]!;
    expect(c.requirePq).toBe(true);
    expect(c.ike.proposals[0]!.addKe).toEqual([[36]]);
    expect(c.children[0]!.espProposals[0]!.addKe).toEqual([[36]]);
    expect(c.ppk).toEqual({
      required: true,
      keys: [
        { id: Buffer.concat([Buffer.from([2]), Buffer.from('site-a-b-2026')]), key: Buffer.alloc(32, 0xab) },
        { id: Buffer.concat([Buffer.from([2]), Buffer.from('spare')]), key: Buffer.alloc(32, 7) },
      ],
    });
  });

  it('loadConfigFile reads from disk and resolves relative secret paths against the file', () => {
    const file = join(dir, 'ikev2d.yaml');
    writeFileSync(file, minimal());
    const cfg = loadConfigFile(file);
    expect(cfg.engine.connections[0]!.psk).toEqual(Buffer.from(PSK_TEXT));
    expect(() => loadConfigFile(join(dir, 'nope.yaml'))).toThrow(`${join(dir, 'nope.yaml')}: cannot read the configuration: no such file`);
  });
});

describe('defaults an operator expects', () => {
  it('a minimal connection', () => {
    const c = load(minimal()).engine.connections[0]!;
    expect(c.local.id).toEqual({ type: 'ipv4', value: '192.0.2.1' });
    expect(c.remote.id).toEqual({ type: 'ipv4', value: '192.0.2.2' });
    expect(c.ike.lifetime).toEqual({ rekeyTime: 14400, randTime: 1440, lifeTime: 15840, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 });
    expect(c.ike.proposals).toEqual([parseProposal('default', 'ike')]);
    expect(c.ike.dpdDelay).toBe(0);
    expect(c.ike.windowSize).toBe(1);
    expect(c.ike.fragmentSize).toBe(1280);
    expect(c.optimizedRekey).toBe(true);
    expect(c.childPfsInfo).toBe(true);
    expect(c.children).toEqual([]);
    expect(c.passive).toBe(false);
    expect(c.ppk).toBeUndefined();
  });

  it('a child without selectors or proposals', () => {
    const c = load(minimal('    children:\n      host: {}\n')).engine.connections[0]!.children[0]!;
    expect(c.localTs).toEqual([{ cidr: '192.0.2.1/32', protocol: 0, startPort: 0, endPort: 65535 }]);
    expect(c.remoteTs).toEqual([{ cidr: '192.0.2.2/32', protocol: 0, startPort: 0, endPort: 65535 }]);
    expect(c.espProposals).toEqual([parseProposal('default', 'esp')]);
    expect(c.lifetime).toEqual({ rekeyTime: 3600, randTime: 360, lifeTime: 3960, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 });
    expect(c.replayWindow).toBe(32);
    expect(c.mode).toBe('tunnel');
    expect(c.startAction).toBe('none');
    expect(c.closeAction).toBe('none');
  });

  it('explicit values: durations, sizes, booleans, ports, selectors', () => {
    const cfg = load(`daemon:
  log_level: debug
  listen: 192.0.2.1
  port: 1500
  natt_port: 14500
  reqid_base: 5000
  cookie_threshold: 0
  rekey_grace_time: 2s
  code_points: { optimized_rekey_supported: 40001, optimized_rekey: 40002, child_sa_pfs_info_supported: 40003 }
connections:
  c1:
    local: { addrs: ["2001:db8::1"], id: "fqdn:2001.example", port: 4501 }
    remote: { addrs: [2001:db8::2], id: "@#0A:1B" }
    psk: file:site.psk
    ike: { rekey_time: 1h30m, rand_time: 5m, life_time: 2h, dpd_delay: 10, dpd_timeout: 1m, window_size: 4, force_encap: on, fragmentation: no, retransmit: { timeout: 500ms, base: 2, tries: 3 } }
    optimized_rekey: no
    child_pfs_info: "false"
    passive: true
    vips: { request: yes }
    children:
      web:
        local_ts: ["2001:db8:1::/48[tcp/443]"]
        remote_ts: "2001:db8:2::1-2001:db8:2::9[udp/1000-2000]"
        mode: transport
        rekey_bytes: 1G
        rekey_packets: 1M
        life_packets: 2000000
        replay_window: 0
        reqid: 7
        if_id: 0x10
        mark: 42
        tfc_padding: 1400
`);
    expect(cfg.daemon).toMatchObject({ logLevel: 'debug', listen: ['192.0.2.1'], port: 1500, nattPort: 14500, reqidBase: 5000 });
    expect(cfg.engine.cookieThreshold).toBe(0);
    expect(cfg.engine.rekeyGraceTime).toBe(2);
    expect(cfg.engine.codePoints).toEqual({ optimizedRekeySupported: 40001, optimizedRekey: 40002, childSaPfsInfoSupported: 40003 });
    const c = cfg.engine.connections[0]!;
    expect(c.local).toEqual({ auth: 'psk', addrs: ['2001:db8::1'], id: { type: 'fqdn', value: '2001.example' }, port: 4501 });
    expect(c.remote.id).toEqual({ type: 'keyid', value: '0a1b' });
    expect(c.ike).toMatchObject({
      lifetime: { rekeyTime: 5400, randTime: 300, lifeTime: 7200 },
      dpdDelay: 10,
      dpdTimeout: 60,
      windowSize: 4,
      forceEncap: true,
      fragmentation: false,
      retransmit: { timeout: 0.5, base: 2, tries: 3 },
    });
    expect(c.optimizedRekey).toBe(false);
    expect(c.childPfsInfo).toBe(false);
    expect(c.passive).toBe(true);
    expect(c.vips).toEqual({ request: true });
    const ch = c.children[0]!;
    expect(ch.localTs).toEqual([{ cidr: '2001:db8:1::/48', protocol: 6, startPort: 443, endPort: 443 }]);
    expect(ch.remoteTs).toEqual([{ cidr: '2001:db8:2::1-2001:db8:2::9', protocol: 17, startPort: 1000, endPort: 2000 }]);
    expect(ch.mode).toBe('transport');
    expect(ch.lifetime).toMatchObject({ rekeyBytes: 1024 ** 3, lifeBytes: Math.floor(1024 ** 3 * 1.1), rekeyPackets: 1_000_000, lifePackets: 2_000_000 });
    expect(ch).toMatchObject({ replayWindow: 0, reqid: 7, ifId: 16, mark: 42, tfcPadding: 1400 });
  });

  it('YAML anchors and merge keys share settings between connections', () => {
    const cfg = load(`x-common: &common
  remote: { addrs: [192.0.2.2] }
  psk: file:site.psk
  ike: { rekey_time: 2h }
connections:
  a:
    <<: *common
    local: { addrs: [192.0.2.1] }
  b:
    <<: *common
    local: { addrs: [192.0.2.10] }
`);
    const [a, b] = cfg.engine.connections;
    expect(a!.remote.addrs).toEqual(['192.0.2.2']);
    expect(b!.remote.addrs).toEqual(['192.0.2.2']);
    expect(a!.ike.lifetime.rekeyTime).toBe(7200);
    expect(b!.ike.lifetime.rekeyTime).toBe(7200);
    expect(b!.local.addrs).toEqual(['192.0.2.10']);
    expect(b!.psk).toEqual(Buffer.from(PSK_TEXT));
    // Other unknown top-level keys are still errors.
    expect(errorsOf('conections: {}\n')).toEqual([`${F()}:1: conections: unknown key; did you mean "connections"?`]);
  });

  it('a key without a value is the same as no key', () => {
    const c = load(minimal('    children:\n    ike:\n')).engine.connections[0]!;
    expect(c.children).toEqual([]);
    expect(c.ike.lifetime.rekeyTime).toBe(14400);
    expect(load('daemon:\nconnections:\n').engine.connections).toEqual([]);
    expect(errorsOf(minimal().replace('psk: file:site.psk', 'psk:'))).toEqual([
      `${F()}:5: connections.c1.psk: expected psk: "file:/path/to/secret" because local.auth is psk`,
    ]);
  });

  it('short lifetimes for tests keep their defaults consistent', () => {
    const c = load(minimal('    ike: { rekey_time: 2s }\n    children:\n      t: { rekey_time: 1s }\n')).engine.connections[0]!;
    expect(c.ike.lifetime).toMatchObject({ rekeyTime: 2, randTime: 0.2, lifeTime: 2.2 });
    expect(c.children[0]!.lifetime).toMatchObject({ rekeyTime: 1, randTime: 0.1, lifeTime: 1.1 });
  });

  it('an empty file is a daemon without connections', () => {
    const cfg = load('');
    expect(cfg.engine.connections).toEqual([]);
    expect(cfg.daemon.controlSocket).toBe('/run/ikev2d/ctl.sock');
  });
});

describe('errors name file:line: key: expectation', () => {
  it('a bad duration', () => {
    const errs = errorsOf(`connections:
  site-a-b:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:site.psk
    ike:
      rekey_time: 4 hours
`);
    expect(errs).toEqual([`${F()}:7: connections.site-a-b.ike.rekey_time: expected a duration like "4h", "30s", "1d" or a number of seconds, got "4 hours"`]);
  });

  it('unknown keys, with "did you mean" when close', () => {
    const errs = errorsOf(`connections:
  c1:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:site.psk
    ike:
      rekey-time: 4h
    childen: {}
    frobnicate: 1
`);
    expect(errs).toEqual([
      `${F()}:7: connections.c1.ike.rekey-time: unknown key; did you mean "rekey_time"?`,
      `${F()}:8: connections.c1.childen: unknown key; did you mean "children"?`,
      expect.stringMatching(new RegExp(`^${escape(F())}:9: connections\\.c1\\.frobnicate: unknown key; expected one of local, remote, psk, ike, children, `)),
    ]);
  });

  it('a bad proposal names the token, in the list position', () => {
    const errs = errorsOf(minimal(`    ike:
      proposals:
        - aes256gcm16-prfsha384-x25519
        - aes257-sha256-ecp256
`));
    expect(errs).toHaveLength(1);
    const two = errorsOf(minimal(`    ike:
      proposals:
        - aes256gcm16-prfsha384
        - aes256gcm16-prfsha384-x25519
        - aes257-sha256-ecp256
`));
    expect(two).toEqual([
      `${F()}:8: connections.c1.ike.proposals[0]: no key exchange method: IKE proposals need one (e.g. x25519, ecp256) in proposal 'aes256gcm16-prfsha384'`,
      expect.stringMatching(new RegExp(`^${escape(F())}:10: connections\\.c1\\.ike\\.proposals\\[2\\]: unknown algorithm 'aes257'`)),
    ]);
    expect(errs[0]).toMatch(
      new RegExp(`^${escape(F())}:9: connections\\.c1\\.ike\\.proposals\\[1\\]: unknown algorithm 'aes257': expected .* in proposal 'aes257-sha256-ecp256'$`),
    );
  });

  it('type errors: booleans, enums, integers, addresses, selectors, identities', () => {
    const errs = errorsOf(`connections:
  c1:
    local: { addrs: [192.0.2.300], id: "dn:nothing" }
    remote: { addrs: 192.0.2.2 }
    psk: file:site.psk
    optimized_rekey: maybe
    children:
      lan:
        mode: tunel
        replay_window: -1
        local_ts: [10.1.0.0/33]
        remote_ts: ["10.2.0.0/24[tcp/99999]"]
        tfc_padding: 70000
`);
    expect(errs).toEqual([
      `${F()}:3: connections.c1.local.addrs[0]: expected an IPv4 or IPv6 address, got "192.0.2.300"`,
      `${F()}:3: connections.c1.local.id: "nothing" is not a distinguished name like "C=CH, O=example, CN=gw"`,
      `${F()}:6: connections.c1.optimized_rekey: expected yes or no, got "maybe"`,
      `${F()}:9: connections.c1.children.lan.mode: expected one of tunnel, transport, got "tunel"`,
      `${F()}:10: connections.c1.children.lan.replay_window: expected a replay window in packets from 0 to 4096, got -1`,
      `${F()}:11: connections.c1.children.lan.local_ts[0]: invalid prefix length "/33" in "10.1.0.0/33" (0-32)`,
      `${F()}:12: connections.c1.children.lan.remote_ts[0]: invalid port "99999" in "10.2.0.0/24[tcp/99999]": expected a port 0-65535 or a range like 1000-2000`,
      `${F()}:13: connections.c1.children.lan.tfc_padding: expected a TFC padding length in octets (0 = off) from 0 to 65535, got 70000`,
    ]);
  });

  it('missing required parts', () => {
    const errs = errorsOf(`connections:
  c1:
    local: { addrs: [192.0.2.1] }
    ike: {}
`);
    expect(errs).toEqual([`${F()}:2: connections.c1.remote: missing; expected the remote endpoint: { addrs: [...], id: ..., auth: psk|pubkey }`]);
    const errs2 = errorsOf(`connections:
  c1:
    local: { id: gw-a.example }
    remote: { addrs: ["%any"] }
`);
    expect(errs2).toEqual([
      `${F()}:2: connections.c1.psk: expected psk: "file:/path/to/secret" because local.auth is psk`,
      `${F()}:3: connections.c1.local.addrs: expected at least one local address`,
      `${F()}:4: connections.c1.remote.id: a remote with addrs %any needs an explicit id`,
    ]);
  });

  it('structural errors of the whole file', () => {
    expect(errorsOf('connections: [a, b]\n')).toEqual([`${F()}:1: connections: expected a mapping of connection names to connection settings`]);
    expect(errorsOf('- a\n- b\n')).toEqual([expect.stringMatching(new RegExp(`^${escape(F())}:1: expected a mapping of daemon, connections$`))]);
    expect(errorsOf('daemon:\n  log_level: loud\n  port: 500\n  natt_port: 500\n')).toEqual([
      `${F()}:2: daemon.log_level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"`,
    ]);
    expect(errorsOf('daemon:\n  port: 500\n  natt_port: 500\n')).toEqual([`${F()}:3: daemon.natt_port: natt_port must differ from port (500)`]);
  });

  it('YAML syntax errors and duplicate keys carry their line', () => {
    const errs = errorsOf('connections:\n  c1:\n    local: { addrs: [192.0.2.1]\n    remote: {}\n');
    expect(errs.length).toBeGreaterThan(0);
    expect(errs[0]).toMatch(new RegExp(`^${escape(F())}:\\d+: YAML syntax: `));
    const dup = errorsOf('daemon:\n  port: 500\n  port: 501\n');
    expect(dup[0]).toMatch(new RegExp(`^${escape(F())}:3: YAML syntax: .*[Mm]ap keys must be unique`));
  });

  it('cross-key rules: lifetimes, start_action with %any, require_pq', () => {
    const errs = errorsOf(`connections:
  c1:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: ["%any"], id: "peer@example" }
    psk: file:site.psk
    require_pq: yes
    ike:
      proposals: [aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none]
      rekey_time: 1h
      life_time: 30m
    children:
      lan:
        local_ts: [10.1.0.0/24]
        remote_ts: [10.2.0.0/24]
        start_action: start
        rekey_time: 10m
        rand_time: 10m
`);
    expect(errs).toEqual([
      `${F()}:8: connections.c1.ike.proposals[0]: require_pq is yes but proposal 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none' can be negotiated without ML-KEM; add a mandatory keN_mlkem* or set ppk.required: yes`,
      `${F()}:10: connections.c1.ike.life_time: life_time (1800s) must be longer than rekey_time (3600s)`,
      `${F()}:15: connections.c1.children.lan.start_action: start needs a connection that can initiate (remote.addrs is not %any and passive is no)`,
      `${F()}:17: connections.c1.children.lan.rand_time: rand_time (600s) must be shorter than rekey_time (600s)`,
    ]);
  });

  it('address families must meet; explicit reqids are unique', () => {
    const errs = errorsOf(`connections:
  a:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: ["2001:db8::2"] }
    psk: file:site.psk
  b:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.3] }
    psk: file:site.psk
    children:
      one: { reqid: 5 }
      two: { reqid: 5 }
`);
    expect(errs).toEqual([
      `${F()}:4: connections.a.remote.addrs: no remote address of the same IP version as a local address (192.0.2.1)`,
      `${F()}:12: connections.b.children.two.reqid: reqid 5 is already used by connections.b.children.one`,
    ]);
  });

  it('collects every error of every connection, sorted by line', () => {
    const errs = errorsOf(`daemon:
  cookie_threshold: lots
connections:
  a:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:site.psk
    ike: { dpd_delay: soon }
  b:
    local: { addrs: [192.0.2.1], auth: pubkey }
    remote: { addrs: [192.0.2.3], auth: pubkey }
    children:
      x: { esp_proposals: [aes256gcm16-sha256] }
`);
    expect(errs).toEqual([
      `${F()}:2: daemon.cookie_threshold: expected a number of half-open IKE SAs from 0 to 1000000, got "lots"`,
      `${F()}:8: connections.a.ike.dpd_delay: expected a duration like "4h", "30s", "1d" or a number of seconds, got "soon"`,
      `${F()}:13: connections.b.children.x.esp_proposals[0]: AEAD cipher aes256gcm16 already authenticates; remove the integrity algorithm 'sha256' in proposal 'aes256gcm16-sha256'`,
    ]);
    // A structural error in one connection does not hide meaning errors in another.
    const mixed = errorsOf(`connections:
  a:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:site.psk
    ike: { rekey_time: never }
  b:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:absent.psk
`);
    expect(mixed).toEqual([
      `${F()}:6: connections.a.ike.rekey_time: expected a duration like "4h", "30s", "1d" or a number of seconds, got "never"`,
      `${F()}:10: connections.b.psk: cannot read pre-shared key file "${join(dir, 'absent.psk')}": no such file`,
    ]);
    // Meaning errors come together too once the structure is right.
    const errs2 = errorsOf(`connections:
  a:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: file:missing.psk
  b:
    local: { addrs: [192.0.2.1], auth: pubkey }
    remote: { addrs: [192.0.2.3], auth: pubkey }
`);
    expect(errs2).toEqual([
      `${F()}:5: connections.a.psk: cannot read pre-shared key file "${join(dir, 'missing.psk')}": no such file`,
      `${F()}:7: connections.b.local.cert: expected the certificate file (PEM, leaf first) because local.auth is pubkey`,
      `${F()}:7: connections.b.local.key: expected the private key file (PEM) because local.auth is pubkey`,
      `${F()}:8: connections.b.remote.ca: expected the CA certificate file(s) (PEM) that anchor the peer's certificate because remote.auth is pubkey`,
    ]);
  });
});

describe('secrets', () => {
  it('inline secrets work, with a warning, and never appear in messages', () => {
    const inline = 'Sup3r-Secret-Inline-Value-123456';
    const cfg = load(`connections:
  c1:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: "${inline}"
`);
    expect(cfg.engine.connections[0]!.psk).toEqual(Buffer.from(inline));
    expect(cfg.warnings).toEqual([`${F()}:5: connections.c1.psk: inline pre-shared key: prefer "file:/path" with mode 600 so the secret stays out of the configuration`]);
    expect(cfg.warnings.join('\n')).not.toContain(inline);

    const badHex = '0xdeadbeefSECRETzz';
    const errs = errorsOf(`connections:
  c1:
    local: { addrs: [192.0.2.1] }
    remote: { addrs: [192.0.2.2] }
    psk: "${badHex}"
    ppk: { keys: [{ id: ppk1, key: "0s!!notbase64-SECRET" }] }
`);
    expect(errs).toEqual([
      `${F()}:5: connections.c1.psk: invalid pre-shared key: a "0x" secret must be followed by an even number of hex digits`,
      `${F()}:6: connections.c1.ppk.keys[0].key: invalid PPK: a "0s" secret must be followed by base64`,
    ]);
    expect(errs.join('\n')).not.toMatch(/SECRET|deadbeef/);
  });

  it('a secret of the wrong YAML type is reported without its value', () => {
    const errs = errorsOf(minimal().replace('psk: file:site.psk', 'psk: 987654321987'));
    expect(errs).toEqual([`${F()}:5: connections.c1.psk: expected "file:/path/to/secret" (or an inline secret string; quote it)`]);
    expect(errs.join('')).not.toContain('987654321987');
  });

  it('0x/0s secrets decode to binary; files lose their trailing newline only', () => {
    writeFileSync(join(dir, 'hex.psk'), `0x${'11'.repeat(20)}\r\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'space.psk'), ` padded secret value  \n`, { mode: 0o600 });
    expect(load(minimal().replace('site.psk', 'hex.psk')).engine.connections[0]!.psk).toEqual(Buffer.alloc(20, 0x11));
    expect(load(minimal().replace('site.psk', 'space.psk')).engine.connections[0]!.psk).toEqual(Buffer.from(' padded secret value  '));
  });

  it('warns when a secret file is group or world readable, and about short keys', () => {
    const loose = join(dir, 'loose.psk');
    writeFileSync(loose, 'short\n');
    chmodSync(loose, 0o644);
    const cfg = load(minimal().replace('site.psk', 'loose.psk'));
    expect(cfg.warnings).toEqual([
      `${F()}:5: connections.c1.psk: pre-shared key file "${loose}" is readable by group or others (mode 0644); chmod 600 it`,
      `${F()}:5: connections.c1.psk: the pre-shared key is shorter than 16 octets; use a long random key`,
    ]);
    expect(cfg.warnings.join('\n')).not.toContain('short\n');
  });

  it('an empty secret file is an error', () => {
    writeFileSync(join(dir, 'empty.psk'), '\n', { mode: 0o600 });
    expect(errorsOf(minimal().replace('site.psk', 'empty.psk'))).toEqual([`${F()}:5: connections.c1.psk: the pre-shared key is empty`]);
  });

  it('PPK file format errors name the line of the PPK file but not the key', () => {
    const f = join(dir, 'bad.ppks');
    writeFileSync(f, `good 0x${'22'.repeat(32)}\nbadline\nplain notAHexKEY\n`, { mode: 0o600 });
    const errs = errorsOf(minimal(`    ppk: { ids_and_keys_from: "file:${f}" }\n`));
    expect(errs).toEqual([
      `${F()}:6: connections.c1.ppk.ids_and_keys_from: PPK file line 2: expected "<ppk-id> <key>" (key as 0x<hex> or 0s<base64>)`,
      `${F()}:6: connections.c1.ppk.ids_and_keys_from: PPK file line 3: the key must be 0x<hex> or 0s<base64>`,
    ]);
    expect(errs.join('')).not.toContain('notAHexKEY');
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
