import { createHash, generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCsr, type CaClient, softwareCsrSigner } from "../../src/agent/index.js";
import { akQualifiedNameUnderEk } from "../../src/devices/ak-policy.js";
import { ekPublicKeyHash } from "../../src/devices/ek-trust.js";
import {
  marshalAttest,
  marshalTpm2bPublic,
  pcrSelectionOf,
  TPM_ALG,
  TPM_ST,
  TPMA_OBJECT,
} from "../../src/tpm/index.js";
import {
  AK_ATTRS,
  certifyAttestation,
  KEY_ATTRS,
  quoteAttest,
  type SimKey,
  simKey,
  simQualifiedName,
  tpmSign,
} from "../evidence/helpers/tpm-sim.js";
import type { TestCa } from "../helpers/test-ca.js";
import { startTestCa } from "../helpers/test-ca.js";
import {
  auditMark,
  auditSince,
  caClientFor,
  expectDenied,
  SHIPPED_EK_TRUST,
  seedAgentOnDevice,
  tpmCaConfig,
} from "./helpers/live.js";
import { activateSimDevice, registerEk, simEk } from "./helpers/sim-device.js";

// Inputs no real TPM produces, through the same HTTP API and the same activated-device path:
// a software "TPM" (registered EK, software ActivateCredential, software AK) signs
// structures a TPM would refuse to sign. The positive controls show the simulated device is
// otherwise accepted, so each denial is down to the one thing changed.

const b64 = (b: Buffer) => b.toString("base64url");
const bind = (nonce: Buffer, spki: Buffer) => createHash("sha256").update(nonce).update(spki).digest();

