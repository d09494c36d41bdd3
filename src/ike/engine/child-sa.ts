// Child SAs (RFC 7296 §1.3.1, §2.17): new ones created with CREATE_CHILD_SA (or IKE_AUTH), with
// additional key exchanges in IKE_FOLLOWUP_KE (RFC 9370), their installation in the kernel, policies,
// timers and deletion, and the kernel's events about them (ACQUIRE, expiry, failed actions).
import type { ChildConfig, PpkConfig } from '../config.js';
import { ExchangeType, NotifyType, PayloadType, ProtocolId } from '../codec/constants.js';
import { deletePayload, findErrorNotify, findNotify, getKe, getNonce, getSa, getTsi, getTsr, kePayload, noncePayload, notify, proposal, saPayload, spi32, tsPayload } from '../codec/helpers.js';
import type { Payload, TrafficSelector } from '../codec/types.js';
import { deriveChildKeys, getKeMethod } from '../crypto/index.js';
import { checkAccepted, type ChosenAlgorithms, keMethodsOf, proposalsToSa, selectProposal, suiteName } from '../proposal.js';
import type { Action, ChildSaKernelSpec, KernelEventInput, SaKeys } from './actions.js';
import type { EngineCore } from './core.js';
import { type ChildSaState, hex, type IkeSaState, NONCE_LENGTH, policyKey, type RequestAfter } from './state.js';
import { packetSelectors, type PacketSelectors, pickChildConfig, requestSelectors } from './selectors.js';
import { FollowupKeInitiator } from './followup-ke.js';
import { kernelSpecOf, type RekeyChildSa, respondChildRekey, respondIkeRekey } from './rekey-exchange.js';
import { ppkAnswer, ppkNotice, ppkOffer, ppkSelected, withPpk } from './ike-intermediate.js';
import { ourTs, peerTs } from './ike-vip.js';
import { initiate } from './initiation.js';
import { reauthChildSettled, reauthReplaces, retireForReauth } from './reauth.js';
import { acceptChildRekeyAsResponder, adoptRekeyedIkeSa, createRekeyedIkeSa, ikeRekeyNeedsFollowups, rekeyChildSa } from './rekey.js';
import { request, runFollowups } from './requests.js';
import { deleteIkeSa } from './teardown.js';

export function onKernelEvent(core: EngineCore, now: number, ev: KernelEventInput): Action[] {
  try {
    switch (ev.type) {
      case 'acquire': {
        for (const conn of core.config.connections) {
          const child = conn.children.find((c) => c.reqid === ev.reqid);
          if (!child) continue;
          const existing = [...core.sas.values()].find((s) => s.conn.name === conn.name && s.state !== 'deleting' && s.state !== 'rekeyed');
          if (existing) {
            // An IKE SA exists: create the Child SA in it, unless it is up or being set up already.
            if (existing.state !== 'established' || [...existing.children.values()].some((c) => c.cfg.name === child.name)) return [];
            return createChildSa(core, now, existing, child, undefined, packetSelectors(ev.selector));
          }
          return initiate(core, now, conn.name, child.name, packetSelectors(ev.selector));
        }
        return [];
      }
      case 'expire': {
        const found = core.findChildBySpi(ev.spi);
        if (!found) return [];
        const [ike, child] = found;
        if (ev.hard) return deleteChild(core, now, ike, child, 'hard lifetime expired in the kernel', true);
        return rekeyChildSa(core, now, ike, child);
      }
      case 'action-failed': {
        core.log('error', { op: ev.action.op, error: ev.message }, 'kernel action failed');
        const spec = 'spec' in ev.action ? ev.action.spec : undefined;
        const out: Action[] = [{ kind: 'event', event: { type: 'error', ...(spec ? { connection: spec.connection } : {}), message: `kernel ${ev.action.op} failed: ${ev.message}` } }];
        if (spec && (ev.action.op === 'installInboundSa' || ev.action.op === 'installOutboundSa' || ev.action.op === 'installPolicies')) {
          const found = core.findChildBySpi(spec.spiIn);
          if (found) out.push(...deleteChild(core, now, found[0], found[1], `kernel refused ${ev.action.op}`, true));
        }
        return out;
      }
      default:
        return [];
    }
  } catch (e) {
    core.log('error', { error: (e as Error).message }, 'kernel event handling failed');
    return [];
  }
}

