// The state of the IKEv2 engine shared by its exchange modules: IKE SAs and their Child SAs, the
// requests awaiting an answer, and the engine-wide constants (RFC 7296).
import type { ChildConfig, ConnectionConfig, PpkConfig } from '../config.js';
import { ExchangeType } from '../codec/constants.js';
import { Reassembler } from '../codec/fragment.js';
import type { IkeHeader, Payload, TrafficSelector } from '../codec/types.js';
import type { KeInitiation } from '../crypto/index.js';
import { proposalsToSa } from '../proposal.js';
import type { Action, ChildSaKernelSpec, Endpoint } from './actions.js';
import type { PacketSelectors } from './selectors.js';
import { ikeAuthChildProposals } from './child-pfs-info.js';
import { FollowupKeResponder } from './followup-ke.js';
import type { PpkMode } from './ppk.js';
import { IntAuthChain, IntermediateKeInitiator, IntermediateKeResponder } from './intermediate.js';
import type { ChildFollowupContext, IkeFollowupContext, RekeyChildSa, RekeyIkeSa } from './rekey-exchange.js';

export const NONCE_LENGTH = 32;
/** The most requests we keep outstanding, whatever window the peer announces (RFC 7296 §2.3). */
export const MAX_PEER_WINDOW = 32;
export const IKE_PORT = 500;
export const NATT_PORT = 4500;
/** A half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH) is forgotten after this long. */
export const HALF_OPEN_TIMEOUT_MS = 30_000;
/** Two IKE SAs of a connection, one initiated by each peer, that came up this close together are twins of a simultaneous start. */
/** Delay before the first new attempt of a failed initiation; it doubles per attempt up to RETRY_MAX_MS, plus up to as much jitter. */
export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 32_000;
export const TWIN_WINDOW_MS = 120_000;
/** A reauthentication starts at least this long (or a tenth of the time left) before the hard lifetime. */
export const REAUTH_MARGIN_MS = 60_000;
/** Beyond TWIN_WINDOW_MS, so that the peer never takes a reauthentication for a simultaneous start. */
export const REAUTH_TWIN_MARGIN_MS = 10_000;
/** A COOKIE secret is replaced after this long (the previous one is still accepted). */
export const COOKIE_SECRET_LIFETIME_MS = 300_000;

export type IkeState = 'init-sent' | 'init-received' | 'auth-sent' | 'established' | 'rekeyed' | 'deleting';

export interface ChildSaState {
  childId: number;
  cfg: ChildConfig;
  sa: RekeyChildSa;
  spec: ChildSaKernelSpec;
  state: 'installed' | 'rekeying' | 'rekeyed' | 'deleting';
  rekeyAt: number;
  expiresAt: number;
  /** The peer refused an optimized rekey of this SA: the next one is regular (no loop). */
  refusedOptimized: boolean;
  /** Responder of a rekey: the new outbound SA waits for the initiator's Delete of the old SA. */
  pendingSwitch?: { replaced: ChildSaState; replacedState: ChildSaState['state'] };
  /** Replaced by the peer's rekey, which we answered (the rival of ours in a §2.8.1 collision). */
  replacedBy?: ChildSaState;
  /** Replaced by our own completed rekey. */
  supersededBy?: ChildSaState;
  /** Responder of a reauthentication: the outbound policy moves here when the old IKE SA (holding this SA) goes. */
  reauthSwitch?: ChildSaState;
  /** The nonces of the exchange that created this SA by a rekey (RFC 7296 §2.8.1 collision rule). */
  nonces?: { ni: Buffer; nr: Buffer };
  /** Its configuration was reloaded with other proposals or lifetimes: the next rekey is regular (draft §3). */
  configChanged?: boolean;
}

