// Typed connection configuration as the protocol engine consumes it.
//
// The daemon's YAML loader (src/daemon/config.ts) validates the operator's file and
// produces exactly these objects; the engine never parses text. Secrets arrive here
// already read from their files, as Buffers.

/** An IKE identity (RFC 7296 §3.5). `value` is the text form the operator wrote. */
export type IdentityConfig =
  | { type: 'ipv4'; value: string }
  | { type: 'ipv6'; value: string }
  | { type: 'fqdn'; value: string }
  | { type: 'rfc822'; value: string }
  /** Distinguished name, written as in OpenSSL's one-line form ("C=CH, O=example, CN=gw"). */
  | { type: 'dn'; value: string }
  /** Opaque key id, hex in the file. */
  | { type: 'keyid'; value: string };

export interface PeerAuthConfig {
  auth: 'psk' | 'pubkey';
  /** PEM of this side's certificate chain (leaf first); `local` side with auth pubkey. */
  certChainPem?: string[];
  /** PEM private key; `local` side with auth pubkey. Never logged. */
  privateKeyPem?: string;
  /** PEM CA certificates that anchor the peer's chain; `remote` side with auth pubkey. */
  caPem?: string[];
}

export interface EndpointConfig extends PeerAuthConfig {
  /** Addresses (IPv4 or IPv6 literals). Local: addresses to bind/use; remote: where to reach the peer ('%any' allowed on a responder-only remote). */
  addrs: string[];
  id: IdentityConfig;
  /** UDP port, default 500 (4500 after NAT-T). */
  port?: number;
}

/**
 * A transform list the operator wrote, parsed from a strongSwan-style proposal string
 * (e.g. "aes256gcm16-prfsha384-x25519", "aes128-sha256-ecp256-ke1_mlkem768").
 * See src/ike/proposal.ts for the grammar and for negotiation.
 */
export interface ProposalConfig {
  /** The string as written, for logs and `list-sas`. */
  text: string;
  encr: { id: number; keyBits?: number }[];
  integ: number[];
  /** Empty for ESP/AH. */
  prf: number[];
  /** Transform type 4: key exchange methods. For ESP, empty means no PFS. */
  ke: number[];
  /** RFC 9370 additional key exchanges ADDKE1..ADDKE7 (index 0 = ADDKE1). Each list may contain 0 (NONE) = optional. */
  addKe: number[][];
  /** ESN choices for ESP (0 = no, 1 = yes); empty for IKE. */
  esn: number[];
}

export interface TrafficSelectorConfig {
  /** CIDR or a single address, or "a.b.c.d-e.f.g.h" range. */
  cidr: string;
  /** IP protocol number, 0 = any. */
  protocol: number;
  startPort: number;
  endPort: number;
}

export interface LifetimeConfig {
  /** Seconds until a rekey is started (jitter is subtracted by the engine). */
  rekeyTime: number;
  /** Random jitter subtracted from rekeyTime, seconds. */
  randTime: number;
  /** Hard limit in seconds (SA deleted if not rekeyed by then). */
  lifeTime: number;
  /** Kernel soft/hard byte and packet limits for Child SAs (0 = none). */
  rekeyBytes: number;
  lifeBytes: number;
  rekeyPackets: number;
  lifePackets: number;
}

export interface ChildConfig {
  name: string;
  localTs: TrafficSelectorConfig[];
  remoteTs: TrafficSelectorConfig[];
  espProposals: ProposalConfig[];
  mode: 'tunnel' | 'transport';
  lifetime: LifetimeConfig;
  startAction: 'start' | 'trap' | 'none';
  /** What to do when the peer goes away (DPD) or closes the Child SA. */
  closeAction: 'none' | 'trap' | 'start';
  /** Replay window in packets (0 disables replay protection). */
  replayWindow: number;
  /** Stable reqid the kernel policies use; assigned by the daemon when 0. */
  reqid: number;
  /** XFRM if_id / mark passthrough for route-based setups (0 = unused). */
  ifId: number;
  mark: number;
  /** TFC padding of outbound ESP packets to this length, octets (0/absent = off; RFC 4303 §2.7). */
  tfcPadding?: number;
  /** Accept only Child SAs for a single address pair; answer SINGLE_PAIR_REQUIRED otherwise (RFC 7296 §3.10.1). */
  singlePair?: boolean;
}

export interface PpkConfig {
  /** PPK_ID as sent on the wire (RFC 8784 §3: first octet is the PPK_ID type). */
  id: Buffer;
  key: Buffer;
}

/**
 * Virtual IPs (RFC 7296 §2.19). As initiator, `request` asks the responder for addresses with a
 * CP(CFG_REQUEST) in IKE_AUTH; the IKE SA fails when none is assigned. As responder, a CP request
 * is answered from `pool`; without a pool the CP payload is ignored.
 */
