// The kernel layer: typed XFRM client, IKEv2 -> XFRM mapping, Child SA actions.
export * from './xfrm-client.js';
export * from './ike-mapping.js';
export * from './child-sa.js';
export * from './virtual-ip.js';
export { rangeToPrefixes, portRangeToMasks } from './address.js';
