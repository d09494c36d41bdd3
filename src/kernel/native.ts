// Loads the XFRM addon (build/Release/xfrm.node) and describes the plain
// objects it exchanges. These shapes are internal to src/kernel: the addon
// turns them into struct xfrm_* + netlink attributes (native/codec.cc).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/** AF_INET / AF_INET6 as the kernel numbers them. */
export const AF_INET = 2;
export const AF_INET6 = 10;

export interface NativeSelector {
  family: number;
  src: string;
  dst: string;
  prefixSrc: number;
  prefixDst: number;
  proto: number;
  sport: number;
  sportMask: number;
  dport: number;
  dportMask: number;
  ifindex: number;
}

/** Limits; 0 means "no limit" (XFRM_INF) for bytes/packets and "none" for seconds. */
export interface NativeLifetime {
  softBytes: number;
  hardBytes: number;
  softPackets: number;
  hardPackets: number;
  softAddSeconds: number;
  hardAddSeconds: number;
  softUseSeconds: number;
  hardUseSeconds: number;
}

export interface NativeAlgo {
  name: string;
  key: Buffer;
  icvBits?: number;
  truncBits?: number;
}

export interface NativeMark {
  value: number;
  mask: number;
}

export interface NativeSa {
  family: number;
  src: string;
  dst: string;
  spi: number;
  proto: number;
  mode: number;
  reqid: number;
  flags: number;
  replayWindow: number;
  esn: boolean;
  selector?: NativeSelector;
  lifetime?: NativeLifetime;
  aead?: NativeAlgo;
  crypt?: NativeAlgo;
  auth?: NativeAlgo;
  comp?: { name: string; key?: Buffer };
  encap?: { type: number; sport: number; dport: number; oa?: string };
  extraFlags?: number;
  tfcPad?: number;
  setMark?: NativeMark;
  mark?: NativeMark;
  ifId?: number;
}

export interface NativeSaInfo extends NativeSa {
  type: string;
  seq: number;
  selector: NativeSelector;
  lifetime: NativeLifetime;
  current: { bytes: number; packets: number; addTime: number; useTime: number };
  stats: { replayWindow: number; replay: number; integrityFailed: number };
  replay?: { seq: number; oseq: number; seqHi?: number; oseqHi?: number };
  lastUsed?: number;
}

export interface NativeTemplate {
  family: number;
  src?: string;
  dst?: string;
  spi: number;
  proto: number;
  reqid: number;
  mode: number;
  share: number;
  optional: boolean;
  aalgos?: number;
  ealgos?: number;
  calgos?: number;
}

export interface NativePolicy {
  selector: NativeSelector;
  lifetime?: NativeLifetime;
  priority: number;
  index: number;
  dir: number;
  action: number;
  flags: number;
  share: number;
  templates: NativeTemplate[];
  mark?: NativeMark;
  ifId?: number;
  ptype?: number;
}

export interface NativePolicyInfo extends NativePolicy {
  type: string;
  lifetime: NativeLifetime;
  current: { bytes: number; packets: number; addTime: number; useTime: number };
}

export interface NativeSocket {
  request(op: 'newsa' | 'updsa', sa: NativeSa): Promise<void>;
  request(op: 'getsa', id: object): Promise<NativeSaInfo | undefined>;
  request(op: 'allocspi', arg: object): Promise<NativeSaInfo | undefined>;
  request(op: 'dumpsa'): Promise<NativeSaInfo[]>;
  request(op: 'dumppolicy'): Promise<NativePolicyInfo[]>;
  request(op: 'getpolicy', id: object): Promise<NativePolicyInfo | undefined>;
  request(op: 'newpolicy' | 'updpolicy', p: NativePolicy): Promise<void>;
  request(op: 'delsa' | 'delpolicy' | 'flushsa' | 'flushpolicy', arg?: object): Promise<void>;
  subscribe(groups: number[]): void;
  close(): void;
  readonly pending: number;
}

export interface NativeAddon {
  XfrmSocket: new (opts: { netns?: string | number; onEvent?: (ev: Record<string, unknown>) => void }) => NativeSocket;
  enableEspInUdp(fd: number): void;
  bypassIpsec(fd: number, family: number): void;
}

let cached: NativeAddon | undefined;

/** Path of the compiled addon (same relative place from src/ and dist/). */
export function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, '..', '..', 'build', 'Release', 'xfrm.node');
}

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(`XFRM addon not built (${path} missing): run 'npm run build:native'`);
  }
  const require = createRequire(import.meta.url);
  cached = require(path) as NativeAddon;
  return cached;
}
