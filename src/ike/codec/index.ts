// IKEv2 message codec: bytes <-> typed messages (RFC 7296 §3), SK protection layout (RFC 5282),
// fragmentation (RFC 7383).
export * from './constants.js';
export * from './types.js';
export * from './helpers.js';
export { decodeMessage, decodePayloadChain, decodeHeader, MAX_PAYLOADS_PER_CHAIN, NONCE_MIN_LENGTH, NONCE_MAX_LENGTH } from './decode.js';
export { encodeMessage, encodePayloadChain, encodePayload, encodeHeader, wirePayloadType, CodecEncodeError } from './encode.js';
export { encodeProtected, decodeProtected, datagramOf, type SkProtection, type ProtectedDecodeResult } from './protect.js';
export {
  encodeFragments,
  encodeProtectedForSending,
  ikeMessageBudget,
  Reassembler,
  reassemblyKey,
  DEFAULT_REASSEMBLER_LIMITS,
  type ReassemblerLimits,
  type ReassemblyResult,
} from './fragment.js';
