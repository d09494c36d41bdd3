// Public surface of the IKEv2 crypto layer. Import from here, not from the individual files.
export * from './constants.js';
export { createPrf, isSupportedPrf, prfPlus, type Prf } from './prf.js';
export { encrInfo, integInfo, ikeKeyLengths, espKeyLengths, type EncrInfo, type IntegInfo, type KeyLengths } from './algorithms.js';
export {
  createProtection,
  createIkeSaProtections,
  type IkeProtection,
  type ProtectionParams,
  type SkKeysForProtection,
  type Rng,
} from './protection.js';
export {
  getKeMethod,
  supportedKeMethods,
  KeError,
  type KeErrorReason,
  type KeMethod,
  type KeInitiation,
  type KeResponse,
} from './ke.js';
export {
  deriveIkeSaKeys,
  deriveRekeyedIkeSaKeys,
  updateIkeSaKeys,
  deriveChildKeys,
  applyPpk,
  applyPpkIntermediate,
  ppkConfirmation,
  ppkMixedSkD,
  spiBytes,
  type Spi,
  type IkeSuite,
  type IkeSaKeys,
  type IkeSaKeyInput,
  type ChildSaKeys,
  type ChildDirectionKeys,
} from './keys.js';
export {
  signedOctets,
  pskAuth,
  verifyPskAuth,
  intAuthA,
  intAuthChunk,
  intAuth,
  signAuth,
  verifyAuth,
  signLegacyAuth,
  verifyLegacyAuth,
  algorithmIdentifier,
  parseAlgorithmIdentifier,
  keySignatureScheme,
  selectSignatureHash,
  encodeSignatureHashAlgorithms,
  parseSignatureHashAlgorithms,
  SUPPORTED_SIGNATURE_HASHES,
  type SignatureScheme,
  type SignatureAlgorithm,
  type VerifyAuthResult,
} from './auth.js';
export {
  encodeIdentity,
  parseIdentity,
  identityMatches,
  idPayloadBody,
  dnTextToDer,
  dnDerToText,
  parseDnText,
  parseDnDer,
  dnEqual,
  ipv4ToBytes,
  ipv6ToBytes,
  ipv6FromBytes,
  type IdData,
  type Rdn,
} from './id.js';
export {
  validateCertChain,
  parseCertificates,
  pemToDer,
  certSubjectDer,
  caKeyHash,
  certReqData,
  parseCertReqData,
  type CertInput,
  type CertErrorReason,
  type CertValidation,
} from './x509.js';
export { natDetectionHash, makeCookie, verifyCookie, cookieSecretVersion } from './hashes.js';
