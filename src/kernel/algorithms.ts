// XFRM algorithm names the kernel's crypto API knows, with the key lengths
// (octets) and ICV/truncation lengths (bits) each accepts. Used to reject bad
// input before it reaches the kernel (which would answer a terse EINVAL).

export interface AeadAlgorithm {
  kind: 'aead';
  /** Total key lengths, INCLUDING the salt/nonce octets appended to the key. */
  keyOctets: number[];
  saltOctets: number;
  icvBits: number[];
}

export interface CryptAlgorithm {
  kind: 'crypt';
  keyOctets: number[];
}

export interface AuthAlgorithm {
  kind: 'auth';
  keyOctets: number[];
  /** Allowed truncation lengths; the first is the RFC default. */
  truncBits: number[];
}

export interface CompAlgorithm {
  kind: 'comp';
}

export const AEAD_ALGORITHMS: Record<string, AeadAlgorithm> = {
  // RFC 4106: key || 4-octet salt
  'rfc4106(gcm(aes))': { kind: 'aead', keyOctets: [20, 28, 36], saltOctets: 4, icvBits: [64, 96, 128] },
  // RFC 4543 (ENCR_NULL_AUTH_AES_GMAC): key || 4-octet salt
  'rfc4543(gcm(aes))': { kind: 'aead', keyOctets: [20, 28, 36], saltOctets: 4, icvBits: [128] },
  // RFC 4309: key || 3-octet salt
  'rfc4309(ccm(aes))': { kind: 'aead', keyOctets: [19, 27, 35], saltOctets: 3, icvBits: [64, 96, 128] },
  // RFC 7634: 256-bit key || 4-octet salt, 128-bit tag
  'rfc7539esp(chacha20,poly1305)': { kind: 'aead', keyOctets: [36], saltOctets: 4, icvBits: [128] },
};

export const CRYPT_ALGORITHMS: Record<string, CryptAlgorithm> = {
  'cbc(aes)': { kind: 'crypt', keyOctets: [16, 24, 32] },
  // RFC 3686: key || 4-octet nonce
  'rfc3686(ctr(aes))': { kind: 'crypt', keyOctets: [20, 28, 36] },
  'cbc(des3_ede)': { kind: 'crypt', keyOctets: [24] },
  'cbc(camellia)': { kind: 'crypt', keyOctets: [16, 24, 32] },
  'ecb(cipher_null)': { kind: 'crypt', keyOctets: [0] },
};

export const AUTH_ALGORITHMS: Record<string, AuthAlgorithm> = {
  'hmac(sha1)': { kind: 'auth', keyOctets: [20], truncBits: [96, 160] },
  // RFC 4868: SHA-2 HMACs truncated to half their output
  'hmac(sha256)': { kind: 'auth', keyOctets: [32], truncBits: [128, 96, 256] },
  'hmac(sha384)': { kind: 'auth', keyOctets: [48], truncBits: [192, 384] },
  'hmac(sha512)': { kind: 'auth', keyOctets: [64], truncBits: [256, 512] },
  'xcbc(aes)': { kind: 'auth', keyOctets: [16], truncBits: [96] },
  'cmac(aes)': { kind: 'auth', keyOctets: [16], truncBits: [96] },
  'digest_null': { kind: 'auth', keyOctets: [0], truncBits: [0] },
};

export const COMP_ALGORITHMS: Record<string, CompAlgorithm> = {
  deflate: { kind: 'comp' },
  lzs: { kind: 'comp' },
  lzjh: { kind: 'comp' },
};
