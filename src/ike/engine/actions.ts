// What the sans-IO engine asks of the world. The engine never touches sockets, clocks
// or the kernel: every call returns an ordered list of these actions and the daemon
// (or a test harness) carries them out IN ORDER, awaiting each kernel action before the
// next action, so that e.g. an inbound SA is installed before the response that makes
// it usable leaves the host.

export interface Endpoint {
  address: string; // IPv4 or IPv6 literal
  port: number;
}

/** A traffic selector in host form (addresses as text). */
export interface TrafficSelectorSpec {
  protocol: number; // 0 = any
  startPort: number;
  endPort: number;
  startAddress: string;
  endAddress: string;
}

/** Everything the kernel needs to know about one Child SA, independent of direction. */
export interface ChildSaKernelSpec {
  /** Engine-wide unique id of this Child SA (stable for its life, new one per rekey). */
  childId: number;
  connection: string;
  child: string;
  reqid: number;
  mode: 'tunnel' | 'transport';
  protocol: 'esp';
  /** Outer addresses of this host and the peer. */
  local: string;
  remote: string;
  /** UDP encapsulation (NAT-T) ports, when in use. */
  encap?: { localPort: number; remotePort: number };
  localTs: TrafficSelectorSpec[];
  remoteTs: TrafficSelectorSpec[];
  /** IKEv2 transform ids (RFC 7296 registry), mapped to XFRM names by src/kernel. */
  encr: { id: number; keyBits: number };
  integ?: { id: number };
  esn: boolean;
  replayWindow: number;
  /** Kernel-enforced volume limits (0 = none); time limits are engine timers. */
  softBytes: number;
  hardBytes: number;
  softPackets: number;
  hardPackets: number;
  /** Hard time limit as a kernel safety net, seconds (0 = none). */
  hardSeconds: number;
  ifId: number;
  mark: number;
  /**
   * Traffic Flow Confidentiality: pad outbound ESP payloads to this many octets (RFC 4303 §2.7;
   * 0 or absent = none). Never set when the peer sent ESP_TFC_PADDING_NOT_SUPPORTED (RFC 7296 §3.10.1).
   */
  tfcPad?: number;
  /** Inbound and outbound SPIs (host order numbers). */
  spiIn: number;
  spiOut: number;
}

export interface SaKeys {
  /** Encryption key including salt for AEAD (GCM/ChaCha20: +4 octets). */
  encKey: Buffer;
  integKey?: Buffer;
}

export type KernelAction =
  /** Reserve the inbound SPI in the kernel (larval state) and complete it with the keys. */
  | { op: 'installInboundSa'; spec: ChildSaKernelSpec; keys: SaKeys }
  /** Install the outbound SA; unused until a policy template names its SPI. */
  | { op: 'installOutboundSa'; spec: ChildSaKernelSpec; keys: SaKeys }
  /** Install out/in/fwd policies for a new Child SA; the out template pins spec.spiOut. */
  | { op: 'installPolicies'; spec: ChildSaKernelSpec }
  /** Make-before-break: one UPDPOLICY re-points the outbound template to spec.spiOut. */
  | { op: 'updateOutboundPolicy'; spec: ChildSaKernelSpec; previousSpiOut: number }
  /**
   * NAT re-mapping (RFC 7296 §2.23): the peer's UDP encapsulation port changed; both SAs of the Child
   * SA get spec.encap in place (UPDSA with the same keys), so they keep their SPIs and counters.
   */
  | { op: 'updateSaEncap'; spec: ChildSaKernelSpec; keysIn: SaKeys; keysOut: SaKeys }
  | { op: 'deleteInboundSa'; spec: ChildSaKernelSpec }
  | { op: 'deleteOutboundSa'; spec: ChildSaKernelSpec }
  | { op: 'deletePolicies'; spec: ChildSaKernelSpec }
  /** Ask for current counters; answered through Engine.kernelEvent({type:'counters'}). */
  | { op: 'queryCounters'; spec: ChildSaKernelSpec }
  /** Put a virtual IP the peer assigned us (RFC 7296 §2.19) on this host, like `ip addr add ADDRESS/PREFIX dev lo`. */
  | { op: 'addVirtualIp'; vip: VirtualIpSpec }
  /** Take it away again once no IKE SA holds it any more. */
  | { op: 'removeVirtualIp'; vip: VirtualIpSpec };

