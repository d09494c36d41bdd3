// The daemon shell with a fake engine and a fake kernel: real UDP sockets on the
// loopback, the real control socket, the real configuration loader.
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { Daemon, ReqidAllocator } from '../../../src/daemon/daemon.js';
import { controlRequest } from '../../../src/daemon/control.js';
import type { KernelOps } from '../../../src/daemon/kernel-port.js';
import type { Action, ChildSaKernelSpec, Endpoint, KernelAction, KernelEventInput } from '../../../src/ike/engine/actions.js';
import type { IkeEngine, IkeSaSnapshot } from '../../../src/ike/engine/api.js';
import type { EngineConfig } from '../../../src/ike/config.js';

let portBase = 20000 + (process.pid % 2000) * 10;

function configText(dir: string, port: number, extra = ''): string {
  return `daemon:
  control_socket: ${dir}/run/ctl.sock
  state_file: ${dir}/state/state.json
  listen: [127.0.0.1]
  port: ${port}
  natt_port: ${port + 1}
  log_level: debug
connections:
  site:
    local: { addrs: [127.0.0.1], id: a.example }
    remote: { addrs: [127.0.0.2], id: b.example }
    psk: "0123456789abcdef0123456789abcdef"
    children:
      lan:
        local_ts: [10.1.0.0/24]
        remote_ts: [10.2.0.0/24]
        start_action: start
      trapped:
        local_ts: [10.1.1.0/24]
        remote_ts: [10.2.1.0/24]
        start_action: trap
${extra}`;
}

class FakeEngine implements IkeEngine {
  calls: string[] = [];
  received: { data: string; local: Endpoint; remote: Endpoint }[] = [];
  config: EngineConfig;
  sas: IkeSaSnapshot[] = [];
  constructor(config: EngineConfig) {
    this.config = config;
  }
  receive(_now: number, data: Buffer, local: Endpoint, remote: Endpoint): Action[] {
    this.received.push({ data: data.toString(), local, remote });
    // answer from the NAT-T socket, as after a switch to 4500
    return [{ kind: 'send', local: { address: local.address, port: local.port }, remote, data: Buffer.from(`re:${data.toString()}`) }];
  }
  timerFired(_now: number, id: string): Action[] { this.calls.push(`timer ${id}`); return []; }
  kernelEvent(_now: number, ev: KernelEventInput): Action[] { this.calls.push(`kernel ${ev.type}`); return []; }
  initiate(_now: number, connection: string): Action[] {
    this.calls.push(`initiate ${connection}`);
    const spec = { childId: 1, connection, child: 'lan', reqid: this.config.connections[0]!.children[0]!.reqid, spiIn: 0xc0000001, spiOut: 0xc0000002 } as ChildSaKernelSpec;
    return [
      { kind: 'kernel', action: { op: 'installInboundSa', spec, keys: { encKey: Buffer.alloc(36) } } },
      { kind: 'kernel', action: { op: 'installPolicies', spec } },
      { kind: 'timer', id: 'ike-1-rekey', at: performance.now() + 60_000 },
      { kind: 'event', event: { type: 'child-up', ikeSaId: '1', connection, child: 'lan', spiIn: spec.spiIn, spiOut: spec.spiOut, suite: 'AES_GCM_16_256' } },
      { kind: 'event', event: { type: 'keylog-esp', src: '127.0.0.2', dst: '127.0.0.1', spi: '1', encr: 'E', encKey: 'deadbeef', integ: 'NULL', integKey: '' } },
    ];
  }
  rekeyIke(_now: number, id: string): Action[] { this.calls.push(`rekeyIke ${id}`); return []; }
  reauthenticate(_now: number, id: string): Action[] { this.calls.push(`reauthenticate ${id}`); return []; }
  rekeyChild(_now: number, id: number): Action[] { this.calls.push(`rekeyChild ${id}`); return []; }
  terminate(_now: number, t: { ikeSaId?: string; connection?: string }): Action[] { this.calls.push(`terminate ${JSON.stringify(t)}`); return []; }
  reload(_now: number, config: EngineConfig): Action[] { this.calls.push(`reload ${config.connections.map((c) => c.name).join(',')}`); this.config = config; return []; }
  shutdown(): Action[] { this.calls.push('shutdown'); return [{ kind: 'send', local: { address: '127.0.0.1', port: portBase }, remote: { address: '127.0.0.1', port: 9 }, data: Buffer.from('delete') }]; }
  listSas(now: number): IkeSaSnapshot[] {
    return this.sas.map((s) => ({ ...s, rekeyAt: now + 30_000 }));
  }
  stats() { return { ikeSas: this.sas.length, halfOpen: 0, childSas: 1, datagramsIn: this.received.length, datagramsOut: 0, dropped: 0, retransmits: 0, rekeys: { ike: 0, child: 0, optimized: 0 } }; }
}

