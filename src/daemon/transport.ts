// UDP sockets for IKE: port 500 and the NAT-T port 4500 on each local address.
//
// Node's dgram does not report a datagram's destination address, so instead of one
// wildcard socket per port the daemon binds one socket per local address (a wildcard
// listen entry expands to the addresses present at start-up). Each datagram then
// reaches the engine with the exact local endpoint it was sent to, and every send
// leaves from the socket of the local endpoint the engine names.
//
// Every socket bypasses IPsec policies (IKE must never be tunnelled); the 4500
// sockets are in ESP-in-UDP mode (RFC 3948): the kernel takes ESP, we get IKE with
// its 4-octet non-ESP marker, which is stripped on receipt and added on send.
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { isIPv6 } from 'node:net';
import type { Endpoint } from '../ike/engine/actions.js';
import { addressToBigInt, bigIntToAddress } from '../kernel/address.js';

export const NON_ESP_MARKER = Buffer.alloc(4);

/** What to do with a datagram that arrived on a NAT-T port. */
export function unwrapNatT(msg: Buffer): Buffer | 'keepalive' | 'esp' | 'short' {
  if (msg.length === 1 && msg[0] === 0xff) return 'keepalive'; // RFC 3948 §2.3
  if (msg.length < 4) return 'short';
  if (msg.readUInt32BE(0) !== 0) return 'esp'; // the kernel's, if ESP-in-UDP is not active
  return msg.subarray(4);
}

/** Canonical text of an address (IPv4-mapped IPv6 folded to IPv4, lower case, no zone). */
export function normalizeAddress(a: string): string {
  const noZone = a.split('%')[0]!;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(noZone);
  if (m) return m[1]!;
  // one text per IPv6 address (RFC 5952), so endpoints compare equal however they were written
  return isIPv6(noZone) ? bigIntToAddress(addressToBigInt(noZone), 6) : noZone;
}

/** Expands wildcard listen entries into the host's current addresses (link-local IPv6 excluded). */
export function expandListen(listen: string[], extra: string[] = []): string[] {
  const out = new Set<string>();
  const ifaces = Object.values(networkInterfaces()).flat().filter((i) => i !== undefined);
  for (const l of [...listen, ...extra]) {
    if (l === '0.0.0.0' || l === '%any4' || l === '%any') {
      for (const i of ifaces) if (i.family === 'IPv4') out.add(normalizeAddress(i.address));
    }
    if (l === '::' || l === '%any6' || l === '%any') {
      for (const i of ifaces) if (i.family === 'IPv6' && !/^fe80:/i.test(i.address)) out.add(normalizeAddress(i.address));
    }
    if (!['0.0.0.0', '::', '%any', '%any4', '%any6'].includes(l)) out.add(normalizeAddress(l));
  }
  return [...out];
}

export interface SocketOptions {
  /** Bypass IPsec policies on the socket (fd, address family). */
  bypass?: (fd: number, family: 4 | 6) => void;
  /** Put the socket in ESP-in-UDP mode. */
  espInUdp?: (fd: number) => void;
}

export type DatagramHandler = (data: Buffer, local: Endpoint, remote: Endpoint) => void;

export class UdpTransport {
  private readonly sockets = new Map<string, Socket>(); // "addr|port"
  private readonly ports: number[];

  constructor(
    private readonly opts: { port: number; nattPort: number; sockets?: SocketOptions; onError?: (err: Error, where: string) => void },
    private readonly onDatagram: DatagramHandler,
  ) {
    this.ports = [opts.port, opts.nattPort];
  }

  /** Binds port and NAT-T port on each address; an address that cannot be bound is reported and skipped. */
  async bind(addresses: string[]): Promise<string[]> {
    const bound: string[] = [];
    for (const raw of addresses) {
      const address = normalizeAddress(raw);
      try {
        for (const port of this.ports) await this.bindOne(address, port);
        bound.push(address);
      } catch (e) {
        this.opts.onError?.(e as Error, `bind ${address}`);
        for (const port of this.ports) this.closeOne(address, port);
      }
    }
    return bound;
  }

  private async bindOne(address: string, port: number): Promise<void> {
    const v6 = isIPv6(address);
    const sock = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: v6 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    try {
      const so = this.opts.sockets;
      if (so?.bypass || so?.espInUdp) {
        const fd = socketFd(sock);
        so.bypass?.(fd, v6 ? 6 : 4);
        if (port === this.opts.nattPort) so.espInUdp?.(fd);
      }
    } catch (e) {
      sock.close();
      throw e;
    }
    const local: Endpoint = { address, port };
    sock.on('message', (msg, rinfo) => this.receive(port, local, msg, { address: normalizeAddress(rinfo.address), port: rinfo.port }));
    sock.on('error', (e) => this.opts.onError?.(e, `socket ${address}:${port}`));
    this.sockets.set(`${address}|${port}`, sock);
  }

  private receive(port: number, local: Endpoint, msg: Buffer, remote: Endpoint): void {
    let data = msg;
    if (port === this.opts.nattPort) {
      const u = unwrapNatT(msg);
      if (typeof u === 'string') return;
      data = u;
    }
    this.onDatagram(data, local, remote);
  }

  /** Local endpoints with a socket. */
  endpoints(): Endpoint[] {
    return [...this.sockets.keys()].map((k) => {
      const [address, port] = k.split('|');
      return { address: address!, port: Number(port) };
    });
  }

  private socketFor(local: Endpoint): Socket {
    const s = this.sockets.get(`${normalizeAddress(local.address)}|${local.port}`);
    if (!s) throw new Error(`no socket bound to ${local.address}:${local.port}`);
    return s;
  }

  /** Sends an IKE message from `local`; on the NAT-T port the non-ESP marker is prepended. */
  send(local: Endpoint, remote: Endpoint, data: Buffer): void {
    const sock = this.socketFor(local);
    const payload = local.port === this.opts.nattPort ? Buffer.concat([NON_ESP_MARKER, data]) : data;
    sock.send(payload, remote.port, remote.address, (err) => {
      if (err) this.opts.onError?.(err, `send to ${remote.address}:${remote.port}`);
    });
  }

  /** A NAT keepalive (one 0xFF octet, RFC 3948 §2.3) from the NAT-T socket. */
  sendKeepalive(local: Endpoint, remote: Endpoint): void {
    const sock = this.socketFor(local);
    sock.send(Buffer.from([0xff]), remote.port, remote.address, (err) => {
      if (err) this.opts.onError?.(err, `keepalive to ${remote.address}:${remote.port}`);
    });
  }

  private closeOne(address: string, port: number): void {
    const k = `${address}|${port}`;
    const s = this.sockets.get(k);
    if (s) {
      this.sockets.delete(k);
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
  }

  close(): void {
    for (const k of [...this.sockets.keys()]) {
      const [a, p] = k.split('|');
      this.closeOne(a!, Number(p));
    }
  }
}

/**
 * The descriptor of a bound dgram socket. Node has no public accessor; its internal state (under the
 * symbol described 'state symbol') holds the handle. Not `_handle`, which prints a deprecation warning.
 */
function socketFd(sock: object): number {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const fd = sym ? (sock as Record<symbol, { handle?: { fd?: number } } | undefined>)[sym]?.handle?.fd : undefined;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot find the UDP socket descriptor (needed for the IPsec bypass policy and ESP-in-UDP)');
  return fd;
}
