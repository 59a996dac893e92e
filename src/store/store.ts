import type {
  Activation,
  Agent,
  AgentStatus,
  AgentTransfer,
  AuditEvent,
  AuditLink,
  Binding,
  CaCertificate,
  CaJournalEntry,
  CaSlot,
  CertificateRecord,
  Device,
  DeviceStatus,
  EkRegistration,
  IssuanceFacts,
  Owner,
  OwnerStatus,
  ScimUser,
  TransferState,
} from "./types.js";

/**
 * The narrow storage interface. Every read and write happens inside `tx`, so the
 * issuance pipeline can check liveness and record the certificate atomically: a
 * lifecycle change committed before the transaction is always seen by it. Reads that
 * decide no write may use `read` instead, which never waits for writers.
 *
 * Backends: sqlite/ (embedded default) and, later, postgres/. Both are proven by
 * test/store/conformance.ts.
 */
export interface Store {
  /** Applies numbered migrations not yet applied. Idempotent. */
  migrate(): Promise<void>;
  /**
   * Runs `fn` in one serialisable transaction. Commits if it resolves, rolls back
   * if it throws (and rethrows). Nested calls are not supported.
   */
  tx<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in one read-only transaction on a consistent snapshot of committed data
   * (what was committed before its first read; a tx() still open is not seen). It never
   * waits behind tx() or another process's write lock (SQLite ":memory:", one private
   * connection, excepted). Any write inside it is refused with internal.error and changes
   * nothing. Reads that lock in tx() (lockDevice, auditHead, PostgreSQL's row locks) take
   * no lock here: a snapshot needs none, and deciding and writing on what was read is
   * tx()'s job. Nested calls (read or tx inside either) are not supported.
   */
  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * What `read((tx) => tx.getIssuanceFacts(agentId))` returns, on one consistent view of
   * committed data. Its own call because it is on every issuance (twice: the challenge and
   * the pre-read before the evidence is checked): a backend that caches the facts may
   * answer a hit with one atomic read that proves its entry current, without a
   * transaction around it (SQLite: sqlite-reader.ts).
   */
  readIssuanceFacts(agentId: string): Promise<IssuanceFacts | null>;
  close(): Promise<void>;
  /** "sqlite" or "postgres", for logs and metrics. */
  readonly kind: string;
}

export interface StoreTx {
  // owners
  insertOwner(o: Owner): Promise<void>;
  getOwner(id: string): Promise<Owner | null>;
  findOwnerBySubject(issuer: string, subject: string): Promise<Owner | null>;
  setOwnerStatus(id: string, status: OwnerStatus, at: number): Promise<void>;
  /** Replaces email, displayName, status, manager, department, groups and updatedAt; owner.not_found if none. */
  updateOwner(o: Owner): Promise<void>;
  listOwners(): Promise<Owner[]>;

  // devices
  insertDevice(d: Device): Promise<void>;
  getDevice(id: string): Promise<Device | null>;
  findDeviceByEkHash(ekPubHash: Buffer): Promise<Device | null>;
  setDeviceStatus(id: string, status: DeviceStatus, at: number): Promise<void>;
  /** The device the MDM knows by this id (unique), or null. */
  findDeviceByMdmId(mdmId: string): Promise<Device | null>;
  /**
   * Reads the device and holds it until the transaction ends (PostgreSQL: FOR UPDATE;
   * SQLite's single writer needs nothing), so an MDM event or an unenrolment decides on
   * the row it then writes, and two events for one device apply one after the other.
   */
  lockDevice(id: string): Promise<Device | null>;
  /** Replaces every field but id and createdAt; device.not_found if none; store.conflict on a taken EK hash or MDM id. */
  updateDevice(d: Device): Promise<void>;
  /** Devices in id order after `afterId`, optionally only those in `statuses`; at most `limit`. */
  listDevices(q: { statuses?: DeviceStatus[]; afterId?: string | null; limit: number }): Promise<Device[]>;

