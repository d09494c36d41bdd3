#!/usr/bin/env node
// Regular versus optimized rekeys (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt), in process, on the
// compiled engine (dist/; run `npm run build:ts` first). Two peers share an established IKE SA and one
// Child SA; the Child SA (and then the IKE SA) is rekeyed N times regularly and N times optimized in the
// same run, every message encrypted and decrypted as on the wire. Reported per rekey:
//   - bytes on the wire: IKE message octets of every exchange of the rekey (CREATE_CHILD_SA plus any
//     IKE_FOLLOWUP_KE), request + response, without IP/UDP headers;
//   - CPU time: user+system of the process for both peers' work (build, seal, open, KE, key derivation).
// for 1 and 8 configured proposals, without PFS, with X25519, and with X25519 + ML-KEM-768.
//
// Usage: node scripts/bench/rekey.mjs [rekeys=100]   (IKEV2D_DIST=<dir> to use another build than dist/)
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(process.env.IKEV2D_DIST ?? join(ROOT, 'dist'), 'ike');
if (!existsSync(join(DIST, 'engine', 'rekey-exchange.js'))) {
  console.log('rekey bench: dist/ike/engine/rekey-exchange.js missing; run `npm run build:ts` first');
  process.exit(1);
}
const load = (p) => import(pathToFileURL(join(DIST, p)).href);
const { DEFAULT_CODE_POINTS } = await load('config.js');
const { ExchangeType, PayloadType } = await load('codec/constants.js');
const { addressRange } = await load('codec/helpers.js');
const { createPrf, deriveChildKeys, deriveIkeSaKeys, getKeMethod } = await load('crypto/index.js');
const { FollowupKeResponder } = await load('engine/followup-ke.js');
const rx = await load('engine/rekey-exchange.js');
const { keMethodsOf, parseProposals, proposalsToSa, selectProposal } = await load('proposal.js');

const N = Number(process.argv[2] ?? 100);

const ESP_BASES = ['aes256gcm16', 'aes128gcm16', 'chacha20poly1305', 'aes256-sha256', 'aes256-sha384', 'aes256-sha512', 'aes128-sha256', 'aes192-sha256'];
const IKE_BASES = ['aes256gcm16-prfsha384', 'aes128gcm16-prfsha256', 'chacha20poly1305-prfsha256', 'aes256-sha256', 'aes256-sha384', 'aes256-sha512', 'aes128-sha256', 'aes192-sha256'];
const KE_VARIANTS = [
  { name: 'none', esp: '', ike: '-x25519' },
  { name: 'X25519', esp: '-x25519', ike: '-x25519' },
  { name: 'X25519+ML-KEM-768', esp: '-x25519-ke1_mlkem768', ike: '-x25519-ke1_mlkem768' },
];

function choose(proposals, kind) {
  const s = selectProposal(proposalsToSa(proposals, kind), proposals, kind);
  if (!s) throw new Error('proposals do not match themselves');
  return s.chosen;
}

