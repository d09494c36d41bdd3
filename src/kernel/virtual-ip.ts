// Virtual IPs (RFC 7296 §2.19) on a local interface. The address a responder assigned us is the
// inner source address of our Child SAs; it is put on the loopback device (like strongSwan's
// install_virtual_ip_on = lo) so that local sockets can bind to it and the kernel accepts traffic
// addressed to it. Addresses are configured over rtnetlink by iproute2's `ip`, the one tool every
// host with XFRM has.
import { execFile } from 'node:child_process';
import type { VirtualIpSpec } from '../ike/engine/actions.js';
import { parseAddress } from './address.js';

/** The device virtual IPs go on. */
export const VIRTUAL_IP_DEVICE = 'lo';

export class VirtualIpError extends Error {
  override name = 'VirtualIpError';
}

/** Runs `ip`; resolves with stderr on failure instead of throwing, so callers can classify it. */
function ip(args: string[]): Promise<{ ok: true } | { ok: false; message: string }> {
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) resolve({ ok: true });
      else resolve({ ok: false, message: (stderr || err.message).toString().trim() });
    });
  });
}

function prefixArg(vip: VirtualIpSpec): { family: '-4' | '-6'; cidr: string } {
  const { address, version } = parseAddress(vip.address, 'virtual IP');
  const max = version === 4 ? 32 : 128;
  if (!Number.isInteger(vip.prefixLength) || vip.prefixLength < 1 || vip.prefixLength > max) {
    throw new VirtualIpError(`virtual IP ${address}: prefix length ${vip.prefixLength} must be 1..${max}`);
  }
  return { family: version === 4 ? '-4' : '-6', cidr: `${address}/${vip.prefixLength}` };
}

export interface VirtualIpOptions {
  /** Device (default lo). */
  device?: string;
  /** A named network namespace (`ip -n`) instead of the process's own; for tests. */
  netns?: string;
}

/** `ip addr add ADDRESS/PREFIX dev lo`; an address that is there already counts as added. */
export async function addVirtualIp(vip: VirtualIpSpec, opts: VirtualIpOptions = {}): Promise<void> {
  const { family, cidr } = prefixArg(vip);
  const device = opts.device ?? VIRTUAL_IP_DEVICE;
  // nodad: the address is ours by assignment, duplicate address detection would only delay it.
  const r = await ip([...(opts.netns ? ['-n', opts.netns] : []), family, 'addr', 'add', cidr, 'dev', device, ...(family === '-6' ? ['nodad'] : [])]);
  if (!r.ok && !/exists|already assigned/i.test(r.message)) throw new VirtualIpError(`adding virtual IP ${cidr} to ${device}: ${r.message}`);
}

/** `ip addr del ADDRESS/PREFIX dev lo`; an address that is gone already counts as removed. */
export async function removeVirtualIp(vip: VirtualIpSpec, opts: VirtualIpOptions = {}): Promise<void> {
  const { family, cidr } = prefixArg(vip);
  const device = opts.device ?? VIRTUAL_IP_DEVICE;
  const r = await ip([...(opts.netns ? ['-n', opts.netns] : []), family, 'addr', 'del', cidr, 'dev', device]);
  if (!r.ok && !/cannot assign|not found|no such/i.test(r.message)) throw new VirtualIpError(`removing virtual IP ${cidr} from ${device}: ${r.message}`);
}

/** The routing table for routes that give traffic into a tunnel its virtual IP as source (strongSwan's choice). */
export const VIRTUAL_IP_ROUTE_TABLE = 220;

/** Routes for the remote selectors of a Child SA whose local selector is a virtual IP. */
export interface SourceRoutes {
  /** The virtual IP: the source the host's own traffic to `destinations` should use. */
  vip: string;
  /** The peer's outer address: the routes go out the way traffic to it goes. */
  peer: string;
  /** CIDRs (of the virtual IP's IP version). */
  destinations: string[];
}

/** How traffic to `address` leaves: `ip route get` -> device and next hop. */
async function routeTo(address: string, netnsArgs: string[]): Promise<{ dev: string; via?: string }> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('ip', [...netnsArgs, 'route', 'get', address], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new VirtualIpError(`no route to the peer ${address}: ${(stderr || err.message).toString().trim()}`));
      else resolve(stdout.toString());
    });
  });
  const dev = /\bdev (\S+)/.exec(out)?.[1];
  if (!dev) throw new VirtualIpError(`no route to the peer ${address}: ${out.trim()}`);
  const via = /\bvia (\S+)/.exec(out)?.[1];
  return via ? { dev, via } : { dev };
}

/**
 * `ip route replace DEST [via HOP] dev DEV src VIP table 220` for each destination, and the rule
 * that consults table 220, so the host's own traffic into the tunnel leaves from the virtual IP
 * and matches the Child SA's policies.
 */
export async function installSourceRoutes(r: SourceRoutes, opts: VirtualIpOptions = {}): Promise<void> {
  const { address: vip, version } = parseAddress(r.vip, 'virtual IP');
  const family = version === 4 ? '-4' : '-6';
  const ns = opts.netns ? ['-n', opts.netns] : [];
  const table = String(VIRTUAL_IP_ROUTE_TABLE);
  const rules = await new Promise<string>((resolve) => execFile('ip', [...ns, family, 'rule', 'show', 'table', table], (_e, stdout) => resolve(String(stdout ?? ''))));
  if (rules.trim() === '') {
    const added = await ip([...ns, family, 'rule', 'add', 'priority', table, 'table', table]);
    if (!added.ok && !/exists/i.test(added.message)) throw new VirtualIpError(`adding the rule for table ${table}: ${added.message}`);
  }
  const hop = await routeTo(r.peer, ns);
  // A next hop of the other IP version (IPv6 inside IPv4) cannot be named: the device is enough,
  // the packet is sent to the peer's outer address after the transformation.
  const via = hop.via && parseAddress(hop.via, 'next hop').version === version ? ['via', hop.via] : [];
  for (const dst of r.destinations) {
    const res = await ip([...ns, family, 'route', 'replace', dst, ...via, 'dev', hop.dev, 'src', vip, 'table', table]);
    if (!res.ok) throw new VirtualIpError(`routing ${dst} from virtual IP ${vip}: ${res.message}`);
  }
}

/** Removes the routes installSourceRoutes added; routes that are gone already are no error. */
export async function removeSourceRoutes(r: SourceRoutes, opts: VirtualIpOptions = {}): Promise<void> {
  const { address: vip, version } = parseAddress(r.vip, 'virtual IP');
  const family = version === 4 ? '-4' : '-6';
  const ns = opts.netns ? ['-n', opts.netns] : [];
  for (const dst of r.destinations) {
    const res = await ip([...ns, family, 'route', 'del', dst, 'src', vip, 'table', String(VIRTUAL_IP_ROUTE_TABLE)]);
    if (!res.ok && !/no such process|not found|cannot find/i.test(res.message)) throw new VirtualIpError(`removing the route to ${dst} from virtual IP ${vip}: ${res.message}`);
  }
}