  // agents and their bindings
  insertAgent(a: Agent): Promise<void>; // store.conflict if (ownerId, name) is taken
  getAgent(id: string): Promise<Agent | null>;
  listAgentsByOwner(ownerId: string): Promise<Agent[]>;
  /** The agents bound to a device, oldest first. */
  listAgentsByDevice(deviceId: string): Promise<Agent[]>;
  /** Sets status and statusReason (null when omitted). */
  setAgentStatus(id: string, status: AgentStatus, at: number, reason?: string | null): Promise<void>;
  /** Moves the agent to another owner (an accepted transfer); the binding is the caller's to replace. */
  setAgentOwner(id: string, ownerId: string, at: number): Promise<void>;
  /** Agents in id order after `afterId`, optionally only those in `statuses`; at most `limit`. */
  listAgents(q: { statuses?: AgentStatus[]; afterId?: string | null; limit: number }): Promise<Agent[]>;
  markAgentIssued(id: string, at: number): Promise<void>;
  upsertBinding(b: Binding): Promise<void>;
  getBinding(agentId: string): Promise<Binding | null>;
  /**
   * The agent and its owner, device and binding, as getAgent, getOwner(agent.ownerId),
   * getDevice(agent.deviceId) and getBinding(agentId) would read them in this
   * transaction (with their locks, where the backend takes them); null if there is no
   * such agent. The agent comes without lastIssuedAt (IssuanceFacts says why). The
   * objects are frozen: a backend may hand the same ones to later callers.
   */
  getIssuanceFacts(agentId: string): Promise<IssuanceFacts | null>;

  // server secrets
  /**
   * The value stored under `name`, storing `candidate` first if there is none. Two
   * callers racing (processes, replicas) both get the one value that was stored.
   */
  ensureSecret(name: string, candidate: Buffer): Promise<Buffer>;

  // certificates
  /**
   * certificate.serial_collision if (issuerKeyId, serial) exists; challenge.consumed if
   * another certificate carries the same challengeNonce. That unique nonce is what makes a
   * challenge one-time (minting writes nothing, src/authority/challenges.ts): exactly one
   * redemption wins across connections and replicas, for as long as the row is kept
   * (store.certificateRetention, which the config holds above the challenge TTL).
   */
  insertCertificate(c: CertificateRecord): Promise<void>;
  getCertificate(issuerKeyId: Buffer, serial: Buffer): Promise<CertificateRecord | null>;
  listCertificatesByAgent(agentId: string): Promise<CertificateRecord[]>;
  countCertificates(): Promise<number>;
  /**
   * Deletes at most `limit` certificates whose notAfter is before `before`, those that
   * expired first going first; returns how many. The retention tidy job calls it in
   * bounded batches so no one transaction holds the write lock for long.
   */
  deleteCertificatesExpiredBefore(before: number, limit: number): Promise<number>;

  // CA certificates (root and intermediates, with rotation slots)
  insertCaCertificate(c: CaCertificate): Promise<void>;
  listCaCertificates(): Promise<CaCertificate[]>;
  setCaSlot(id: string, slot: CaSlot): Promise<void>;
  /**
   * Moves the CA certificate from slot `from` to `to` if, and only if, it is in `from`;
   * true for the one caller that wins. A conditional update, so a rotation step taken by
   * several replicas at once moves each certificate once.
   */
  compareAndSetCaSlot(id: string, from: CaSlot, to: CaSlot): Promise<boolean>;
  /** The latest notAfter of the certificates recorded under this issuer SKI; null if none. */
  maxCertificateNotAfter(issuerKeyId: Buffer): Promise<number | null>;

  // CA rotation journal
  /**
   * Records a rotation step; null (and nothing written) if (rotationId, step) is already
   * recorded. The store assigns seq.
   */
  appendCaJournal(e: Omit<CaJournalEntry, "seq">): Promise<CaJournalEntry | null>;
  /** Every entry in seq order (a handful per rotation). */
  listCaJournal(): Promise<CaJournalEntry[]>;

