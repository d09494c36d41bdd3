import { describe, expect, it } from 'vitest';
import { parseBool, parseByteSize, parseCount, parseDuration, parseIdentity, parseTrafficSelector } from '../../../src/daemon/config.js';
import { ConfigError } from '../../../src/ike/proposal.js';

describe('durations', () => {
  const good: [unknown, number][] = [
    ['30s', 30],
    ['4h', 14400],
    ['1d', 86400],
    ['1w', 604800],
    ['90m', 5400],
    ['1h30m', 5400],
    ['1d2h3m4s', 93784],
    ['500ms', 0.5],
    ['1.5s', 1.5],
    ['3600', 3600],
    [45, 45],
    [0, 0],
    [' 10s ', 10],
  ];
  for (const [input, seconds] of good) {
    it(`${JSON.stringify(input)} = ${seconds}s`, () => expect(parseDuration(input)).toBe(seconds));
  }
  for (const bad of ['4 hours', 'h', '10x', '-5s', '', '1h-', -1, true, null, [1]]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(() => parseDuration(bad)).toThrow(ConfigError);
      expect(() => parseDuration(bad)).toThrow(/expected a duration like "4h"/);
    });
  }
});

describe('byte sizes and packet counts', () => {
  it('binary byte multiples', () => {
    expect(parseByteSize('1G')).toBe(1024 ** 3);
    expect(parseByteSize('1GB')).toBe(1024 ** 3);
    expect(parseByteSize('1GiB')).toBe(1024 ** 3);
    expect(parseByteSize('500M')).toBe(500 * 1024 ** 2);
    expect(parseByteSize('64k')).toBe(65536);
    expect(parseByteSize('2T')).toBe(2 * 1024 ** 4);
    expect(parseByteSize('1.5k')).toBe(1536);
    expect(parseByteSize(1000)).toBe(1000);
    expect(parseByteSize('1000')).toBe(1000);
    for (const bad of ['1X', 'G', '-1', 1.5, -3, 'lots']) expect(() => parseByteSize(bad)).toThrow(/expected a byte size like "1G"/);
  });
  it('decimal packet multiples', () => {
    expect(parseCount('1M')).toBe(1_000_000);
    expect(parseCount('500k')).toBe(500_000);
    expect(parseCount(42)).toBe(42);
    for (const bad of ['1.5M', '1T', 'x', -1]) expect(() => parseCount(bad)).toThrow(/expected a packet count/);
  });
});

describe('booleans', () => {
  it('yes/no, true/false, on/off', () => {
    for (const t of [true, 'yes', 'Yes', 'true', 'on']) expect(parseBool(t)).toBe(true);
    for (const f of [false, 'no', 'NO', 'false', 'off']) expect(parseBool(f)).toBe(false);
    for (const bad of ['y', 1, 0, 'maybe', null]) expect(() => parseBool(bad)).toThrow(/expected yes or no/);
  });
});