function makePair(ikeTexts, espTexts) {
  const mkPolicy = () => ({
    codePoints: DEFAULT_CODE_POINTS,
    ikeProposals: parseProposals(ikeTexts, 'ike'),
    espProposals: parseProposals(espTexts, 'esp'),
    optimizedEnabled: true,
    configChanged: false,
    rng: randomBytes,
  });
  const pa = mkPolicy();
  const pb = mkPolicy();
  const ikeChosen = choose(pa.ikeProposals, 'ike');
  const ke = getKeMethod(ikeChosen.ke);
  const i = ke.initiate();
  const r = ke.respond(i.publicData);
  const ni = randomBytes(32), nr = randomBytes(32), spiI = randomBytes(8), spiR = randomBytes(8);
  const keys = deriveIkeSaKeys({ prf: createPrf(ikeChosen.prf), encr: ikeChosen.encr.id, keyBits: ikeChosen.encr.keyBits, integ: ikeChosen.integ, ni, nr, spiI, spiR, sharedSecret: i.finish(r.publicData) });
  const ikeSa = (originalInitiator) => ({ spiI, spiR, originalInitiator, keys, chosen: ikeChosen, keMethods: keMethodsOf(ikeChosen), optimizedNegotiated: true, childPfsInfoNegotiated: true });
  // child-pfs-info negotiated: the initial Child SA's KE methods are known, so every rekey may be optimized
  const chosen = choose(pa.espProposals, 'esp');
  const km = deriveChildKeys({ prf: keys.prf, skD: keys.skD, ni, nr, sharedSecrets: [], encr: chosen.encr.id, keyBits: chosen.encr.keyBits, integ: chosen.integ });
  const spiA = (randomBytes(4).readUInt32BE(0) | 0x1000) >>> 0, spiB = (randomBytes(4).readUInt32BE(0) | 0x1000) >>> 0;
  const netA = [addressRange(Buffer.from([10, 1, 0, 0]), Buffer.from([10, 1, 255, 255]))];
  const netB = [addressRange(Buffer.from([10, 2, 0, 0]), Buffer.from([10, 2, 255, 255]))];
  const common = { chosen, keMethods: keMethodsOf(chosen), mode: 'tunnel', tfcPaddingNotSupported: false, ipcomp: false, createdBy: 'ike-auth' };
  const mk = (ike, child, policy) => ({ ike, children: [child], policy, childFollowups: new FollowupKeResponder(randomBytes), ikeFollowups: new FollowupKeResponder(randomBytes), mid: 2 });
  return {
    a: mk(ikeSa(true), { ...common, spiIn: spiA, spiOut: spiB, localTs: netA, remoteTs: netB, keysOut: km.i2r, keysIn: km.r2i }, pa),
    b: mk(ikeSa(false), { ...common, spiIn: spiB, spiOut: spiA, localTs: netB, remoteTs: netA, keysOut: km.r2i, keysIn: km.i2r }, pb),
  };
}

function exchange(from, to, type, request, answer, acc) {
  const mid = from.mid++;
  const req = rx.sealMessage(from.ike, type, mid, false, request);
  const res = rx.sealMessage(to.ike, type, mid, true, answer(rx.openMessage(to.ike, req).payloads));
  acc.bytes += req.length + res.length;
  acc.exchanges++;
  return rx.openMessage(from.ike, res).payloads;
}

function rekeyChild(a, b, optimized, acc) {
  const old = a.children[0];
  const { request, pending } = rx.startChildRekey(old, a.policy, optimized);
  let done;
  const res = exchange(a, b, ExchangeType.CREATE_CHILD_SA, request, (p) => {
    const ans = rx.respondChildRekey(b.ike, p, (spi) => b.children.find((c) => c.spiOut === spi), b.policy, b.childFollowups, 0);
    if (ans.kind === 'done') done = ans.child;
    if (ans.kind === 'refused') throw new Error(`refused: ${ans.reason}`);
    return ans.response;
  }, acc);
  let out = rx.completeChildRekey(a.ike, pending, res, a.policy);
  while (out.kind === 'followup') {
    const f = out.followup;
    while (!f.done) {
      const r = exchange(a, b, ExchangeType.IKE_FOLLOWUP_KE, f.nextRequest(), (p) => {
        const x = b.childFollowups.handleRequest(0, p);
        if (!x.ok) throw new Error(x.reason);
        if (x.done) done = x.context.finish(x.secrets);
        return x.response;
      }, acc);
      const step = f.handleResponse(r);
      if (!step.ok) throw new Error(step.reason);
    }
    out = out.finish(f.secrets);
  }
  if (out.kind !== 'done' || !done) throw new Error(`child rekey failed: ${out.reason ?? out.kind}`);
  if (!out.child.keysOut.encKey.equals(done.keysIn.encKey)) throw new Error('keys differ');
  if (optimized && (request.some((p) => p.type === PayloadType.SA))) throw new Error('SA payload in an optimized request');
  a.children = [out.child];
  b.children = [done];
}

