// The control protocol of `ikev2d ctl`: newline-delimited JSON over a Unix socket that
// only root can reach (socket 0600 in a 0700 directory).
//   request:  {"id":1,"cmd":"list-sas","args":{...}}
//   response: {"id":1,"ok":true,"result":...} | {"id":1,"ok":false,"error":"..."}
import { chmodSync, existsSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

export const COMMANDS = ['list-sas', 'initiate', 'rekey', 'terminate', 'reload', 'stats'] as const;
export type Command = (typeof COMMANDS)[number];

export interface ControlRequest {
  id: number;
  cmd: Command;
  args?: Record<string, unknown>;
}

export type ControlResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export type ControlHandler = (cmd: Command, args: Record<string, unknown>) => Promise<unknown>;

/** Longest request line accepted; a client sending more is cut off. */
const MAX_LINE = 64 * 1024;

/** Parses one request line; throws an Error naming what was wrong. */
export function parseRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('request is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('request must be a JSON object');
  const r = v as Record<string, unknown>;
  const id = r.id ?? 0;
  if (typeof id !== 'number' || !Number.isInteger(id)) throw new Error('request id must be an integer');
  if (typeof r.cmd !== 'string' || !(COMMANDS as readonly string[]).includes(r.cmd)) {
    throw new Error(`unknown command ${JSON.stringify(r.cmd)} (known: ${COMMANDS.join(', ')})`);
  }
  if (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args))) {
    throw new Error('request args must be a JSON object');
  }
  return { id, cmd: r.cmd as Command, args: (r.args as Record<string, unknown>) ?? {} };
}

export class ControlServer {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
  ) {}

  async listen(): Promise<void> {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (dir !== '/' && dir !== '/run' && dir !== '/tmp' && dir !== '/var/run') {
      // our own directory: root only
      chmodSync(dir, 0o700);
    }
    if (existsSync(this.path)) {
      if (await socketAlive(this.path)) throw new Error(`another ikev2d is already listening on ${this.path}`);
      if (!statSync(this.path).isSocket()) throw new Error(`${this.path} exists and is not a socket`);
      unlinkSync(this.path); // stale socket of a crashed run
    }
    const server = createServer((sock) => this.serve(sock));
    const oldMask = process.umask(0o177); // the socket is created 0600, no window with wider permissions
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setEncoding('utf8');
    let buf = '';
    let chain = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        sock.end(JSON.stringify({ id: 0, ok: false, error: `request longer than ${MAX_LINE} bytes` }) + '\n');
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        // answer in request order
        chain = chain.then(async () => {
          const resp = await this.handle(line);
          if (!sock.destroyed) sock.write(JSON.stringify(resp) + '\n');
        });
      }
    });
  }

  private async handle(line: string): Promise<ControlResponse> {
    let req: ControlRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      return { id: 0, ok: false, error: (e as Error).message };
    }
    try {
      return { id: req.id, ok: true, result: await this.handler(req.cmd, req.args ?? {}) };
    } catch (e) {
      return { id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** A failure to reach the daemon (as opposed to the daemon answering with an error). */
export class ControlConnectError extends Error {
  override name = 'ControlConnectError';
}

/** Sends one request and waits for its answer. Throws ControlConnectError or the daemon's error. */
export function controlRequest(path: string, cmd: Command, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    let done = false;
    const finish = (err: Error | undefined, value?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ikev2d at ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => sock.write(JSON.stringify({ id: 1, cmd, args }) + '\n'));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? `ikev2d is not running (no control socket at ${path})`
          : e.code === 'EACCES'
            ? `permission denied on ${path} (the control socket is root-only)`
            : `cannot reach ikev2d at ${path}: ${e.message}`;
      finish(new ControlConnectError(why));
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let resp: ControlResponse;
      try {
        resp = JSON.parse(buf.slice(0, nl)) as ControlResponse;
      } catch {
        return finish(new Error('ikev2d sent an answer that is not JSON'));
      }
      if (resp.ok) finish(undefined, resp.result);
      else finish(new Error(resp.error));
    });
    sock.on('close', () => finish(new ControlConnectError(`ikev2d at ${path} closed the connection without answering`)));
  });
}
