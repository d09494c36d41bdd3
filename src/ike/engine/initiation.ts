// Initiating connections: the first IKE SA of a connection (or a Child SA in an existing one),
// `daemon.initiate_limit` on IKE SAs being set up at once, retries of initiations the peer does not
// answer (`ike.keyingtries`), and the `close_action` of Child SAs the peer closed.
import type { ChildConfig, ConnectionConfig } from '../config.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { hex, IKE_PORT, type IkeSaState, type InitiationAttempt, RETRY_BASE_MS, RETRY_MAX_MS, retryTimer } from './state.js';
import type { PacketSelectors } from './selectors.js';
import { createChildSa } from './child-sa.js';
import { sendInitRequest } from './ike-sa-init.js';

export function initiate(core: EngineCore, now: number, connection: string, childName?: string, packet?: PacketSelectors): Action[] {
  const conn = core.config.connections.find((c) => c.name === connection);
  if (!conn) throw new Error(`unknown connection '${connection}'`);
  const remoteAddr = conn.remote.addrs.find((a) => a !== '%any');
  const localAddr = conn.local.addrs[0];
  if (!remoteAddr || !localAddr) throw new Error(`connection '${connection}' has no remote or local address to initiate to`);
  const child = (childName ? conn.children.find((c) => c.name === childName) : undefined) ?? conn.children.find((c) => c.startAction === 'start') ?? conn.children[0];
  if (childName && child?.name !== childName) throw new Error(`connection '${connection}' has no child '${childName}'`);
  const existing = [...core.sas.values()].find((s) => s.conn.name === conn.name && s.state === 'established');
  if (existing && child) {
    if ([...existing.children.values()].some((c) => c.cfg.name === child.name)) throw new Error(`child '${child.name}' of '${connection}' is already up`);
    return createChildSa(core, now, existing, child, undefined, packet);
  }
  // An IKE SA of ours for the connection is still being set up: join it instead of starting a
  // second one (which would negotiate the same Child SA twice and install its policies twice).
  const connecting = [...core.sas.values()].find((s) => s.conn.name === conn.name && s.initiator && (s.state === 'init-sent' || s.state === 'auth-sent'));
  if (connecting) {
    if (child && connecting.authChild?.cfg !== child) connecting.extraChildren.add(child);
    return [];
  }
  const pending = core.attempts.get(conn.name);
  if (pending && core.waitingInitiations.has(conn.name)) {
    // Already waiting for a slot: ask for this Child SA too when its turn comes.
    if (child && !pending.children.includes(child.name)) pending.children.push(child.name);
    return [];
  }
  // A new initiation (also one an operator or a packet asks for while a retry waits): tries start again.
  const attempt: InitiationAttempt = { children: child ? [child.name] : [], packet, tries: 1 };
  if (pending && child) for (const c of pending.children) if (!attempt.children.includes(c)) attempt.children.push(c);
  core.attempts.set(conn.name, attempt);
  return [...core.cancel(retryTimer(conn.name)), ...launchInitiation(core, now, conn, attempt)];
}

/** IKE SAs we are setting up as initiator (IKE_SA_INIT or IKE_AUTH outstanding). */
export function initiating(core: EngineCore): number {
  let n = 0;
  for (const s of core.sas.values()) if (s.initiator && (s.state === 'init-sent' || s.state === 'auth-sent')) n++;
  return n;
}

/** Start the IKE SA of an attempt now, or queue it while `initiateLimit` IKE SAs are being set up. */
export function launchInitiation(core: EngineCore, now: number, conn: ConnectionConfig, attempt: InitiationAttempt): Action[] {
  const limit = core.config.initiateLimit ?? 0;
  if (limit > 0 && initiating(core) >= limit) {
    core.waitingInitiations.add(conn.name);
    return [];
  }
  const remoteAddr = conn.remote.addrs.find((a) => a !== '%any');
  const localAddr = conn.local.addrs[0];
  if (!remoteAddr || !localAddr) return [];
  const children = attempt.children.map((n) => conn.children.find((c) => c.name === n)).filter((c): c is ChildConfig => c !== undefined);
  const spiI = core.newIkeSpi();
  const ike = core.newIkeSa(conn, true, spiI, Buffer.alloc(8), { address: localAddr, port: conn.local.port ?? IKE_PORT }, { address: remoteAddr, port: conn.remote.port ?? IKE_PORT }, now);
  const [first, ...rest] = children;
  if (first) ike.authChild = { cfg: first, spiIn: 0, sent: [] };
  if (first && attempt.packet) ike.authChildPacket = attempt.packet;
  for (const c of rest) ike.extraChildren.add(c);
  core.sas.set(hex(spiI), ike);
  return sendInitRequest(core, now, ike, undefined, undefined);
}

