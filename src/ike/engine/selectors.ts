// Traffic selectors (RFC 7296 §2.9): configured selectors as payloads, narrowing, and the responder's
// choice of a Child SA configuration.
import { isIPv4 } from 'node:net';
import type { ChildConfig, TrafficSelectorConfig } from '../config.js';
import { NotifyType, PayloadType, TsType } from '../codec/constants.js';
import { addressRange, tsPayload } from '../codec/helpers.js';
import type { AddressRangeSelector, Payload, TrafficSelector } from '../codec/types.js';
import { ipv4ToBytes, ipv6ToBytes } from '../crypto/index.js';
import type { TrafficSelectorSpec } from './actions.js';

export function addrBytes(text: string): Buffer {
  return isIPv4(text) ? ipv4ToBytes(text) : ipv6ToBytes(text);
}

/** "10.1.0.0/16", "192.0.2.1", "10.0.0.1-10.0.0.9" -> an address range selector. */
export function selectorOf(ts: TrafficSelectorConfig): AddressRangeSelector {
  const text = ts.cidr.trim();
  let start: Buffer;
  let end: Buffer;
  if (text.includes('-')) {
    const [a, b] = text.split('-') as [string, string];
    start = addrBytes(a.trim());
    end = addrBytes(b.trim());
  } else {
    const [addr, prefixText] = text.split('/') as [string, string | undefined];
    start = Buffer.from(addrBytes(addr));
    const bits = start.length * 8;
    const prefix = prefixText === undefined ? bits : Number(prefixText);
    end = Buffer.from(start);
    for (let i = 0; i < start.length; i++) {
      const keep = Math.max(0, Math.min(8, prefix - i * 8));
      const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
      start[i] = start[i]! & mask;
      end[i] = start[i]! | (~mask & 0xff);
    }
  }
  return addressRange(start, end, ts.protocol, ts.startPort, ts.endPort);
}

export function intersect(a: AddressRangeSelector, b: AddressRangeSelector): AddressRangeSelector | undefined {
  if (a.tsType !== b.tsType) return undefined;
  if (a.ipProtocol !== 0 && b.ipProtocol !== 0 && a.ipProtocol !== b.ipProtocol) return undefined;
  const start = Buffer.compare(a.startAddr, b.startAddr) >= 0 ? a.startAddr : b.startAddr;
  const end = Buffer.compare(a.endAddr, b.endAddr) <= 0 ? a.endAddr : b.endAddr;
  if (Buffer.compare(start, end) > 0) return undefined;
  const sp = Math.max(a.startPort, b.startPort);
  const ep = Math.min(a.endPort, b.endPort);
  if (sp > ep) return undefined;
  return { tsType: a.tsType, ipProtocol: a.ipProtocol || b.ipProtocol, startPort: sp, endPort: ep, startAddr: Buffer.from(start), endAddr: Buffer.from(end) };
}

/** RFC 7296 §2.9 narrowing: the part of the peer's selectors our configuration allows. */
export function narrow(offered: readonly TrafficSelector[], configured: readonly AddressRangeSelector[]): AddressRangeSelector[] {
  const out: AddressRangeSelector[] = [];
  for (const o of offered) {
    if (o.tsType !== TsType.IPV4_ADDR_RANGE && o.tsType !== TsType.IPV6_ADDR_RANGE) continue;
    for (const c of configured) {
      const i = intersect(o as AddressRangeSelector, c);
      if (i) out.push(i);
    }
  }
  // A selector inside another one of the result (e.g. a triggering packet's within the configured
  // range) adds nothing but a redundant policy: keep the wider one.
  return out.filter((s, k) => !out.some((w, j) => j !== k && covers(w, s) && (!covers(s, w) || j < k)));
}

export function covers(w: AddressRangeSelector, s: AddressRangeSelector): boolean {
  return w.tsType === s.tsType && (w.ipProtocol === 0 || w.ipProtocol === s.ipProtocol) && w.startPort <= s.startPort && w.endPort >= s.endPort
    && Buffer.compare(w.startAddr, s.startAddr) <= 0 && Buffer.compare(w.endAddr, s.endAddr) >= 0;
}

/** The packet that triggered a Child SA (kernel ACQUIRE), as our (local) and the peer's (remote) selector. */
export interface PacketSelectors {
  local: AddressRangeSelector;
  remote: AddressRangeSelector;
}

export function packetSelectors(sel: { src: TrafficSelectorSpec; dst: TrafficSelectorSpec } | undefined): PacketSelectors | undefined {
  if (!sel) return undefined;
  const one = (t: TrafficSelectorSpec): AddressRangeSelector => ({
    ...selectorOf({ cidr: `${t.startAddress}-${t.endAddress}`, protocol: t.protocol, startPort: t.startPort, endPort: t.endPort }),
    ipProtocol: t.protocol,
    startPort: t.startPort,
    endPort: t.endPort,
  });
  try {
    return { local: one(sel.src), remote: one(sel.dst) };
  } catch {
    return undefined;
  }
}

/**
 * TSi/TSr of a request (RFC 7296 §2.9): with a triggering packet its specific selectors come first, so
 * that a responder that narrows (or needs a single pair) can pick them; `packetOnly` after SINGLE_PAIR_REQUIRED.
 */
