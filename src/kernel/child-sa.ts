// Carries out the engine's XFRM-agnostic KernelActions (src/ike/engine/actions.ts)
// with an XfrmClient, and the make-before-break rekey sequence.
//
// Conventions:
//  - inbound SA: src = spec.remote, dst = spec.local, SPI spec.spiIn, reserved
//    with ALLOCSPI (min = max = spiIn) then completed with UPDSA;
//  - outbound SA: src = spec.local, dst = spec.remote, SPI spec.spiOut (NEWSA);
//  - policies: for every localTs x remoteTs pair (each range split into exact
//    prefixes and port masks) an `out` policy whose template pins spiOut and the
//    reqid, and `in` (+ `fwd` in tunnel mode) policies whose templates match any
//    SPI of the reqid, so the old and the new inbound SA are both accepted
//    during a rekey. The reqid must therefore stay the same across rekeys of a
//    Child SA (config.ts: it is stable per child).
//  - NAT-T: UDP encapsulation with the spec's ports (inbound: remote -> local).
//  - mark/ifId of the spec (0 = none) on SAs and policies alike.
import type { ChildSaKernelSpec, KernelAction, KernelEventInput, SaKeys, TrafficSelectorSpec } from '../ike/engine/actions.js';
import { espAlgorithmFields } from './ike-mapping.js';
import { parseAddress, portRangeToMasks, rangeToPrefixes } from './address.js';
import { addVirtualIp, removeVirtualIp } from './virtual-ip.js';
import {
  isXfrmError,
  SaFlags,
  type Mark,
  type PolicyDir,
  type PolicySpec,
  type SaInfo,
  type SaSpec,
  type Selector,
  type XfrmClient,
} from './xfrm-client.js';

function markOf(spec: ChildSaKernelSpec): Mark | undefined {
  return spec.mark ? { value: spec.mark, mask: 0xffffffff } : undefined;
}

function withMarkIfId<T extends object>(spec: ChildSaKernelSpec, o: T): T & { mark?: Mark; ifId?: number } {
  const out: T & { mark?: Mark; ifId?: number } = { ...o };
  const mark = markOf(spec);
  if (mark) out.mark = mark;
  if (spec.ifId) out.ifId = spec.ifId;
  return out;
}

function lifetimeOf(spec: ChildSaKernelSpec): SaSpec['lifetime'] {
  return {
    softBytes: spec.softBytes,
    hardBytes: spec.hardBytes,
    softPackets: spec.softPackets,
    hardPackets: spec.hardPackets,
    hardAddSeconds: spec.hardSeconds,
  };
}

/** The kernel SA for one direction of a Child SA. */
export function saSpecFor(spec: ChildSaKernelSpec, dir: 'in' | 'out', keys: SaKeys): SaSpec {
  const inbound = dir === 'in';
  const sa: SaSpec = {
    src: inbound ? spec.remote : spec.local,
    dst: inbound ? spec.local : spec.remote,
    spi: inbound ? spec.spiIn : spec.spiOut,
    proto: 'esp',
    mode: spec.mode,
    reqid: spec.reqid,
    // With ESN the kernel wants a non-zero window even on the sending side.
    replayWindow: spec.esn && spec.replayWindow === 0 ? 1 : spec.replayWindow,
    esn: spec.esn,
    lifetime: lifetimeOf(spec),
    ...espAlgorithmFields(spec.encr, spec.integ, keys),
  };
  // TFC padding applies to what we send (RFC 4303 §2.7); the receiver strips it without being told.
  if (!inbound && spec.tfcPad) sa.tfcPad = spec.tfcPad;
  // Tunnel mode carrying another IP version than the outer one (an IPv6 virtual IP over IPv4): the
  // kernel accepts the other inner family only on an SA flagged AF_UNSPEC.
  const outer = parseAddress(spec.local, 'local').version;
  if (spec.mode === 'tunnel' && [...spec.localTs, ...spec.remoteTs].some((t) => parseAddress(t.startAddress, 'startAddress').version !== outer)) {
    sa.flags = SaFlags.AF_UNSPEC;
  }
  if (spec.encap) {
    sa.encap = inbound
      ? { sport: spec.encap.remotePort, dport: spec.encap.localPort }
      : { sport: spec.encap.localPort, dport: spec.encap.remotePort };
  }
  // Transport mode with a single TS pair: restrict the SA to it (checked on input).
  const pairs = selectorPairs(spec);
  if (spec.mode === 'transport' && pairs.length === 1) {
    const p = pairs[0]!;
    sa.selector = inbound ? { ...p.in } : { ...p.out };
  }
  return withMarkIfId(spec, sa);
}

