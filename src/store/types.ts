// The domain records as the store holds them. Times are epoch milliseconds (numbers),
// binary values are Buffers. Ids are opaque strings chosen by the caller.

export type OwnerStatus = "active" | "suspended" | "deprovisioned";
export interface Owner {
  id: string;
  issuer: string; // IdP issuer URL
  subject: string; // IdP `sub`
  email: string | null;
  displayName: string | null;
  status: OwnerStatus;
  manager: string | null;
  department: string | null;
  /**
   * The groups claim at the last login. Optional only so that records written before
   * it existed still type-check; the store always returns it ([] when none).
   */
  groups?: string[];
  createdAt: number;
  updatedAt: number;
}

export type DeviceStatus = "active" | "unenrolled";
export type DeviceKind = "tpm" | "managed";
export interface Device {
  id: string;
  kind: DeviceKind;
  status: DeviceStatus;
  ekPubHash: Buffer | null; // SHA-256 of the EK SubjectPublicKeyInfo DER
  ekCertIssuer: string | null;
  akName: Buffer | null;
  akPublic: Buffer | null; // TPM2B_PUBLIC of the activated AK
  serial: string | null;
  mdmId: string | null;
  managed: boolean;
  compliant: boolean;
  assignedOwnerId: string | null;
  // What the device-management system (MDM) last said about the device (issue 8). Optional
  // only so that records written before these existed still type-check; the store always
  // returns them (null when the MDM never spoke).
  /** The assigned user as the MDM names them (a subject, an email or an owner id). */
  assignedUser?: string | null;
  /** The platform the MDM reports, e.g. "macOS 14.5". */
  platform?: string | null;
  /** Why the MDM last called the device non-compliant (or compliant again). */
  complianceReason?: string | null;
  /** Event time of the MDM's last statement of posture (enrolment or compliance); maxPostureAge counts from it. */
  postureAt?: number | null;
  /** Event time of the last MDM event applied to the device: an older event never overrides it. */
  mdmEventAt?: number | null;
  /**
   * The activated AK's expected qualified name, QN(EK -> AK), computed by the CA at
   * activation (agents create the AK under the EK). When set, every TPMS_ATTEST's
   * qualifiedSigner must equal it; null for devices activated before it was recorded
   * (only the qualified name's algorithm is checked then). Optional only so that older
   * literals type-check; the store always returns it.
   */
  akQualifiedName?: Buffer | null;
  createdAt: number;
  updatedAt: number;
}

export type AgentStatus = "active" | "suspended" | "quarantined" | "dormant" | "retired";
/**
 * Who or what took an agent out of "active": an owner's own kill switch or a leaver
 * event can be undone by the owner's fresh re-affirmation, an administrator's hold only
 * by an administrator, retirement by nobody.
 */
export type AgentStatusReason =
  | "owner.left" // the owner was deactivated or deleted (SCIM)
  | "owner.moved" // a mover attribute changed (SCIM)
  | "owner.kill" // the owner's kill switch
  | "admin" // an administrator suspended or retired it
  | "inactivity" // no issuance for agents.dormantAfter (dormant), then agents.retireAfter (retired)
  | "expired" // past its expiresAt
  | "device.unenrolled"; // its device was unenrolled (MDM hook or `mayfly device unenroll`)