describe('identity type inference', () => {
  const cases: [string, { type: string; value: string }][] = [
    ['192.0.2.1', { type: 'ipv4', value: '192.0.2.1' }],
    ['2001:db8::1', { type: 'ipv6', value: '2001:db8::1' }],
    ['gw-a.example', { type: 'fqdn', value: 'gw-a.example' }],
    ['@gw-a.example', { type: 'fqdn', value: 'gw-a.example' }],
    ['vpn@example.org', { type: 'rfc822', value: 'vpn@example.org' }],
    ['C=CH, O=example, CN=gw', { type: 'dn', value: 'C=CH, O=example, CN=gw' }],
    ['CN=user@example.org', { type: 'dn', value: 'CN=user@example.org' }],
    ['fqdn:192.0.2.1', { type: 'fqdn', value: '192.0.2.1' }],
    ['FQDN:gw', { type: 'fqdn', value: 'gw' }],
    ['keyid:0A1b2c', { type: 'keyid', value: '0a1b2c' }],
    ['keyid:0x0a:1b', { type: 'keyid', value: '0a1b' }],
    ['@#cafe', { type: 'keyid', value: 'cafe' }],
    ['ipv4:198.51.100.7', { type: 'ipv4', value: '198.51.100.7' }],
    ['ipv6:2001:db8::7', { type: 'ipv6', value: '2001:db8::7' }],
    ['rfc822:a@b', { type: 'rfc822', value: 'a@b' }],
    ['email:a@b', { type: 'rfc822', value: 'a@b' }],
    ['dn:CN=gw', { type: 'dn', value: 'CN=gw' }],
    ['/C=CH/O=example/CN=gw', { type: 'dn', value: '/C=CH/O=example/CN=gw' }],
  ];
  for (const [text, id] of cases) {
    it(`"${text}" -> ${id.type}`, () => expect(parseIdentity(text)).toEqual(id));
  }
  const bad: [unknown, RegExp][] = [
    ['', /expected an identity/],
    [42, /expected an identity/],
    ['keyid:abc', /even number of hex digits/],
    ['keyid:zz', /even number of hex digits/],
    ['ipv4:2001:db8::1', /not an IPv4 address/],
    ['ipv6:192.0.2.1', /not an IPv6 address/],
    ['dn:nothing', /not a distinguished name/],
    ['fqdn:', /empty identity after "fqdn:"/],
    ['two words', /must be printable ASCII without blanks/],
    ['gw.exämple', /must be printable ASCII without blanks .*xn--/],
    ['dn:CN=gw, FOO=bar', /^identity "CN=gw, FOO=bar": unknown DN attribute "FOO"$/],
    ['C=CH, O="unterminated', /unterminated quote/],
    ['@', /empty FQDN identity/],
  ];
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => expect(() => parseIdentity(input)).toThrow(re));
  }
});

describe('traffic selectors', () => {
  it('CIDRs, single addresses, ranges, protocols and ports', () => {
    expect(parseTrafficSelector('10.1.0.0/16')).toEqual({ cidr: '10.1.0.0/16', protocol: 0, startPort: 0, endPort: 65535 });
    expect(parseTrafficSelector('10.1.0.5')).toEqual({ cidr: '10.1.0.5', protocol: 0, startPort: 0, endPort: 65535 });
    expect(parseTrafficSelector('10.1.0.1-10.1.0.9')).toEqual({ cidr: '10.1.0.1-10.1.0.9', protocol: 0, startPort: 0, endPort: 65535 });
    expect(parseTrafficSelector('0.0.0.0/0[udp]')).toEqual({ cidr: '0.0.0.0/0', protocol: 17, startPort: 0, endPort: 65535 });
    expect(parseTrafficSelector('10.1.0.0/16[tcp/443]')).toEqual({ cidr: '10.1.0.0/16', protocol: 6, startPort: 443, endPort: 443 });
    expect(parseTrafficSelector('::/0[58]')).toEqual({ cidr: '::/0', protocol: 58, startPort: 0, endPort: 65535 });
    expect(parseTrafficSelector('fd00::/8[sctp/1000-2000]')).toEqual({ cidr: 'fd00::/8', protocol: 132, startPort: 1000, endPort: 2000 });
    expect(parseTrafficSelector('10.0.0.0/8[icmp/%any]')).toEqual({ cidr: '10.0.0.0/8', protocol: 1, startPort: 0, endPort: 65535 });
  });
  const bad: [unknown, RegExp][] = [
    ['10.1.0.0/33', /invalid prefix length "\/33"/],
    ['fd00::/129', /invalid prefix length "\/129"/],
    ['10.1.0.0/x', /invalid prefix length/],
    ['10.1.0', /not an address or CIDR/],
    ['10.1.0.9-fd00::1', /not an address range/],
    ['10.1.0.0/16[tcp/70000]', /invalid port "70000"/],
    ['10.1.0.0/16[tcp/20-10]', /invalid port "20-10"/],
    ['10.1.0.0/16[/80]', /a port in .* needs a protocol/],
    ['10.1.0.0/16[quic]', /unknown protocol "quic"/],
    ['10.1.0.0/16[tcp/1/2]', /expected \[proto\] or \[proto\/port\]/],
    ['', /expected a traffic selector/],
    [17, /expected a traffic selector/],
  ];
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => expect(() => parseTrafficSelector(input)).toThrow(re));
  }
});
