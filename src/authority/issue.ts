import { createHash } from "node:crypto";
import { appendAudit } from "../audit/index.js";
import type { Config, Profile } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import type { EvidenceFacts } from "../evidence/format.js";
import type { EvidenceRegistry } from "../evidence/registry.js";
import { checkLiveness, decideIssuance, type Grant } from "../policy/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store, StoreTx } from "../store/store.js";
import type { IssuanceAgent, IssuanceFacts } from "../store/types.js";
import { checkLeafFast, newSerial, readCsr } from "../x509/index.js";
import type { CaState, Issuer } from "./ca-state.js";
import { verifyChallenge } from "./challenges.js";
import { recordDenial } from "./deny.js";
import { parseIssueRequest } from "./wire.js";

export interface IssueDeps {
  store: Store;
  clock: Clock;
  random: Random;
  evidence: EvidenceRegistry;
  config: Config;
  ca: () => CaState;
  /** Keys challenge nonces (challenges.ts); loaded once at server start. */
  challengeKey: Buffer;
}

export interface Issued {
  der: Buffer;
  chain: Buffer[];
  serial: Buffer;
  notBefore: number;
  notAfter: number;
  renewAfter: number;
  evidence: EvidenceFacts;
}

function profileOf(config: Config, agent: IssuanceAgent): Profile {
  const p = config.profiles[agent.profile];
  if (!p)
    throw new MayflyError("profile.unknown", `agent ${agent.id} names unknown profile ${agent.profile}`);
  return p;
}

function found(facts: IssuanceFacts | null, agentId: string): IssuanceFacts {
  if (!facts) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
  return facts;
}

/**
 * Issuance and renewal (the same call): challenge -> evidence -> liveness facts ->
 * policy -> sign -> check -> record (with liveness re-read in the recording
 * transaction) -> return. Any failure: one deny event, nothing else written.
 */
export async function issueCertificate(deps: IssueDeps, agentId: string, body: unknown): Promise<Issued> {
  const { store, clock, random, config } = deps;
  const now = clock.now();
  let nonceText: string | null = null;
  try {
    const req = parseIssueRequest(body);
    nonceText = req.nonce.toString("base64url");
    const csr = readCsr(req.csr);

    // The nonce is MAC'd (challenges.ts): who it is for and until when are checked here
    // without the store; that it is used once is the recording transaction's certificate
    // row, whose challenge_nonce is unique.
    verifyChallenge(deps.challengeKey, req.nonce, agentId, now);

    // A read-only snapshot: no write lock. Every fact it yields is read again inside the
    // recording transaction below, so a change committed in between is never missed.
    // (Read, or proven unchanged: a store may serve the facts from a cache it checks
    // against the database in one atomic read; store/sqlite/facts-cache.ts.)
    const pre = found(await store.readIssuanceFacts(agentId), agentId);
    const profile = profileOf(config, pre.agent);
    // The facts are named one by one, not spread: on Node 20 an object literal that spreads
    // an object and then adds members costs ~1-2 µs plus ~0.5 µs a member (the copy's map
    // takes new transitions every time), some 20 µs an issuance over these two calls.
    const live = checkLiveness({
      agent: pre.agent,
      owner: pre.owner,
      device: pre.device,
      binding: pre.binding,
      now,
      maxAffirmationAge: config.owners.maxAffirmationAge,
      posture: profile,
    });
    if (live) throw new MayflyError(live.code, live.detail);

    const format = deps.evidence.get(req.attestation.format);
    const evidence = await format.verify(req.attestation, {
      agent: pre.agent,
      device: pre.device!,
      nonce: req.nonce,
      csrKey: { spki: csr.spki, publicKey: csr.publicKey },
      profile,
      clock,
    });

    const ca = deps.ca();
    const issuer = ca.issuer;
    const decision = decideIssuance({
      agent: pre.agent,
      owner: pre.owner,
      device: pre.device,
      binding: pre.binding,
      now,
      maxAffirmationAge: config.owners.maxAffirmationAge,
      profile,
      evidence,
      requestedLifetime: req.lifetimeSeconds === undefined ? null : req.lifetimeSeconds * 1000,
      issuerNotAfter: issuer.notAfter,
      backdate: config.issuance.backdate,
    });
    if (!decision.allow) throw new MayflyError(decision.code, decision.detail);

    const serial = newSerial(random);
    const leaf = {
      serial,
      notBefore: decision.notBefore,
      notAfter: decision.notAfter,
      spki: csr.spki,
      spiffeId: pre.agent.spiffeId,
      assurance: {
        ownerId: pre.agent.ownerId,
        deviceId: pre.agent.deviceId,
        agentId: pre.agent.id,
        attestationFormat: evidence.format,
        keyResidency: evidence.keyResidency,
      },
    };
    const der = await issuer.encoder.issue(leaf);
    // An independent reader re-reads what the template encoder produced before anyone sees
    // it and verifies the signature (checkLeafFast; test/x509 proves it agrees with checkLeaf).
    checkLeafFast(der, {
      issuerCertificate: issuer.record.der,
      leaf,
      assuranceOid: config.ca.assuranceExtensionOid,
    });

    await store.tx((tx) =>
      record(tx, deps, {
        agentId,
        nonce: req.nonce,
        now,
        decision,
        der,
        serial,
        evidence,
        issuer,
      }),
    );
    return {
      der,
      chain: [issuer.record.der],
      serial,
      notBefore: decision.notBefore,
      notAfter: decision.notAfter,
      renewAfter: decision.renewAfter,
      evidence,
    };
  } catch (err) {
    throw await recordDenial(store, clock, err, {
      type: "certificate.issue",
      actor: `agent:${agentId}`,
      subject: `agent:${agentId}`,
      data: nonceText ? { nonce: nonceText } : {},
    });
  }
}

