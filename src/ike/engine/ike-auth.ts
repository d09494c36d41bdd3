// The IKE_AUTH exchange (RFC 7296 §1.2, §2.15): authentication with PSK or signatures (RFC 7427),
// the initial Child SA, the established IKE SA and its timers, and simultaneous starts of one
// connection from both ends.
import type { ConnectionConfig } from '../config.js';
import { ExchangeType, NotifyType, PayloadType, ProtocolId } from '../codec/constants.js';
import { authPayload, certPayload, deletePayload, findErrorNotify, findNotify, getAuth, getCerts, getIdi, getIdr, getSa, getTsi, getTsr, idPayload, notify, proposal, saPayload, spi32, tsPayload } from '../codec/helpers.js';
import type { Payload } from '../codec/types.js';
import { applyPpk, encodeIdentity, identityMatches, idPayloadBody, parseSignatureHashAlgorithms, pemToDer, pskAuth, selectSignatureHash, signAuth, signedOctets, SUPPORTED_SIGNATURE_HASHES, validateCertChain, verifyAuth, verifyPskAuth } from '../crypto/index.js';
import { suiteName } from '../proposal.js';
import type { Action } from './actions.js';
import type { EngineCore } from './core.js';
import { hex, type IkeSaState, type RequestAfter, TWIN_WINDOW_MS } from './state.js';
import { pickChildConfig, reauthSelectors, requestSelectors } from './selectors.js';
import { checkIkeAuthChildAnswer, ikeAuthChildProposals, selectIkeAuthChildProposal } from './child-pfs-info.js';
import { vipRequestPayload } from './virtual-ip.js';
import { initiatorPpk8784Used, ppkAuthRequestNotifies, responderPpk8784 } from './ppk.js';
import { answerOptimizedRekeySupported, optimizedRekeyNegotiated, optimizedRekeySupportedNotify } from './optimized-rekey.js';
import { redundantRekey } from './rekey-exchange.js';
import { createChildSa, handOverPolicies, installChild, makeChild } from './child-sa.js';
import { leaseVirtualIps, ourTs, peerTs, takeVirtualIps } from './ike-vip.js';
import { armDpd } from './informational.js';
import { forgetAttempt } from './initiation.js';
import { armReauth, latestReauth, onReauthAuthResponse, reauthenticates } from './reauth.js';
import { rekeyIkeSa } from './rekey.js';
import { abandonRequests, request, windowSizeNotify } from './requests.js';
import { deleteIkeSa, dropIkeSa } from './teardown.js';

// ------------------------------------------------------------------------------ IKE_AUTH

export function idOf(conn: ConnectionConfig, which: 'local' | 'remote') {
  return encodeIdentity(conn[which].id);
}

