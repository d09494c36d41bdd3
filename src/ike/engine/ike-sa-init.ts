// The IKE_SA_INIT exchange (RFC 7296 §1.2): proposals and key exchange, NAT detection (§2.23),
// COOKIE (§2.6) and INVALID_KE_PAYLOAD (§1.2) retries, and the support notifies of extensions.
import type { ConnectionConfig } from '../config.js';
import { ExchangeType, NotifyType, ProtocolId } from '../codec/constants.js';
import { encodeMessage } from '../codec/encode.js';
import { findErrorNotify, findNotify, getKe, getNonce, getSa, ikeHeader, kePayload, noncePayload, notify, proposal, saPayload } from '../codec/helpers.js';
import type { IkeHeader, Payload } from '../codec/types.js';
import { cookieSecretVersion, createPrf, deriveIkeSaKeys, encodeSignatureHashAlgorithms, getKeMethod, KeError, makeCookie, natDetectionHash, verifyCookie } from '../crypto/index.js';
import { checkAccepted, type ChosenAlgorithms, keMethodsOf, ProposalMismatchError, proposalsToSa, selectProposal } from '../proposal.js';
import type { Action, Endpoint } from './actions.js';
import type { EngineCore } from './core.js';
import { HALF_OPEN_TIMEOUT_MS, hex, IKE_PORT, type IkeSaState, NATT_PORT, NONCE_LENGTH, type Outstanding, ZERO_SPI } from './state.js';
import { announcesChildPfsInfo, answerChildPfsInfo } from './child-pfs-info.js';
import { initiatorPpkMode, ppkInitNotifies, responderPpkMode, responderPpkNotify, wantsPpkIntermediate } from './ppk.js';
import { announcesIntermediate, IntAuthChain, IntermediateKeInitiator, IntermediateKeResponder, intermediateRounds, intermediateSupportedNotify } from './intermediate.js';
import { sendAuthRequest, signatureHashes } from './ike-auth.js';
import { sendIntermediate } from './ike-intermediate.js';
import { abandonRequests, armRetransmit } from './requests.js';
import { dropIkeSa } from './teardown.js';

// ------------------------------------------------------------------------------ IKE_SA_INIT

export function natNotifies(core: EngineCore, spiI: Buffer, spiR: Buffer, local: Endpoint, remote: Endpoint, conn: ConnectionConfig): Payload[] {
  // RFC 7296 §2.23; forcing encapsulation is done by a source hash that cannot match (as others do).
  const src = conn.ike.forceEncap ? Buffer.from(core.rng(20)) : natDetectionHash(spiI, spiR, local.address, local.port);
  return [notify(NotifyType.NAT_DETECTION_SOURCE_IP, src), notify(NotifyType.NAT_DETECTION_DESTINATION_IP, natDetectionHash(spiI, spiR, remote.address, remote.port))];
}

export function detectNat(ike: IkeSaState, payloads: Payload[], spiI: Buffer, spiR: Buffer, local: Endpoint, remote: Endpoint): void {
  const src = findNotify(payloads, NotifyType.NAT_DETECTION_SOURCE_IP);
  const dst = findNotify(payloads, NotifyType.NAT_DETECTION_DESTINATION_IP);
  if (!src || !dst) return;
  ike.natRemote = !src.data.equals(natDetectionHash(spiI, spiR, remote.address, remote.port));
  ike.natLocal = !dst.data.equals(natDetectionHash(spiI, spiR, local.address, local.port)) || ike.conn.ike.forceEncap;
}

