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
    const spec = { reqid: 1001, childId: 1 } as unknown as Extract<KernelAction, { op: 'installPolicies' }>['spec'];
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
