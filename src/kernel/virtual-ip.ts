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