/** Responder of a new Child SA with additional key exchanges: what IKE_FOLLOWUP_KE finishes (RFC 9370 §2.2.4). */
export interface NewChildFollowupContext {
  cfg: ChildConfig;
  /** Our inbound SPI, handed out in the CREATE_CHILD_SA response and reserved until the chain ends. */
  spiIn: number;
  /** Keys need every secret: SK(0) | Ni | Nr | SK(1) | ... | SK(n). */
  finish: (secrets: Buffer[]) => RekeyChildSa;
}

export interface Outstanding {
  messageId: number;
  /** The request as sent: one message, or its RFC 7383 fragments. */
  datagrams: Buffer[];
  tries: number;
  /** When the request was first sent: dpdTimeout bounds the whole retransmission sequence. */
  sentAt: number;
  exchange: ExchangeType;
  onResponse: (now: number, header: IkeHeader, payloads: Payload[], datagram: Buffer) => Action[];
  /** The inner payloads sent (for the IntAuth chain of IKE_INTERMEDIATE). */
  payloads?: Payload[];
  /** Runs alone in the window (see request()). */
  exclusive?: boolean;
}

/** What happens around the response to a request: actions before and after it, and a hook with the sealed bytes. */
export interface RequestAfter {
  before?: Action[];
  after?: Action[];
  sealed?: (datagram: Buffer) => void;
}

/** A Child SA of an IKE SA being reauthenticated, to re-create under the new IKE SA. */
export interface ReauthChild {
  cfg: ChildConfig;
  localTs: TrafficSelector[];
  remoteTs: TrafficSelector[];
  requested: boolean;
  /** Re-created (true), failed (its reason), or still open (undefined). */
  outcome?: true | string;
}

export interface InitiationAttempt {
  children: string[];
  packet?: PacketSelectors;
  tries: number;
}