export interface Agent {
  id: string;
  name: string;
  ownerId: string;
  deviceId: string;
  spiffeId: string;
  purpose: string;
  profile: string;
  status: AgentStatus;
  /**
   * Why the agent is not active (an AgentStatusReason), null while active. Optional
   * only for callers written before it existed; the store always returns it.
   */
  statusReason?: string | null;
  expiresAt: number; // purpose end, mandatory
  lastIssuedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** The owner's consent that this agent acts for them; one per agent. */
export interface Binding {
  agentId: string;
  ownerId: string;
  tokenIssuer: string;
  tokenSubject: string;
  authTime: number;
  affirmedAt: number;
  expiresAt: number;
}

/**
 * What an issuance decides on, read as one (StoreTx.getIssuanceFacts): the agent, its
 * owner, its device and its binding. The agent is without lastIssuedAt, which every
 * issuance writes and no issuance decision reads, so a store may serve these facts from
 * a cache that the last_issued_at write does not invalidate.
 */
export type IssuanceAgent = Omit<Agent, "lastIssuedAt">;
export interface IssuanceFacts {
  agent: IssuanceAgent;
  owner: Owner | null;
  device: Device | null;
  binding: Binding | null;
}

export interface CertificateRecord {
  issuerKeyId: Buffer; // SKI of the issuing CA certificate
  serial: Buffer; // unique per issuer
  agentId: string;
  challengeNonce: Buffer | null; // unique: a challenge yields at most one certificate, and is redeemed once
  notBefore: number;
  notAfter: number;
  der: Buffer;
  fingerprint: Buffer; // SHA-256 of der
  createdAt: number;
}

export type CaRole = "root" | "intermediate";
export type CaSlot = "current" | "next" | "previous" | "retired";
/** A CA certificate Mayfly holds a key for (or a root it trusts during rotation). */
export interface CaCertificate {
  id: string; // hex SKI
  role: CaRole;
  slot: CaSlot;
  keyLabel: string; // KeyStore label of the private key
  der: Buffer;
  notBefore: number;
  notAfter: number;
  createdAt: number;
}

export type AuditDecision = "allow" | "deny" | "info";
/** What a caller supplies; the audit module adds seq, ts and the hash chain. */
export interface AuditEventInput {
  type: string; // e.g. "certificate.issue", "challenge.create", "ca.init"
  decision: AuditDecision;
  code: string | null; // the MayflyError code on deny
  actor: string | null; // who asked: "agent:<id>", "owner:<id>", "cli", "scim"
  subject: string | null; // what it is about: "agent:<id>", "device:<id>", ...
  data: Record<string, unknown>; // JSON-safe details; never a secret
}
export interface AuditEvent extends AuditEventInput {
  seq: number; // 1, 2, 3, ... contiguous
  ts: number;
  prevHash: Buffer; // 32 zero bytes for seq 1
  hash: Buffer; // SHA-256 over the canonical encoding (see audit/)
}
/** What the next event links to: the head's seq and hash (StoreTx.auditHead). */
export type AuditLink = Pick<AuditEvent, "seq" | "hash">;

export type ActivationState = "pending" | "succeeded" | "failed";
/**
 * One TPM credential activation (DESIGN.md: TPM device activation). The CA keeps only
 * a hash of the secret it wrapped, so a database reader cannot answer the challenge.
 */
export interface Activation {
  id: string;
  ekPubHash: Buffer; // SHA-256 of the EK SubjectPublicKeyInfo DER
  ekPublic: Buffer; // TPM2B_PUBLIC as presented
  ekCertIssuer: string | null; // issuer DN of the EK certificate, when trusted via a chain
  trustedVia: "certificate" | "registered";
  akPublic: Buffer; // TPM2B_PUBLIC of the AK
  akName: Buffer; // computed by the CA
  secretHash: Buffer; // SHA-256 of the 32-byte secret
  state: ActivationState;
  deviceId: string | null; // set when it succeeds
  createdAt: number;
  expiresAt: number;
  completedAt: number | null;
}

/** An EK an operator or an MDM hook vouched for, by the hash of its SubjectPublicKeyInfo. */
export interface EkRegistration {
  ekPubHash: Buffer;
  source: string; // "cli", "mdm:<id>", ...
  note: string | null;
  createdAt: number;
}

/**
 * A SCIM 2.0 User (RFC 7643) as the provisioning client last wrote it, linked to the
 * owner it provisions. `resource` holds the client's attributes (never a password),
 * without id, meta and schemas, which the server derives.
 */
export interface ScimUser {
  id: string;
  ownerId: string;
  userName: string;
  externalId: string | null;
  active: boolean;
  resource: Record<string, unknown>;
  version: number; // 1 at creation, +1 at every change (meta.version, ETag)
  createdAt: number;
  updatedAt: number;
}

export type TransferState = "pending" | "accepted" | "cancelled";
/** An offer to hand an agent to another owner, who accepts it with a fresh login. */
export interface AgentTransfer {
  id: string;
  agentId: string;
  fromOwnerId: string;
  toOwnerId: string;
  offeredBy: string; // audit actor: "owner:<id>", "cli", "admin:<id>"
  state: TransferState;
  createdAt: number;
  expiresAt: number;
  completedAt: number | null;
}

export type CaJournalKind = "intermediate" | "root";
/**
 * One completed step of a CA rotation, written in the same transaction as the slot
 * changes it records. (rotationId, step) is unique, so a step is recorded once however
 * many replicas attempt it; the number of entries is the bundle's sequence number.
 */
export interface CaJournalEntry {
  seq: number; // assigned by the store; increasing, gaps possible
  rotationId: string; // "intermediate:<ski hex>" or "root:<ski hex>"
  kind: CaJournalKind;
  step: string; // e.g. "prepared", "canaried", "activated", "deactivated", "retired"
  at: number;
  data: Record<string, unknown>; // JSON-safe
}