export function sendInitRequest(core: EngineCore, now: number, ike: IkeSaState, keMethod: number | undefined, cookie: Buffer | undefined): Action[] {
  const conn = ike.conn;
  ike.sentIkeProposals = proposalsToSa(conn.ike.proposals, 'ike');
  const method = keMethod ?? conn.ike.proposals[0]?.ke[0];
  const m = method !== undefined ? getKeMethod(method) : undefined;
  if (!m || method === undefined) throw new Error(`connection '${conn.name}' has no usable KE method`);
  ike.keInit = { method, init: m.initiate(core.rng) };
  if (ike.ni.length === 0) ike.ni = Buffer.from(core.rng(NONCE_LENGTH));
  const payloads: Payload[] = [];
  if (cookie) payloads.push(notify(NotifyType.COOKIE, cookie));
  payloads.push(
    saPayload(ike.sentIkeProposals.map((p) => proposal(p.num, p.protocol, Buffer.alloc(0), p.transforms))),
    kePayload(method, ike.keInit.init.publicData),
    noncePayload(ike.ni),
    ...natNotifies(core, ike.spiI, ZERO_SPI, ike.local, ike.remote, conn),
  );
  if (conn.childPfsInfo) payloads.push(notify(core.config.codePoints.childSaPfsInfoSupported));
  // RFC 9867 §3.1: USE_PPK_INT needs IKE_INTERMEDIATE, so PPKs alone are reason enough to announce it.
  const ppkInt = wantsPpkIntermediate(conn);
  if (ppkInt || conn.ike.proposals.some((p) => p.addKe.some((r) => r.some((m) => m !== 0)))) payloads.push(intermediateSupportedNotify());
  if (conn.ike.fragmentation) payloads.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
  // RFC 7427 §4: the hash algorithms we can verify signatures with.
  payloads.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, encodeSignatureHashAlgorithms()));
  // RFC 8784 §3: USE_PPK announces that a PPK will be mixed in during IKE_AUTH; RFC 9867 §3.1: with
  // USE_PPK_INT too, the responder picks one of the two and answers with that notify only.
  payloads.push(...ppkInitNotifies(conn, ppkInt));
  const header = ikeHeader({ spiI: ike.spiI, spiR: ZERO_SPI, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: true, response: false });
  const datagram = encodeMessage({ header, payloads });
  ike.initRequest = datagram;
  ike.nextRequestId = 1;
  const o: Outstanding = { messageId: 0, datagrams: [datagram], tries: 0, sentAt: now, exchange: ExchangeType.IKE_SA_INIT, onResponse: () => [], exclusive: true };
  ike.inflight.set(0, o);
  return [core.send(ike, datagram), armRetransmit(core, now, ike, o)];
}

export function findResponderConnection(core: EngineCore, local: Endpoint, remote: Endpoint): ConnectionConfig | undefined {
  const matches = (addrs: string[], a: string) => addrs.includes('%any') || addrs.includes(a);
  return core.config.connections.find((c) => matches(c.remote.addrs, remote.address) && matches(c.local.addrs, local.address)) ?? core.config.connections.find((c) => matches(c.remote.addrs, remote.address));
}