export function sendAuthRequest(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  const conn = ike.conn;
  const sa = ike.sa!;
  const idI = idOf(conn, 'local');
  if (conn.local.auth === 'psk' && !conn.psk) return dropIkeSa(core, now, ike, `connection '${conn.name}' authenticates with a PSK but has none`);
  const octets = signedOctets(ike.initRequest!, ike.nr, sa.keys.prf, sa.keys.skPi, idPayloadBody(idI), ike.intAuth);
  let classic;
  try {
    classic = buildAuth(ike, conn, octets);
  } catch (e) {
    const reason = (e as Error).message;
    return [core.event({ type: 'auth-failed', connection: conn.name, reason }), ...dropIkeSa(core, now, ike, reason, 'auth')];
  }
  const classicAuth = classic.data;
  const ppk = ike.ppkMode === 'rfc8784' ? conn.ppk?.keys[0] : undefined;
  let authData = classicAuth;
  const ppkNotifies: Payload[] = [];
  if (ppk) {
    // RFC 8784 §3: AUTH with the PPK-mixed SK_pi; NO_PPK_AUTH (the classic AUTH data) only when the PPK is optional.
    const mixed = applyPpk(sa.keys.prf, sa.keys, ppk.key);
    ike.ppkOffered = mixed;
    authData = buildAuth(ike, conn, signedOctets(ike.initRequest!, ike.nr, sa.keys.prf, mixed.skPi, idPayloadBody(idI), ike.intAuth)).data;
    ppkNotifies.push(...ppkAuthRequestNotifies(ppk, conn.ppk!.required, conn.ppk!.required ? undefined : classicAuth));
  }
  const payloads: Payload[] = [idPayload(PayloadType.IDi, idI.type, idI.data), ...certPayloads(conn), authPayload(classic.method, authData), ...ppkNotifies];
  // RFC 7296 §2.4: INITIAL_CONTACT tells the peer this is our only IKE SA with it, so its older ones
  // are stale; not so when we already hold one with it (e.g. the peer's, set up meanwhile), nor in a
  // reauthentication (RFC 7296 §2.8.3: the old IKE SA is still in use).
  const holdsOther = [...core.sas.values()].some((o) => o !== ike && o.remote.address === ike.remote.address && o.conn.name === conn.name && (o.state === 'established' || o.state === 'rekeyed'));
  if (!holdsOther && !ike.reauthOf) payloads.push(notify(NotifyType.INITIAL_CONTACT));
  if (conn.vips?.request) payloads.push(vipRequestPayload(conn.vips.addresses?.length ? conn.vips.addresses : ['0.0.0.0']));
  const child = ike.authChild?.cfg;
  const reauthChild = ike.reauthOf?.children[0];
  if (child) {
    const spiIn = core.newEspSpi();
    const sent = ikeAuthChildProposals(child, ike.childPfsInfo);
    ike.authChild = { cfg: child, spiIn, sent };
    payloads.push(
      saPayload(sent.map((p) => proposal(p.num, p.protocol, spi32(spiIn), p.transforms))),
      ...(reauthChild ? reauthSelectors(reauthChild) : requestSelectors(child, ike.authChildPacket)),
    );
    if (child.mode === 'transport') payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
  }
  if (conn.optimizedRekey) payloads.push(optimizedRekeySupportedNotify(core.config.codePoints));
  payloads.push(...windowSizeNotify(conn));
  return request(core, now, ike, ExchangeType.IKE_AUTH, () => payloads, (t, _h, resp) => (ike.reauthOf ? onReauthAuthResponse(core, t, ike, resp) : onAuthResponse(core, t, ike, resp)));
}

