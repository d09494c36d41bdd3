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
  type Spi,
  type IkeSuite,
  type IkeSaKeys,
  type IkeSaKeyInput,
  type ChildSaKeys,
  type ChildDirectionKeys,
} from './keys.js';