export function onInitRequest(core: EngineCore, now: number, data: Buffer, payloads: Payload[], header: IkeHeader, local: Endpoint, remote: Endpoint): Action[] {
  const key = `${remote.address}:${remote.port}:${hex(header.spiI)}`;
  const known = core.halfOpen.get(key);
  if (known) {
    // A retransmitted IKE_SA_INIT: the same answer again.
    return known.initResponse && known.initRequest?.equals(data) ? [core.send(known, known.initResponse)] : [];
  }
  if (!header.spiR.equals(ZERO_SPI) || header.messageId !== 0) {
    core.counters.dropped++;
    return [];
  }
  const plain = (p: Payload[]) => {
    core.counters.datagramsOut++;
    const h = ikeHeader({ spiI: header.spiI, spiR: ZERO_SPI, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: false, response: true });
    return [{ kind: 'send', local: { ...local }, remote: { ...remote }, data: encodeMessage({ header: h, payloads: p }) } as Action];
  };
  const conn = findResponderConnection(core, local, remote);
  if (!conn) {
    core.log('info', { remote: remote.address }, 'IKE_SA_INIT from a peer no connection is configured for');
    return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
  }
  const sa = getSa(payloads);
  const ke = getKe(payloads);
  const nonce = getNonce(payloads);
  if (!sa || !ke || !nonce) return plain([notify(NotifyType.INVALID_SYNTAX)]);
  // RFC 7296 §2.6: above the half-open threshold, demand a COOKIE before keeping any state.
  if (core.halfOpen.size >= core.config.cookieThreshold) {
    core.rotateCookieSecret(now);
    const offered = findNotify(payloads, NotifyType.COOKIE);
    const valid =
      offered !== undefined &&
      [core.cookieSecret, core.previousCookieSecret].some((c) => c && cookieSecretVersion(offered.data) === c.version && verifyCookie(offered.data, c.secret, c.version, nonce.data, remote.address, header.spiI));
    if (!valid) return plain([notify(NotifyType.COOKIE, makeCookie(core.cookieSecret!.secret, core.cookieSecret!.version, nonce.data, remote.address, header.spiI))]);
  }
  const selected = selectProposal(sa.proposals, conn.ike.proposals, 'ike', { requireKe: true, preferKe: ke.group });
  if (!selected) return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
  // RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE, announced by the initiator.
  if (intermediateRounds(selected.chosen).length > 0 && !announcesIntermediate(payloads)) return plain([notify(NotifyType.NO_PROPOSAL_CHOSEN)]);
  if (selected.chosen.ke !== ke.group) {
    // RFC 7296 §1.2: tell the initiator which method to use; stateless.
    const d = Buffer.alloc(2);
    d.writeUInt16BE(selected.chosen.ke!);
    return plain([notify(NotifyType.INVALID_KE_PAYLOAD, d)]);
  }
  const m = getKeMethod(ke.group)!;
  let answer;
  try {
    answer = m.respond(ke.data, core.rng);
  } catch (e) {
    if (e instanceof KeError) return plain([notify(NotifyType.INVALID_SYNTAX)]);
    throw e;
  }
  const spiR = core.newIkeSpi();
  const ike = core.newIkeSa(conn, false, Buffer.from(header.spiI), spiR, local, remote, now);
  ike.ni = Buffer.from(nonce.data);
  ike.nr = Buffer.from(core.rng(NONCE_LENGTH));
  ike.childPfsInfo = conn.childPfsInfo && announcesChildPfsInfo(payloads, core.config.codePoints);
  detectNat(ike, payloads, ike.spiI, ZERO_SPI, local, remote);
  const chosen = selected.chosen;
  const keys = deriveIkeSaKeys({
    prf: createPrf(chosen.prf!),
    ni: ike.ni,
    nr: ike.nr,
    sharedSecret: answer.sharedSecret,
    spiI: ike.spiI,
    spiR,
    encr: chosen.encr.id,
    ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
    ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
  });
  ike.sa = { spiI: ike.spiI, spiR, originalInitiator: false, keys, chosen, keMethods: keMethodsOf(chosen), optimizedNegotiated: false, childPfsInfoNegotiated: ike.childPfsInfo };
  const response: Payload[] = [
    saPayload([proposal(selected.proposalNumber, ProtocolId.IKE, Buffer.alloc(0), selected.transforms)]),
    kePayload(ke.group, answer.publicData),
    noncePayload(ike.nr),
    ...natNotifies(core, ike.spiI, spiR, local, remote, conn),
  ];
  if (answerChildPfsInfo(payloads, core.config.codePoints, conn.childPfsInfo)) response.push(notify(core.config.codePoints.childSaPfsInfoSupported));
  ike.peerHashes = signatureHashes(payloads);
  response.push(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, encodeSignatureHashAlgorithms()));
  // RFC 7383 §2.3: answer the support notify only when asked and enabled here.
  if (conn.ike.fragmentation && findNotify(payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)) {
    response.push(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
    ike.fragmentation = true;
  }
  ike.ppkMode = responderPpkMode(payloads, conn, wantsPpkIntermediate(conn) && announcesIntermediate(payloads));
  const ppkNotify = responderPpkNotify(ike.ppkMode);
  if (ppkNotify) response.push(ppkNotify);
  ike.ppkRoundPending = ike.ppkMode === 'rfc9867';
  const rounds = intermediateRounds(chosen);
  if (rounds.length > 0 || ike.ppkRoundPending) {
    // RFC 9867 §3.1: the PPK round needs IKE_INTERMEDIATE even without additional key exchanges.
    response.push(intermediateSupportedNotify());
    ike.intermediate = { responder: new IntermediateKeResponder(rounds, keys, { ni: ike.ni, nr: ike.nr, spiI: ike.spiI, spiR }, core.rng), chain: new IntAuthChain() };
  }
  const h = ikeHeader({ spiI: ike.spiI, spiR, exchangeType: ExchangeType.IKE_SA_INIT, messageId: 0, originalInitiator: false, response: true });
  ike.initRequest = Buffer.from(data);
  ike.initResponse = encodeMessage({ header: h, payloads: response });
  ike.expectedRequestId = 1;
  core.sas.set(ike.id, ike);
  core.halfOpen.set(key, ike);
  return [
    core.send(ike, ike.initResponse),
    core.arm(`ike:${ike.id}:half-open`, now + HALF_OPEN_TIMEOUT_MS, (t) => (ike.state === 'init-received' ? dropIkeSa(core, t, ike, 'IKE_AUTH never arrived') : [])),
  ];
}

