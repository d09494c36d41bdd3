// What the strongSwan (charon) and Libreswan (pluto) helpers share: a peer IKE daemon running
// as a child process in a network namespace, with its own work directory and log file.
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; never rejects (a failure is a non-zero code, a timeout or spawn error code 1). */
export function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && typeof err.code !== 'number' ? `\n${err.message}` : '') });
      },
    );
  });
}

/**
 * Where per-instance directories go: never on a 9p share (inside scripts/vm-run the current
 * directory is one, and QEMU refuses Unix sockets there): /run in the VM, else the OS temp dir.
 */
export function testRunDir(): string {
  const base = process.env.IKEV2D_TEST_RUNDIR ?? (process.env.VM_RUN ? '/run' : tmpdir());
  mkdirSync(base, { recursive: true });
  return base;
}

/** The last `lines` lines of `text`. */
export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}

/** Keeps the last ~32-64 KiB a child process writes to stderr (for start-up errors). */
export function captureStderr(proc: ChildProcess): () => string {
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 65536) stderr = stderr.slice(-32768);
  });
  return () => stderr;
}

export abstract class PeerProcess {
  private readonly exited: Promise<void>;
  private exitCode: number | null = null;

  constructor(
    readonly netns: string,
    readonly dir: string,
    protected readonly proc: ChildProcess,
    private readonly keepDir: boolean,
  ) {
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : 0);
        resolve();
      });
    });
  }

  abstract get logFile(): string;
  /** "charon", "pluto": for messages. */
  protected abstract get daemonName(): string;
  protected abstract error(message: string): Error;

  get running(): boolean {
    return this.exitCode === null;
  }

  /** The daemon's log so far ('' when none yet). */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Wait until the log matches `re`, polling. */
  async waitForLog(re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.log().match(re);
      if (m) return m;
      if (!this.running) throw this.error(`${this.daemonName} (${this.netns}) exited while waiting for ${re}`);
      if (Date.now() > end) throw this.error(`timed out waiting for ${re} in ${this.logFile}:\n${tail(this.log(), 40)}`);
      await sleep(200);
    }
  }

  /**
   * Stop the daemon: `graceful()` first (if given), SIGTERM after termMs, SIGKILL after killMs;
   * then remove the work directory unless it was the caller's or IKEV2D_KEEP_TEST_DIRS is set.
   */
  protected async stopProcess(graceful: (() => Promise<unknown>) | undefined, termMs: number, killMs: number): Promise<void> {
    if (this.running) {
      if (graceful) await graceful().catch(() => undefined);
      const term = setTimeout(() => this.proc.kill('SIGTERM'), termMs);
      const kill = setTimeout(() => this.proc.kill('SIGKILL'), killMs);
      await this.exited;
      clearTimeout(term);
      clearTimeout(kill);
    }
    if (!this.keepDir && !process.env.IKEV2D_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Wait until `socket` exists (the daemon is up); on failure stop it and throw with its stderr and log. */
  async waitForSocket(socket: string, stderr: () => string, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!existsSync(socket)) {
      if (!this.running || Date.now() > end) {
        const log = tail(this.log(), 40);
        await this.stop().catch(() => {});
        throw this.error(`${this.daemonName} in ${this.netns} did not start (no ${socket}):\n${stderr()}\n${log}`);
      }
      await sleep(50);
    }
  }

  abstract stop(): Promise<void>;
}