/** A virtual IP this host uses as the inner source address of its Child SAs. */
export interface VirtualIpSpec {
  connection: string;
  /** The IKE SA that obtained it (it follows the IKE SA through rekeys). */
  ikeSaId: string;
  address: string;
  /** 32 or 128: the address alone. */
  prefixLength: number;
}

export type EngineEvent =
  | { type: 'ike-up'; ikeSaId: string; connection: string; spiI: string; spiR: string; suite: string }
  | { type: 'ike-rekeyed'; oldIkeSaId: string; newIkeSaId: string; connection: string; optimized: boolean }
  | { type: 'ike-down'; ikeSaId: string; connection: string; reason: string }
  | { type: 'child-up'; ikeSaId: string; connection: string; child: string; spiIn: number; spiOut: number; suite: string }
  | { type: 'child-rekeyed'; connection: string; child: string; oldSpiIn: number; newSpiIn: number; optimized: boolean }
  | { type: 'child-down'; connection: string; child: string; spiIn: number; spiOut: number; reason: string }
  | { type: 'auth-failed'; connection: string; reason: string }
  /** A virtual IP (RFC 7296 §2.19) assigned to us by the peer (initiator) or leased to the peer from a pool (responder). */
  | { type: 'virtual-ip'; ikeSaId: string; connection: string; address: string; dns: string[]; assignedTo: 'us' | 'peer' }
  | { type: 'error'; connection?: string; message: string }
  /** Something worth an operator's attention that is not a fault (e.g. a rekey collision resolved). */
  | { type: 'notice'; connection?: string; message: string }
  /** A Child SA with `close_action: trap` was closed by the peer or lost with a dead peer: its trap policies come back. */
  | { type: 'trap-again'; connection: string; child: string }
  /** Key log for Wireshark (only consumed when the operator opted in with --keylog). encr/integ are IKEv2
   *  transform ids in decimal ('NONE' for no integrity), spi is '0x' + 8 hex digits; the daemon maps them to Wireshark's names. */
  | { type: 'keylog-ike'; spiI: string; spiR: string; skEi: string; skEr: string; encr: string; skAi: string; skAr: string; integ: string }
  | { type: 'keylog-esp'; src: string; dst: string; spi: string; encr: string; encKey: string; integ: string; integKey: string };

export type Action =
  | { kind: 'send'; local: Endpoint; remote: Endpoint; data: Buffer }
  /** Arm (or re-arm) the timer named `id` to fire at absolute time `at` (ms, engine clock). */
  | { kind: 'timer'; id: string; at: number }
  | { kind: 'cancelTimer'; id: string }
  | { kind: 'kernel'; action: KernelAction }
  | { kind: 'event'; event: EngineEvent };

/** Kernel happenings the daemon forwards to the engine (already decoded from XFRM). */
export type KernelEventInput =
  /** A trap policy matched traffic with no SA: start the Child SA with this reqid. */
  | { type: 'acquire'; reqid: number; local: string; remote: string; selector?: { src: TrafficSelectorSpec; dst: TrafficSelectorSpec } }
  /** Soft expire -> rekey; hard expire -> the kernel deleted the SA, delete the Child SA. */
  | { type: 'expire'; spi: number; destination: string; hard: boolean }
  | { type: 'counters'; childId: number; bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number; lastUseIn?: number; lastUseOut?: number }
  /** A kernel action failed; the engine must roll the Child SA back (and tell the peer). */
  | { type: 'action-failed'; action: KernelAction; message: string };
