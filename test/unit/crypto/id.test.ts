import { describe, expect, it } from 'vitest';
import {
  dnDerToText,
  dnTextToDer,
  encodeIdentity,
  ID_TYPE,
  identityMatches,
  idPayloadBody,
  ipv6FromBytes,
  ipv6ToBytes,
  parseIdentity,
} from '../../../src/ike/crypto/index.js';

describe('ID payload data (RFC 7296 §3.5)', () => {
  it('IPv4 / IPv6 addresses', () => {
    expect(encodeIdentity({ type: 'ipv4', value: '192.0.2.1' })).toEqual({ type: ID_TYPE.IPV4_ADDR, data: Buffer.from([192, 0, 2, 1]) });
    const v6 = encodeIdentity({ type: 'ipv6', value: '2001:db8::1' });
    expect(v6.type).toBe(ID_TYPE.IPV6_ADDR);
    expect(v6.data.toString('hex')).toBe('20010db8000000000000000000000001');
    expect(ipv6ToBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(ipv6ToBytes('::ffff:192.0.2.1').toString('hex')).toBe('00000000000000000000ffffc0000201');
    expect(ipv6ToBytes('fe80::1:2:3:4').toString('hex')).toBe('fe800000000000000001000200030004');
    expect(ipv6FromBytes(Buffer.from('20010db8000000000001000000000001', 'hex'))).toBe('2001:db8::1:0:0:1');
    expect(ipv6FromBytes(Buffer.from('20010db8000100010001000100010001', 'hex'))).toBe('2001:db8:1:1:1:1:1:1');
    expect(parseIdentity(v6)).toEqual({ ok: true, identity: { type: 'ipv6', value: '2001:db8::1' } });
    expect(() => encodeIdentity({ type: 'ipv4', value: '300.1.1.1' })).toThrow(/invalid IPv4/);
    expect(() => encodeIdentity({ type: 'ipv6', value: '2001:db8:::1' })).toThrow(/invalid IPv6/);
    expect(parseIdentity({ type: ID_TYPE.IPV4_ADDR, data: Buffer.alloc(5) }).ok).toBe(false);
  });

  it('FQDN, RFC822 and KEY_ID', () => {
    expect(encodeIdentity({ type: 'fqdn', value: 'gw.example.org' })).toEqual({ type: 2, data: Buffer.from('gw.example.org') });
    expect(encodeIdentity({ type: 'rfc822', value: 'a@example.org' })).toEqual({ type: 3, data: Buffer.from('a@example.org') });
    expect(encodeIdentity({ type: 'keyid', value: '0a:0B:0c' })).toEqual({ type: 11, data: Buffer.from([10, 11, 12]) });
    expect(() => encodeIdentity({ type: 'keyid', value: 'xyz' })).toThrow(/not hex/);
    expect(parseIdentity({ type: 2, data: Buffer.from('gw.example.org') })).toEqual({ ok: true, identity: { type: 'fqdn', value: 'gw.example.org' } });
    expect(parseIdentity({ type: 2, data: Buffer.from('bad\nname') }).ok).toBe(false);
    expect(parseIdentity({ type: 11, data: Buffer.from([1, 2]) })).toEqual({ ok: true, identity: { type: 'keyid', value: '0102' } });
    expect(parseIdentity({ type: 12, data: Buffer.from([1]) }).ok).toBe(false);
  });

  it('idPayloadBody = ID Type | RESERVED(3) | data', () => {
    expect(idPayloadBody({ type: 2, data: Buffer.from('a') }).toString('hex')).toBe('0200000061');
  });

  it('DN text <-> DER (byte equality with OpenSSL-made subjects is checked in x509.test.ts)', () => {
    const der = dnTextToDer('C=CH, O=ikev2d test, CN=gw1.example.org');
    // SEQUENCE { SET { SEQ { 2.5.4.6, PrintableString "CH" } }, SET { SEQ { 2.5.4.10, UTF8String } }, SET { ... 2.5.4.3 ... } }
    expect(der.subarray(0, 15).toString('hex')).toBe('303d310b300906035504061302' + '4348');
    expect(der.subarray(15, 24).toString('hex')).toBe('31143012060355040a');
    expect(der[24]).toBe(0x0c);
    expect(dnDerToText(der)).toBe('C=CH, O=ikev2d test, CN=gw1.example.org');
    expect(dnDerToText(dnTextToDer('/C=CH/O=ikev2d test/CN=gw1.example.org'))).toBe('C=CH, O=ikev2d test, CN=gw1.example.org');
  });

  it('DN escapes, multi-valued RDNs, UTF-8 and e-mail attributes survive a round trip', () => {
    const text = 'C=CH, O=Acme\\, Inc., OU=R&D + CN=Zürich gw, emailAddress=ops@example.org';
    const der = dnTextToDer(text);
    // DER sorts SET OF members by encoding: the shorter OU AVA comes first
    expect(dnDerToText(der)).toBe('C=CH, O=Acme\\, Inc., OU=R&D + CN=Zürich gw, emailAddress=ops@example.org');
    expect(parseIdentity({ type: ID_TYPE.DER_ASN1_DN, data: der })).toMatchObject({ ok: true, identity: { type: 'dn' } });
    expect(() => dnTextToDer('C=CH, nonsense')).toThrow(/attribute=value/);
    expect(() => dnTextToDer('XX=1')).toThrow(/unknown DN attribute/);
    expect(parseIdentity({ type: ID_TYPE.DER_ASN1_DN, data: Buffer.from([0x30, 0x05, 0x31]) }).ok).toBe(false);
  });

  it('identityMatches compares FQDN case-insensitively and DNs semantically', () => {
    expect(identityMatches({ type: 'fqdn', value: 'GW.example.org' }, { type: 2, data: Buffer.from('gw.EXAMPLE.org') })).toBe(true);
    expect(identityMatches({ type: 'fqdn', value: 'gw.example.org' }, { type: 3, data: Buffer.from('gw.example.org') })).toBe(false);
    expect(identityMatches({ type: 'ipv4', value: '192.0.2.1' }, { type: 1, data: Buffer.from([192, 0, 2, 1]) })).toBe(true);
    expect(identityMatches({ type: 'ipv4', value: '192.0.2.1' }, { type: 1, data: Buffer.from([192, 0, 2, 2]) })).toBe(false);
    // a DN encoded with UTF8String by the peer equals our PrintableString form
    const utf8Der = Buffer.from('3011310f300d06035504030c066777312d4f4b', 'hex'); // CN=gw1-OK as UTF8String
    expect(identityMatches({ type: 'dn', value: 'CN=GW1-ok' }, { type: 9, data: utf8Der })).toBe(true);
    expect(identityMatches({ type: 'dn', value: 'CN=gw2-ok' }, { type: 9, data: utf8Der })).toBe(false);
    expect(identityMatches({ type: 'dn', value: 'CN=gw1-ok' }, { type: 9, data: Buffer.from('garbage') })).toBe(false);
  });
});