/** CREATE_CHILD_SA for an additional Child SA (RFC 7296 §1.3.1): SA, Ni, [KEi], TSi, TSr. */
export function createChildSa(core: EngineCore, now: number, ike: IkeSaState, cfg: ChildConfig, keMethod?: number, packet?: PacketSelectors, packetOnly = false, selectors?: [Payload, Payload]): Action[] {
  const spiIn = core.newEspSpi();
  const ni = Buffer.from(core.rng(NONCE_LENGTH));
  const sent = proposalsToSa(cfg.espProposals, 'esp');
  const method = keMethod ?? cfg.espProposals[0]?.ke.find((m) => m !== 0);
  const ke = method !== undefined ? { method, init: getKeMethod(method)!.initiate(core.rng) } : undefined;
  const payloads: Payload[] = [saPayload(sent.map((p) => proposal(p.num, p.protocol, spi32(spiIn), p.transforms))), noncePayload(ni)];
  if (ke) payloads.push(kePayload(ke.method, ke.init.publicData));
  payloads.push(...(selectors ?? requestSelectors(cfg, packet, packetOnly)));
  if (cfg.mode === 'transport') payloads.push(notify(NotifyType.USE_TRANSPORT_MODE));
  let offered: PpkConfig[] = [];
  return request(core, now, ike, ExchangeType.CREATE_CHILD_SA, () => {
    const ppk = ppkOffer(core, ike);
    offered = ppk.offered;
    return [...payloads, ...ppk.notifies];
  }, (t, _h, resp) => {
    const fail = (reason: string): Action[] => {
      core.usedSpis.delete(spiIn);
      return [core.event({ type: 'error', connection: ike.conn.name, message: `Child SA '${cfg.name}' not created: ${reason}` }), ...reauthChildSettled(core, t, ike, cfg, reason)];
    };
    const sel = ppkSelected(resp, offered);
    if (!sel.ok) return [...fail(sel.reason), ...deleteIkeSa(core, t, ike, `new Child SA: ${sel.reason}`, true)];
    const skD = sel.ppk ? withPpk(ike.sa!, sel.ppk).keys.skD : undefined;
    const err = findErrorNotify(resp);
    if (err?.notifyType === NotifyType.INVALID_KE_PAYLOAD && err.data.length === 2 && keMethod === undefined) {
      core.usedSpis.delete(spiIn);
      return createChildSa(core, t, ike, cfg, err.data.readUInt16BE(0), packet, packetOnly, selectors);
    }
    if (err?.notifyType === NotifyType.SINGLE_PAIR_REQUIRED) {
      // RFC 7296 §3.10.1: ask again for just the traffic we forward: the packet that triggered us.
      if (packet && !packetOnly) {
        core.usedSpis.delete(spiIn);
        return createChildSa(core, t, ike, cfg, keMethod, packet, true);
      }
      return fail(packet ? 'the peer refused even the single address pair of the triggering packet (SINGLE_PAIR_REQUIRED)' : 'the peer accepts only a single address pair (SINGLE_PAIR_REQUIRED), and no packet triggered this Child SA to name one: use start_action: trap or narrower traffic selectors');
    }
    if (err) return fail(`peer answered notify ${err.notifyType}`);
    const sar = getSa(resp);
    const nonce = getNonce(resp);
    const tsi = getTsi(resp);
    const tsr = getTsr(resp);
    if (!sar || !nonce || !tsi || !tsr) return fail('response lacks SA, Nonce or TS payloads');
    let chosen: ChosenAlgorithms;
    try {
      chosen = checkAccepted(sent, sar.proposals, 'esp');
    } catch (e) {
      return fail((e as Error).message);
    }
    const p = sar.proposals[0]!;
    if (p.spi.length !== 4) return fail('responder SPI is not 4 octets');
    // RFC 9370 §2.2.4: the additional key exchanges follow the CREATE_CHILD_SA KE, which must exist.
    if (chosen.addKe.some((m) => m !== undefined) && chosen.ke === undefined) return fail('additional key exchanges negotiated without a KE method');
    const secrets: Buffer[] = [];
    if (chosen.ke !== undefined) {
      const kr = getKe(resp);
      if (!ke || !kr || kr.group !== ke.method || chosen.ke !== ke.method) return fail('KE payload missing or of another method');
      try {
        secrets.push(ke.init.finish(kr.data));
      } catch (e) {
        return fail((e as Error).message);
      }
    }
    const localTs = ourTs(ike, tsi.selectors);
    if (localTs.length === 0) return fail('the responder narrowed TSi to addresses outside our virtual IP');
    const mode = cfg.mode === 'transport' && findNotify(resp, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
    const tfc = findNotify(resp, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined;
    const nr = Buffer.from(nonce.data);
    const finish = (all: Buffer[], at: number) => [
      ...ppkNotice(core, ike, `new Child SA ${cfg.name}`, sel.ppk),
      ...installChild(core, at, ike, makeChild(core, ike, cfg, chosen, spiIn, p.spi.readUInt32BE(0), localTs, tsr.selectors, mode, keMethodsOf(chosen), true, tfc, { ni, nr, secrets: all, ...(skD ? { skD } : {}) }), cfg),
    ];
    const more = keMethodsOf(chosen).slice(1);
    if (more.length === 0) {
      if (findNotify(resp, NotifyType.ADDITIONAL_KEY_EXCHANGE)) return fail('ADDITIONAL_KEY_EXCHANGE without negotiated additional key exchanges');
      return finish(secrets, t);
    }
    // RFC 9370 §2.2.4: one IKE_FOLLOWUP_KE per additional method; nothing reaches the kernel before the
    // last one, whose secret completes KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)).
    const followup = new FollowupKeInitiator(more, secrets, core.rng);
    const started = followup.start(resp);
    if (!started.ok) return fail(started.reason);
    return runFollowups(core, t, ike, followup, () => finish(followup.secrets, core.lastNow), (reason, fatal) => {
      const out = fail(`IKE_FOLLOWUP_KE: ${reason}`);
      if (fatal) out.push(...deleteIkeSa(core, core.lastNow, ike, reason, true));
      return out;
    });
  });
}

/** Responder of CREATE_CHILD_SA for a new Child SA: narrow TS, select, key, install before answering. */
export function respondCreateChildSa(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): { response: Payload[]; after: RequestAfter } {
  const refuse = (n: number, message: string, data: Buffer = Buffer.alloc(0)) => ({ response: [notify(n, data)], after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `refused a new Child SA: ${message}` })] } });
  const sai = getSa(payloads);
  const nonce = getNonce(payloads);
  const tsi = getTsi(payloads);
  const tsr = getTsr(payloads);
  if (!sai || !nonce || !tsi || !tsr) return refuse(NotifyType.INVALID_SYNTAX, 'request lacks SA, Nonce or TS payloads');
  const kp = getKe(payloads);
  const picked = pickChildConfig(ike.conn.children, tsi.selectors, tsr.selectors, (cfg) => selectProposal(sai.proposals, cfg.espProposals, 'esp', kp ? { preferKe: kp.group } : {}) !== undefined, (sels) => peerTs(ike, sels));
  if ('refuse' in picked) return refuse(picked.refuse, picked.reason);
  const selected = selectProposal(sai.proposals, picked.cfg.espProposals, 'esp', kp ? { preferKe: kp.group } : {});
  if (!selected) return refuse(NotifyType.NO_PROPOSAL_CHOSEN, 'no acceptable proposal');
  const chosen = selected.chosen;
  if (chosen.addKe.some((m) => m !== undefined) && chosen.ke === undefined) return refuse(NotifyType.NO_PROPOSAL_CHOSEN, 'additional key exchanges negotiated without a KE method');
  const offered = sai.proposals.find((p) => p.num === selected.proposalNumber)!;
  if (offered.spi.length !== 4) return refuse(NotifyType.INVALID_SYNTAX, 'proposal SPI is not 4 octets');
  const nr = Buffer.from(core.rng(NONCE_LENGTH));
  const secrets: Buffer[] = [];
  const response: Payload[] = [];
  const spiIn = core.newEspSpi();
  let keReply: Payload | undefined;
  if (chosen.ke !== undefined) {
    if (!kp || kp.group !== chosen.ke) {
      core.usedSpis.delete(spiIn);
      const d = Buffer.alloc(2);
      d.writeUInt16BE(chosen.ke);
      return refuse(NotifyType.INVALID_KE_PAYLOAD, `KE payload must use method ${chosen.ke}`, d);
    }
    try {
      const r = getKeMethod(kp.group)!.respond(kp.data, core.rng);
      secrets.push(r.sharedSecret);
      keReply = kePayload(kp.group, r.publicData);
    } catch (e) {
      core.usedSpis.delete(spiIn);
      return refuse(NotifyType.INVALID_SYNTAX, (e as Error).message);
    }
  }
  const mode = picked.cfg.mode === 'transport' && findNotify(payloads, NotifyType.USE_TRANSPORT_MODE) ? 'transport' : 'tunnel';
  const tfc = findNotify(payloads, NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED) !== undefined;
  const cfg = picked.cfg;
  const ni = Buffer.from(nonce.data);
  const spiOut = offered.spi.readUInt32BE(0);
  const ppk = ppkAnswer(core, ike, payloads);
  const skD = ppk.ppk ? withPpk(ike.sa!, ppk.ppk).keys.skD : undefined;
  const build = (all: Buffer[]) => makeChild(core, ike, cfg, chosen, spiIn, spiOut, picked.local, picked.remote, mode, keMethodsOf(chosen), false, tfc, { ni, nr, secrets: all, ...(skD ? { skD } : {}) });
  response.push(saPayload([proposal(selected.proposalNumber, ProtocolId.ESP, spi32(spiIn), selected.transforms)]), noncePayload(nr));
  if (keReply) response.push(keReply);
  response.push(tsPayload(PayloadType.TSi, picked.remote), tsPayload(PayloadType.TSr, picked.local));
  if (mode === 'transport') response.push(notify(NotifyType.USE_TRANSPORT_MODE));
  response.push(...ppk.reply);
  // RFC 9370 §2.2.4: with additional key exchanges the Child SA exists only after the last
  // IKE_FOLLOWUP_KE; until then only its SPI is reserved and nothing is installed.
  const link = ike.followupsNewChild.begin(now, keMethodsOf(chosen).slice(1), secrets, { cfg, spiIn, finish: build });
  if (link) return { response: [...response, link], after: { after: [...ppkNotice(core, ike, `new Child SA ${cfg.name}`, ppk.ppk), ...armFollowupTimeout(core, ike)] } };
  return { response, after: { before: [...ppkNotice(core, ike, `new Child SA ${cfg.name}`, ppk.ppk), ...installChild(core, now, ike, build(secrets), cfg)] } };
}

