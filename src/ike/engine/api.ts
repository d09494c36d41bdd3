// The surface the daemon (and the in-process test harness) drives the engine through.
// Every input carries `now` (milliseconds on a monotonic clock chosen by the caller);
// every call returns the ordered actions to carry out.
import type { EngineConfig } from '../config.js';
import type { Action, Endpoint, KernelEventInput } from './actions.js';

export interface ChildSaSnapshot {
  childId: number;
  name: string;
  state: 'creating' | 'installed' | 'rekeying' | 'rekeyed' | 'deleting';
  mode: 'tunnel' | 'transport';
  spiIn: number;
  spiOut: number;
  /** e.g. "AES_GCM_16_256/ESN=no/X25519" */
  suite: string;
  localTs: string[];
  remoteTs: string[];
  /** Absolute engine times (ms) of the next rekey and of the hard expiry. */
  rekeyAt: number;
  expiresAt: number;
  /** Whether the next rekey of this SA may be optimized (draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt §5.1). */
  optimizedRekeyReady: boolean;
  /** KE methods recorded for rekeys (empty = no PFS; undefined = not yet negotiated). */
  keMethods?: number[];
}

export interface IkeSaSnapshot {
  ikeSaId: string;
  connection: string;
  state: 'connecting' | 'established' | 'rekeying' | 'rekeyed' | 'deleting';
  initiator: boolean;
  spiI: string; // hex
  spiR: string; // hex
  local: Endpoint;
  remote: Endpoint;
  localId: string;
  remoteId: string;
  suite: string;
  natDetected: { local: boolean; remote: boolean };
  optimizedRekeyNegotiated: boolean;
  childPfsInfoNegotiated: boolean;
  rekeyAt: number;
  /** When this side reauthenticates the IKE SA (absolute engine time, ms); absent or 0 = never. */
  reauthAt?: number;
  establishedAt: number;
  /** Virtual IPs of this IKE SA: assigned to us (initiator) or leased to the peer (responder). */
  virtualIps?: string[];
  children: ChildSaSnapshot[];
}

export interface EngineStats {
  ikeSas: number;
  halfOpen: number;
  childSas: number;
  datagramsIn: number;
  datagramsOut: number;
  dropped: number;
  retransmits: number;
  rekeys: { ike: number; child: number; optimized: number };
  /** Initiator: connections waiting for a slot under the initiation limit, and waiting to try again. */
  initiations?: { waiting: number; retrying: number };
}

export interface IkeEngine {
  receive(now: number, data: Buffer, local: Endpoint, remote: Endpoint): Action[];
  timerFired(now: number, id: string): Action[];
  kernelEvent(now: number, ev: KernelEventInput): Action[];
  /** Start the connection (IKE SA plus its children with start_action start, or only `child`). */
  initiate(now: number, connection: string, child?: string): Action[];
  rekeyIke(now: number, ikeSaId: string): Action[];
  /** Reauthenticate an IKE SA (RFC 7296 §2.8.3): new IKE SA with fresh authentication, Child SAs moved make-before-break. */
  reauthenticate(now: number, ikeSaId: string): Action[];
  rekeyChild(now: number, childId: number): Action[];
  /** Tear down an IKE SA (by id) or every IKE SA of a connection (by name). */
  terminate(now: number, target: { ikeSaId?: string; connection?: string }): Action[];
  /** New configuration: changed connections are re-established, unchanged ones untouched. */
  reload(now: number, config: EngineConfig): Action[];
  /** Delete every SA (Delete sent to peers), for SIGTERM. */
  shutdown(now: number): Action[];
  listSas(now: number): IkeSaSnapshot[];
  stats(): EngineStats;
}

export interface EngineOptions {
  /** Random source (defaults to crypto.randomBytes); tests inject a seeded one. */
  rng?: (n: number) => Buffer;
  /** Wall-clock milliseconds, used only for certificate validity dates (default Date.now). */
  wallClock?: () => number;
  /** Structured log sink; the engine never logs secrets. */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string) => void;
}
