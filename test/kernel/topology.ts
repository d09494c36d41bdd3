// Two hosts (namespaces) joined by veth, each with an XfrmClient, and
// ChildSaKernelSpecs for a Child SA between them (A = initiator side).
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildSaKernelSpec, SaKeys } from '../../src/ike/engine/actions.js';
import { mapEspTransforms } from '../../src/kernel/ike-mapping.js';
import { XfrmClient } from '../../src/kernel/xfrm-client.js';
import { addLoopbackAddress, addRoute, connectVeth, createNetns, type Netns } from '../helpers/netns.js';

export interface Host {
  ns: Netns;
  client: XfrmClient;
  outer: string;
  inner: string;
}

export interface Pair {
  a: Host;
  b: Host;
  v6: boolean;
  close(): Promise<void>;
}

/** A (outer .1, inner 198.51.100.1 / 2001:db8:a::1) <-veth-> B (outer .2, inner 203.0.113.1 / 2001:db8:b::1). */
export async function twoHosts(v6: boolean): Promise<Pair> {
  const nsA = await createNetns('espa');
  const nsB = await createNetns('espb');
  const outerA = v6 ? '2001:db8::1' : '192.0.2.1';
  const outerB = v6 ? '2001:db8::2' : '192.0.2.2';
  const innerA = v6 ? '2001:db8:a::1' : '198.51.100.1';
  const innerB = v6 ? '2001:db8:b::1' : '203.0.113.1';
  await connectVeth(
    { ns: nsA, ...(v6 ? { v6: `${outerA}/64` } : { v4: `${outerA}/24` }) },
    { ns: nsB, ...(v6 ? { v6: `${outerB}/64` } : { v4: `${outerB}/24` }) },
  );
  await addLoopbackAddress(nsA, `${innerA}/${v6 ? 128 : 32}`);
  await addLoopbackAddress(nsB, `${innerB}/${v6 ? 128 : 32}`);
  await addRoute(nsA, v6 ? '2001:db8:b::/48' : '203.0.113.0/24', 'veth0', innerA);
  await addRoute(nsB, v6 ? '2001:db8:a::/48' : '198.51.100.0/24', 'veth0', innerB);
  // Static neighbours: transport-mode policies cover every packet between the
  // hosts, IPv6 neighbour discovery included.
  const macA = (await nsA.exec(['cat', '/sys/class/net/veth0/address'])).stdout.trim();
  const macB = (await nsB.exec(['cat', '/sys/class/net/veth0/address'])).stdout.trim();
  await nsA.exec(['ip', 'neigh', 'replace', outerB, 'lladdr', macB, 'dev', 'veth0', 'nud', 'permanent']);
  await nsB.exec(['ip', 'neigh', 'replace', outerA, 'lladdr', macA, 'dev', 'veth0', 'nud', 'permanent']);
  const a: Host = { ns: nsA, client: XfrmClient.open({ netns: nsA.path }), outer: outerA, inner: innerA };
  const b: Host = { ns: nsB, client: XfrmClient.open({ netns: nsB.path }), outer: outerB, inner: innerB };
  return {
    a, b, v6,
    async close() {
      a.client.close();
      b.client.close();
      await nsA.delete();
      await nsB.delete();
    },
  };
}

export interface ChildOptions {
  mode: 'tunnel' | 'transport';
  encr: { id: number; keyBits: number };
  integ?: { id: number };
  encap?: boolean;
  esn?: boolean;
  replayWindow?: number;
  reqid?: number;
  softPackets?: number;
  hardPackets?: number;
  hardSeconds?: number;
  /** XFRM interface id (route-based VPN); 0 = none. */
  ifId?: number;
  mark?: number;
}

export interface ChildPair {
  specA: ChildSaKernelSpec;
  specB: ChildSaKernelSpec;
  /** keys of the A->B and B->A SAs */
  keysAB: SaKeys;
  keysBA: SaKeys;
}

let childIds = 0;

function keysFor(o: ChildOptions): SaKeys {
  const m = mapEspTransforms(o.encr, o.integ);
  if (m.aead) return { encKey: randomBytes(m.aead.keyOctets) };
  return { encKey: randomBytes(m.crypt!.keyOctets), integKey: randomBytes(m.auth!.keyOctets) };
}

function hostTs(addr: string) {
  return { protocol: 0, startPort: 0, endPort: 65535, startAddress: addr, endAddress: addr };
}

/** Specs for one Child SA between A and B; spiAB is the SPI of the A->B SA. */
export function childPair(p: Pair, o: ChildOptions, spiAB: number, spiBA: number): ChildPair {
  const tsA = o.mode === 'tunnel' ? hostTs(p.a.inner) : hostTs(p.a.outer);
  const tsB = o.mode === 'tunnel' ? hostTs(p.b.inner) : hostTs(p.b.outer);
  const common = {
    connection: 'test', child: 'test', reqid: o.reqid ?? 100, mode: o.mode, protocol: 'esp' as const,
    encr: o.encr, ...(o.integ ? { integ: o.integ } : {}),
    esn: o.esn ?? false, replayWindow: o.replayWindow ?? 64,
    softBytes: 0, hardBytes: 0, softPackets: o.softPackets ?? 0, hardPackets: o.hardPackets ?? 0, hardSeconds: o.hardSeconds ?? 0,
    ifId: o.ifId ?? 0, mark: o.mark ?? 0,
  };
  const id = ++childIds;
  const specA: ChildSaKernelSpec = {
    ...common, childId: id, local: p.a.outer, remote: p.b.outer, localTs: [tsA], remoteTs: [tsB], spiIn: spiBA, spiOut: spiAB,
    ...(o.encap ? { encap: { localPort: 4500, remotePort: 4500 } } : {}),
  };
  const specB: ChildSaKernelSpec = {
    ...common, childId: id, local: p.b.outer, remote: p.a.outer, localTs: [tsB], remoteTs: [tsA], spiIn: spiAB, spiOut: spiBA,
    ...(o.encap ? { encap: { localPort: 4500, remotePort: 4500 } } : {}),
  };
  return { specA, specB, keysAB: keysFor(o), keysBA: keysFor(o) };
}

/**
 * A process in `ns` holding a UDP socket on `port` switched to ESP-in-UDP
 * decapsulation (and IPsec bypass) through the addon. Resolves once ready.
 */
export async function espInUdpListener(ns: Netns, port: number, v6: boolean): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./fixtures/espinudp-listener.mjs', import.meta.url));
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, script, String(port), v6 ? '6' : '4'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`ESP-in-UDP listener exited (${code}): ${out}`)));
  });
  return child;
}