/**
 * One timer per IKE SA for the responder's IKE_FOLLOWUP_KE chains: a chain whose next request does
 * not come in time is abandoned (RFC 9370 §2.2.4; FOLLOWUP_STATE_TIMEOUT_MS), leaving no state.
 */
export function armFollowupTimeout(core: EngineCore, ike: IkeSaState): Action[] {
  const id = `ike:${ike.id}:followup`;
  const deadlines = [ike.followupsNewChild.nextDeadline(), ike.followupsChild.nextDeadline(), ike.followupsIke.nextDeadline()].filter((d): d is number => d !== undefined);
  if (deadlines.length === 0) return core.cancel(id);
  return [core.arm(id, Math.min(...deadlines), (t) => followupTimeout(core, t, ike))];
}

export function followupTimeout(core: EngineCore, now: number, ike: IkeSaState): Action[] {
  if (core.sas.get(ike.id) !== ike) return [];
  const out: Action[] = [];
  for (const ctx of ike.followupsNewChild.expire(now)) {
    core.usedSpis.delete(ctx.spiIn);
    out.push(core.event({ type: 'error', connection: ike.conn.name, message: `Child SA '${ctx.cfg.name}' abandoned: the next IKE_FOLLOWUP_KE did not arrive in time` }));
  }
  // An abandoned rekey leaves the old Child SA as it was, free to be rekeyed again.
  for (const ctx of ike.followupsChild.expire(now)) for (const c of ike.children.values()) if (c.sa === ctx.old && c.state === 'rekeying') c.state = 'installed';
  ike.followupsIke.expire(now);
  out.push(...armFollowupTimeout(core, ike));
  return out;
}