class FakeKernel implements KernelOps {
  log: string[] = [];
  async apply(a: KernelAction) { this.log.push(`${a.op} ${'spec' in a ? a.spec.reqid : a.vip.address}`); return undefined; }
  async installPolicies(s: ChildSaKernelSpec) { this.log.push(`trap ${s.child} ${s.reqid} ${s.localTs[0]!.startAddress}-${s.localTs[0]!.endAddress}`); }
  async deletePolicies(s: ChildSaKernelSpec) { this.log.push(`untrap ${s.child}`); }
  async counters(s: ChildSaKernelSpec) { return { type: 'counters' as const, childId: s.childId, bytesIn: 2048, bytesOut: 1024, packetsIn: 20, packetsOut: 10 }; }
  async flushReqids(r: number[]) { this.log.push(`flush ${[...r].sort().join(',')}`); return { sas: 1, policies: 2 }; }
  close() { this.log.push('close'); }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function startDaemon(opts: { stale?: number[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ikev2d-daemon-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = (portBase += 10);
  const cfg = join(dir, 'ikev2d.yaml');
  writeFileSync(cfg, configText(dir, port));
  if (opts.stale) {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'state'));
    writeFileSync(join(dir, 'state/state.json'), JSON.stringify({ pid: 1, startedAt: '', reqids: opts.stale, children: [] }));
  }
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug', redact: { paths: ['*.encKey', 'psk'], censor: '[redacted]' } }, new Writable({
    write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); },
  }));
  let engine!: FakeEngine;
  const kernel = new FakeKernel();
  const daemon = new Daemon({
    configPath: cfg, log, keylogFile: join(dir, 'keys.csv'),
    engineFactory: (c) => (engine = new FakeEngine(c)),
    kernel: { ops: kernel },
  });
  await daemon.start();
  cleanup.push(() => daemon.shutdown(0));
  return { dir, port, cfg, daemon, engine, kernel, lines, ctl: join(dir, 'run/ctl.sock') };
}

