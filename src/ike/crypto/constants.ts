// IANA code points the crypto layer dispatches on (RFC 7296 §3.3.2, RFC 9370, RFC 7427, RFC 8420).
// The codec keeps the full registries; these are the values this module implements or names.

export const PRF = {
  HMAC_MD5: 1,
  HMAC_SHA1: 2,
  AES128_XCBC: 4,
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
  AES128_CMAC: 8,
} as const;

export const ENCR = {
  DES3: 3,
  NULL: 11,
  AES_CBC: 12,
  AES_CTR: 13,
  AES_CCM_8: 14,
  AES_CCM_12: 15,
  AES_CCM_16: 16,
  AES_GCM_8: 18,
  AES_GCM_12: 19,
  AES_GCM_16: 20,
  NULL_AUTH_AES_GMAC: 21,
  CHACHA20_POLY1305: 28,
} as const;

export const INTEG = {
  NONE: 0,
  HMAC_MD5_96: 1,
  HMAC_SHA1_96: 2,
  AES_XCBC_96: 5,
  AES_CMAC_96: 8,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const;

/** Transform Type 4 "Key Exchange Method" (RFC 9370 renamed it from D-H group). */
export const KE = {
  NONE: 0,
  MODP_2048: 14,
  MODP_3072: 15,
  MODP_4096: 16,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  CURVE25519: 31,
  CURVE448: 32,
  ML_KEM_512: 35,
  ML_KEM_768: 36,
  ML_KEM_1024: 37,
} as const;

/** AUTH payload Auth Method (RFC 7296 §3.8, RFC 4754, RFC 7427). */
export const AUTH_METHOD = {
  RSA_SIG: 1,
  SHARED_KEY_MIC: 2,
  DSS: 3,
  ECDSA_SHA256_P256: 9,
  ECDSA_SHA384_P384: 10,
  ECDSA_SHA512_P521: 11,
  NULL: 13,
  DIGITAL_SIGNATURE: 14,
} as const;

/** RFC 7427 §4 hash algorithm identifiers for SIGNATURE_HASH_ALGORITHMS; 5 = Identity (RFC 8420). */
export const HASH_ALG = {
  SHA1: 1,
  SHA2_256: 2,
  SHA2_384: 3,
  SHA2_512: 4,
  IDENTITY: 5,
} as const;

/** ID payload ID Type (RFC 7296 §3.5). */
export const ID_TYPE = {
  IPV4_ADDR: 1,
  FQDN: 2,
  RFC822_ADDR: 3,
  IPV6_ADDR: 5,
  DER_ASN1_DN: 9,
  DER_ASN1_GN: 10,
  KEY_ID: 11,
  NULL: 13,
} as const;

/** Notify error types the crypto layer suggests to its callers. */
export const NOTIFY_INVALID_SYNTAX = 7;