// ------------------------------------------------------------------------------ Child SAs

export function makeChild(
  core: EngineCore,
  ike: IkeSaState,
  cfg: ChildConfig,
  chosen: ChosenAlgorithms,
  spiIn: number,
  spiOut: number,
  localTs: TrafficSelector[],
  remoteTs: TrafficSelector[],
  mode: 'tunnel' | 'transport',
  keMethods: number[] | undefined,
  weInitiated: boolean,
  tfc: boolean,
  exchange?: { ni: Buffer; nr: Buffer; secrets: Buffer[]; skD?: Buffer },
): RekeyChildSa {
  const sa = ike.sa!;
  // RFC 7296 §2.17: the IKE_AUTH Child SA uses the IKE_SA_INIT nonces; others their CREATE_CHILD_SA ones.
  const km = deriveChildKeys({
    prf: sa.keys.prf,
    // RFC 9867: SK_d' = prf+(PPK, SK_d) when this CREATE_CHILD_SA selected a PPK.
    skD: exchange?.skD ?? sa.keys.skD,
    ni: exchange?.ni ?? ike.ni,
    nr: exchange?.nr ?? ike.nr,
    sharedSecrets: exchange?.secrets ?? [],
    encr: chosen.encr.id,
    ...(chosen.encr.keyBits !== undefined ? { keyBits: chosen.encr.keyBits } : {}),
    ...(chosen.integ !== undefined ? { integ: chosen.integ } : {}),
  });
  core.usedSpis.add(spiIn);
  void cfg;
  return {
    spiIn,
    spiOut,
    chosen,
    keMethods,
    localTs,
    remoteTs,
    mode,
    tfcPaddingNotSupported: tfc,
    ipcomp: false,
    keysIn: weInitiated ? km.r2i : km.i2r,
    keysOut: weInitiated ? km.i2r : km.r2i,
    createdBy: exchange ? 'create' : 'ike-auth',
  };
}