function rekeyIke(a, b, optimized, acc) {
  const { request, pending } = rx.startIkeRekey(a.ike, a.policy, optimized);
  let done;
  const res = exchange(a, b, ExchangeType.CREATE_CHILD_SA, request, (p) => {
    const ans = rx.respondIkeRekey(b.ike, p, b.policy, b.ikeFollowups, 0);
    if (ans.kind === 'done') done = ans.ike;
    if (ans.kind === 'refused') throw new Error(`refused: ${ans.reason}`);
    return ans.response;
  }, acc);
  let out = rx.completeIkeRekey(a.ike, pending, res, a.policy);
  while (out.kind === 'followup') {
    const f = out.followup;
    while (!f.done) {
      const r = exchange(a, b, ExchangeType.IKE_FOLLOWUP_KE, f.nextRequest(), (p) => {
        const x = b.ikeFollowups.handleRequest(0, p);
        if (!x.ok) throw new Error(x.reason);
        if (x.done) done = x.context.finish(x.secrets);
        return x.response;
      }, acc);
      const step = f.handleResponse(r);
      if (!step.ok) throw new Error(step.reason);
    }
    out = out.finish(f.secrets);
  }
  if (out.kind !== 'done' || !done) throw new Error(`IKE rekey failed: ${out.reason ?? out.kind}`);
  if (!out.ike.keys.skD.equals(done.keys.skD)) throw new Error('IKE keys differ');
  a.ike = out.ike;
  b.ike = done;
  a.mid = 0;
  b.mid = 0;
}

function measure(fn, pair) {
  for (let i = 0; i < 5; i++) fn(pair, { bytes: 0, exchanges: 0 }); // warm-up (JIT), not counted
  const acc = { bytes: 0, exchanges: 0 };
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) fn(pair, acc);
  const d = process.cpuUsage(t0);
  return { bytes: acc.bytes / N, exchanges: acc.exchanges / N, cpuUs: (d.user + d.system) / N };
}

const rows = [];
for (const sa of ['Child', 'IKE']) {
  for (const count of [1, 8]) {
    for (const v of KE_VARIANTS) {
      if (sa === 'IKE' && v.name === 'none') continue; // an IKE SA rekey always has a KE (RFC 7296 §2.18)
      const esp = ESP_BASES.slice(0, count).map((b) => b + v.esp);
      const ike = IKE_BASES.slice(0, sa === 'IKE' ? count : 1).map((b) => b + v.ike);
      const pair = makePair(ike, esp);
      const step = sa === 'Child' ? (p, acc, opt) => rekeyChild(p.a, p.b, opt, acc) : (p, acc, opt) => rekeyIke(p.a, p.b, opt, acc);
      const regular = measure((p, acc) => step(p, acc, false), pair);
      const optimized = measure((p, acc) => step(p, acc, true), pair);
      rows.push({ sa, count, ke: v.name, regular, optimized });
      const note = `${sa} SA, ${count} proposal(s), KE ${v.name}, ${N} rekeys`;
      for (const [kind, m] of [['regular', regular], ['optimized', optimized]]) {
        console.log(JSON.stringify({ metric: `${sa} rekey ${kind} bytes (${count}p, ${v.name})`, value: Math.round(m.bytes), unit: 'B/rekey', note: `${note}; ${m.exchanges} exchange(s)` }));
        console.log(JSON.stringify({ metric: `${sa} rekey ${kind} CPU (${count}p, ${v.name})`, value: Math.round(m.cpuUs), unit: 'us/rekey', note }));
      }
    }
  }
}

console.log('');
console.log(`| SA | proposals | KE | exchanges | regular bytes | optimized bytes | saved | regular CPU µs | optimized CPU µs |`);
console.log(`|---|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  const saved = (100 * (1 - r.optimized.bytes / r.regular.bytes)).toFixed(0);
  console.log(`| ${r.sa} | ${r.count} | ${r.ke} | ${r.regular.exchanges} | ${Math.round(r.regular.bytes)} | ${Math.round(r.optimized.bytes)} | ${saved}% | ${Math.round(r.regular.cpuUs)} | ${Math.round(r.optimized.cpuUs)} |`);
}
