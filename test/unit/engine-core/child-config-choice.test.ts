// Which Child SA configuration a responder uses when several accept the requested traffic selectors
// (RFC 7296 §2.9): the one with exactly those selectors first, and only one whose proposals the
// request can meet, e.g. an ICMP-only Child SA inside a whole-subnet one, each with its own cipher.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import type { EngineConfig } from '../../../src/ike/config.js';
import { EnginePair, kernelsMirror } from './pair.js';

function config(side: 'a' | 'b', order: 'rest-first' | 'ping-first'): EngineConfig {
  const a = side === 'a';
  const [l, r] = a ? ['10.1.0.0/24', '10.2.0.0/24'] : ['10.2.0.0/24', '10.1.0.0/24'];
  const rest = `
      rest:
        local_ts: [${l}]
        remote_ts: [${r}]
        esp_proposals: [aes256gcm16-x25519]
        start_action: ${a ? 'start' : 'none'}`;
  const ping = `
      ping:
        local_ts: ["${l}[icmp]"]
        remote_ts: ["${r}[icmp]"]
        esp_proposals: [aes128gcm16-ecp256]
        start_action: ${a ? 'start' : 'none'}`;
  const yaml = `
connections:
  site:
    local: { addrs: [${a ? '192.0.2.1' : '192.0.2.2'}], id: ${a ? 'gw-a.example' : 'gw-b.example'}, auth: psk }
    remote: { addrs: [${a ? '192.0.2.2' : '192.0.2.1'}], id: ${a ? 'gw-b.example' : 'gw-a.example'}, auth: psk }
    psk: "a shared secret of some length 0123"
    ike: { proposals: [aes256gcm16-prfsha384-x25519] }
    children:${order === 'rest-first' ? rest + ping : ping + rest}
`;
  const engine = parseConfig(yaml, `${side}.yaml`).engine;
  engine.connections.forEach((c) => c.children.forEach((ch) => (ch.reqid = ch.name === 'rest' ? 100 : 101)));
  return engine;
}

describe('responder choice among overlapping Child SA configurations', () => {
  for (const order of ['rest-first', 'ping-first'] as const) {
    it(`${order} on the responder: both Child SAs come up, each with its own configuration and cipher`, () => {
      const p = new EnginePair(config('a', 'rest-first'), config('b', order));
      p.apply('a', p.a.initiate(p.now, 'site'));
      p.run(2_000);
      expect(p.eventsOf('error')).toEqual([]);
      const children = p.b.listSas(p.now)[0]!.children;
      expect(children.map((c) => c.name).sort()).toEqual(['ping', 'rest']);
      expect(children.find((c) => c.name === 'ping')!.suite).toMatch(/AES_GCM_16_128/);
      expect(children.find((c) => c.name === 'rest')!.suite).toMatch(/AES_GCM_16_256/);
      expect(kernelsMirror(p.kernelA, p.kernelB)).toBe(true);
    });
  }
});
