// The daemon's side of virtual IPs: addVirtualIp/removeVirtualIp go to the kernel layer in order,
// are recorded in the state file, and are removed at shutdown or by the next start after a crash.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KernelAction, KernelEventInput, VirtualIpSpec } from '../../../src/ike/engine/actions.js';
import { ActionQueue } from '../../../src/daemon/applier.js';
import { KernelState, readStateFile, type KernelOps } from '../../../src/daemon/kernel-port.js';
import { formatListSas, type ListedIkeSa } from '../../../src/daemon/format.js';
import type { SourceRoutes } from '../../../src/kernel/virtual-ip.js';
import type { ChildSaKernelSpec, TrafficSelectorSpec } from '../../../src/ike/engine/actions.js';

class FakeOps implements KernelOps {
  readonly log: string[] = [];
  failAdd = false;
  async apply(a: KernelAction): Promise<KernelEventInput | undefined> {
    if (a.op === 'addVirtualIp' || a.op === 'removeVirtualIp') {
      this.log.push(`${a.op} ${a.vip.address}/${a.vip.prefixLength}`);
      if (a.op === 'addVirtualIp' && this.failAdd) return { type: 'action-failed', action: a, message: 'RTNETLINK answers: Operation not permitted' };
      return undefined;
    }
    this.log.push(`${a.op} ${a.spec.reqid}`);
    return undefined;
  }
  async installPolicies(): Promise<void> {}
  async deletePolicies(): Promise<void> {}
  async counters(): Promise<Extract<KernelEventInput, { type: 'counters' }>> {
    return { type: 'counters', childId: 0, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
  }
  failRoutes = false;
  async installSourceRoutes(r: SourceRoutes): Promise<void> {
    this.log.push(`route ${r.destinations.join(',')} src ${r.vip} toward ${r.peer}`);
    if (this.failRoutes) throw new Error('no route to the peer 192.0.2.2');
  }
  async removeSourceRoutes(r: SourceRoutes): Promise<void> {
    this.log.push(`unroute ${r.destinations.join(',')} src ${r.vip}`);
  }
  async flushReqids(reqids: number[]) {
    this.log.push(`flush ${reqids.join(',')}`);
    return { sas: 0, policies: 0 };
  }
  close(): void {}
}

const vip = (address: string, prefixLength: number): VirtualIpSpec => ({ connection: 'home', ikeSaId: '0011223344556677', address, prefixLength });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ikev2d-vip-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('KernelState and virtual IPs', () => {
  it('records added virtual IPs in the state file and forgets removed ones', async () => {
    const ops = new FakeOps();
    const file = join(dir, 'state.json');
    const k = new KernelState(ops, file);
    await k.apply({ op: 'addVirtualIp', vip: vip('10.99.0.1', 32) });
    await k.apply({ op: 'addVirtualIp', vip: vip('fd00:99::1', 128) });
    expect(readStateFile(file)?.virtualIps?.map((v) => v.address)).toEqual(['10.99.0.1', 'fd00:99::1']);
    await k.apply({ op: 'removeVirtualIp', vip: vip('10.99.0.1', 32) });
    expect(readStateFile(file)?.virtualIps?.map((v) => v.address)).toEqual(['fd00:99::1']);
    expect(ops.log).toEqual(['addVirtualIp 10.99.0.1/32', 'addVirtualIp fd00:99::1/128', 'removeVirtualIp 10.99.0.1/32']);
  });

  it('a refused add is not recorded, and its failure goes back to the engine', async () => {
    const ops = new FakeOps();
    ops.failAdd = true;
    const k = new KernelState(ops, join(dir, 'state.json'));
    const r = await k.apply({ op: 'addVirtualIp', vip: vip('10.99.0.1', 32) });
    expect(r).toMatchObject({ type: 'action-failed', message: /not permitted/ });
    expect(k.virtualIps.size).toBe(0);
  });

  it('teardown removes the virtual IPs still on the host', async () => {
    const ops = new FakeOps();
    const k = new KernelState(ops, join(dir, 'state.json'));
    k.own([1000]);
    await k.apply({ op: 'addVirtualIp', vip: vip('10.99.0.1', 32) });
    await k.teardown();
    expect(ops.log.slice(1)).toEqual(['flush 1000', 'removeVirtualIp 10.99.0.1/32']);
    expect(k.virtualIps.size).toBe(0);
  });

  it('the next start removes the virtual IPs a crashed run left behind', async () => {
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify({ pid: 1, startedAt: 'x', reqids: [1000], children: [], virtualIps: [vip('10.99.0.1', 32)] }));
    const ops = new FakeOps();
    const r = await new KernelState(ops, file).cleanStale();
    expect(ops.log).toEqual(['removeVirtualIp 10.99.0.1/32', 'flush 1000']);
    expect(r).toEqual({ sas: 0, policies: 0, reqids: [1000], virtualIps: ['10.99.0.1/32'] });
    // A state file with a broken virtualIps entry still gives its reqids.
    writeFileSync(file, JSON.stringify({ pid: 1, startedAt: 'x', reqids: [1000], children: [], virtualIps: [{ address: 'nope', prefixLength: 32 }] }));
    expect(readStateFile(file)).toEqual({ pid: 1, startedAt: 'x', reqids: [1000], children: [] });
    expect(JSON.parse(readFileSync(file, 'utf8')).virtualIps).toHaveLength(1);
  });

  it('the action queue carries addVirtualIp out before the policies that follow it', async () => {
    const ops = new FakeOps();
    const k = new KernelState(ops, undefined);
    const q = new ActionQueue({
      send: () => undefined,
      armTimer: () => undefined,
      cancelTimer: () => undefined,
      kernel: (a) => k.apply(a),
      event: () => undefined,
      feedback: () => [],
      error: (e) => {
        throw e;
      },
    });
    const spec = { reqid: 1001, childId: 1, localTs: [], remoteTs: [] } as unknown as Extract<KernelAction, { op: 'installPolicies' }>['spec'];
    await q.submit(() => [
      { kind: 'kernel', action: { op: 'addVirtualIp', vip: vip('10.99.0.1', 32) } },
      { kind: 'kernel', action: { op: 'installPolicies', spec } },
    ]);
    expect(ops.log).toEqual(['addVirtualIp 10.99.0.1/32', 'installPolicies 1001']);
  });
});

