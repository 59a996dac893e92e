import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { akQualifiedNameUnderEk, checkAkPublic } from "../devices/ak-policy.js";
import { verifyEkTrust } from "../devices/ek-trust.js";
import type { EkTrustStore } from "../devices/ek-trust-store.js";
import { MayflyError } from "../errors/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store, StoreTx } from "../store/store.js";
import type { Activation } from "../store/types.js";
import { makeCredential, unmarshalTpm2bPublic } from "../tpm/index.js";
import { markRecorded, recordDenial } from "./deny.js";
import { b64url, parseBody } from "./wire.js";

export interface ActivationDeps {
  store: Store;
  clock: Clock;
  random: Random;
  config: Config;
  ekTrust: EkTrustStore;
}

const MAX_TPM2B_PUBLIC = 1024; // an RSA-4096 public area is ~560 bytes
const MAX_CERT = 16_384;

const startSchema = z
  .object({
    ekPublic: b64url.refine((b) => b.length > 0 && b.length <= MAX_TPM2B_PUBLIC, "a TPM2B_PUBLIC"),
    ekCertificate: b64url.refine((b) => b.length > 0 && b.length <= MAX_CERT, "a DER certificate").optional(),
    ekChain: z
      .array(b64url.refine((b) => b.length > 0 && b.length <= MAX_CERT, "a DER certificate"))
      .max(8)
      .optional(),
    akPublic: b64url.refine((b) => b.length > 0 && b.length <= MAX_TPM2B_PUBLIC, "a TPM2B_PUBLIC"),
  })
  .strict();

const completeSchema = z.object({ secret: b64url.refine((b) => b.length === 32, "32 bytes") }).strict();

const ACTIVATION_ID = /^[A-Za-z0-9_-]{22}$/;

export interface ActivationChallenge {
  activationId: string;
  credentialBlob: Buffer; // TPM2B_ID_OBJECT
  encryptedSecret: Buffer; // TPM2B_ENCRYPTED_SECRET
  expiresAt: number;
}

function sha256(b: Buffer): Buffer {
  return createHash("sha256").update(b).digest();
}

/**
 * Step 1 of TPM device activation (DESIGN.md): the EK is trusted, the AK is a proper
 * restricted signing key, and the CA wraps a fresh secret to the EK, bound to the AK
 * Name it computed itself. Only a TPM holding both that EK and an object with that Name
 * can unwrap it (TPM2_ActivateCredential).
 */
export async function startActivation(deps: ActivationDeps, body: unknown): Promise<ActivationChallenge> {
  const { store, clock, random, config } = deps;
  const now = clock.now();
  let subject: string | null = null;
  try {
    const req = parseBody(startSchema, body);
    const ek = unmarshalTpm2bPublic(req.ekPublic);
    const trust = await verifyEkTrust(
      { ekPublic: ek, ekCertificate: req.ekCertificate ?? null, ekChain: req.ekChain ?? [] },
      {
        store: deps.ekTrust,
        now,
        isRegistered: (h) => store.tx(async (tx) => (await tx.getEkRegistration(h)) !== null),
      },
    );
    subject = `ek:${trust.ekPubHash.toString("hex")}`;
    const ak = checkAkPublic(req.akPublic);
    const secret = random.bytes(32);
    const { credentialBlob, encryptedSecret } = makeCredential(ek, ak.name, secret, random);
    const activation: Activation = {
      id: random.bytes(16).toString("base64url"),
      ekPubHash: trust.ekPubHash,
      ekPublic: req.ekPublic,
      ekCertIssuer: trust.ekCertIssuer ?? null,
      trustedVia: trust.via,
      akPublic: req.akPublic,
      akName: ak.name,
      secretHash: sha256(secret),
      state: "pending",
      deviceId: null,
      createdAt: now,
      expiresAt: now + config.devices.activationTtl,
      completedAt: null,
    };
    await store.tx(async (tx) => {
      const recent = await tx.countActivationsSince(
        trust.ekPubHash,
        now - config.devices.activationRateWindow,
      );
      if (recent >= config.devices.activationRateLimit) {
        throw new MayflyError(
          "request.rate_limited",
          `this EK started ${recent} activations in the last ${config.devices.activationRateWindow / 1000} s`,
        );
      }
      await tx.insertActivation(activation);
      await appendAudit(tx, clock, {
        type: "device.activation.start",
        decision: "allow",
        code: null,
        actor: subject,
        subject,
        data: {
          activationId: activation.id,
          trustedVia: trust.via,
          ekCertIssuer: activation.ekCertIssuer,
          manufacturer: trust.manufacturer ?? null,
          model: trust.model ?? null,
          akName: ak.name.toString("hex"),
          akKeyType: ak.keyType,
        },
      });
    });
    return { activationId: activation.id, credentialBlob, encryptedSecret, expiresAt: activation.expiresAt };
  } catch (err) {
    throw await recordDenial(store, clock, err, { type: "device.activation.start", actor: subject, subject });
  }
}

