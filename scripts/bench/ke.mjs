#!/usr/bin/env node
// KE method cost per handshake side: key generation plus shared-secret computation, CPU time.
// Compares node:crypto (OpenSSL) with @noble for each group, which is how src/ike/crypto/ke.ts chose
// its backend per method. ML-KEM has only the @noble backend on Node 20.
//
// Usage: node scripts/bench/ke.mjs [iterations=200] [path/to/compiled/ike/crypto/index.js]
import { createDiffieHellman, createDiffieHellmanGroup, createECDH, createPrivateKey, createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { x448 } from '@noble/curves/ed448.js';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';

const N = Number(process.argv[2] ?? 200);

function cpuMicros(fn, n) {
  fn(); // warm up
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const d = process.cpuUsage(start);
  return (d.user + d.system) / n;
}

// A peer public value to compute against, produced outside the measured loop.
const nodeEcdh = (curve) => {
  const peer = createECDH(curve);
  peer.generateKeys();
  const peerPub = peer.getPublicKey();
  return () => {
    const e = createECDH(curve);
    e.generateKeys();
    e.getPublicKey();
    return e.computeSecret(peerPub);
  };
};
// MODP: no @noble implementation exists; node:crypto only.
const nodeModp = (group, expLen) => {
  const g = createDiffieHellmanGroup(group);
  const prime = g.getPrime();
  const peer = createDiffieHellman(prime, 2);
  peer.generateKeys();
  const peerPub = peer.getPublicKey();
  return () => {
    const dh = createDiffieHellman(prime, 2);
    dh.setPrivateKey(randomBytes(expLen));
    dh.generateKeys();
    return dh.computeSecret(peerPub);
  };
};
const nobleEcdh = (curve) => {
  const peerPub = curve.getPublicKey(curve.utils.randomSecretKey(), false);
  return () => {
    const sk = curve.utils.randomSecretKey();
    curve.getPublicKey(sk, false);
    return curve.getSharedSecret(sk, peerPub);
  };
};
// As ke.ts does it: raw random private key and raw peer value imported as JWK (RFC 8037 OKP).
const nodeMontgomery = (crv, len) => {
  const peerRaw = nobleCurve(crv).getPublicKey(randomBytes(len));
  const x = Buffer.from(peerRaw).toString('base64url');
  return () => {
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv, d: randomBytes(len).toString('base64url'), x: '' }, format: 'jwk' });
    privateKey.export({ format: 'jwk' }).x;
    const peerKey = createPublicKey({ key: { kty: 'OKP', crv, x }, format: 'jwk' });
    return diffieHellman({ privateKey, publicKey: peerKey });
  };
};
const nobleCurve = (crv) => (crv === 'X25519' ? x25519 : x448);
const nobleMontgomery = (curve, len) => {
  const peerPub = curve.getPublicKey(randomBytes(len));
  return () => {
    const sk = randomBytes(len);
    curve.getPublicKey(sk);
    return curve.getSharedSecret(sk, peerPub);
  };
};
const mlkem = (kem) => {
  const peer = kem.keygen();
  const { cipherText } = kem.encapsulate(peer.publicKey);
  return {
    // keygen, then decapsulation (of a ciphertext made for a fixed key pair: same cost)
    initiator: () => {
      kem.keygen(randomBytes(64));
      return kem.decapsulate(cipherText, peer.secretKey);
    },
    responder: () => kem.encapsulate(peer.publicKey, randomBytes(32)),
  };
};

const rows = [];
const add = (method, backend, fn, side = 'either side') => rows.push({ method, backend, side, us: cpuMicros(fn, N) });

add('14 MODP_2048', 'node:crypto', nodeModp('modp14', 48));
add('15 MODP_3072', 'node:crypto', nodeModp('modp15', 48));
add('16 MODP_4096', 'node:crypto', nodeModp('modp16', 64));
add('19 ECP_256', 'node:crypto', nodeEcdh('prime256v1'));
add('19 ECP_256', '@noble/curves', nobleEcdh(p256));
add('20 ECP_384', 'node:crypto', nodeEcdh('secp384r1'));
add('20 ECP_384', '@noble/curves', nobleEcdh(p384));
add('21 ECP_521', 'node:crypto', nodeEcdh('secp521r1'));
add('21 ECP_521', '@noble/curves', nobleEcdh(p521));
add('31 CURVE25519', 'node:crypto', nodeMontgomery('X25519', 32));
add('31 CURVE25519', '@noble/curves', nobleMontgomery(x25519, 32));
add('32 CURVE448', 'node:crypto', nodeMontgomery('X448', 56));
add('32 CURVE448', '@noble/curves', nobleMontgomery(x448, 56));
for (const [name, kem] of [
  ['35 ML_KEM_512', ml_kem512],
  ['36 ML_KEM_768', ml_kem768],
  ['37 ML_KEM_1024', ml_kem1024],
]) {
  const b = mlkem(kem);
  add(name, '@noble/post-quantum', b.initiator, 'initiator (keygen+decaps)');
  add(name, '@noble/post-quantum', b.responder, 'responder (encaps)');
}

console.log(`KE cost per handshake side, CPU microseconds (mean of ${N}), node ${process.version}`);
for (const r of rows) console.log(`${r.method.padEnd(16)} ${r.backend.padEnd(20)} ${r.side.padEnd(26)} ${r.us.toFixed(0).padStart(8)} us`);

// If the project is built (or a compiled crypto module is named as the 2nd argument), also time the
// methods exactly as the engine calls them.
try {
  const target = process.argv[3] ? new URL(`file://${process.argv[3]}`).href : '../../dist/ike/crypto/index.js';
  const { getKeMethod, supportedKeMethods } = await import(target);
  console.log(`\nsrc/ike/crypto/ke.ts as built (${target}):`);
  for (const id of supportedKeMethods()) {
    const m = getKeMethod(id);
    const ek = m.initiate().publicData;
    const resp = m.respond(ek).publicData;
    const i = cpuMicros(() => m.initiate().finish(resp), N);
    const r = cpuMicros(() => m.respond(ek), N);
    console.log(`${String(id).padStart(2)} ${m.name.padEnd(13)} initiator ${i.toFixed(0).padStart(6)} us   responder ${r.toFixed(0).padStart(6)} us`);
  }
} catch {
  console.log('\n(dist/ not built: run `npm run build:ts` to also time src/ike/crypto/ke.ts itself)');
}