interface SelectorPair {
  /** local -> remote */
  out: Selector;
  /** remote -> local */
  in: Selector;
}

function tsPieces(ts: TrafficSelectorSpec): { prefix: string; port: number; mask: number }[] {
  const ports = portRangeToMasks(ts.startPort, ts.endPort);
  return rangeToPrefixes(ts.startAddress, ts.endAddress).flatMap((p) =>
    ports.map((pm) => ({ prefix: `${p.address}/${p.prefix}`, port: pm.port, mask: pm.mask })));
}

/**
 * Every (local piece, remote piece) combination of the spec's TS, as selectors
 * in both directions. Pairs of different IP versions or disjoint protocols are
 * skipped (they select no packet). ICMP "ports" (type/code) pass through as the
 * kernel encodes them (type in sport, code in dport).
 */
export function selectorPairs(spec: ChildSaKernelSpec): SelectorPair[] {
  const pairs: SelectorPair[] = [];
  for (const l of spec.localTs) {
    for (const r of spec.remoteTs) {
      if (l.protocol && r.protocol && l.protocol !== r.protocol) continue;
      const lv = parseAddress(l.startAddress, 'localTs.startAddress').version;
      const rv = parseAddress(r.startAddress, 'remoteTs.startAddress').version;
      if (lv !== rv) continue;
      const proto = l.protocol || r.protocol;
      for (const lp of tsPieces(l)) {
        for (const rp of tsPieces(r)) {
          pairs.push({
            out: { src: lp.prefix, dst: rp.prefix, proto, sport: lp.port, sportMask: lp.mask, dport: rp.port, dportMask: rp.mask },
            in: { src: rp.prefix, dst: lp.prefix, proto, sport: rp.port, sportMask: rp.mask, dport: lp.port, dportMask: lp.mask },
          });
        }
      }
    }
  }
  return pairs;
}

/** More specific selectors get a lower (preferred) priority value. */
function priorityOf(sel: Selector): number {
  const plen = (s: string) => Number(s.split('/')[1]);
  let p = 200_000 - (plen(sel.src) + plen(sel.dst)) * 256;
  if (sel.proto) p -= 128;
  if (sel.sportMask) p -= 32;
  if (sel.dportMask) p -= 32;
  return p;
}

/** The policies of a Child SA (out, in and in tunnel mode fwd). */
export function policySpecsFor(spec: ChildSaKernelSpec): PolicySpec[] {
  const out: PolicySpec[] = [];
  for (const pair of selectorPairs(spec)) {
    out.push(outPolicyFor(spec, pair.out));
    const inTemplate = { src: spec.remote, dst: spec.local, proto: 'esp' as const, mode: spec.mode, reqid: spec.reqid };
    const dirs: PolicyDir[] = spec.mode === 'tunnel' ? ['in', 'fwd'] : ['in'];
    for (const dir of dirs) {
      out.push(withMarkIfId(spec, { selector: pair.in, dir, priority: priorityOf(pair.in), templates: [inTemplate] }));
    }
  }
  return out;
}

function outPolicyFor(spec: ChildSaKernelSpec, sel: Selector): PolicySpec {
  return withMarkIfId(spec, {
    selector: sel,
    dir: 'out' as const,
    priority: priorityOf(sel),
    templates: [{ src: spec.local, dst: spec.remote, spi: spec.spiOut, proto: 'esp' as const, mode: spec.mode, reqid: spec.reqid }],
  });
}

function inboundId(spec: ChildSaKernelSpec) {
  return withMarkIfId(spec, { dst: spec.local, spi: spec.spiIn, proto: 'esp' as const });
}