describe('Daemon shell (fake engine and kernel)', () => {
  it('reqids for children without one are stable across reloads and avoid explicit ones', () => {
    const alloc = new ReqidAllocator(100);
    const mk = (children: [string, number][]) => ({ connections: [{ name: 'c', children: children.map(([name, reqid]) => ({ name, reqid })) }] }) as unknown as EngineConfig;
    const a = alloc.assign(mk([['x', 0], ['y', 100], ['z', 0]]));
    expect(a.connections[0]!.children.map((c) => c.reqid)).toEqual([101, 100, 102]);
    const b = alloc.assign(mk([['z', 0], ['x', 0], ['w', 0]]));
    expect(b.connections[0]!.children.map((c) => c.reqid)).toEqual([102, 101, 103]);
  });

  it('starts: stale state removed, traps installed, start_action start initiated in order', async () => {
    const d = await startDaemon({ stale: [4242] });
    await new Promise((r) => setTimeout(r, 50));
    expect(d.kernel.log[0]).toBe('flush 4242');
    expect(d.kernel.log).toContain('trap trapped 1001 10.1.1.0-10.1.1.255');
    expect(d.engine.calls).toContain('initiate site');
    expect(d.kernel.log.filter((l) => /^install/.test(l))).toEqual(['installInboundSa 1000', 'installPolicies 1000']);
    const readState = () => JSON.parse(readFileSync(join(d.dir, 'state/state.json'), 'utf8'));
    // the reqids at once (a restart after a crash needs them); the Child SA list within a second
    expect(readState().reqids).toEqual([1000, 1001]);
    for (let i = 0; i < 40 && readState().children.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readState().children).toEqual([{ childId: 1, connection: 'site', child: 'lan', reqid: 1000, spiIn: 'c0000001', spiOut: 'c0000002' }]);
    // keylog to the file, never into the log
    expect(readFileSync(join(d.dir, 'keys.csv.esp'), 'utf8')).toContain('0xdeadbeef');
    expect(JSON.stringify(d.lines)).not.toContain('deadbeef');
    const up = d.lines.find((l) => l.event === 'child-up')!;
    expect(up).toMatchObject({ connection: 'site', child: 'lan', spiIn: 'c0000001', spiOut: 'c0000002' });
  });

  it('passes datagrams with local and remote endpoints; NAT-T port strips and adds the non-ESP marker', async () => {
    const d = await startDaemon();
    const client = createSocket('udp4');
    cleanup.push(() => { client.close(); });
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const replies: Buffer[] = [];
    client.on('message', (m) => replies.push(m));
    client.send(Buffer.from('ike500'), d.port, '127.0.0.1');
    client.send(Buffer.concat([Buffer.alloc(4), Buffer.from('ike4500')]), d.port + 1, '127.0.0.1');
    client.send(Buffer.from([0xff]), d.port + 1, '127.0.0.1'); // keepalive: not for the engine
    client.send(Buffer.from([1, 2, 3, 4, 5]), d.port + 1, '127.0.0.1'); // ESP: not for the engine
    for (let i = 0; i < 100 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(d.engine.received.map((x) => x.data).sort()).toEqual(['ike4500', 'ike500']);
    const r500 = d.engine.received.find((x) => x.data === 'ike500')!;
    expect(r500.local).toEqual({ address: '127.0.0.1', port: d.port });
    expect(r500.remote).toEqual({ address: '127.0.0.1', port: client.address().port });
    const texts = replies.map((b) => b.toString('hex'));
    expect(texts).toContain(Buffer.from('re:ike500').toString('hex'));
    expect(texts).toContain(Buffer.concat([Buffer.alloc(4), Buffer.from('re:ike4500')]).toString('hex'));
  });

  it('control commands: errors name the unknown thing; list-sas carries kernel counters', async () => {
    const d = await startDaemon();
    await expect(controlRequest(d.ctl, 'initiate', { connection: 'nope' })).rejects.toThrow("unknown connection 'nope' (configured: site)");
    await expect(controlRequest(d.ctl, 'initiate', { connection: 'site', child: 'wan' })).rejects.toThrow("connection 'site' has no child 'wan'");
    await expect(controlRequest(d.ctl, 'rekey', { kind: 'ike', id: '9' })).rejects.toThrow("no such IKE SA '9'");
    await expect(controlRequest(d.ctl, 'rekey', { kind: 'child', id: 5 })).rejects.toThrow("no such Child SA '5'");
    await expect(controlRequest(d.ctl, 'terminate', { target: 'x' })).rejects.toThrow("no connection or IKE SA named 'x'");
    // stats: the engine's counters plus the process's memory
    const stats = (await controlRequest(d.ctl, 'stats')) as { ikeSas: number; memory: { rss: number; heapUsed: number; heapTotal: number } };
    expect(stats.ikeSas).toBe(0);
    expect(stats.memory.rss).toBeGreaterThan(stats.memory.heapUsed);
    expect(stats.memory.heapUsed).toBeGreaterThan(0);
    expect(stats.memory.heapTotal).toBeGreaterThanOrEqual(stats.memory.heapUsed);
    // {gc: true} is accepted with or without node --expose-gc
    expect(((await controlRequest(d.ctl, 'stats', { gc: true })) as typeof stats).memory.heapUsed).toBeGreaterThan(0);
    d.engine.sas = [{
      ikeSaId: '1', connection: 'site', state: 'established', initiator: true, spiI: '0102030405060708', spiR: '1112131415161718',
      local: { address: '127.0.0.1', port: 500 }, remote: { address: '127.0.0.2', port: 500 }, localId: 'a', remoteId: 'b', suite: 'S',
      natDetected: { local: false, remote: false }, optimizedRekeyNegotiated: true, childPfsInfoNegotiated: true, rekeyAt: 0, establishedAt: 0,
      children: [{ childId: 1, name: 'lan', state: 'installed', mode: 'tunnel', spiIn: 0xc0000001, spiOut: 0xc0000002, suite: 'S', localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24'], rekeyAt: performance.now() + 90_000, expiresAt: 0, optimizedRekeyReady: true }],
    }];
    const list = (await controlRequest(d.ctl, 'list-sas')) as { rekeyInSeconds: number; children: { counters: unknown; rekeyInSeconds: number }[] }[];
    expect(list).toHaveLength(1);
    expect(list[0]!.rekeyInSeconds).toBe(30);
    expect(list[0]!.children[0]!.counters).toEqual({ bytesIn: 2048, bytesOut: 1024, packetsIn: 20, packetsOut: 10 });
    expect(list[0]!.children[0]!.rekeyInSeconds).toBeGreaterThanOrEqual(89);
    expect(await controlRequest(d.ctl, 'rekey', { kind: 'child', id: 1 })).toEqual({ rekeying: 'child', id: 1 });
    expect(await controlRequest(d.ctl, 'rekey', { kind: 'ike', id: '1' })).toEqual({ rekeying: 'ike', id: '1' });
    expect(await controlRequest(d.ctl, 'rekey', { kind: 'ike', id: '1', reauth: true })).toEqual({ reauthenticating: 'ike', id: '1' });
    expect(await controlRequest(d.ctl, 'terminate', { target: 'site' })).toEqual({ terminated: 'site' });
    expect(d.engine.calls).toEqual(expect.arrayContaining(['rekeyChild 1', 'rekeyIke 1', 'reauthenticate 1', 'terminate {"connection":"site"}']));
  });

  it('reload: a broken file is rejected whole and the running configuration stays; a good one reaches the engine', async () => {
    const d = await startDaemon();
    writeFileSync(d.cfg, configText(d.dir, d.port).replace('local_ts: [10.1.0.0/24]', 'local_ts: [10.1.0.0/99]'));
    await expect(controlRequest(d.ctl, 'reload')).rejects.toThrow(/reload rejected, running configuration kept: .*local_ts/);
    expect(d.engine.calls.filter((c) => c.startsWith('reload'))).toEqual([]);
    expect(d.lines.some((l) => l.level === 50 && String(l.msg).includes('reload rejected'))).toBe(true);
    writeFileSync(d.cfg, configText(d.dir, d.port, `  other:
    local: { addrs: [127.0.0.1], id: a.example }
    remote: { addrs: [127.0.0.3], id: c.example }
    psk: "0123456789abcdef0123456789abcdef"
    children:
      net:
        local_ts: [10.1.0.0/24]
        remote_ts: [10.3.0.0/24]
`));
    expect(await controlRequest(d.ctl, 'reload')).toEqual({ added: ['other'], removed: [], changed: [], updated: [], unchanged: ['site'] });
    expect(d.engine.calls).toContain('reload site,other');
  });

  it('shutdown: engine shutdown actions carried out, owned kernel state flushed, state file and socket removed', async () => {
    const d = await startDaemon();
    await d.daemon.shutdown(1000);
    expect(d.engine.calls).toContain('shutdown');
    expect(d.kernel.log.slice(-2)).toEqual(['flush 1000,1001', 'close']);
    expect(existsSync(join(d.dir, 'state/state.json'))).toBe(false);
    expect(existsSync(d.ctl)).toBe(false);
    await expect(controlRequest(d.ctl, 'stats')).rejects.toThrow('ikev2d is not running');
  });
});