  // TPM activations (one attempt each) and registered EKs
  insertActivation(a: Activation): Promise<void>; // store.conflict if the id exists
  getActivation(id: string): Promise<Activation | null>;
  /**
   * Moves a pending, unexpired activation to `state` ("succeeded" or "failed") at `at`,
   * setting deviceId; returns false if it was not pending or had expired. A conditional
   * update, so exactly one attempt wins even across replicas.
   */
  completeActivation(
    id: string,
    state: "succeeded" | "failed",
    deviceId: string | null,
    at: number,
  ): Promise<boolean>;
  /** Activations created for this EK at or after `since` (rate limiting). */
  countActivationsSince(ekPubHash: Buffer, since: number): Promise<number>;
  /**
   * Records the activated AK on a device (a device re-activates with a new AK), with its
   * expected qualified name (QN(EK -> AK)); an omitted or null QN clears the stored one,
   * since it belonged to the previous AK.
   */
  setDeviceAk(
    id: string,
    akPublic: Buffer,
    akName: Buffer,
    ekCertIssuer: string | null,
    at: number,
    akQualifiedName?: Buffer | null,
  ): Promise<void>;
  upsertEkRegistration(r: EkRegistration): Promise<void>;
  getEkRegistration(ekPubHash: Buffer): Promise<EkRegistration | null>;
  deleteEkRegistration(ekPubHash: Buffer): Promise<boolean>;

  // signed hook events: replay protection
  /**
   * Records that the hook event (source, jti) was applied, until `expiresAt` (after which
   * its iat is too old to be accepted anyway). Returns false, writing nothing, if the pair
   * is already recorded: a replay. An insert that does nothing on conflict, so exactly one
   * delivery wins across replicas.
   */
  recordHookJti(source: string, jti: string, expiresAt: number, at: number): Promise<boolean>;
  /** Deletes at most `limit` records that expired before `before`; returns how many. */
  deleteExpiredHookJtis(before: number, limit: number): Promise<number>;

  // SCIM users (the provisioning client's view of owners)
  /** store.conflict if the id, the userName (case-insensitively) or the owner already has one. */
  insertScimUser(u: ScimUser): Promise<void>;
  getScimUser(id: string): Promise<ScimUser | null>;
  /** Case-insensitive, as SCIM userName is. */
  findScimUserByUserName(userName: string): Promise<ScimUser | null>;
  findScimUserByOwner(ownerId: string): Promise<ScimUser | null>;
  /** Replaces everything but id, ownerId and createdAt; scim.not_found if none; store.conflict on a taken userName. */
  updateScimUser(u: ScimUser): Promise<void>;
  deleteScimUser(id: string): Promise<boolean>;
  /** In creation order; offset counts from 0. */
  listScimUsers(offset: number, limit: number): Promise<ScimUser[]>;
  countScimUsers(): Promise<number>;

  // agent transfers
  insertTransfer(t: AgentTransfer): Promise<void>; // store.conflict if the id exists
  getTransfer(id: string): Promise<AgentTransfer | null>;
  /**
   * Moves a pending, unexpired offer to `state` at `at`; false if it was not pending or had
   * expired. A conditional update, so exactly one accept or cancel wins across replicas.
   */
  closeTransfer(id: string, state: Exclude<TransferState, "pending">, at: number): Promise<boolean>;
  /** Offers from or to the owner, oldest first. */
  listTransfersByOwner(ownerId: string): Promise<AgentTransfer[]>;

  // audit: the audit module computes the chain; the store keeps it
  /**
   * The last event's seq and hash (all the next event needs: not its data, which would be
   * parsed for nothing on every append), locking the chain head until the transaction ends.
   */
  auditHead(): Promise<AuditLink | null>;
  insertAuditEvent(e: AuditEvent): Promise<void>;
  /** Events with seq >= fromSeq, in seq order, at most `limit`. */
  listAuditEvents(fromSeq: number, limit: number): Promise<AuditEvent[]>;
}