export function requestSelectors(cfg: ChildConfig, packet: PacketSelectors | undefined, packetOnly = false): [Payload, Payload] {
  const local = cfg.localTs.map(selectorOf);
  const remote = cfg.remoteTs.map(selectorOf);
  if (!packet) return [tsPayload(PayloadType.TSi, local), tsPayload(PayloadType.TSr, remote)];
  if (packetOnly) return [tsPayload(PayloadType.TSi, [packet.local]), tsPayload(PayloadType.TSr, [packet.remote])];
  return [tsPayload(PayloadType.TSi, [packet.local, ...local]), tsPayload(PayloadType.TSr, [packet.remote, ...remote])];
}

/** A reauthentication asks for exactly the selectors the old Child SA had negotiated. */
export function reauthSelectors(rc: { localTs: TrafficSelector[]; remoteTs: TrafficSelector[] }): [Payload, Payload] {
  return [tsPayload(PayloadType.TSi, rc.localTs), tsPayload(PayloadType.TSr, rc.remoteTs)];
}

export const singleAddress = (s: AddressRangeSelector) => s.startAddr.equals(s.endAddr);

export type ChildPick = { cfg: ChildConfig; remote: AddressRangeSelector[]; local: AddressRangeSelector[] } | { refuse: NotifyType.TS_UNACCEPTABLE | NotifyType.SINGLE_PAIR_REQUIRED; reason: string };

/**
 * Responder: the first Child SA config whose selectors accept part of TSi/TSr, narrowed (RFC 7296 §2.9).
 * A config with `singlePair` accepts only one address pair: the narrowed result if it already is one,
 * else the first (packet) selectors of TSi and TSr if they are single addresses it allows, else
 * SINGLE_PAIR_REQUIRED (§3.10.1) so the initiator asks again for just the traffic it forwards.
 */
export function pickChildConfig(
  children: readonly ChildConfig[],
  tsi: readonly TrafficSelector[],
  tsr: readonly TrafficSelector[],
  acceptable: (cfg: ChildConfig) => boolean = () => true,
  /** Narrows the peer's side further, e.g. to the virtual IP leased to it. */
  narrowRemote: (sels: AddressRangeSelector[]) => AddressRangeSelector[] = (sels) => sels,
): ChildPick {
  let needSingle = false;
  const candidates: Array<{ cfg: ChildConfig; remote: AddressRangeSelector[]; local: AddressRangeSelector[]; exact: boolean }> = [];
  for (const cfg of children) {
    const remote = narrowRemote(narrow(tsi, cfg.remoteTs.map(selectorOf)));
    const local = narrow(tsr, cfg.localTs.map(selectorOf));
    if (!remote.length || !local.length) continue;
    const exact = sameSelectors(cfg.remoteTs.map(selectorOf), tsi) && sameSelectors(cfg.localTs.map(selectorOf), tsr);
    if (!cfg.singlePair || (remote.length === 1 && local.length === 1 && singleAddress(remote[0]!) && singleAddress(local[0]!))) {
      candidates.push({ cfg, remote, local, exact });
      continue;
    }
    const firstRemote = narrowRemote(narrow(tsi.slice(0, 1), cfg.remoteTs.map(selectorOf)));
    const firstLocal = narrow(tsr.slice(0, 1), cfg.localTs.map(selectorOf));
    if (firstRemote.length === 1 && firstLocal.length === 1 && singleAddress(firstRemote[0]!) && singleAddress(firstLocal[0]!)) {
      candidates.push({ cfg, remote: firstRemote, local: firstLocal, exact });
      continue;
    }
    needSingle = true;
  }
  // The Child SA config whose selectors are exactly the requested ones first (several may overlap, e.g.
  // one for ICMP inside one for the whole subnet), then in configuration order; the first whose
  // proposals the request can meet wins; failing that the best match, for the caller's NO_PROPOSAL_CHOSEN.
  candidates.sort((a, b) => Number(b.exact) - Number(a.exact));
  const best = candidates.find((c) => acceptable(c.cfg)) ?? candidates[0];
  if (best) return { cfg: best.cfg, remote: best.remote, local: best.local };
  return needSingle
    ? { refuse: NotifyType.SINGLE_PAIR_REQUIRED, reason: 'only a single address pair is acceptable (SINGLE_PAIR_REQUIRED)' }
    : { refuse: NotifyType.TS_UNACCEPTABLE, reason: 'traffic selectors unacceptable' };
}

export function sameSelectors(a: readonly AddressRangeSelector[], b: readonly TrafficSelector[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i] as AddressRangeSelector;
    return 'startAddr' in y && covers(x, y) && covers(y, x) && x.ipProtocol === y.ipProtocol;
  });
}

export function tsText(ts: TrafficSelector): string {
  if (!('startAddr' in ts)) return 'opaque';
  const t = (b: Buffer) => (b.length === 4 ? [...b].join('.') : b.toString('hex').replace(/(.{4})(?!$)/g, '$1:'));
  const range = `${t(ts.startAddr)}-${t(ts.endAddr)}`;
  return ts.ipProtocol === 0 ? range : `${range}[${ts.ipProtocol}/${ts.startPort}-${ts.endPort}]`;
}