/** After an input: start waiting initiations while fewer than `initiateLimit` IKE SAs are being set up. */
export function admitWaiting(core: EngineCore, now: number, out: Action[]): Action[] {
  if (core.waitingInitiations.size === 0) return out;
  const limit = core.config.initiateLimit ?? 0;
  let busy = initiating(core);
  for (const name of [...core.waitingInitiations]) {
    if (limit > 0 && busy >= limit) break;
    core.waitingInitiations.delete(name);
    const conn = core.config.connections.find((c) => c.name === name);
    const attempt = core.attempts.get(name);
    if (!conn || !attempt || hasIkeSaFor(core, name)) continue;
    out.push(...launchInitiation(core, now, conn, attempt));
    busy++;
  }
  return out;
}

/** An IKE SA of the connection is up or being set up (either role). */
export function hasIkeSaFor(core: EngineCore, connection: string): boolean {
  for (const s of core.sas.values()) if (s.conn.name === connection && s.state !== 'deleting' && s.state !== 'rekeyed' && !s.reauthOf) return true;
  return false;
}

/** Stop retrying or queueing a connection's initiation (it came up, or the operator or a reload ended it). */
export function forgetAttempt(core: EngineCore, connection: string): Action[] {
  core.attempts.delete(connection);
  core.waitingInitiations.delete(connection);
  return core.cancel(retryTimer(connection));
}

/**
 * Our IKE_SA_INIT or IKE_AUTH went unanswered: try again after a jittered, doubling delay until
 * `ike.keyingtries` attempts were made (0 = forever). The jitter spreads many connections that
 * failed together (a peer that was down) over time.
 */
export function retryInitiation(core: EngineCore, now: number, conn: ConnectionConfig, reason: string): Action[] {
  const attempt = core.attempts.get(conn.name);
  if (!attempt || core.config.connections.find((c) => c.name === conn.name) !== conn) return [];
  const limit = conn.ike.keyingtries ?? 1;
  if (limit !== 0 && attempt.tries >= limit) {
    core.attempts.delete(conn.name);
    return [core.event({ type: 'error', connection: conn.name, message: `giving up establishing the connection after ${attempt.tries} attempt${attempt.tries === 1 ? '' : 's'} (ike.keyingtries ${limit}): ${reason}` })];
  }
  const base = Math.min(RETRY_BASE_MS * 2 ** (attempt.tries - 1), RETRY_MAX_MS);
  const delay = Math.round(base * (1 + core.rng(2).readUInt16BE(0) / 0xffff));
  attempt.tries++;
  return [
    core.event({ type: 'notice', connection: conn.name, message: `${reason}; attempt ${attempt.tries}${limit ? ` of ${limit}` : ''} in ${(delay / 1000).toFixed(1)} s` }),
    core.arm(retryTimer(conn.name), now + delay, (t) => retryNow(core, t, conn.name)),
  ];
}

export function retryNow(core: EngineCore, now: number, name: string): Action[] {
  const conn = core.config.connections.find((c) => c.name === name);
  const attempt = core.attempts.get(name);
  if (!conn || !attempt || conn.passive) return forgetAttempt(core, name);
  if (hasIkeSaFor(core, name)) return forgetAttempt(core, name);
  return launchInitiation(core, now, conn, attempt);
}

/**
 * `close_action` of Child SAs the peer deleted, or lost with their IKE SA when the peer deleted it
 * or stopped answering: `start` negotiates them again (in the IKE SA if it is still up, else in a
 * new one), `trap` tells the daemon to put their trap policies back.
 */
export function closeActions(core: EngineCore, now: number, ike: IkeSaState, closed: readonly ChildConfig[]): Action[] {
  const out: Action[] = [];
  const restart: string[] = [];
  for (const cfg of new Set(closed)) {
    if (cfg.closeAction === 'trap') out.push(core.event({ type: 'trap-again', connection: ike.conn.name, child: cfg.name }));
    else if (cfg.closeAction === 'start' && !restart.includes(cfg.name)) restart.push(cfg.name);
  }
  if (restart.length === 0 || ike.conn.passive || core.config.connections.find((c) => c.name === ike.conn.name) !== ike.conn) return out;
  if (core.sas.get(ike.id) === ike && ike.state === 'established') {
    // Only Child SAs went: negotiate them again in this IKE SA once the peer's request is answered.
    out.push(core.arm(`ike:${ike.id}:restart-children`, now, (t) => {
      if (core.sas.get(ike.id) !== ike || ike.state !== 'established') return [];
      const up = new Set([...ike.children.values()].map((c) => c.cfg.name));
      const acts: Action[] = [];
      for (const name of restart) {
        const cfg = ike.conn.children.find((c) => c.name === name);
        if (cfg && !up.has(name)) acts.push(...createChildSa(core, t, ike, cfg));
      }
      return acts;
    }));
    return out;
  }
  if (!ike.conn.remote.addrs.some((a) => a !== '%any')) return out;
  out.push(core.event({ type: 'notice', connection: ike.conn.name, message: `close_action start: establishing ${restart.join(', ')} again` }));
  core.attempts.set(ike.conn.name, { children: restart, tries: 1 });
  out.push(core.arm(retryTimer(ike.conn.name), now, (t) => retryNow(core, t, ike.conn.name)));
  return out;
}