describe('list-sas with virtual IPs', () => {
  const sa = (id: string, virtualIps?: string[]): ListedIkeSa => ({
    ikeSaId: id, connection: 'home', state: 'established', initiator: true, spiI: '00'.repeat(8), spiR: '11'.repeat(8),
    local: { address: '192.0.2.1', port: 500 }, remote: { address: '192.0.2.2', port: 500 }, localId: 'a', remoteId: 'b',
    suite: 'AES_GCM_16_256', natDetected: { local: false, remote: false }, optimizedRekeyNegotiated: false, childPfsInfoNegotiated: false,
    rekeyAt: 0, establishedAt: 0, rekeyInSeconds: null, children: [], ...(virtualIps ? { virtualIps } : {}),
  });

  it('the table gets a VIRTUAL IP column only when some IKE SA has one', () => {
    expect(formatListSas([sa('1')])).not.toMatch(/VIRTUAL IP/);
    const text = formatListSas([sa('1', ['10.99.0.1', 'fd00:99::1']), sa('2')]);
    expect(text).toMatch(/^IKE SA\s+CONNECTION\s+STATE\s+ROLE\s+LOCAL\s+REMOTE\s+VIRTUAL IP\s+SPIi/);
    expect(text).toMatch(/\n1\s+home\s+established\s+initiator\s+192\.0\.2\.1\[500\]\s+192\.0\.2\.2\[500\]\s+10\.99\.0\.1,fd00:99::1\s+0{16}/);
    expect(text).toMatch(/\n2\s+home\s+.*192\.0\.2\.2\[500\]\s+-\s+0{16}/);
  });
});

describe('source routes for Child SAs from a virtual IP', () => {
  const ts = (a: string, b = a): TrafficSelectorSpec => ({ protocol: 0, startPort: 0, endPort: 65535, startAddress: a, endAddress: b });
  const spec = (localTs: TrafficSelectorSpec[], remoteTs: TrafficSelectorSpec[]) =>
    ({ childId: 1, connection: 'home', child: 'lan', reqid: 1001, local: '192.0.2.1', remote: '192.0.2.2', localTs, remoteTs }) as unknown as ChildSaKernelSpec;

  it('policies whose local selector is our virtual IP get routes for the remote selectors of its IP version, removed with the policies', async () => {
    const ops = new FakeOps();
    const warnings: string[] = [];
    const k = new KernelState(ops, undefined, (m) => warnings.push(m));
    await k.apply({ op: 'addVirtualIp', vip: vip('10.99.0.1', 32) });
    const s = spec([ts('10.99.0.1')], [ts('10.2.0.0', '10.2.0.255'), ts('10.3.0.0', '10.3.0.2'), ts('fd00:2::', 'fd00:2::ffff')]);
    await k.apply({ op: 'installPolicies', spec: s });
    await k.apply({ op: 'deletePolicies', spec: s });
    await k.apply({ op: 'removeVirtualIp', vip: vip('10.99.0.1', 32) });
    expect(ops.log).toEqual([
      'addVirtualIp 10.99.0.1/32',
      'installPolicies 1001',
      'route 10.2.0.0/24,10.3.0.0/31,10.3.0.2/32 src 10.99.0.1 toward 192.0.2.2',
      'deletePolicies 1001',
      'unroute 10.2.0.0/24,10.3.0.0/31,10.3.0.2/32 src 10.99.0.1',
      'removeVirtualIp 10.99.0.1/32',
    ]);
    expect(warnings).toEqual([]);
  });

  it('no routes for policies of other addresses; a route that cannot be added is a warning, not a failed action', async () => {
    const ops = new FakeOps();
    const warnings: string[] = [];
    const k = new KernelState(ops, undefined, (m) => warnings.push(m));
    await k.apply({ op: 'installPolicies', spec: spec([ts('10.1.0.0', '10.1.0.255')], [ts('10.2.0.0', '10.2.0.255')]) });
    expect(ops.log).toEqual(['installPolicies 1001']);
    await k.apply({ op: 'addVirtualIp', vip: vip('10.99.0.1', 32) });
    ops.failRoutes = true;
    const r = await k.apply({ op: 'installPolicies', spec: { ...spec([ts('10.99.0.1')], [ts('10.2.0.0', '10.2.0.255')]), reqid: 1002 } });
    expect(r).toBeUndefined();
    expect(warnings).toEqual(['home/1002: no route to the peer 192.0.2.2; traffic from this host into the tunnel needs its virtual IP as source address']);
    expect(k.sourceRoutes.size).toBe(0);
  });
});