export interface VirtualIpConfig {
  /** Initiator: ask for virtual IPs. */
  request: boolean;
  /**
   * Initiator: the addresses asked for, one per IP version: "0.0.0.0" / "::" for any address of that
   * version, or an address the responder may honour. Unset with `request`: ["0.0.0.0"].
   */
  addresses?: string[];
  /** Responder: pools to lease from, each a CIDR ("10.99.0.0/24"), a range ("a-b") or one address. */
  pool?: string[];
  /** Responder: DNS servers sent with a lease (INTERNAL_IP4_DNS / INTERNAL_IP6_DNS). */
  dns?: string[];
}

export interface ConnectionConfig {
  name: string;
  local: EndpointConfig;
  remote: EndpointConfig;
  /** Pre-shared key (from file); required when either side authenticates with psk. */
  psk?: Buffer;
  ike: {
    proposals: ProposalConfig[];
    lifetime: LifetimeConfig;
    /** Re-authentication interval, seconds (0 = never). */
    reauthTime: number;
    /** Liveness check after this many idle seconds (0 = off). */
    dpdDelay: number;
    /** Give up on a request after this long, seconds. */
    dpdTimeout: number;
    /** Retransmission: first timeout seconds, back-off base, number of tries. */
    retransmit: { timeout: number; base: number; tries: number };
    /** Initiator: attempts to establish the IKE SA when the peer does not answer (0 = forever; absent = 1). */
    keyingtries?: number;
    /** Send fragments above this size (RFC 7383), bytes of the IP datagram. */
    fragmentSize: number;
    fragmentation: boolean;
    /** Advertise/accept NAT-T and force UDP encapsulation even without NAT. */
    forceEncap: boolean;
    /** Our local IKE window size (SET_WINDOW_SIZE), >= 1. */
    windowSize: number;
  };
  children: ChildConfig[];
  /** draft-ietf-ipsecme-ikev2-sa-ts-payloads-opt: use optimized rekeys when the peer supports them. */
  optimizedRekey: boolean;
  /** child-pfs-info: negotiate the initial Child SA's KE methods in IKE_AUTH. */
  childPfsInfo: boolean;
  /** Post-quantum preshared keys (RFC 8784 / RFC 9867). */
  ppk?: {
    keys: PpkConfig[];
    required: boolean;
    /** RFC 9867 (USE_PPK_INT, PPK in IKE_INTERMEDIATE and CREATE_CHILD_SA); default on. `false`: RFC 8784 only. */
    rfc9867?: boolean;
  };
  /** A connection that must never fall back to a classic-only SA. */
  requirePq: boolean;
  /** Virtual IPs through configuration payloads (RFC 7296 §2.19, §3.15). */
  vips?: VirtualIpConfig;
  /** Responder-only connection (never initiates). */
  passive: boolean;
}

/** Wire code points that are not yet assigned by IANA; configurable so we can follow peers. */
export interface CodePointConfig {
  optimizedRekeySupported: number; // default 50400
  optimizedRekey: number; // default 50401
  childSaPfsInfoSupported: number; // default 50600
}

export const DEFAULT_CODE_POINTS: CodePointConfig = {
  optimizedRekeySupported: 50400,
  optimizedRekey: 50401,
  childSaPfsInfoSupported: 50600,
};

export interface EngineConfig {
  connections: ConnectionConfig[];
  codePoints: CodePointConfig;
  /** Half-open IKE SAs above which the responder demands COOKIEs. */
  cookieThreshold: number;
  /** Grace period before an old inbound Child SA is deleted after a rekey, seconds. */
  rekeyGraceTime: number;
  /** Initiator: most IKE SAs being set up at once; further initiations wait their turn (0 or absent = no limit). */
  initiateLimit?: number;
}

/**
 * What a connection is apart from the settings that only take effect at a rekey: who the peers are,
 * how they authenticate, which Child SAs with which selectors, mode, encapsulation and kernel
 * identifiers. When a reload changes only the rest (proposals, lifetimes, timers), the connection's
 * SAs keep running and its next rekeys are regular ones that negotiate the new settings.
 */
export function connectionIdentity(c: ConnectionConfig): string {
  const { ike, children, optimizedRekey: _o, childPfsInfo: _p, ppk, ...rest } = c;
  void _o;
  void _p;
  const kids = children.map(({ espProposals: _e, lifetime: _l, replayWindow: _r, tfcPadding: _t, startAction: _s, closeAction: _c, ...k }) => k);
  // The PPK values are not part of the identity: a rotated PPK is used from the next CREATE_CHILD_SA on
  // (RFC 9867) or the next authentication (RFC 8784), without tearing the SAs down. Whether PPKs are
  // used, required, and by which RFC still is.
  const ppkPolicy = ppk && { used: ppk.keys.length > 0, required: ppk.required, rfc9867: ppk.rfc9867 !== false };
  return JSON.stringify({ ...rest, ppk: ppkPolicy, forceEncap: ike.forceEncap, children: kids }, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `buf:${Buffer.from((v as { data: number[] }).data).toString('base64')}`;
    return v;
  });
}
