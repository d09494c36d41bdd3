// The real daemon shell (dist/) with a scripted engine, for daemon-kernel.test.ts: on
// `initiate` it installs a fixed-key Child SA pair and its policies (mirrored on the peer),
// logs every kernel event it is given, and on shutdown deletes what it installed.
// Usage: node daemon-kernel-fixture.mjs CONFIG SIDE(a|b)
import { Daemon } from '../../dist/daemon/daemon.js';
import { createLogger } from '../../dist/daemon/logger.js';
import { enableEspInUdp, bypassIpsec } from '../../dist/kernel/index.js';

const [configPath, side] = process.argv.slice(2);
const log = createLogger({ level: 'debug' });
const KEY_AB = Buffer.alloc(36, 0xab);
const KEY_BA = Buffer.alloc(36, 0xba);

class ScriptedEngine {
  constructor(config, opts) {
    this.config = config;
    this.log = opts.log;
    this.specs = [];
  }
  spec(conn, child) {
    const [l, r] = [conn.local.addrs[0], conn.remote.addrs[0]];
    const range = (cidr) => {
      const [a] = cidr.split('/');
      const p = a.split('.').map(Number);
      return { startAddress: `${p[0]}.${p[1]}.${p[2]}.0`, endAddress: `${p[0]}.${p[1]}.${p[2]}.255` };
    };
    return {
      childId: 1, connection: conn.name, child: child.name, reqid: child.reqid, mode: 'tunnel', protocol: 'esp', local: l, remote: r,
      localTs: child.localTs.map((t) => ({ protocol: 0, startPort: 0, endPort: 65535, ...range(t.cidr) })),
      remoteTs: child.remoteTs.map((t) => ({ protocol: 0, startPort: 0, endPort: 65535, ...range(t.cidr) })),
      encr: { id: 20, keyBits: 256 }, esn: false, replayWindow: 32, softBytes: 0, hardBytes: 0, softPackets: 0, hardPackets: 0, hardSeconds: 0,
      ifId: 0, mark: 0, spiIn: side === 'a' ? 0xa0000001 : 0xb0000001, spiOut: side === 'a' ? 0xb0000001 : 0xa0000001,
    };
  }
  receive() { return []; }
  timerFired(now, id) { this.log('info', { timer: id }, `timer ${id} fired`); return []; }
  kernelEvent(now, ev) { this.log('info', { kernelEvent: ev.type, reqid: ev.reqid }, `kernel event ${ev.type}${ev.reqid ? ` reqid ${ev.reqid}` : ''}`); return []; }
  initiate(now, name) {
    const conn = this.config.connections.find((c) => c.name === name);
    const child = conn.children.find((c) => c.startAction === 'start');
    const spec = this.spec(conn, child);
    this.specs.push(spec);
    return [
      { kind: 'kernel', action: { op: 'installInboundSa', spec, keys: { encKey: side === 'a' ? KEY_BA : KEY_AB } } },
      { kind: 'kernel', action: { op: 'installOutboundSa', spec, keys: { encKey: side === 'a' ? KEY_AB : KEY_BA } } },
      { kind: 'kernel', action: { op: 'installPolicies', spec } },
      { kind: 'timer', id: 'probe', at: now + 200 },
      { kind: 'event', event: { type: 'child-up', ikeSaId: '1', connection: name, child: child.name, spiIn: spec.spiIn, spiOut: spec.spiOut, suite: 'AES_GCM_16_256' } },
    ];
  }
  rekeyIke() { return []; }
  rekeyChild() { return []; }
  terminate() { return []; }
  reload() { return []; }
  shutdown() {
    return this.specs.flatMap((spec) => [
      { kind: 'kernel', action: { op: 'deletePolicies', spec } },
      { kind: 'kernel', action: { op: 'deleteOutboundSa', spec } },
      { kind: 'kernel', action: { op: 'deleteInboundSa', spec } },
    ]);
  }
  listSas() { return []; }
  stats() { return { ikeSas: 0, halfOpen: 0, childSas: this.specs.length, datagramsIn: 0, datagramsOut: 0, dropped: 0, retransmits: 0, rekeys: { ike: 0, child: 0, optimized: 0 } }; }
}

const daemon = new Daemon({ configPath, log, engineFactory: (c, o) => new ScriptedEngine(c, o), sockets: { bypass: bypassIpsec, espInUdp: enableEspInUdp } });
await daemon.start();
process.once('SIGTERM', () => daemon.shutdown().then(() => process.exit(0)));