export function specBase(ike: IkeSaState, cfg: ChildConfig) {
  const encap = ike.natLocal || ike.natRemote ? { localPort: ike.local.port, remotePort: ike.remote.port } : undefined;
  return {
    connection: ike.conn.name,
    child: cfg.name,
    reqid: cfg.reqid,
    protocol: 'esp' as const,
    local: ike.local.address,
    remote: ike.remote.address,
    ...(encap ? { encap } : {}),
    replayWindow: cfg.replayWindow,
    softBytes: cfg.lifetime.rekeyBytes,
    hardBytes: cfg.lifetime.lifeBytes,
    softPackets: cfg.lifetime.rekeyPackets,
    hardPackets: cfg.lifetime.lifePackets,
    hardSeconds: cfg.lifetime.lifeTime,
    ifId: cfg.ifId,
    mark: cfg.mark,
    ...(cfg.tfcPadding ? { tfcPad: cfg.tfcPadding } : {}),
  };
}

export function keysOf(k: { encKey: Buffer; integKey: Buffer }): SaKeys {
  return k.integKey.length > 0 ? { encKey: k.encKey, integKey: k.integKey } : { encKey: k.encKey };
}

export function addChild(core: EngineCore, now: number, ike: IkeSaState, cfg: ChildConfig, sa: RekeyChildSa): ChildSaState {
  const childId = core.nextChildId++;
  const lt = cfg.lifetime;
  const child: ChildSaState = {
    childId,
    cfg,
    sa,
    spec: kernelSpecOf(specBase(ike, cfg), childId, sa),
    state: 'installed',
    rekeyAt: lt.rekeyTime > 0 ? core.jittered(now, lt.rekeyTime, lt.randTime) : 0,
    expiresAt: lt.lifeTime > 0 ? now + lt.lifeTime * 1000 : 0,
    refusedOptimized: false,
  };
  ike.children.set(childId, child);
  return child;
}

export function childTimers(core: EngineCore, child: ChildSaState): Action[] {
  const out: Action[] = [];
  if (child.rekeyAt) out.push(core.arm(`child:${child.childId}:rekey`, child.rekeyAt, (t) => {
    // The Child SA may have moved to a new IKE SA (IKE SA rekey) since the timer was armed.
    const owner = ownerOf(core, child);
    return owner ? rekeyChildSa(core, t, owner, child) : [];
  }));
  if (child.expiresAt) out.push(core.arm(`child:${child.childId}:expire`, child.expiresAt, (t) => {
    const owner = ownerOf(core, child);
    return owner ? deleteChild(core, t, owner, child, 'hard lifetime reached', true) : [];
  }));
  return out;
}

export function ownerOf(core: EngineCore, child: ChildSaState): IkeSaState | undefined {
  for (const ike of core.sas.values()) if (ike.children.get(child.childId) === child) return ike;
  return undefined;
}

