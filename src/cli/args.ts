// Command line of `ikev2d` (the daemon) and `ikev2d ctl ...` (its control client).
// Parsing is pure so that every argument error can be tested; errors name what was wrong.
import type { Command } from '../daemon/control.js';

export const USAGE = `usage:
  ikev2d [--config FILE] [--pretty] [--keylog FILE] [--log-level LEVEL]
  ikev2d ctl [--socket PATH] [--json] COMMAND
commands:
  list-sas                 IKE and Child SAs with state, algorithms, SPIs, counters, time to rekey
  initiate CONN [CHILD]    start a connection (or only one of its children)
  rekey ike ID             rekey an IKE SA (ID as shown by list-sas)
  rekey ike ID --reauth    reauthenticate an IKE SA: new IKE SA, Child SAs moved make-before-break
  reauth ID                the same as rekey ike ID --reauth
  rekey child ID           rekey a Child SA (numeric id, or NAME#ID as shown by list-sas)
  terminate CONN|ID        delete every IKE SA of a connection, or one IKE SA
  reload                   re-read the configuration file
  stats                    counters of the engine`;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type CliLogLevel = (typeof LOG_LEVELS)[number];

export class UsageError extends Error {
  override name = 'UsageError';
}

export type Cli =
  | { mode: 'help' }
  | { mode: 'daemon'; config?: string; pretty: boolean; keylog?: string; logLevel?: CliLogLevel }
  | { mode: 'ctl'; socket?: string; json: boolean; config?: string; cmd: Command; args: Record<string, unknown> };

function takeValue(argv: string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`${flag} needs a value`);
  return v;
}

/** Splits "--flag=value" into two arguments. */
function normalize(argv: string[]): string[] {
  return argv.flatMap((a) => (a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]));
}

export function parseArgs(rawArgv: string[]): Cli {
  const argv = normalize(rawArgv);
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') return { mode: 'help' };
  if (argv[0] === 'ctl') return parseCtl(argv.slice(1));
  const out: Extract<Cli, { mode: 'daemon' }> = { mode: 'daemon', pretty: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--config': case '-c': out.config = takeValue(argv, i++, a); break;
      case '--pretty': out.pretty = true; break;
      case '--keylog': out.keylog = takeValue(argv, i++, a); break;
      case '--log-level': {
        const v = takeValue(argv, i++, a);
        if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${v}'`);
        out.logLevel = v as CliLogLevel;
        break;
      }
      default:
        throw new UsageError(a.startsWith('-') ? `unknown option ${a}` : `unexpected argument '${a}' (did you mean 'ikev2d ctl ${a}'?)`);
    }
  }
  return out;
}

function parseCtl(argv: string[]): Cli {
  let socket: string | undefined;
  let config: string | undefined;
  let json = false;
  let reauth = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket' || a === '-s') socket = takeValue(argv, i++, a);
    else if (a === '--config' || a === '-c') config = takeValue(argv, i++, a);
    else if (a === '--json') json = true;
    else if (a === '--reauth') reauth = true;
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  const [cmd, ...params] = rest;
  const base = { mode: 'ctl' as const, json, ...(socket ? { socket } : {}), ...(config ? { config } : {}) };
  const exactly = (n: number, what: string) => {
    if (params.length < n) throw new UsageError(`${cmd}: missing ${what}`);
    if (params.length > n) throw new UsageError(`${cmd}: unexpected argument '${params[n]}'`);
  };
  if (reauth && cmd !== 'rekey') throw new UsageError(`--reauth only goes with 'rekey ike ID'`);
  switch (cmd) {
    case undefined:
      throw new UsageError('ctl: missing command (list-sas, initiate, rekey, terminate, reload, stats)');
    case 'list-sas': case 'stats': case 'reload':
      exactly(0, '');
      return { ...base, cmd, args: {} };
    case 'initiate':
      if (params.length === 0) throw new UsageError('initiate: missing connection name');
      if (params.length > 2) throw new UsageError(`initiate: unexpected argument '${params[2]}'`);
      return { ...base, cmd, args: { connection: params[0], ...(params[1] ? { child: params[1] } : {}) } };
    case 'rekey': {
      const kind = params[0];
      if (kind !== 'ike' && kind !== 'child') throw new UsageError(`rekey: first argument must be 'ike' or 'child', got ${kind === undefined ? 'nothing' : `'${kind}'`}`);
      if (params.length < 2) throw new UsageError(`rekey ${kind}: missing SA id`);
      if (params.length > 2) throw new UsageError(`rekey: unexpected argument '${params[2]}'`);
      let id: string | number = params[1]!;
      if (kind === 'child') {
        const n = Number(id.replace(/^.*#/, ''));
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`rekey child: SA id must be a number (or NAME#NUMBER), got '${id}'`);
        id = n;
      }
      if (reauth && kind !== 'ike') throw new UsageError('rekey child: --reauth applies to IKE SAs only');
      return { ...base, cmd, args: { kind, id, ...(reauth ? { reauth: true } : {}) } };
    }
    case 'reauth':
      exactly(1, 'IKE SA id');
      return { ...base, cmd: 'rekey', args: { kind: 'ike', id: params[0], reauth: true } };
    case 'terminate':
      exactly(1, 'connection name or IKE SA id');
      return { ...base, cmd, args: { target: params[0] } };
    default:
      throw new UsageError(`ctl: unknown command '${cmd}' (list-sas, initiate, rekey, terminate, reload, stats)`);
  }
}
