// Placeholder until the XFRM addon lands: builds native/ with node-gyp when binding.gyp exists.
import { existsSync } from 'node:fs';
if (!existsSync(new URL('../binding.gyp', import.meta.url))) process.exit(0);