export function espKeylog(core: EngineCore, child: ChildSaState): Action[] {
  const s = child.spec;
  const encr = String(s.encr.id);
  const integ = s.integ ? String(s.integ.id) : 'NONE';
  return [
    core.event({ type: 'keylog-esp', src: s.remote, dst: s.local, spi: `0x${child.sa.spiIn.toString(16).padStart(8, '0')}`, encr, encKey: hex(child.sa.keysIn.encKey), integ, integKey: hex(child.sa.keysIn.integKey) }),
    core.event({ type: 'keylog-esp', src: s.local, dst: s.remote, spi: `0x${child.sa.spiOut.toString(16).padStart(8, '0')}`, encr, encKey: hex(child.sa.keysOut.encKey), integ, integKey: hex(child.sa.keysOut.integKey) }),
  ];
}

/** Install a new Child SA made from `cfg` (the configuration it was negotiated for, never guessed from its selectors). */
export function installChild(core: EngineCore, now: number, ike: IkeSaState, sa: RekeyChildSa, cfg: ChildConfig): Action[] {
  const child = addChild(core, now, ike, cfg, sa);
  const inbound: Action = { kind: 'kernel', action: { op: 'installInboundSa', spec: child.spec, keys: keysOf(sa.keysIn) } };
  const outbound: Action = { kind: 'kernel', action: { op: 'installOutboundSa', spec: child.spec, keys: keysOf(sa.keysOut) } };
  const replaced = reauthReplaces(core, ike, child);
  // Another live Child SA of the same reqid (the twin from a simultaneous initiation) already has
  // the policies: they stay on it, so the new SA is not used before the peer can receive on it.
  let kernel: Action[] = [inbound, outbound, ...(policiesHeldByOther(core, child) ? [] : [{ kind: 'kernel' as const, action: { op: 'installPolicies' as const, spec: notePolicy(core, child.spec) } }])];
  if (replaced && ike.reauthOf) kernel = [inbound, outbound, ...retireForReauth(core, replaced.owner, replaced.child, child)];
  else if (replaced) {
    // Responder of a reauthentication: the policies (per reqid) stay on the old SA until the old IKE SA goes.
    child.reauthSwitch = replaced.child;
    kernel = [inbound, outbound];
  }
  return [
    ...kernel,
    core.event({ type: 'child-up', ikeSaId: ike.id, connection: ike.conn.name, child: cfg.name, spiIn: sa.spiIn, spiOut: sa.spiOut, suite: suiteName(sa.chosen) }),
    ...espKeylog(core, child),
    ...childTimers(core, child),
    ...(ike.reauthOf ? reauthChildSettled(core, now, ike, cfg, true) : []),
  ];
}

export function policiesHeldByOther(core: EngineCore, child: ChildSaState): boolean {
  const held = core.policyOut.get(policyKey(child.spec));
  if (held === undefined) return false;
  return [...core.sas.values()].some((s) => [...s.children.values()].some((c) => c !== child && c.sa.spiOut === held && c.spec.connection === child.spec.connection));
}

/** Record that the outbound policies of `spec`'s reqid now point to its outbound SPI. */
export function notePolicy(core: EngineCore, spec: ChildSaKernelSpec): ChildSaKernelSpec {
  core.policyOut.set(policyKey(spec), spec.spiOut);
  return spec;
}

/**
 * Policies are per reqid: they stay while another Child SA (e.g. the winner of a rekey collision,
 * or the twin of a simultaneously initiated IKE SA) uses them, re-pointed to it first if they
 * pointed to `child`, so that its outbound SA is never deleted under a policy (make-before-break).
 */
export function handOverPolicies(core: EngineCore, child: ChildSaState): { heir?: ChildSaState; actions: Action[] } {
  const heir = [...core.sas.values()].flatMap((s) => [...s.children.values()]).find((c) => c !== child && c.cfg.reqid === child.cfg.reqid && c.spec.connection === child.spec.connection && c.state !== 'rekeyed');
  if (!heir || core.policyOut.get(policyKey(child.spec)) !== child.sa.spiOut) return heir ? { heir, actions: [] } : { actions: [] };
  return { heir, actions: [{ kind: 'kernel', action: { op: 'updateOutboundPolicy', spec: notePolicy(core, heir.spec), previousSpiOut: child.sa.spiOut } }] };
}

