// Fixed-hash computations of IKEv2 outside the negotiated suite: NAT detection (RFC 7296 §2.23) and
// stateless COOKIEs (RFC 7296 §2.6).
import { createHash, timingSafeEqual } from 'node:crypto';
import { ipv4ToBytes, ipv6ToBytes } from './id.js';
import { spiBytes, type Spi } from './keys.js';

function addressBytes(address: string): Buffer {
  return address.includes(':') ? ipv6ToBytes(address) : ipv4ToBytes(address);
}

/**
 * Notification data of NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP:
 * SHA-1(SPIi | SPIr | IP address | port), 20 octets (RFC 7296 §2.23). In the IKE_SA_INIT request SPIr is zero.
 */
export function natDetectionHash(spiI: Spi, spiR: Spi, address: string, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid UDP port ${port}`);
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return createHash('sha1').update(spiBytes(spiI)).update(spiBytes(spiR)).update(addressBytes(address)).update(p).digest();
}

/**
 * Responder COOKIE (RFC 7296 §2.6): <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>), here with a
 * 4-octet version and SHA-256 (36 octets in total; COOKIE data must be 1..64 octets).
 */
export function makeCookie(secret: Buffer, secretVersion: number, ni: Buffer, initiatorAddress: string, spiI: Spi): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(secretVersion >>> 0);
  const h = createHash('sha256').update(ni).update(addressBytes(initiatorAddress)).update(spiBytes(spiI)).update(secret).digest();
  return Buffer.concat([v, h]);
}

/** The secret version a received COOKIE claims, or undefined if it is not one of ours by shape. */
export function cookieSecretVersion(cookie: Buffer): number | undefined {
  return cookie.length === 36 ? cookie.readUInt32BE(0) : undefined;
}

/** Constant-time check of a returned COOKIE against the secret of the version it names. */
export function verifyCookie(cookie: Buffer, secret: Buffer, secretVersion: number, ni: Buffer, initiatorAddress: string, spiI: Spi): boolean {
  if (cookie.length !== 36) return false;
  let expected: Buffer;
  try {
    expected = makeCookie(secret, secretVersion, ni, initiatorAddress, spiI);
  } catch {
    return false;
  }
  return timingSafeEqual(cookie, expected);
}