function outboundId(spec: ChildSaKernelSpec) {
  return withMarkIfId(spec, { dst: spec.remote, spi: spec.spiOut, proto: 'esp' as const });
}

async function ignoreMissing(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (e) {
    // already gone (hard expiry, flush, earlier delete): the goal is reached
    if (isXfrmError(e, 'ENOENT') || isXfrmError(e, 'ESRCH')) return;
    throw e;
  }
}

export async function installInboundSa(client: XfrmClient, spec: ChildSaKernelSpec, keys: SaKeys): Promise<void> {
  const sa = saSpecFor(spec, 'in', keys); // validate before reserving anything
  const alloc: Parameters<XfrmClient['allocSpi']>[0] = {
    src: spec.remote, dst: spec.local, min: spec.spiIn, max: spec.spiIn, proto: 'esp', mode: spec.mode, reqid: spec.reqid,
  };
  if (sa.mark) alloc.mark = sa.mark;
  if (sa.ifId) alloc.ifId = sa.ifId;
  const spi = await client.allocSpi(alloc);
  if (spi !== spec.spiIn) throw new Error(`ALLOCSPI returned ${spi} instead of ${spec.spiIn}`);
  try {
    await client.updateSa(sa);
  } catch (e) {
    await ignoreMissing(client.deleteSa(inboundId(spec)));
    throw e;
  }
}

export async function installOutboundSa(client: XfrmClient, spec: ChildSaKernelSpec, keys: SaKeys): Promise<void> {
  await client.addSa(saSpecFor(spec, 'out', keys));
}