export function removeChildKernel(core: EngineCore, child: ChildSaState, policies: boolean): Action[] {
  core.usedSpis.delete(child.sa.spiIn);
  const { heir, actions } = handOverPolicies(core, child);
  const out: Action[] = [...core.cancel(`child:${child.childId}:rekey`), ...core.cancel(`child:${child.childId}:expire`), ...actions];
  out.push({ kind: 'kernel', action: { op: 'deleteOutboundSa', spec: child.spec } }, { kind: 'kernel', action: { op: 'deleteInboundSa', spec: child.spec } });
  if (policies && !heir) {
    out.push({ kind: 'kernel', action: { op: 'deletePolicies', spec: child.spec } });
    core.policyOut.delete(policyKey(child.spec));
  }
  return out;
}

export function deleteChild(core: EngineCore, now: number, ike: IkeSaState, child: ChildSaState, reason: string, tellPeer: boolean): Action[] {
  if (!ike.children.has(child.childId)) return [];
  ike.children.delete(child.childId);
  const out = [
    ...removeChildKernel(core, child, true),
    core.event({ type: 'child-down', connection: ike.conn.name, child: child.cfg.name, spiIn: child.sa.spiIn, spiOut: child.sa.spiOut, reason }),
  ];
  if (tellPeer && ike.state === 'established') {
    out.push(...request(core, now, ike, ExchangeType.INFORMATIONAL, () => [deletePayload(ProtocolId.ESP, [spi32(child.sa.spiIn)])], () => []));
  }
  return out;
}

/** IKE_FOLLOWUP_KE request (RFC 9370 §2.2.4): one more key exchange of a pending Child or IKE SA. */
export function onFollowupKe(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): { response: Payload[]; after: RequestAfter } {
  const child = ike.followupsChild.handleRequest(now, payloads);
  if (child.ok || child.context !== undefined || child.notify !== NotifyType.STATE_NOT_FOUND) {
    if (!child.ok) {
      if (child.context) for (const c of ike.children.values()) if (c.sa === child.context.old) c.state = 'installed';
      return { response: [notify(child.notify)], after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `IKE_FOLLOWUP_KE refused: ${child.reason}` })] } };
    }
    if (!child.done) return { response: child.response, after: {} };
    const target = [...ike.children.values()].find((c) => c.sa === child.context.old);
    if (!target) return { response: [notify(NotifyType.STATE_NOT_FOUND)], after: {} };
    return { response: child.response, after: acceptChildRekeyAsResponder(core, now, ike, target, child.context.finish(child.secrets), { ni: child.context.ni, nr: child.context.nr }) };
  }
  const created = ike.followupsNewChild.handleRequest(now, payloads);
  if (created.ok || created.context !== undefined || created.notify !== NotifyType.STATE_NOT_FOUND) {
    if (!created.ok) {
      if (created.context) core.usedSpis.delete(created.context.spiIn);
      return { response: [notify(created.notify)], after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `IKE_FOLLOWUP_KE refused: ${created.reason}` }), ...armFollowupTimeout(core, ike)] } };
    }
    if (!created.done) return { response: created.response, after: { after: armFollowupTimeout(core, ike) } };
    // The last key exchange: keys now, and the SAs installed before the response leaves.
    const sa = created.context.finish(created.secrets);
    return { response: created.response, after: { before: installChild(core, now, ike, sa, created.context.cfg), after: armFollowupTimeout(core, ike) } };
  }
  const rekey = ike.followupsIke.handleRequest(now, payloads);
  if (!rekey.ok) return { response: [notify(rekey.notify)], after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `IKE_FOLLOWUP_KE refused: ${rekey.reason}` })] } };
  if (!rekey.done) return { response: rekey.response, after: {} };
  const fresh = rekey.context.finish(rekey.secrets);
  return { response: rekey.response, after: { after: adoptRekeyedIkeSa(core, now, ike, fresh, rekey.context.ni, rekey.context.nr, false) } };
}