/**
 * The recording transaction. Liveness is read again here, so an owner deprovisioned
 * or a device unenrolled after the first read (and committed before this
 * transaction) is never missed. The certificate row carries the nonce, and the unique
 * constraint on it refuses a second one (challenge.consumed), so a challenge yields at
 * most one certificate even across replicas: that row is the nonce's only record of
 * redemption. It is kept store.certificateRetention past notAfter, which the config
 * holds above the nonce's lifetime (config/schema.ts, minCertificateRetention), so the
 * row outlives every moment at which the nonce's own expiry would still let it in.
 */
async function record(
  tx: StoreTx,
  deps: IssueDeps,
  r: {
    agentId: string;
    nonce: Buffer;
    now: number;
    decision: Grant;
    der: Buffer;
    serial: Buffer;
    evidence: EvidenceFacts;
    // The issuer that signed `der`, captured once: a rotation may swap the current
    // issuer between signing and recording, and the row must name the real signer.
    issuer: Issuer;
  },
): Promise<void> {
  const { config, clock } = deps;
  const facts = found(await tx.getIssuanceFacts(r.agentId), r.agentId);
  // Device posture (managed, compliant, assigned, fresh) too: an MDM event committed since
  // the first read is seen here.
  const live = checkLiveness({
    agent: facts.agent,
    owner: facts.owner,
    device: facts.device,
    binding: facts.binding,
    now: r.now,
    maxAffirmationAge: config.owners.maxAffirmationAge,
    posture: profileOf(config, facts.agent),
  });
  if (live) throw new MayflyError(live.code, live.detail);
  if (r.decision.notAfter > facts.agent.expiresAt || r.decision.notAfter > facts.binding!.expiresAt) {
    throw new MayflyError("store.conflict", "the agent or its binding changed during issuance; retry");
  }
  const issuer = r.issuer;
  const fp = createHash("sha256").update(r.der).digest();
  // One-time use: challenge.consumed if a certificate already carries this nonce.
  await tx.insertCertificate({
    issuerKeyId: issuer.keyId,
    serial: r.serial,
    agentId: r.agentId,
    challengeNonce: r.nonce,
    notBefore: r.decision.notBefore,
    notAfter: r.decision.notAfter,
    der: r.der,
    fingerprint: fp,
    createdAt: r.now,
  });
  await tx.markAgentIssued(r.agentId, r.now);
  await appendAudit(tx, clock, {
    type: "certificate.issue",
    decision: "allow",
    code: null,
    actor: `agent:${r.agentId}`,
    subject: `agent:${r.agentId}`,
    data: {
      serial: r.serial.toString("hex"),
      issuer: issuer.record.id,
      fingerprint: fp.toString("hex"),
      nonce: r.nonce.toString("base64url"),
      notBefore: r.decision.notBefore,
      notAfter: r.decision.notAfter,
      ownerId: facts.owner!.id,
      deviceId: facts.device!.id,
      format: r.evidence.format,
      keyResidency: r.evidence.keyResidency,
      evidence: r.evidence.details,
    },
  });
}