export interface IkeSaState {
  id: string;
  conn: ConnectionConfig;
  /** Original initiator of this IKE SA (I flag, key direction). */
  initiator: boolean;
  state: IkeState;
  spiI: Buffer;
  spiR: Buffer;
  local: Endpoint;
  remote: Endpoint;
  natLocal: boolean;
  natRemote: boolean;
  ni: Buffer;
  nr: Buffer;
  initRequest?: Buffer;
  initResponse?: Buffer;
  /** Initiator: the pending key exchange of IKE_SA_INIT. */
  keInit?: { method: number; init: KeInitiation };
  /** The proposals we offered in IKE_SA_INIT (initiator) for checking the answer. */
  sentIkeProposals?: ReturnType<typeof proposalsToSa>;
  sa?: RekeyIkeSa;
  childPfsInfo: boolean;
  /** Initiator: the Child SA proposed in IKE_AUTH. */
  authChild?: { cfg: ChildConfig; spiIn: number; sent: ReturnType<typeof ikeAuthChildProposals> };
  /** Initiator: the packet (kernel ACQUIRE) that triggered the IKE_AUTH Child SA, sent as its first TS. */
  authChildPacket?: PacketSelectors;
  /** Initiator: Child SAs asked for while the IKE SA was being set up, created once it is. */
  extraChildren: Set<ChildConfig>;
  nextRequestId: number;
  /** Responder: the lowest message ID not answered yet (the bottom of our receive window). */
  expectedRequestId: number;
  /** Our requests awaiting a response, by message ID: at most the peer's window (RFC 7296 §2.3). */
  inflight: Map<number, Outstanding>;
  /** Requests waiting for room in the window; `exclusive` ones run with nothing else outstanding. */
  queue: Array<{ start: (now: number) => Action[]; exclusive: boolean }>;
  /** The peer's window (its SET_WINDOW_SIZE, RFC 7296 §2.3); 1 until it says otherwise. */
  peerWindow: number;
  /** Responder: the responses sent, by message ID, so retransmitted requests get them again (§2.1). */
  responses: Map<number, Buffer[]>;
  /** RFC 7383: both peers announced IKEV2_FRAGMENTATION_SUPPORTED. */
  fragmentation: boolean;
  reassembler: Reassembler;
  children: Map<number, ChildSaState>;
  lastActivity: number;
  /** When its IKE_SA_INIT was sent or received (engine clock). */
  createdAt: number;
  /** Made by an IKE SA rekey (CREATE_CHILD_SA), not by IKE_SA_INIT. */
  fromRekey?: boolean;
  establishedAt: number;
  rekeyAt: number;
  expiresAt: number;
  /** RFC 7296 §2.8.3: when this side replaces the IKE SA by a freshly authenticated one (0 = never). */
  reauthAt: number;
  /** When the peer was authenticated for this IKE SA (IKE_AUTH; an IKE SA rekey inherits it), 0 before. */
  authenticatedAt: number;
  /** A reauthentication of this IKE SA is under way: the new IKE SA that is to replace it. */
  reauthBy?: IkeSaState;
  /** This IKE SA reauthenticates `old`: the old Child SAs to re-create here (same selectors and reqids). */
  reauthOf?: { old: IkeSaState; children: ReauthChild[] };
  /** Child SAs of this IKE SA that moved to its reauthentication: their inbound SAs go a grace period after it. */
  reauthRetired?: ChildSaState[];
  refusedOptimizedIke: boolean;
  /** Our own IKE SA rekey is on the wire (sent, unanswered, or finishing with IKE_FOLLOWUP_KE). */
  ikeRekeyInFlight?: boolean;
  /**
   * RFC 7296 §2.8.2: the peer's rekey of this IKE SA, answered while ours was in flight. The new IKE SA
   * it made waits here, without Child SAs, until the nonce rule says which of the two survives.
   */
  ikeRekeyCollision?: { fresh: IkeSaState; ni: Buffer; nr: Buffer; optimized: boolean };
  /** After an IKE SA rekey: the IKE SA that took over this one's Child SAs. */
  successor?: IkeSaState;
  /** The connection was reloaded with other IKE proposals or timers: the next IKE SA rekey is regular. */
  configChanged?: boolean;
  /** RFC 9242: the additional key exchanges of IKE_INTERMEDIATE and the IntAuth chain over them. */
  intermediate?: { initiator?: IntermediateKeInitiator; responder?: IntermediateKeResponder; chain: IntAuthChain };
  /** RFC 8784 PPK use agreed in IKE_SA_INIT, and the PPK-mixed keys the initiator offered in IKE_AUTH. */
  ppkMode: PpkMode;
  /** RFC 7427 hash algorithms the peer announced in IKE_SA_INIT. */
  peerHashes: number[];
  ppkOffered?: import('../crypto/index.js').IkeSaKeys;
  /**
   * RFC 9867: the PPK round of IKE_INTERMEDIATE is still to come (set in IKE_SA_INIT when USE_PPK_INT was
   * agreed, cleared by the exchange carrying PPK_IDENTITY_KEY), and the PPK it selected, if any.
   */
  ppkRoundPending?: boolean;
  ppkUsed?: PpkConfig;
  /** IntAuth folded into both AUTH payloads (RFC 9242 §3.3.2); undefined without IKE_INTERMEDIATE. */
  intAuth?: Buffer;
  followupsChild: FollowupKeResponder<ChildFollowupContext>;
  followupsIke: FollowupKeResponder<IkeFollowupContext>;
  followupsNewChild: FollowupKeResponder<NewChildFollowupContext>;
  /** Virtual IPs (RFC 7296 §2.19): assigned to us by the peer, or leased to the peer from a pool. They follow the IKE SA through rekeys. */
  vip?: { addresses: string[]; dns: string[]; assignedTo: 'us' | 'peer' };
}

export const hex = (b: Buffer) => b.toString('hex');
export const ZERO_SPI = Buffer.alloc(8);

/** The timer of a connection's next initiation attempt. */
export function retryTimer(connection: string): string {
  return `conn:${connection}:retry`;
}

export function policyKey(spec: ChildSaKernelSpec): string {
  return `${spec.connection}/${spec.reqid}`;
}