export function onCreateChildSa(core: EngineCore, now: number, ike: IkeSaState, payloads: Payload[]): { response: Payload[]; after: RequestAfter } {
  const rekeySa = findNotify(payloads, NotifyType.REKEY_SA);
  const sa = getSa(payloads);
  const optimizedIke = !rekeySa && findNotify(payloads, core.config.codePoints.optimizedRekey) !== undefined;
  if (rekeySa) {
    if (ike.ikeRekeyInFlight) {
      // RFC 7296 §2.25.2: a Child SA rekey request while we rekey the IKE SA gets TEMPORARY_FAILURE.
      return { response: [notify(NotifyType.TEMPORARY_FAILURE)], after: {} };
    }
    const target = [...ike.children.values()].find((c) => rekeySa.spi.length === 4 && c.sa.spiOut === rekeySa.spi.readUInt32BE(0));
    const policy = core.policyFor(ike, target?.cfg, target);
    const ppk = ppkAnswer(core, ike, payloads);
    const answer = respondChildRekey(withPpk(ike.sa!, ppk.ppk), payloads, (spiOut) => [...ike.children.values()].find((c) => c.sa.spiOut === spiOut && c.state !== 'rekeyed')?.sa, policy, ike.followupsChild, now);
    if (answer.kind === 'refused' || !target) {
      const msg = answer.kind === 'refused' ? answer.reason : 'no such Child SA';
      return { response: answer.kind === 'refused' ? answer.response : [notify(NotifyType.CHILD_SA_NOT_FOUND)], after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `refused a Child SA rekey: ${msg}` })] } };
    }
    if (answer.kind === 'followup') {
      // RFC 9370 §2.2.4: the new SA is finished by IKE_FOLLOWUP_KE; the old one stays in use meanwhile.
      target.state = 'rekeying';
      return { response: [...answer.response, ...ppk.reply], after: { after: [...ppkNotice(core, ike, `rekeyed Child SA ${target.cfg.name}`, ppk.ppk), ...armFollowupTimeout(core, ike)] } };
    }
    const accepted = acceptChildRekeyAsResponder(core, now, ike, target, answer.child, { ni: answer.ni, nr: answer.nr });
    if (ppk.ppk) accepted.after = [...ppkNotice(core, ike, `rekeyed Child SA ${target.cfg.name}`, ppk.ppk), ...(accepted.after ?? [])];
    return { response: [...answer.response, ...ppk.reply], after: accepted };
  }
  if (optimizedIke || (sa && sa.proposals[0]?.protocol === ProtocolId.IKE)) {
    if (ike.ikeRekeyInFlight && (ike.ikeRekeyCollision || ikeRekeyNeedsFollowups(ike))) {
      // A second collision, or one whose SAs would only be finished by IKE_FOLLOWUP_KE exchanges
      // (RFC 9370): refuse with TEMPORARY_FAILURE (§2.25); the peer retries after a randomized delay.
      return { response: [notify(NotifyType.TEMPORARY_FAILURE)], after: { after: [core.event({ type: 'notice', connection: ike.conn.name, message: "IKE SA rekey collision: refused the peer's rekey with TEMPORARY_FAILURE while ours is in flight" })] } };
    }
    const ppk = ppkAnswer(core, ike, payloads);
    const answer = respondIkeRekey(withPpk(ike.sa!, ppk.ppk), payloads, core.policyFor(ike), ike.followupsIke, now);
    if (answer.kind === 'refused') {
      return { response: answer.response, after: { after: [core.event({ type: 'error', connection: ike.conn.name, message: `refused an IKE SA rekey: ${answer.reason}` })] } };
    }
    answer.response.push(...ppk.reply);
    const ppkNote = ppkNotice(core, ike, 'rekeyed IKE SA', ppk.ppk);
    if (answer.kind === 'followup') return { response: answer.response, after: { after: [...ppkNote, ...armFollowupTimeout(core, ike)] } };
    if (ike.ikeRekeyInFlight) {
      // Simultaneous IKE SA rekeys (RFC 7296 §2.8.2): answer normally; which new IKE SA survives is
      // decided by the nonces once our own exchange completes (resolveIkeRekeyCollision).
      const fresh = createRekeyedIkeSa(core, now, ike, answer.ike, answer.ni, answer.nr);
      ike.ikeRekeyCollision = { fresh, ni: answer.ni, nr: answer.nr, optimized: optimizedIke };
      return { response: answer.response, after: { after: [...ppkNote, core.event({ type: 'notice', connection: ike.conn.name, message: 'simultaneous IKE SA rekey: answered the peer\'s, the nonces decide which survives (RFC 7296 §2.8.2)' })] } };
    }
    return { response: answer.response, after: { after: [...ppkNote, ...adoptRekeyedIkeSa(core, now, ike, answer.ike, answer.ni, answer.nr, optimizedIke)] } };
  }
  return respondCreateChildSa(core, now, ike, payloads);
}
