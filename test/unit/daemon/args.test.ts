import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../../src/cli/args.js';

describe('ikev2d command line', () => {
  it('daemon options', () => {
    expect(parseArgs([])).toEqual({ mode: 'daemon', pretty: false });
    expect(parseArgs(['--config', '/etc/x.yaml', '--pretty', '--keylog=/tmp/k', '--log-level', 'debug'])).toEqual({
      mode: 'daemon', config: '/etc/x.yaml', pretty: true, keylog: '/tmp/k', logLevel: 'debug',
    });
    expect(parseArgs(['--help'])).toEqual({ mode: 'help' });
  });

  it('daemon argument errors name the problem', () => {
    expect(() => parseArgs(['--config'])).toThrow(new UsageError('--config needs a value'));
    expect(() => parseArgs(['--log-level', 'loud'])).toThrow("--log-level must be one of trace, debug, info, warn, error, fatal, silent, got 'loud'");
    expect(() => parseArgs(['--verbose'])).toThrow('unknown option --verbose');
    expect(() => parseArgs(['list-sas'])).toThrow("did you mean 'ikev2d ctl list-sas'");
  });

  it('ctl commands', () => {
    expect(parseArgs(['ctl', 'list-sas'])).toEqual({ mode: 'ctl', json: false, cmd: 'list-sas', args: {} });
    expect(parseArgs(['ctl', '--socket', '/run/x.sock', '--json', 'stats'])).toEqual({ mode: 'ctl', json: true, socket: '/run/x.sock', cmd: 'stats', args: {} });
    expect(parseArgs(['ctl', 'initiate', 'site', 'lan'])).toMatchObject({ cmd: 'initiate', args: { connection: 'site', child: 'lan' } });
    expect(parseArgs(['ctl', 'rekey', 'ike', '3'])).toMatchObject({ cmd: 'rekey', args: { kind: 'ike', id: '3' } });
    expect(parseArgs(['ctl', 'rekey', 'child', 'lan#12'])).toMatchObject({ cmd: 'rekey', args: { kind: 'child', id: 12 } });
    expect(parseArgs(['ctl', 'rekey', 'ike', '3'])).not.toHaveProperty('args.reauth');
    expect(parseArgs(['ctl', 'rekey', 'ike', '3', '--reauth'])).toMatchObject({ cmd: 'rekey', args: { kind: 'ike', id: '3', reauth: true } });
    expect(parseArgs(['ctl', 'reauth', 'ab12'])).toMatchObject({ cmd: 'rekey', args: { kind: 'ike', id: 'ab12', reauth: true } });
    expect(() => parseArgs(['ctl', 'reauth'])).toThrow('reauth: missing IKE SA id');
    expect(() => parseArgs(['ctl', 'rekey', 'child', '1', '--reauth'])).toThrow('rekey child: --reauth applies to IKE SAs only');
    expect(() => parseArgs(['ctl', 'stats', '--reauth'])).toThrow("--reauth only goes with 'rekey ike ID'");
    expect(parseArgs(['ctl', 'terminate', 'site'])).toMatchObject({ cmd: 'terminate', args: { target: 'site' } });
    expect(parseArgs(['ctl', 'reload'])).toMatchObject({ cmd: 'reload', args: {} });
  });

  it('ctl argument errors name the problem', () => {
    expect(() => parseArgs(['ctl'])).toThrow('ctl: missing command');
    expect(() => parseArgs(['ctl', 'dance'])).toThrow("ctl: unknown command 'dance'");
    expect(() => parseArgs(['ctl', 'initiate'])).toThrow('initiate: missing connection name');
    expect(() => parseArgs(['ctl', 'rekey', 'esp', '1'])).toThrow("rekey: first argument must be 'ike' or 'child', got 'esp'");
    expect(() => parseArgs(['ctl', 'rekey', 'child'])).toThrow('rekey child: missing SA id');
    expect(() => parseArgs(['ctl', 'rekey', 'child', 'abc'])).toThrow("rekey child: SA id must be a number (or NAME#NUMBER), got 'abc'");
    expect(() => parseArgs(['ctl', 'terminate'])).toThrow('terminate: missing connection name or IKE SA id');
    expect(() => parseArgs(['ctl', 'list-sas', 'extra'])).toThrow("list-sas: unexpected argument 'extra'");
    expect(() => parseArgs(['ctl', '--socket'])).toThrow('--socket needs a value');
    expect(() => parseArgs(['ctl', '--bogus', 'stats'])).toThrow('unknown option --bogus');
  });
});