/**
 * Step 2: the TPM's answer. One attempt per activation (a wrong secret burns it), compared
 * in constant time against the stored hash. Success creates the device, or moves an
 * existing device of the same EK to the new AK.
 */
export async function completeActivation(
  deps: ActivationDeps,
  activationId: string,
  body: unknown,
): Promise<{ deviceId: string; akName: Buffer; created: boolean }> {
  const { store, clock, random } = deps;
  const now = clock.now();
  const subject = `activation:${activationId}`;
  try {
    if (!ACTIVATION_ID.test(activationId)) {
      throw new MayflyError("activation.not_found", "no such activation", { field: "activationId" });
    }
    const req = parseBody(completeSchema, body);
    // A wrong secret is final: the burnt state and its deny event commit together, so
    // the transaction returns the failure rather than throwing (which would roll back).
    const outcome = await store.tx(async (tx) => {
      const a = await tx.getActivation(activationId);
      if (!a) throw new MayflyError("activation.not_found", "no such activation", { field: "activationId" });
      if (a.state !== "pending")
        throw new MayflyError("activation.consumed", `the activation already ${a.state}`);
      if (a.expiresAt <= now) throw new MayflyError("activation.expired", "the activation has expired");
      if (!timingSafeEqual(sha256(req.secret), a.secretHash)) {
        await tx.completeActivation(a.id, "failed", null, now);
        const e = new MayflyError(
          "activation.secret_mismatch",
          "the secret does not match; start a new activation",
          {
            field: "secret",
          },
        );
        await appendAudit(tx, clock, {
          type: "device.activation.complete",
          decision: "deny",
          code: e.code,
          actor: `ek:${a.ekPubHash.toString("hex")}`,
          subject,
          data: { detail: e.detail },
        });
        return { ok: false, error: e } as const;
      }
      return { ok: true, done: await succeed(tx, deps, a, now, random) } as const;
    });
    if (!outcome.ok) throw new Recorded(outcome.error);
    return outcome.done;
  } catch (err) {
    if (err instanceof Recorded) throw markRecorded(err.error);
    throw await recordDenial(store, clock, err, { type: "device.activation.complete", actor: null, subject });
  }
}

/** A deny already written to the audit log with its state change. */
class Recorded extends Error {
  constructor(readonly error: MayflyError) {
    super(error.message);
  }
}

async function succeed(tx: StoreTx, deps: ActivationDeps, a: Activation, now: number, random: Random) {
  const existing = await tx.findDeviceByEkHash(a.ekPubHash);
  // Agents create the AK under the EK (tpm2_createak), so every TPMS_ATTEST it signs names
  // QN(EK -> AK) as qualifiedSigner; the evidence formats require exactly this value.
  const akQualifiedName = akQualifiedNameUnderEk(unmarshalTpm2bPublic(a.ekPublic), a.akName);
  let deviceId: string;
  if (existing) {
    if (existing.status !== "active") {
      throw new MayflyError("device.unenrolled", `device ${existing.id} is ${existing.status}`);
    }
    deviceId = existing.id;
    await tx.setDeviceAk(deviceId, a.akPublic, a.akName, a.ekCertIssuer, now, akQualifiedName);
  } else {
    deviceId = `dev_${random.bytes(12).toString("base64url")}`;
    await tx.insertDevice({
      id: deviceId,
      kind: "tpm",
      status: "active",
      ekPubHash: a.ekPubHash,
      ekCertIssuer: a.ekCertIssuer,
      akName: a.akName,
      akPublic: a.akPublic,
      akQualifiedName,
      serial: null,
      mdmId: null,
      managed: false,
      compliant: false,
      assignedOwnerId: null,
      createdAt: now,
      updatedAt: now,
    });
  }
  if (!(await tx.completeActivation(a.id, "succeeded", deviceId, now))) {
    throw new MayflyError("activation.consumed", "the activation was completed concurrently");
  }
  await appendAudit(tx, deps.clock, {
    type: "device.activation.complete",
    decision: "allow",
    code: null,
    actor: `ek:${a.ekPubHash.toString("hex")}`,
    subject: `device:${deviceId}`,
    data: {
      activationId: a.id,
      akName: a.akName.toString("hex"),
      created: !existing,
      trustedVia: a.trustedVia,
    },
  });
  return { deviceId, akName: a.akName, created: !existing };
}