export function onInitResponse(core: EngineCore, now: number, ike: IkeSaState, data: Buffer, payloads: Payload[], header: IkeHeader): Action[] {
  const out: Action[] = abandonRequests(core, ike);
  const err = findErrorNotify(payloads);
  const cookie = findNotify(payloads, NotifyType.COOKIE);
  if (cookie) return [...out, ...sendInitRequest(core, now, ike, ike.keInit?.method, Buffer.from(cookie.data))];
  if (err?.notifyType === NotifyType.INVALID_KE_PAYLOAD && err.data.length === 2) {
    const method = err.data.readUInt16BE(0);
    const offered = ike.conn.ike.proposals.some((p) => p.ke.includes(method));
    if (offered && method !== ike.keInit?.method) return [...out, ...sendInitRequest(core, now, ike, method, undefined)];
  }
  if (err) return [...out, ...dropIkeSa(core, now, ike, `peer refused IKE_SA_INIT with notify ${err.notifyType}`, 'auth')];
  const sa = getSa(payloads);
  const ke = getKe(payloads);
  const nonce = getNonce(payloads);
  if (!sa || !ke || !nonce || !ike.keInit || header.spiR.equals(ZERO_SPI)) return [...out, ...dropIkeSa(core, now, ike, 'malformed IKE_SA_INIT response')];
  let chosen: ChosenAlgorithms;
  try {
    chosen = checkAccepted(ike.sentIkeProposals ?? [], sa.proposals, 'ike');
  } catch (e) {
    if (e instanceof ProposalMismatchError) return [...out, ...dropIkeSa(core, now, ike, e.message)];
    throw e;
  }
  if (chosen.ke !== ike.keInit.method || ke.group !== ike.keInit.method) return [...out, ...dropIkeSa(core, now, ike, 'responder chose another KE method')];
  let shared: Buffer;
  try {
    shared = ike.keInit.init.finish(ke.data);
  } catch (e) {
    return [...out, ...dropIkeSa(core, now, ike, `invalid KE payload: ${(e as Error).message}`)];
  }
  ike.spiR = Buffer.from(header.spiR);
  ike.nr = Buffer.from(nonce.data);
  ike.initResponse = Buffer.from(data);
  ike.childPfsInfo = ike.conn.childPfsInfo && announcesChildPfsInfo(payloads, core.config.codePoints);
  detectNat(ike, payloads, ike.spiI, ike.spiR, ike.local, ike.remote);
  const keys = deriveIkeSaKeys({
    prf: createPrf(chosen.prf!),
    ni: ike.ni,
    nr: ike.nr,
    sharedSecret: shared,
    spiI: ike.spiI,
    spiR: ike.spiR,
    encr: chosen.encr.id,
    ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
    ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
  });
  ike.sa = { spiI: ike.spiI, spiR: ike.spiR, originalInitiator: true, keys, chosen, keMethods: keMethodsOf(chosen), optimizedNegotiated: false, childPfsInfoNegotiated: ike.childPfsInfo };
  if (ike.natLocal || ike.natRemote) {
    // RFC 7296 §2.23: move from 500 to 4500; an IKE SA begun on 4500 (a reauthentication across a NAT) keeps the peer's mapped port.
    ike.local = { ...ike.local, port: NATT_PORT };
    ike.remote = { ...ike.remote, port: ike.remote.port === IKE_PORT ? NATT_PORT : ike.remote.port };
  }
  ike.peerHashes = signatureHashes(payloads);
  ike.fragmentation = ike.conn.ike.fragmentation && findNotify(payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
  const sentInt = wantsPpkIntermediate(ike.conn);
  ike.ppkMode = initiatorPpkMode(payloads, sentInt, (ike.conn.ppk?.keys.length ?? 0) > 0, sentInt && announcesIntermediate(payloads));
  ike.ppkRoundPending = ike.ppkMode === 'rfc9867';
  if (ike.conn.ppk?.required && ike.ppkMode === 'none') {
    const reason = `a PPK is required but the responder does not support PPKs (no ${sentInt ? 'USE_PPK_INT or ' : ''}USE_PPK)`;
    return [...out, core.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(core, now, ike, reason, 'auth')];
  }
  ike.state = 'auth-sent';
  const rounds = intermediateRounds(chosen);
  if (rounds.length > 0 || ike.ppkRoundPending) {
    if (!announcesIntermediate(payloads)) return [...out, ...dropIkeSa(core, now, ike, 'responder chose additional key exchanges without IKE_INTERMEDIATE support')];
    ike.intermediate = { initiator: new IntermediateKeInitiator(rounds, keys, { ni: ike.ni, nr: ike.nr, spiI: ike.spiI, spiR: ike.spiR }, core.rng), chain: new IntAuthChain() };
    return [...out, ...sendIntermediate(core, now, ike)];
  }
  return [...out, ...sendAuthRequest(core, now, ike)];
}
