// ikev2d against ikev2d in network namespaces passing real ESP: site-to-site IPv4/IPv6,
// host-to-host transport mode, NAT-T through a masquerading router, trap + ACQUIRE,
// reload with a broken file, DPD after the peer is cut off, SIGTERM cleanup.
import { writeFileSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { connectVeth, createNetns, ping } from '../helpers/netns.js';
import { connectionYaml, e2eUnavailable, espPackets, installedChildren, kernelCounts, siteToSite, sleep, startGateways, startIkev2d, tcpStream, type GatewaysOptions, type Site, cleanupAfterEach } from './harness.js';

const why = await e2eUnavailable();
if (why) console.warn(`SKIPPED: ikev2d e2e tunnels: ${why}`);

const { daemons, namespaces } = cleanupAfterEach();

/** Both gateways of a site; gw-b responds only, gw-a initiates (or traps). */
async function gateways(site: Site, o: GatewaysOptions = {}) {
  namespaces.push(...site.all);
  return startGateways(site, daemons, o);
}

async function expectTraffic(site: Site) {
  const before = await espPackets(site.gwA);
  const p = await ping(site.hostA, site.hostBAddr, { count: 5, intervalS: 0.2, timeoutS: 5 });
  expect(p.received, p.output).toBe(5);
  expect(await espPackets(site.gwA)).toBeGreaterThanOrEqual(before + 10); // 5 out + 5 in through ESP
  const t = await tcpStream(site.hostA, site.hostB, site.hostBAddr, 1_000_000);
  expect(t.received).toBe(t.sent);
}

describe.skipIf(why !== null)('ikev2d <-> ikev2d', () => {
  it('site-to-site IPv4: tunnel up, ping and TCP through ESP, list-sas on both sides, clean kernel after SIGTERM', async () => {
    const site = await siteToSite();
    const { a, b } = await gateways(site);
    await a.waitChildren();
    await b.waitChildren();
    await expectTraffic(site);
    const sas = await a.listSas();
    expect(sas[0]!.state).toBe('established');
    expect(sas[0]!.children[0]!.counters!.packetsOut).toBeGreaterThanOrEqual(5);
    const text = await a.ctlText('list-sas');
    expect(text).toMatch(/site .*established/);
    expect(await a.stop()).toBe(0);
    // gw-a removed its state; gw-b got the Delete and removed its SAs too
    expect((await kernelCounts(site.gwA)).sas).toBe(0);
    expect((await kernelCounts(site.gwA)).policies).toBe(0);
    await b.waitFor('IKE SA deleted after the peer\'s Delete', (s) => s.length === 0, 30_000);
    expect((await kernelCounts(site.gwB)).sas).toBe(0);
    expect(await b.stop()).toBe(0);
    expect((await kernelCounts(site.gwB)).policies).toBe(0);
  });

  it('site-to-site IPv6: ping and TCP through ESP', async () => {
    const site = await siteToSite({ v6: true });
    const { a, b } = await gateways(site);
    await a.waitChildren();
    await b.waitChildren();
    await expectTraffic(site);
  });

  it('host-to-host transport mode: ping and TCP between the hosts themselves', async () => {
    const x = await createNetns('hx');
    const y = await createNetns('hy');
    namespaces.push(x, y);
    await connectVeth({ ns: x, v4: '192.0.2.10/24' }, { ns: y, v4: '192.0.2.20/24' });
    const conn = (l: string, r: string, li: string, ri: string, start: 'start' | 'none') => connectionYaml({
      name: 'hosts', local: l, remote: r, localId: li, remoteId: ri,
      children: [{ name: 'host', localTs: [`${l}/32`], remoteTs: [`${r}/32`], mode: 'transport', startAction: start }],
    });
    const b = await startIkev2d(y, 'hy', { listen: ['192.0.2.20'], connections: conn('192.0.2.20', '192.0.2.10', 'y.example', 'x.example', 'none') });
    daemons.push(b);
    const a = await startIkev2d(x, 'hx', { listen: ['192.0.2.10'], connections: conn('192.0.2.10', '192.0.2.20', 'x.example', 'y.example', 'start') });
    daemons.push(a);
    await a.waitChildren();
    await b.waitChildren();
    const p = await ping(x, '192.0.2.20', { count: 5, timeoutS: 5 });
    expect(p.received, p.output).toBe(5);
    expect(await espPackets(x)).toBeGreaterThanOrEqual(10);
    expect((await x.exec(['ip', 'xfrm', 'state'])).stdout).toMatch(/mode transport/);
    const t = await tcpStream(x, y, '192.0.2.20', 500_000);
    expect(t.received).toBe(t.sent);
  });

  it('NAT between the gateways: NAT detected, switch to 4500, ESP in UDP, keepalives', async () => {
    const site = await siteToSite({ nat: true });
    const { a, b } = await gateways(site);
    const sas = await a.waitChildren();
    await b.waitChildren();
    expect(sas[0]!.natDetected.local).toBe(true);
    expect(sas[0]!.local.port).toBe(4500);
    expect(sas[0]!.remote.port).toBe(4500);
    await expectTraffic(site);
    expect((await site.gwA.exec(['ip', 'xfrm', 'state'])).stdout).toMatch(/encap type espinudp sport 4500 dport 4500/);
  });

  it('start_action trap: traffic raises an ACQUIRE that brings the tunnel up', async () => {
    const site = await siteToSite();
    const { a, b } = await gateways(site, { startAction: 'trap' });
    await sleep(1000);
    expect(await a.listSas()).toEqual([]);
    const policies = (await site.gwA.exec(['ip', 'xfrm', 'policy'])).stdout;
    expect(policies).toMatch(/dir out/);
    // the first packets trigger the ACQUIRE (and are dropped while the SA is negotiated)
    await ping(site.hostA, site.hostBAddr, { count: 3, intervalS: 0.5, timeoutS: 1 });
    await a.waitChildren(1, 60_000);
    await b.waitChildren();
    const p = await ping(site.hostA, site.hostBAddr, { count: 5, timeoutS: 5 });
    expect(p.received, p.output).toBe(5);
  });

  it('reload with a broken file keeps everything running; a good file is applied', async () => {
    const site = await siteToSite();
    const { a, b } = await gateways(site);
    await a.waitChildren();
    await b.waitChildren();
    const good = readFileSync(a.configPath, 'utf8');
    writeFileSync(a.configPath, good.replace('remote_ts: [10.2.0.0/24]', 'remote_ts: [10.2.0.0/33]') + '\n  bogus: [\n');
    await expect(a.ctl('reload')).rejects.toThrow(/reload rejected/);
    a.signal('SIGHUP');
    await sleep(500);
    expect(a.exitCode).toBeNull();
    expect(a.logged(/reload rejected, running configuration kept/)).toBe(true);
    const p = await ping(site.hostA, site.hostBAddr, { count: 3, timeoutS: 5 });
    expect(p.received, p.output).toBe(3);
    writeFileSync(a.configPath, good);
    expect(await a.ctl('reload')).toEqual({ added: [], removed: [], changed: [], updated: [], unchanged: ['site'] });
    expect(installedChildren(await a.listSas())).toHaveLength(1);
    // Only the lifetimes change: the SAs stay (their next rekey is regular), traffic keeps flowing.
    const before = (await a.listSas())[0]!;
    writeFileSync(a.configPath, good.replace('rekey_time: 4h', 'rekey_time: 3h'));
    expect(await a.ctl('reload')).toEqual({ added: [], removed: [], changed: [], updated: ['site'], unchanged: [] });
    const after = (await a.listSas())[0]!;
    expect(after.ikeSaId).toBe(before.ikeSaId);
    expect(installedChildren([after])[0]!.spiIn).toBe(installedChildren([before])[0]!.spiIn);
    const q = await ping(site.hostA, site.hostBAddr, { count: 3, timeoutS: 5 });
    expect(q.received, q.output).toBe(3);
  });

  it('DPD: the IKE SA goes when the peer is cut off', async () => {
    const site = await siteToSite();
    const { a, b } = await gateways(site, { ike: '      dpd_delay: 2s\n      dpd_timeout: 20s\n' });
    await a.waitChildren();
    await b.waitChildren();
    await site.gwB.exec(['ip', 'link', 'set', 'wan', 'down']);
    await a.waitFor('IKE SA removed by DPD', (s) => s.length === 0 || s.every((x) => x.state !== 'established'), 120_000);
    await a.waitFor('no SAs left', (s) => s.length === 0, 60_000);
    expect((await kernelCounts(site.gwA)).sas).toBe(0);
  });

  it('DPD with close_action start: attempts while the peer is cut off, the tunnel back once it returns', async () => {
    const site = await siteToSite();
    const { a, b } = await gateways(site, { ike: '      dpd_delay: 2s\n      dpd_timeout: 12s\n', closeAction: 'start' });
    await a.waitChildren();
    await b.waitChildren();
    const first = (await a.listSas())[0]!.ikeSaId;
    await site.gwB.exec(['ip', 'link', 'set', 'wan', 'down']);
    await a.waitFor('IKE SA declared dead', (s) => !s.some((x) => x.ikeSaId === first), 120_000);
    await a.waitLog(/close_action start: establishing lan again/, 10_000);
    await a.waitLog(/attempt 2 in \d/, 60_000); // the first new attempt went unanswered too
    expect((await kernelCounts(site.gwA)).sas).toBe(0);
    await site.gwB.exec(['ip', 'link', 'set', 'wan', 'up']);
    // the link going down took gw-b's route to LAN A with it
    await site.gwB.exec(['ip', 'route', 'replace', site.lanA, 'via', site.gwAOuter]);
    await a.waitFor('tunnel re-established', (s) => s.some((x) => x.state === 'established' && x.ikeSaId !== first) && installedChildren(s).length === 1, 180_000);
    await b.waitFor('gw-b holds the new SAs only', (s) => s.filter((x) => x.state === 'established').length === 1 && installedChildren(s).length === 1, 60_000);
    await expectTraffic(site);
    expect((await a.ctl('stats')) as { initiations: unknown }).toMatchObject({ initiations: { waiting: 0, retrying: 0 } });
  });
});
