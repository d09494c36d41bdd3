// pino logging: JSON lines by default, human-readable with --pretty. Keys and
// secrets never reach a log line: the engine does not log them, keylog events are
// not logged, and redaction below is the safety net for anything that slips through.
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

export const REDACT_PATHS = [
  'psk', 'key', 'keys', 'encKey', 'integKey', 'skEi', 'skEr', 'skAi', 'skAr', 'privateKeyPem', 'ppk', 'sharedSecret',
  '*.psk', '*.key', '*.keys', '*.encKey', '*.integKey', '*.skEi', '*.skEr', '*.skAi', '*.skAr', '*.privateKeyPem', '*.ppk', '*.sharedSecret',
];

export function createLogger(opts: { level: LevelWithSilent; pretty?: boolean; destination?: DestinationStream }): Logger {
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.pretty) return pino(base, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
