import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer, controlRequest, ControlConnectError, parseRequest } from '../../../src/daemon/control.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ikev2d-ctl-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('control protocol', () => {
  it('parseRequest names what is wrong', () => {
    expect(() => parseRequest('{')).toThrow('not valid JSON');
    expect(() => parseRequest('[1]')).toThrow('must be a JSON object');
    expect(() => parseRequest('{"cmd":"explode"}')).toThrow('unknown command "explode"');
    expect(() => parseRequest('{"cmd":"stats","id":"x"}')).toThrow('id must be an integer');
    expect(() => parseRequest('{"cmd":"stats","args":[]}')).toThrow('args must be a JSON object');
    expect(parseRequest('{"id":3,"cmd":"initiate","args":{"connection":"a"}}')).toEqual({ id: 3, cmd: 'initiate', args: { connection: 'a' } });
  });

  it('serves requests over a root-only socket and returns results and errors', async () => {
    const dir = join(tmp(), 'run');
    const path = join(dir, 'ctl.sock');
    const server = new ControlServer(path, async (cmd, args) => {
      if (cmd === 'initiate' && args.connection !== 'site') throw new Error(`unknown connection '${String(args.connection)}'`);
      return { cmd, args };
    });
    await server.listen();
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(await controlRequest(path, 'stats')).toEqual({ cmd: 'stats', args: {} });
      expect(await controlRequest(path, 'initiate', { connection: 'site' })).toEqual({ cmd: 'initiate', args: { connection: 'site' } });
      await expect(controlRequest(path, 'initiate', { connection: 'nope' })).rejects.toThrow("unknown connection 'nope'");
      // a second daemon on the same socket is refused
      await expect(new ControlServer(path, async () => 1).listen()).rejects.toThrow('already listening');
    } finally {
      await server.close();
    }
  });

  it('answers pipelined requests on one connection in order, and garbage with an error', async () => {
    const path = join(tmp(), 'ctl.sock');
    const server = new ControlServer(path, async (cmd) => {
      if (cmd === 'list-sas') await new Promise((r) => setTimeout(r, 30));
      return cmd;
    });
    await server.listen();
    try {
      const lines = await new Promise<string[]>((resolve, reject) => {
        const s = createConnection(path);
        let buf = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          buf += d;
          const l = buf.split('\n').filter(Boolean);
          if (l.length === 3) { s.destroy(); resolve(l); }
        });
        s.on('error', reject);
        s.write('{"id":1,"cmd":"list-sas"}\n{"id":2,"cmd":"stats"}\nnot json\n');
      });
      expect(lines.map((l) => JSON.parse(l))).toEqual([
        { id: 1, ok: true, result: 'list-sas' },
        { id: 2, ok: true, result: 'stats' },
        { id: 0, ok: false, error: 'request is not valid JSON' },
      ]);
    } finally {
      await server.close();
    }
  });

  it('a stale socket file of a crashed run is replaced', async () => {
    const path = join(tmp(), 'ctl.sock');
    const first = new ControlServer(path, async () => 'first');
    await first.listen();
    // simulate a crash: the server stops without removing its socket file
    await new Promise<void>((r) => (first as unknown as { server: { close(cb: () => void): void } }).server.close(() => r()));
    const second = new ControlServer(path, async () => 'second');
    await second.listen();
    try {
      expect(await controlRequest(path, 'stats')).toBe('second');
    } finally {
      await second.close();
    }
  });

  it('says the daemon is not running when nothing listens', async () => {
    const path = join(tmp(), 'absent.sock');
    const err = await controlRequest(path, 'stats').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlConnectError);
    expect((err as Error).message).toBe(`ikev2d is not running (no control socket at ${path})`);
  });
});
