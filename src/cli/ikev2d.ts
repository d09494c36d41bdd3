#!/usr/bin/env node
// `ikev2d`: the IKEv2 daemon, and `ikev2d ctl ...`, its control client.
import { DEFAULT_CONFIG_PATH, DEFAULTS, loadConfigFile } from '../daemon/config.js';
import { controlRequest, ControlConnectError } from '../daemon/control.js';
import { formatListSas, formatStats, type ListedIkeSa } from '../daemon/format.js';
import { parseArgs, USAGE, UsageError, type Cli } from './args.js';

async function runCtl(cli: Extract<Cli, { mode: 'ctl' }>): Promise<number> {
  let socket = cli.socket;
  if (!socket && cli.config) {
    // the control socket named in a configuration file
    socket = loadConfigFile(cli.config).daemon.controlSocket;
  }
  socket ??= DEFAULTS.controlSocket;
  let result: unknown;
  try {
    result = await controlRequest(socket, cli.cmd, cli.args);
  } catch (e) {
    process.stderr.write(`ikev2d ctl: ${(e as Error).message}\n`);
    return e instanceof ControlConnectError ? 3 : 1;
  }
  if (cli.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  switch (cli.cmd) {
    case 'list-sas': process.stdout.write(formatListSas(result as ListedIkeSa[]) + '\n'); break;
    case 'stats': process.stdout.write(formatStats(result as Parameters<typeof formatStats>[0]) + '\n'); break;
    case 'reload': {
      const r = result as Record<string, string[]>;
      process.stdout.write(['added', 'removed', 'changed', 'updated', 'unchanged'].map((k) => `${k}: ${(r[k] ?? []).join(', ') || '-'}`).join('\n') + '\n');
      break;
    }
    default:
      process.stdout.write(Object.entries(result as Record<string, unknown>).map(([k, v]) => `${k} ${String(v)}`).join(', ') + '\n');
  }
  return 0;
}

async function runDaemon(cli: Extract<Cli, { mode: 'daemon' }>): Promise<number> {
  const { createLogger } = await import('../daemon/logger.js');
  const { Daemon } = await import('../daemon/daemon.js');
  const configPath = cli.config ?? DEFAULT_CONFIG_PATH;
  let level = cli.logLevel;
  if (!level) {
    try {
      level = loadConfigFile(configPath).daemon.logLevel;
    } catch {
      level = 'info'; // the start below reports the configuration errors
    }
  }
  const log = createLogger({ level, pretty: cli.pretty });
  const opts: ConstructorParameters<typeof Daemon>[0] = { configPath, log };
  if (cli.keylog) opts.keylogFile = cli.keylog;
  const { enableEspInUdp, bypassIpsec } = await import('../kernel/index.js');
  opts.sockets = { bypass: bypassIpsec, espInUdp: enableEspInUdp };
  const daemon = new Daemon(opts);
  try {
    await daemon.start();
  } catch (e) {
    log.fatal(`cannot start: ${(e as Error).message}`);
    await daemon.shutdown(0).catch(() => undefined);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stop requested');
      daemon.shutdown().then(() => resolve(0), (e: Error) => {
        log.error({ err: e.message }, 'shutdown failed');
        resolve(1);
      });
    };
    // repeated signals while stopping are ignored (the default action would skip the cleanup)
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      log.info({ signal: 'SIGHUP' }, 'reload requested');
      daemon.reload().catch(() => undefined); // logged by reload
    });
  });
}

async function main(): Promise<number> {
  let cli: Cli;
  try {
    cli = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ikev2d: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (cli.mode === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  return cli.mode === 'ctl' ? runCtl(cli) : runDaemon(cli);
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`ikev2d: ${e.message}\n`);
    process.exit(1);
  },
);