export async function installPolicies(client: XfrmClient, spec: ChildSaKernelSpec): Promise<void> {
  // UPDPOLICY (create or replace) so that re-installing after a crash or a
  // reconnect replaces stale policies with the same selector instead of failing.
  // All sent at once on the one netlink socket (the kernel takes them in order): one round trip, not three.
  const specs = policySpecsFor(spec);
  const results = await Promise.allSettled(specs.map((p) => client.updatePolicy(p)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    const done = specs.filter((_, i) => results[i]!.status === 'fulfilled');
    await Promise.all(done.map((p) => ignoreMissing(client.deletePolicy(policyIdOf(p)))));
    throw failed.reason;
  }
}

/** Make-before-break: one UPDPOLICY per out policy re-points its template to spec.spiOut. */
export async function updateOutboundPolicy(client: XfrmClient, spec: ChildSaKernelSpec): Promise<void> {
  await Promise.all(selectorPairs(spec).map((pair) => client.updatePolicy(outPolicyFor(spec, pair.out))));
}

function policyIdOf(p: PolicySpec) {
  const id: { selector: Selector; dir: PolicyDir; mark?: Mark; ifId?: number } = { selector: p.selector, dir: p.dir };
  if (p.mark) id.mark = p.mark;
  if (p.ifId) id.ifId = p.ifId;
  return id;
}

export async function deletePolicies(client: XfrmClient, spec: ChildSaKernelSpec): Promise<void> {
  await Promise.all(policySpecsFor(spec).map((p) => ignoreMissing(client.deletePolicy(policyIdOf(p)))));
}

export async function deleteInboundSa(client: XfrmClient, spec: ChildSaKernelSpec): Promise<void> {
  await ignoreMissing(client.deleteSa(inboundId(spec)));
}

export async function deleteOutboundSa(client: XfrmClient, spec: ChildSaKernelSpec): Promise<void> {
  await ignoreMissing(client.deleteSa(outboundId(spec)));
}

/** Current counters of both SAs; lastUse* are wall-clock ms (0 = never used). */
export async function queryCounters(client: XfrmClient, spec: ChildSaKernelSpec): Promise<Extract<KernelEventInput, { type: 'counters' }>> {
  const get = async (id: ReturnType<typeof inboundId>): Promise<SaInfo | undefined> => {
    try {
      return await client.getSa(id);
    } catch (e) {
      if (isXfrmError(e, 'ENOENT') || isXfrmError(e, 'ESRCH')) return undefined;
      throw e;
    }
  };
  const [i, o] = await Promise.all([get(inboundId(spec)), get(outboundId(spec))]);
  const ev: Extract<KernelEventInput, { type: 'counters' }> = {
    type: 'counters',
    childId: spec.childId,
    bytesIn: i?.current.bytes ?? 0,
    bytesOut: o?.current.bytes ?? 0,
    packetsIn: i?.current.packets ?? 0,
    packetsOut: o?.current.packets ?? 0,
  };
  if (i?.current.useTime) ev.lastUseIn = i.current.useTime * 1000;
  if (o?.current.useTime) ev.lastUseOut = o.current.useTime * 1000;
  return ev;
}

/**
 * Carries out one KernelAction; throws the kernel's error (XfrmError) or a
 * TypeError for a spec the kernel layer cannot express. Returns the counters
 * event for queryCounters.
 */
export async function carryOutKernelAction(client: XfrmClient, action: KernelAction): Promise<KernelEventInput | undefined> {
  switch (action.op) {
    case 'installInboundSa':
      return void (await installInboundSa(client, action.spec, action.keys));
    case 'installOutboundSa':
      return void (await installOutboundSa(client, action.spec, action.keys));
    case 'installPolicies':
      return void (await installPolicies(client, action.spec));
    case 'updateOutboundPolicy':
      return void (await updateOutboundPolicy(client, action.spec));
    case 'updateSaEncap':
      // XFRM_MSG_UPDSA on a valid SA replaces its encapsulation template in place.
      await client.updateSa(saSpecFor(action.spec, 'in', action.keysIn));
      return void (await client.updateSa(saSpecFor(action.spec, 'out', action.keysOut)));
    case 'deleteInboundSa':
      return void (await deleteInboundSa(client, action.spec));
    case 'deleteOutboundSa':
      return void (await deleteOutboundSa(client, action.spec));
    case 'deletePolicies':
      return void (await deletePolicies(client, action.spec));
    case 'queryCounters':
      return queryCounters(client, action.spec);
    case 'addVirtualIp':
      return void (await addVirtualIp(action.vip));
    case 'removeVirtualIp':
      return void (await removeVirtualIp(action.vip));
    default: {
      const never: never = action;
      throw new TypeError(`unknown kernel action ${(never as { op: string }).op}`);
    }
  }
}

/**
 * Applies a KernelAction for the daemon: the result to feed back into
 * Engine.kernelEvent — counters for queryCounters, `action-failed` (with the
 * kernel's message) when the kernel refused, else undefined. Never throws.
 */
export async function applyKernelAction(client: XfrmClient, action: KernelAction): Promise<KernelEventInput | undefined> {
  try {
    return await carryOutKernelAction(client, action);
  } catch (e) {
    return { type: 'action-failed', action, message: e instanceof Error ? e.message : String(e) };
  }
}

export interface RekeyKeys {
  inbound: SaKeys;
  outbound: SaKeys;
}

/** Make-before-break step 1: the new inbound SA (install on both peers before step 2). */
export async function prepareRekey(client: XfrmClient, newSpec: ChildSaKernelSpec, keys: RekeyKeys): Promise<void> {
  await installInboundSa(client, newSpec, keys.inbound);
}

export interface RekeyTiming {
  /** How long the old inbound SA keeps accepting packets after the switch (ms, default 5000). */
  graceMs?: number;
  /**
   * Pause between UPDPOLICY and deleting the old outbound SA (ms, default 100):
   * a packet that resolved its bundle just before the UPDPOLICY may still be
   * in xfrm_output on another CPU, and deleting its SA under it drops it
   * (XfrmOutStateInvalid).
   */
  drainMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Make-before-break steps 2-5: new outbound SA (idle while the policy names the
 * old SPI), UPDPOLICY to the new SPI, delete the old outbound SA (after
 * `drainMs`), and after `graceMs` the old inbound SA (packets in flight under
 * the old SPI are still accepted meanwhile). Resolves after step 4; `retired`
 * settles after step 5.
 */
export async function completeRekey(
  client: XfrmClient,
  oldSpec: ChildSaKernelSpec,
  newSpec: ChildSaKernelSpec,
  keys: RekeyKeys,
  opts: RekeyTiming = {},
): Promise<{ retired: Promise<void> }> {
  const graceMs = opts.graceMs ?? 5000;
  const drainMs = opts.drainMs ?? 100;
  if (oldSpec.reqid !== newSpec.reqid) throw new TypeError('newSpec.reqid: must equal the old reqid (inbound policies match by reqid)');
  await installOutboundSa(client, newSpec, keys.outbound);
  try {
    await updateOutboundPolicy(client, newSpec);
  } catch (e) {
    await deleteOutboundSa(client, newSpec);
    throw e;
  }
  if (drainMs > 0) await sleep(drainMs);
  await deleteOutboundSa(client, oldSpec);
  const retired = new Promise<void>((resolve, reject) => {
    setTimeout(() => {
      if (client.closed) return resolve();
      deleteInboundSa(client, oldSpec).then(resolve, reject);
    }, graceMs);
  });
  retired.catch(() => undefined); // observed by whoever awaits it; never unhandled
  return { retired };
}

/** The whole make-before-break swap on one host (see prepareRekey/completeRekey). */
export async function makeBeforeBreakSwap(
  client: XfrmClient,
  oldSpec: ChildSaKernelSpec,
  newSpec: ChildSaKernelSpec,
  keys: RekeyKeys,
  opts: RekeyTiming = {},
): Promise<{ retired: Promise<void> }> {
  await prepareRekey(client, newSpec, keys);
  try {
    return await completeRekey(client, oldSpec, newSpec, keys, opts);
  } catch (e) {
    await deleteInboundSa(client, newSpec);
    throw e;
  }
}

// --------------------------------------------------- stale state cleanup ---

/**
 * What this daemon owns in the kernel: SAs whose reqid is one of `reqids` or lies in
 * [reqidMin, reqidMax] and policies with a template of such a reqid, or — when
 * `mark` is given — SAs/policies carrying that mark value. The daemon assigns
 * reqids from its own range (config.ts) so a restart can find what a crashed
 * earlier run left behind and remove it before installing anything.
 */
export interface Ownership {
  reqids?: Iterable<number>;
  reqidMin?: number;
  reqidMax?: number;
  mark?: number;
}

function ownsReqid(o: Ownership): (reqid: number) => boolean {
  if (o.reqids !== undefined) {
    const set = new Set(o.reqids);
    return (r) => set.has(r);
  }
  if (o.reqidMin === undefined || o.reqidMax === undefined) throw new TypeError('ownership: give reqids, reqidMin and reqidMax, or mark');
  return (r) => r >= o.reqidMin! && r <= o.reqidMax!;
}

function owns(o: Ownership, ours: (reqid: number) => boolean, reqids: number[], mark?: { value: number }): boolean {
  if (o.mark !== undefined) return mark?.value === o.mark;
  return reqids.some(ours);
}

export async function listOwnedState(client: XfrmClient, o: Ownership) {
  const ours = o.mark !== undefined ? () => false : ownsReqid(o);
  // One dump of each table, however many reqids: a dump per reqid would cost O(N²) with thousands of tunnels.
  const [sas, policies] = await Promise.all([client.dumpSas(), client.dumpPolicies()]);
  return {
    sas: sas.filter((s) => owns(o, ours, [s.reqid], s.mark)),
    policies: policies.filter((p) => owns(o, ours, p.templates.map((t) => t.reqid), p.mark)),
  };
}

/** Deletes everything listOwnedState finds; returns how many SAs and policies went. */
export async function flushOwned(client: XfrmClient, o: Ownership): Promise<{ sas: number; policies: number }> {
  const { sas, policies } = await listOwnedState(client, o);
  await Promise.all([
    ...sas.map((s) => ignoreMissing(client.deleteSa({ dst: s.dst, spi: s.spi, proto: s.proto, src: s.src, ...(s.mark ? { mark: s.mark } : {}) }))),
    ...policies.map((p) => ignoreMissing(client.deletePolicy({ index: p.index, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId ? { ifId: p.ifId } : {}) }))),
  ]);
  return { sas: sas.length, policies: policies.length };
}