describe("a software-simulated TPM device through the HTTP API", () => {
  let ca: TestCa;
  let client: CaClient;
  let ak: SimKey;
  let agentId: string;
  let dev: Awaited<ReturnType<typeof activateSimDevice>>;
  beforeAll(async () => {
    ca = await startTestCa(tpmCaConfig(SHIPPED_EK_TRUST));
    client = caClientFor(ca);
    dev = await activateSimDevice(ca, client);
    ak = dev.ak;
    agentId = (await seedAgentOnDevice(ca, dev.deviceId)).agentId;
  }, 30_000);
  afterAll(async () => {
    client?.close();
    await ca?.close();
  });

  /** A challenge, then a CSR for `key` (signed in software) with the attestation `make` builds. */
  async function request(key: SimKey, make: (nonce: Buffer) => Record<string, unknown>) {
    const { nonce } = await client.challenge(agentId);
    const csr = await buildCsr({ spki: key.spki, sign: softwareCsrSigner(key.privateKey) });
    return client.requestCertificate(agentId, {
      csr,
      nonce,
      attestation: make(nonce) as { format: string },
    });
  }

  function quote(
    key: SimKey,
    nonce: Buffer,
    hash: "sha1" | "sha256" = "sha256",
    qualifiedSigner: Buffer | null = null,
  ) {
    const made = quoteAttest(
      ak,
      bind(nonce, key.spki),
      [pcrSelectionOf(TPM_ALG.SHA256, [0])],
      Buffer.alloc(32, 9),
    );
    const a = qualifiedSigner ? { ...made, qualifiedSigner } : made;
    const bytes = marshalAttest(a);
    return { format: "tpm-quote", quoteInfo: b64(bytes), signature: b64(tpmSign(ak, bytes, hash)) };
  }

  it("positive controls: the simulated device gets tpm-certify and tpm-quote certificates", async () => {
    const key = simKey("p256", KEY_ATTRS);
    const certified = await request(key, (nonce) => certifyAttestation(ak, key, bind(nonce, key.spki)));
    expect(certified.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const bound = simKey("p256", 0);
    const quoted = await request(bound, (nonce) => quote(bound, nonce));
    expect(quoted.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it("activation recorded the AK's QN under the EK, and issuance checks qualifiedSigner against it", async () => {
    const device = await ca.running.store.tx((tx) => tx.getDevice(dev.deviceId));
    const expected = akQualifiedNameUnderEk(dev.ek, ak.name);
    expect(device?.akQualifiedName?.toString("hex")).toBe(expected.toString("hex"));
    expect(ak.qualifiedName?.equals(expected)).toBe(true);
    const mark = await auditMark(ca);
    const key = simKey("p256", KEY_ATTRS);
    await request(key, (nonce) => certifyAttestation(ak, key, bind(nonce, key.spki)));
    const issued = (await auditSince(ca, mark)).filter((e) => e.type === "certificate.issue");
    expect(
      issued.map((e) => [e.decision, (e.data.evidence as Record<string, unknown>).qualifiedSignerChecked]),
    ).toEqual([["allow", true]]);
  });

  it("refuses a certify and a quote by the activated AK that name it under another parent (signer_mismatch)", async () => {
    // The same AK key and Name, signing as a child of an owner-hierarchy primary, not of the
    // EK the CA activated it under: the signature verifies, the qualifiedSigner does not match.
    const elsewhere = simQualifiedName(ak.name);
    expect(elsewhere.equals(ak.qualifiedName!)).toBe(false);
    const key = simKey("p256", KEY_ATTRS);
    const c = await expectDenied(ca, "attestation.signer_mismatch", () =>
      request(key, (nonce) =>
        certifyAttestation(ak, key, bind(nonce, key.spki), {
          edit: (a) => ({ ...a, qualifiedSigner: elsewhere }),
        }),
      ),
    );
    expect(c.error).toMatchObject({ field: "attestation.certifyInfo.qualifiedSigner" });
    expect(c.event).toMatchObject({
      type: "certificate.issue",
      decision: "deny",
      subject: `agent:${agentId}`,
      data: { field: "attestation.certifyInfo.qualifiedSigner" },
    });
    const bound = simKey("p256", 0);
    const q = await expectDenied(ca, "attestation.signer_mismatch", () =>
      request(bound, (nonce) => quote(bound, nonce, "sha256", elsewhere)),
    );
    expect(q.error).toMatchObject({ field: "attestation.quoteInfo.qualifiedSigner" });
    expect(q.event).toMatchObject({ type: "certificate.issue", decision: "deny" });
  });

  it("refuses a certified key with sensitiveDataOrigin clear (imported, not made by the TPM)", async () => {
    const key = simKey("p256", KEY_ATTRS & ~TPMA_OBJECT.sensitiveDataOrigin);
    const { error, event } = await expectDenied(ca, "attestation.key_attributes", () =>
      request(key, (nonce) => certifyAttestation(ak, key, bind(nonce, key.spki))),
    );
    expect(error).toMatchObject({ field: "attestation.keyPublic.objectAttributes.sensitiveDataOrigin" });
    expect(event).toMatchObject({ type: "certificate.issue", subject: `agent:${agentId}` });
  });

  it("refuses a TPMS_ATTEST with a wrong magic, though the AK signed it", async () => {
    const key = simKey("p256", KEY_ATTRS);
    const { error } = await expectDenied(ca, "attestation.magic_invalid", () =>
      request(key, (nonce) =>
        certifyAttestation(ak, key, bind(nonce, key.spki), { edit: (a) => ({ ...a, magic: 0xff544348 }) }),
      ),
    );
    expect(error).toMatchObject({ field: "attestation.certifyInfo.magic" });
  });

  it("refuses a certify whose type says quote, though the AK signed it", async () => {
    const key = simKey("p256", KEY_ATTRS);
    const asQuote = (b: Buffer) => {
      const c = Buffer.from(b);
      c.writeUInt16BE(TPM_ST.ATTEST_QUOTE, 4);
      return c;
    };
    await expectDenied(ca, "attestation.type_invalid", () =>
      request(key, (nonce) => certifyAttestation(ak, key, bind(nonce, key.spki), { bytes: asQuote })),
    );
  });

  it("refuses a SHA-1 AK signature, on a certify and on a quote", async () => {
    const key = simKey("p256", KEY_ATTRS);
    const a = await expectDenied(ca, "attestation.hash_not_allowed", () =>
      request(key, (nonce) => certifyAttestation(ak, key, bind(nonce, key.spki), { hash: "sha1" })),
    );
    expect(a.error).toMatchObject({ field: "attestation.signature.hash" });
    const bound = simKey("p256", 0);
    await expectDenied(ca, "attestation.hash_not_allowed", () =>
      request(bound, (nonce) => quote(bound, nonce, "sha1")),
    );
  });

  it("refuses at activation an AK that can decrypt, or hashes with SHA-1; nothing is recorded", async () => {
    const ek = simEk();
    await registerEk(ca, ek.pub);
    const decrypting = simKey("p256", AK_ATTRS | TPMA_OBJECT.decrypt);
    const sha1Name = simKey("p256", AK_ATTRS, { nameAlg: TPM_ALG.SHA1 });
    for (const [akKey, field] of [
      [decrypting, "akPublic.objectAttributes.decrypt"],
      [sha1Name, "akPublic.nameAlg"],
    ] as const) {
      const { error, event } = await expectDenied(ca, "device.ak_invalid", () =>
        client.startActivation({ ekPublic: marshalTpm2bPublic(ek.pub), akPublic: akKey.tpm2b }),
      );
      expect(error).toMatchObject({ field });
      expect(event).toMatchObject({ type: "device.activation.start", data: { field } });
    }
    const ekHash = ekPublicKeyHash(ek.pub);
    const recorded = await ca.running.store.tx(async (tx) => ({
      device: await tx.findDeviceByEkHash(ekHash),
      activations: await tx.countActivationsSince(ekHash, 0),
    }));
    expect(recorded).toEqual({ device: null, activations: 0 });
  });

  it("a software key that is not bound: an AK quote over another key's SPKI", async () => {
    const bound = simKey("p256", 0);
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    const mark = await auditMark(ca);
    await expectDenied(ca, "attestation.nonce_mismatch", () =>
      request(bound, (nonce) => {
        const a = quoteAttest(
          ak,
          bind(nonce, other),
          [pcrSelectionOf(TPM_ALG.SHA256, [0])],
          Buffer.alloc(32),
        );
        const bytes = marshalAttest(a);
        return { format: "tpm-quote", quoteInfo: b64(bytes), signature: b64(tpmSign(ak, bytes)) };
      }),
    );
    expect((await auditSince(ca, mark)).map((e) => e.data.field)).toEqual([
      "attestation.quoteInfo.extraData",
    ]);
  });
});
