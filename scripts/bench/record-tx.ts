// The recording transaction of an issuance, as the store benchmarks run it
// (scripts/bench-store.ts, scripts/bench-record.ts) and as src/authority/issue.ts runs
// it: re-read the facts, insert the certificate row (its unique challenge nonce is the
// redemption), mark the agent, append the audit event.
import { createHash, randomBytes } from "node:crypto";
import { appendAudit } from "../../src/audit/chain.js";
import type { Clock } from "../../src/runtime/clock.js";
import type { StoreTx } from "../../src/store/store.js";
import type { TestAgent } from "../../test/helpers/test-ca.js";

/** An audit event's data the size and shape of a real tpm-certify issuance's. */
export const ISSUANCE_AUDIT_DATA = {
  serial: "x".repeat(32),
  issuer: "int-1",
  fingerprint: "f".repeat(64),
  nonce: "n".repeat(43),
  notBefore: 1,
  notAfter: 2,
  ownerId: "o",
  deviceId: "dev_xxxxxxxx",
  format: "tpm-certify",
  keyResidency: "tpm",
  evidence: {
    signer: "a".repeat(68),
    certifiedName: "b".repeat(68),
    keyType: "ecc-p256",
    sigAlg: "ecdsa-sha256",
    clock: 123456,
    resetCount: 1,
    firmware: "1.2",
  },
};

export interface RecordOptions {
  issuerKeyId: Buffer;
  der: Buffer;
  /** Append the audit event (default true). */
  audit?: boolean;
  /** The audit event's data; by default the serial only. */
  auditData?: Record<string, unknown>;
}

export async function recordIssuance(
  tx: StoreTx,
  clock: Clock,
  agent: TestAgent,
  o: RecordOptions,
): Promise<void> {
  const nonce = randomBytes(32);
  const now = clock.now();
  await tx.getIssuanceFacts(agent.agentId);
  const serial = randomBytes(16);
  await tx.insertCertificate({
    issuerKeyId: o.issuerKeyId,
    serial,
    agentId: agent.agentId,
    challengeNonce: nonce,
    notBefore: now,
    notAfter: now + 300_000,
    der: o.der,
    fingerprint: createHash("sha256").update(serial).digest(),
    createdAt: now,
  });
  await tx.markAgentIssued(agent.agentId, now);
  if (o.audit !== false) {
    await appendAudit(tx, clock, {
      type: "certificate.issue",
      decision: "allow",
      code: null,
      actor: `agent:${agent.agentId}`,
      subject: `agent:${agent.agentId}`,
      data: o.auditData ?? { serial: serial.toString("hex") },
    });
  }
}