export function onAuthResponse(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): Action[] {
  const conn = ike.conn;
  const sa = ike.sa!;
  const err = findErrorNotify(payloads);
  const auth = getAuth(payloads);
  const idr = getIdr(payloads);
  if (!auth || !idr) {
    const why = err ? `peer answered IKE_AUTH with notify ${err.notifyType}` : 'IKE_AUTH response lacks IDr or AUTH';
    return [core.event({ type: 'auth-failed', connection: conn.name, reason: why }), ...dropIkeSa(core, now, ike, why, 'auth')];
  }
  const idData = { type: idr.idType, data: idr.data };
  if (!identityMatches(conn.remote.id, idData)) {
    return [core.event({ type: 'auth-failed', connection: conn.name, reason: 'peer identity does not match the configured remote id' }), ...dropIkeSa(core, now, ike, 'peer identity mismatch', 'auth')];
  }
  if (ike.ppkOffered) {
    const used = initiatorPpk8784Used(payloads, conn.ppk?.required ?? false);
    if (!used.ok) return [core.event({ type: 'auth-failed', connection: conn.name, reason: used.reason }), ...dropIkeSa(core, now, ike, used.reason, 'auth')];
    if (used.used) sa.keys = ike.ppkOffered;
    ike.ppkOffered = undefined;
  }
  const octets = signedOctets(ike.initResponse!, ike.ni, sa.keys.prf, sa.keys.skPr, idPayloadBody(idData), ike.intAuth);
  const bad = verifyPeerAuth(core, ike, conn, auth.method, auth.data, octets, idData, getCerts(payloads).map((c) => Buffer.from(c.data)));
  if (bad) return [core.event({ type: 'auth-failed', connection: conn.name, reason: bad }), ...dropIkeSa(core, now, ike, `AUTHENTICATION_FAILED: ${bad}`, 'auth')];
  sa.optimizedNegotiated = optimizedRekeyNegotiated(conn.optimizedRekey, payloads, core.config.codePoints);
  const out = established(core, now, ike);
  const pending = ike.authChild;
  if (conn.vips?.request) {
    const vip = takeVirtualIps(core, ike, payloads, err?.notifyType);
    if (!vip.ok) {
      if (pending && pending.spiIn !== 0) core.usedSpis.delete(pending.spiIn);
      out.push(core.event({ type: 'error', connection: conn.name, message: vip.reason }), ...deleteIkeSa(core, now, ike, vip.reason, true));
      return out;
    }
    out.push(...vip.actions);
  }
  if (pending && pending.spiIn !== 0) {
    const sar = getSa(payloads);
    const tsi = getTsi(payloads);
    const tsr = getTsr(payloads);
    if (err?.notifyType === NotifyType.SINGLE_PAIR_REQUIRED && ike.authChildPacket) {
      // RFC 7296 §3.10.1: the peer takes only one address pair: ask again for the triggering packet's.
      core.usedSpis.delete(pending.spiIn);
      out.push(...createChildSa(core, now, ike, pending.cfg, undefined, ike.authChildPacket, true));
      return out;
    }
    if (!sar || !tsi || !tsr) {
      core.usedSpis.delete(pending.spiIn);
      out.push(core.event({ type: 'error', connection: conn.name, message: `initial Child SA '${pending.cfg.name}' not created: ${err ? `peer answered notify ${err.notifyType}` : 'no SA/TS in the response'}` }));
      return out;
    }
    const answer = checkIkeAuthChildAnswer(pending.sent, sar.proposals, ike.childPfsInfo);
    const p = sar.proposals[0];
    if (!answer.ok || !p || p.spi.length !== 4) {
      core.usedSpis.delete(pending.spiIn);
      out.push(core.event({ type: 'error', connection: conn.name, message: `initial Child SA refused: ${answer.ok ? 'bad SPI' : answer.reason}` }));
      return out;
    }
    const localTs = ourTs(ike, tsi.selectors);
    if (localTs.length === 0) {
      core.usedSpis.delete(pending.spiIn);
      out.push(core.event({ type: 'error', connection: conn.name, message: 'initial Child SA refused: the responder narrowed TSi to addresses outside our virtual IP' }));
      return out;
    }
    const mode = pending.cfg.mode === 'transport' && findNotify(payloads, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
    const child = makeChild(core, ike, pending.cfg, answer.chosen, pending.spiIn, p.spi.readUInt32BE(0), localTs, tsr.selectors, mode, answer.recorded?.keMethods, true, findNotify(payloads, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined);
    out.push(...installChild(core, now, ike, child, pending.cfg));
  }
  // The other children that start with the connection follow in CREATE_CHILD_SA exchanges.
  if (!ike.reauthOf) for (const cfg of conn.children) if (cfg !== ike.authChild?.cfg && (cfg.startAction === 'start' || ike.extraChildren.has(cfg))) out.push(...createChildSa(core, now, ike, cfg));
  ike.extraChildren.clear();
  out.push(...settleSimultaneousIkeSas(core, now, ike));
  return out;
}

export function onAuthRequest(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): { response: Payload[]; after: RequestAfter } {
  const idi = getIdi(payloads);
  const auth = getAuth(payloads);
  if (!idi || !auth) return { response: [notify(NotifyType.INVALID_SYNTAX)], after: { after: dropIkeSa(core, now, ike, 'IKE_AUTH without IDi or AUTH') } };
  const idData = { type: idi.idType, data: idi.data };
  // Pick the connection by the peer's identity among those for this address.
  const candidates = [ike.conn, ...core.config.connections.filter((c) => c !== ike.conn)].filter(
    (c) => (c.remote.addrs.includes('%any') || c.remote.addrs.includes(ike.remote.address)) && identityMatches(c.remote.id, idData),
  );
  const sa = ike.sa!;
  let ppkReason: string | undefined;
  const peerCerts = getCerts(payloads).map((c) => Buffer.from(c.data));
  let ppkReply: Payload | undefined;
  let agreedKeys = sa.keys;
  const conn = candidates.find((c) => {
    // RFC 8784 §3: with a known PPK, AUTH is over the PPK-mixed SK_pi; without it, NO_PPK_AUTH over the classic one.
    let keys = sa.keys;
    let data = auth.data;
    let reply: Payload | undefined;
    // RFC 9867: the PPK was settled in IKE_INTERMEDIATE; IKE_AUTH carries no RFC 8784 PPK notifies then.
    // The connection the peer's identity selects may be stricter than the one IKE_SA_INIT assumed.
    if (ike.ppkMode === 'rfc9867' && c.ppk?.required && !ike.ppkUsed) {
      ppkReason = 'PPK required but none was selected in IKE_INTERMEDIATE (RFC 9867)';
      return false;
    }
    if (ike.ppkMode === 'rfc8784' || (c.ppk?.required && ike.ppkMode !== 'rfc9867')) {
      const d = responderPpk8784(payloads, c, sa.keys.prf, sa.keys);
      if (d.use === 'fail') {
        ppkReason = d.reason;
        return false;
      }
      if (d.use === 'ppk') {
        keys = d.keys;
        reply = d.response;
      } else if (d.use === 'no-ppk') data = d.noPpkAuth;
    }
    const failure = verifyPeerAuth(core, ike, c, auth.method, data, signedOctets(ike.initRequest!, ike.nr, sa.keys.prf, keys.skPi, idPayloadBody(idData), ike.intAuth), idData, peerCerts);
    if (failure) ppkReason = ppkReason ?? failure;
    const ok = failure === undefined;
    if (ok) {
      agreedKeys = keys;
      ppkReply = reply;
    }
    return ok;
  });
  if (!conn) {
    const reason = candidates.length === 0 ? 'no connection for the peer identity' : (ppkReason ?? 'AUTH does not verify (wrong PSK?)');
    return {
      response: [notify(NotifyType.AUTHENTICATION_FAILED)],
      after: { after: [core.event({ type: 'auth-failed', connection: ike.conn.name, reason }), ...dropIkeSa(core, now, ike, reason)] },
    };
  }
  ike.conn = conn;
  sa.keys = agreedKeys;
  const idR = idOf(conn, 'local');
  const myOctets = signedOctets(ike.initResponse!, ike.ni, sa.keys.prf, sa.keys.skPr, idPayloadBody(idR), ike.intAuth);
  let mine;
  try {
    mine = buildAuth(ike, conn, myOctets);
  } catch (e) {
    const reason = (e as Error).message;
    return { response: [notify(NotifyType.AUTHENTICATION_FAILED)], after: { after: [core.event({ type: 'auth-failed', connection: conn.name, reason }), ...dropIkeSa(core, now, ike, reason)] } };
  }
  const response: Payload[] = [idPayload(PayloadType.IDr, idR.type, idR.data), ...certPayloads(conn), authPayload(mine.method, mine.data)];
  if (ppkReply) response.push(ppkReply);
  if (answerOptimizedRekeySupported(payloads, core.config.codePoints, conn.optimizedRekey)) {
    response.push(optimizedRekeySupportedNotify(core.config.codePoints));
    response.push(...windowSizeNotify(conn));
    sa.optimizedNegotiated = true;
  }
  const before: Action[] = [];
  // RFC 7296 §2.4: INITIAL_CONTACT means the peer restarted and holds no other SAs with us: ours
  // with that identity are stale and go without a Delete (nobody would answer it).
  // Only IKE SAs that were up before this one began are stale: one set up at the same time (both
  // peers initiating at once, each sending INITIAL_CONTACT) is settled by settleSimultaneousIkeSas.
  if (findNotify(payloads, NotifyType.INITIAL_CONTACT)) {
    for (const other of [...core.sas.values()]) {
      if (other !== ike && other.conn.name === conn.name && other.remote.address === ike.remote.address && (other.state === 'established' || other.state === 'rekeyed') && other.establishedAt < ike.createdAt) {
        before.push(...dropIkeSa(core, now, other, 'the peer restarted (INITIAL_CONTACT)'));
      }
    }
  }
  const after: Action[] = established(core, now, ike);
  const vip = leaseVirtualIps(core, ike, conn, payloads, idData);
  if (vip.reply) response.push(vip.reply);
  if (vip.refuse !== undefined) response.push(notify(vip.refuse));
  after.push(...vip.actions);
  const sai = getSa(payloads);
  const tsi = getTsi(payloads);
  const tsr = getTsr(payloads);
  if (sai && tsi && tsr && vip.refuse === undefined) {
    // TSi are the initiator's (our remote) selectors, TSr ours.
    const picked = pickChildConfig(conn.children, tsi.selectors, tsr.selectors, (cfg) => selectIkeAuthChildProposal(sai.proposals, cfg, ike.childPfsInfo).ok, (sels) => peerTs(ike, sels));
    if ('refuse' in picked) {
      response.push(notify(picked.refuse));
      after.push(core.event({ type: 'error', connection: conn.name, message: `initial Child SA refused: ${picked.reason}` }));
    } else {
      const sel = selectIkeAuthChildProposal(sai.proposals, picked.cfg, ike.childPfsInfo);
      const offered = sel.ok ? sai.proposals.find((p) => p.num === sel.selected.proposalNumber) : undefined;
      if (!sel.ok || !offered || offered.spi.length !== 4) {
        response.push(notify(NotifyType.NO_PROPOSAL_CHOSEN));
        after.push(core.event({ type: 'error', connection: conn.name, message: `initial Child SA refused: ${sel.ok ? 'bad SPI' : sel.reason}` }));
      } else {
        const spiIn = core.newEspSpi();
        const mode = picked.cfg.mode === 'transport' && findNotify(payloads, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
        const tfc = findNotify(payloads, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined;
        const child = makeChild(core, ike, picked.cfg, sel.selected.chosen, spiIn, offered.spi.readUInt32BE(0), picked.local, picked.remote, mode, sel.recorded?.keMethods, false, tfc);
        response.push(
          saPayload([proposal(sel.selected.proposalNumber, ProtocolId.ESP, spi32(spiIn), sel.selected.transforms)]),
          tsPayload(PayloadType.TSi, picked.remote),
          tsPayload(PayloadType.TSr, picked.local),
        );
        if (mode === 'transport') response.push(notify(NotifyType.USE_TRANSPORT_MODE));
        // The inbound SA (and policies) exist before the response that makes them usable leaves.
        before.push(...installChild(core, now, ike, child, picked.cfg));
      }
    }
  }
  after.push(...settleSimultaneousIkeSas(core, now, ike));
  return { response, after: { before, after } };
}

export function signatureHashes(payloads: Payload[]): number[] {
  const n = findNotify(payloads, NotifyType.SIGNATURE_HASH_ALGORITHMS);
  return (n && parseSignatureHashAlgorithms(n.data)) ?? [];
}

/** CERT payloads of our chain, leaf first (X.509 signature, encoding 4). */
export function certPayloads(conn: ConnectionConfig): Payload[] {
  if (conn.local.auth !== 'pubkey') return [];
  return (conn.local.certChainPem ?? []).flatMap((pem) => pemToDer(pem)).map((der) => certPayload(4, der));
}

/** Our AUTH payload (RFC 7296 §2.15; RFC 7427 digital signature for certificates). */
export function buildAuth(ike: IkeSaState, conn: ConnectionConfig, octets: Buffer): { method: number; data: Buffer } {
  if (conn.local.auth === 'pubkey') {
    const key = conn.local.privateKeyPem;
    if (!key) throw new Error(`connection '${conn.name}' authenticates with a certificate but has no private key`);
    const hash = selectSignatureHash(key, ike.peerHashes);
    if (hash === undefined) throw new Error('no signature hash algorithm in common with the peer (SIGNATURE_HASH_ALGORITHMS)');
    return { method: 14, data: signAuth(key, octets, hash) };
  }
  return { method: 2, data: pskAuth(ike.sa!.keys.prf, conn.psk!, octets) };
}

/** Check the peer's AUTH for a connection; returns why it fails, or undefined when it verifies. */
export function verifyPeerAuth(core: EngineCore, ike: IkeSaState, conn: ConnectionConfig, method: number, data: Buffer, octets: Buffer, idData: { type: number; data: Buffer }, certs: Buffer[]): string | undefined {
  if (conn.remote.auth === 'pubkey') {
    if (method !== 14) return 'the peer must authenticate with a digital signature (RFC 7427)';
    if (certs.length === 0) return 'the peer sent no certificate';
    const v = validateCertChain({ chain: certs, trustAnchors: conn.remote.caPem ?? [], now: core.wallClock(), expectedId: idData });
    if (!v.ok) return `certificate rejected: ${v.message}`;
    const r = verifyAuth(v.publicKey, data, octets, { acceptedHashes: SUPPORTED_SIGNATURE_HASHES });
    return r.ok ? undefined : `signature does not verify: ${r.reason}`;
  }
  if (method !== 2 || !conn.psk) return 'the peer must authenticate with the pre-shared key';
  return verifyPskAuth(ike.sa!.keys.prf, conn.psk, octets, data) ? undefined : 'AUTH does not verify (wrong PSK?)';
}

export function settleSimultaneousIkeSas(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  if (ike.state !== 'established') return [];
  if (ike.fromRekey) return [];
  const twin = [...core.sas.values()].find(
    (o) => o !== ike && o.state === 'established' && !o.fromRekey && o.conn.name === ike.conn.name && o.initiator !== ike.initiator && o.remote.address === ike.remote.address && Math.abs(o.establishedAt - ike.establishedAt) <= TWIN_WINDOW_MS && !reauthenticates(ike, o),
  );
  if (!twin) return [];
  const redundant = redundantRekey({ ni: ike.ni, nr: ike.nr }, { ni: twin.ni, nr: twin.nr }) === 'a' ? ike : twin;
  const survivor = redundant === ike ? twin : ike;
  const whose = redundant.initiator ? 'our' : "the peer's";
  if (!survivor.initiator) {
    return [core.event({ type: 'notice', connection: ike.conn.name, message: `both peers initiated: ${whose} IKE SA ${redundant.id} holds the lowest nonce and is redundant; the peer deletes it` })];
  }
  return [
    core.event({ type: 'notice', connection: ike.conn.name, message: `both peers initiated: ${whose} IKE SA ${redundant.id} holds the lowest nonce and is redundant; deleting it` }),
    ...retireRedundantIkeSa(core, now, redundant),
  ];
}

/**
 * Delete a redundant IKE SA whose Child SAs have twins under the surviving one, make-before-break:
 * policies move to the twins, the outbound SAs go, the inbound ones stay for the grace period
 * (the peer may still send on them until our Delete reaches it), then the Delete of the IKE SA.
 */
export function retireRedundantIkeSa(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  const out: Action[] = [];
  for (const c of [...ike.children.values()]) {
    ike.children.delete(c.childId);
    c.state = 'rekeyed';
    const { heir, actions } = handOverPolicies(core, c);
    out.push(...core.cancel(`child:${c.childId}:rekey`), ...core.cancel(`child:${c.childId}:expire`), ...actions);
    out.push({ kind: 'kernel', action: { op: 'deleteOutboundSa', spec: c.spec } });
    out.push(core.arm(`child:${c.childId}:delete-grace`, now + core.config.rekeyGraceTime * 1000, () => {
      core.usedSpis.delete(c.sa.spiIn);
      const later: Action[] = [{ kind: 'kernel', action: { op: 'deleteInboundSa', spec: c.spec } }];
      if (!heir) later.push({ kind: 'kernel', action: { op: 'deletePolicies', spec: c.spec } });
      return later;
    }));
    out.push(core.event({ type: 'child-down', connection: ike.conn.name, child: c.cfg.name, spiIn: c.sa.spiIn, spiOut: c.sa.spiOut, reason: 'redundant: both peers initiated at once' }));
  }
  ike.state = 'deleting';
  ike.queue = [];
  out.push(...abandonRequests(core, ike));
  out.push(...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.IKE)], (t) => dropIkeSa(core, t, ike, 'redundant: both peers initiated at once'), false, true));
  return out;
}

export function established(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  ike.state = 'established';
  ike.establishedAt = now;
  ike.authenticatedAt = now;
  for (const [k, v] of core.halfOpen) if (v === ike) core.halfOpen.delete(k);
  const sa = ike.sa!;
  const out: Action[] = [
    ...forgetAttempt(core, ike.conn.name),
    ...core.cancel(`ike:${ike.id}:half-open`),
    core.event({ type: 'ike-up', ikeSaId: ike.id, connection: ike.conn.name, spiI: hex(ike.spiI), spiR: hex(ike.spiR), suite: suiteName(sa.chosen) }),
    core.event({
      type: 'keylog-ike',
      spiI: hex(ike.spiI),
      spiR: hex(ike.spiR),
      skEi: hex(sa.keys.skEi),
      skEr: hex(sa.keys.skEr),
      encr: String(sa.chosen.encr.id), // transform id: the key log maps it to Wireshark's name
      skAi: hex(sa.keys.skAi),
      skAr: hex(sa.keys.skAr),
      integ: sa.chosen.integ !== undefined ? String(sa.chosen.integ) : 'NONE',
    }),
  ];
  out.push(...armIkeTimers(core, now, ike));
  return out;
}

/** Rekey, reauthentication, hard lifetime and DPD timers; `reauthAt` carries the reauthentication time over an IKE SA rekey (a rekey does not authenticate). */
export function armIkeTimers(core: EngineCore, now: number, ike: IkeSaState, reauthAt = 0): Action[] {
  const lt = ike.conn.ike.lifetime;
  const out: Action[] = [];
  if (lt.lifeTime > 0) {
    ike.expiresAt = now + lt.lifeTime * 1000;
    out.push(core.arm(`ike:${ike.id}:expire`, ike.expiresAt, (t) => (core.sas.get(ike.id) === ike && ike.state === 'established' ? deleteIkeSa(core, t, ike, 'hard lifetime reached', true) : [])));
  }
  const c = ike.conn.ike;
  const reauthDue = c.reauthTime > 0 && !ike.conn.passive ? (reauthAt > 0 ? Math.max(now + 1, reauthAt) : core.jittered(now, c.reauthTime, lt.randTime)) : 0;
  // When both are due, the reauthentication wins: it replaces the IKE SA anyway. So no rekey when
  // reauth_time <= rekey_time, nor when the (jittered or inherited) reauthentication comes first.
  let rekeyArmed = false;
  if (lt.rekeyTime > 0) {
    ike.rekeyAt = core.jittered(now, lt.rekeyTime, lt.randTime);
    rekeyArmed = reauthDue === 0 || (c.reauthTime > lt.rekeyTime && ike.rekeyAt < reauthDue);
    if (rekeyArmed) out.push(core.arm(`ike:${ike.id}:rekey`, ike.rekeyAt, (t) => (ike.state === 'established' && !ike.reauthBy ? rekeyIkeSa(core, t, ike) : [])));
  }
  if (reauthDue > 0) {
    // Never after the hard lifetime, unless a rekey before it carries the reauthentication time over.
    const rekeyedFirst = rekeyArmed && (ike.expiresAt === 0 || ike.rekeyAt < ike.expiresAt);
    ike.reauthAt = rekeyedFirst ? reauthDue : Math.max(now + 1, Math.min(reauthDue, latestReauth(now, ike)));
    out.push(armReauth(core, ike));
  }
  if (ike.conn.ike.dpdDelay > 0) out.push(armDpd(core, now, ike));
  return out;
}
