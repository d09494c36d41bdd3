// Shared gating for the kernel suite: what this environment can run.
import { existsSync } from 'node:fs';
import { addonPath } from '../../src/kernel/native.js';
import { canMakeNetns, kernelHasEsp } from '../helpers/netns.js';

export const addonBuilt = existsSync(addonPath());
export const netnsOk = addonBuilt && canMakeNetns();
export const espOk = netnsOk && (await kernelHasEsp());

if (!addonBuilt) console.warn('SKIPPED: XFRM addon not built (npm run build:native): kernel tests skipped');
else if (!netnsOk) console.warn('SKIPPED: kernel tests need root and iproute2 (network namespaces)');
else if (!espOk) {
  console.warn('SKIPPED: this kernel cannot hold ESP SAs (no esp4/AES-GCM): ESP tests skipped; ' +
    'run them inside scripts/vm-run --modules ipsec -- npx vitest run --project kernel');
}
