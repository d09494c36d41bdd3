// Builds the XFRM addon (native/ -> build/Release/xfrm.node) with node-gyp.
// Runs as the package's `install` script and as `npm run build:native`.
// Node's headers come from the local Node installation (no download): npm's
// configured nodedir when set, else the prefix of the running node binary.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function fail(msg) {
  console.error(`build-native: ${msg}`);
  process.exit(1);
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

if (process.platform !== 'linux') {
  console.warn('build-native: XFRM exists on Linux only; skipping the addon build');
  process.exit(0);
}

const missing = [];
if (!have('g++') && !have('c++')) missing.push('g++');
if (!have('make')) missing.push('make');
if (!have('python3')) missing.push('python3');
if (!existsSync('/usr/include/linux/xfrm.h')) missing.push('linux-libc-dev');
if (missing.length) {
  fail(`missing build tools: ${missing.join(', ')}. Install them, e.g. ` +
    `'apt-get install g++ make python3 linux-libc-dev', then run 'npm run build:native'.`);
}

function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')];
  for (const c of candidates) {
    if (c && existsSync(join(c, 'include', 'node', 'node_api.h'))) return c;
  }
  return undefined;
}

const dir = nodeDir();
if (!dir) {
  fail(`Node.js headers not found (looked for include/node/node_api.h next to ${process.execPath}); ` +
    `install the headers of this Node.js (e.g. Debian's 'libnode-dev' or the official tarball) ` +
    `or set npm_config_nodedir.`);
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail("node-gyp is not installed: run 'npm install' first");
}

const args = [gyp, 'rebuild', `--nodedir=${dir}`, '--jobs=2'];
if (process.env.npm_config_debug === 'true') args.push('--debug');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) fail(`node-gyp rebuild failed (exit ${r.status ?? r.signal})`);
if (!existsSync(join(root, 'build', 'Release', 'xfrm.node'))) fail('build/Release/xfrm.node was not produced');
console.log('build-native: built build/Release/xfrm.node');
