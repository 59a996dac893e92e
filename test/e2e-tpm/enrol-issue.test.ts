import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrolDevice, issueBoundKey, issueTpmKey } from "../../src/agent/index.js";
import { akQualifiedNameUnderEk } from "../../src/devices/ak-policy.js";
import { ekPublicKeyHash } from "../../src/devices/ek-trust.js";
import { createSrk, quote, type TpmKeyKind } from "../../src/tpm/client/index.js";
import { unmarshalTpm2bPublic } from "../../src/tpm/index.js";
import { findMayflyAssurance } from "../../src/x509/index.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { leftovers } from "../tpm/client/live-client.js";
import { auditMark, auditSince, type LiveEnv, seedAgentOnDevice, startLive } from "./helpers/live.js";

// The whole TPM path through the HTTP API with our TPM client, against a manufactured swtpm:
// EK certificate from NV -> EK and AK -> activation (MakeCredential / ActivateCredential) ->
// a tpm-certify certificate for a key made in the TPM (CSR signed by TPM2_Sign) and a tpm-quote
// certificate for a bound software key. openssl verifies every leaf against the CA bundle.

const pemToDer = (pem: string) => new X509Certificate(pem).raw;

describe("live swtpm + Mayfly: enrolment and issuance in both formats", () => {
  let env: LiveEnv;
  let work: string;
  beforeAll(async () => {
    // swtpm 0.7.1 writes no P-256 EK certificate (README §10): the harness adds one.
    env = await startLive("e2e-enrol-issue", { p256EkCert: true });
    work = mkdtempSync(join(tmpdir(), "mayfly-e2e-verify-"));
  }, 60_000);
  afterAll(async () => {
    rmSync(work ?? "/nonexistent", { recursive: true, force: true });
    await env?.close();
  });

  async function verifyLeaf(name: string, certificate: string, chain: string[]) {
    const ca = env.ca;
    const leaf = await writeTemp(work, `${name}.pem`, certificate);
    const root = await writeTemp(work, "root.pem", ca.rootPem);
    const untrusted = await writeTemp(work, `${name}.chain.pem`, chain.join(""));
    const r = await openssl(["verify", "-x509_strict", "-CAfile", root, "-untrusted", untrusted, leaf]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(`${leaf}: OK`);
    // The response's chain is the bundle's intermediate.
    expect(ca.bundlePem).toContain(chain[0]!.trim());
  }

  const cases: Array<{ ek: TpmKeyKind; ak: TpmKeyKind; key: TpmKeyKind; issuer: string }> = [
    { ek: "rsa2048", ak: "rsa2048", key: "rsa2048", issuer: "CN=swtpm-localca" },
    { ek: "ecc384", ak: "ecc384", key: "ecc384", issuer: "CN=swtpm-localca" },
    { ek: "ecc256", ak: "ecc256", key: "ecc256", issuer: "CN=swtpm-localca" },
  ];

  it.each(cases)("$ek EK, $ak AK: activation, then tpm-certify ($key key) and tpm-quote", async (c) => {
    const { tpm, ca, client } = env;
    const mark = await auditMark(ca);
    const enrolled = await enrolDevice({ tpm, ca: client, ekKind: c.ek, akKind: c.ak });
    const ekHash = ekPublicKeyHash(unmarshalTpm2bPublic(enrolled.ekPublic));
    const device = await ca.running.store.tx((tx) => tx.getDevice(enrolled.deviceId));
    expect(device).toMatchObject({ kind: "tpm", status: "active", ekCertIssuer: c.issuer });
    expect(device!.ekPubHash!.equals(ekHash)).toBe(true);
    expect(device!.akName!.equals(enrolled.akName)).toBe(true);
    expect(device!.akPublic!.equals(enrolled.akPublic)).toBe(true);
    // The CA recorded the AK's qualified name as the EK's child: the strict qualifiedSigner check.
    const expectedQn = akQualifiedNameUnderEk(unmarshalTpm2bPublic(enrolled.ekPublic), enrolled.akName);
    expect(device!.akQualifiedName?.toString("hex")).toBe(expectedQn.toString("hex"));
    const activation = (await auditSince(ca, mark)).map((e) => [e.type, e.decision, e.data.trustedVia]);
    expect(activation).toEqual([
      ["device.activation.start", "allow", "certificate"],
      ["device.activation.complete", "allow", "certificate"],
    ]);

    const agent = await seedAgentOnDevice(ca, enrolled.deviceId);
    // A realistic hierarchy for the agent key: the EK has done its job; an SRK is the parent.
    await tpm.flushContext(enrolled.ekHandle);
    const srk = await createSrk(tpm);
    const tpmKey = await issueTpmKey({
      tpm,
      ca: client,
      agentId: agent.agentId,
      akHandle: enrolled.akHandle,
      parentHandle: srk.handle,
      kind: c.key,
    });
    await tpm.flushContext(tpmKey.keyHandle);
    await tpm.flushContext(srk.handle);
    const bound = await issueBoundKey({
      tpm,
      ca: client,
      agentId: agent.agentId,
      akHandle: enrolled.akHandle,
    });
    await tpm.flushContext(enrolled.akHandle);
    expect(await leftovers(tpm)).toEqual([]);

    for (const [name, got, format, residency] of [
      ["tpm", tpmKey, "tpm-certify", "tpm"],
      ["bound", bound, "tpm-quote", "bound"],
    ] as const) {
      await verifyLeaf(`${c.ek}-${name}`, got.certificate, got.chain);
      const der = pemToDer(got.certificate);
      expect(findMayflyAssurance(der)).toEqual({
        ownerId: agent.ownerId,
        deviceId: enrolled.deviceId,
        agentId: agent.agentId,
        attestationFormat: format,
        keyResidency: residency,
      });
      const x = new X509Certificate(got.certificate);
      expect(x.subjectAltName).toBe(`URI:spiffe://mayfly.internal/agent/${agent.agentId}`);
      expect(x.publicKey.export({ type: "spki", format: "der" }).equals(got.spki)).toBe(true);
    }
    const stored = await ca.running.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId));
    expect(stored.map((s) => s.serial.toString("hex")).sort()).toEqual([tpmKey.serial, bound.serial].sort());
    const issued = (await auditSince(ca, mark)).filter((e) => e.type === "certificate.issue");
    expect(issued.map((e) => [e.decision, e.data.format, e.data.keyResidency])).toEqual([
      ["allow", "tpm-certify", "tpm"],
      ["allow", "tpm-quote", "bound"],
    ]);
    // Both were accepted with qualifiedSigner compared against the recorded QN, not just its algorithm.
    expect(issued.map((e) => (e.data.evidence as Record<string, unknown>).qualifiedSignerChecked)).toEqual([
      true,
      true,
    ]);
  });

  it("the AK is the EK's child: what it signs names QN(EK -> AK) as qualifiedSigner", async () => {
    const { tpm, client } = env;
    const enrolled = await enrolDevice({ tpm, ca: client, ekKind: "rsa2048" });
    try {
      const q = await quote(tpm, enrolled.akHandle, Buffer.alloc(32, 1), []);
      const ek = unmarshalTpm2bPublic(enrolled.ekPublic);
      expect(q.attest.qualifiedSigner.equals(akQualifiedNameUnderEk(ek, enrolled.akName))).toBe(true);
    } finally {
      await tpm.flushContext(enrolled.akHandle);
      await tpm.flushContext(enrolled.ekHandle);
    }
  });

  it("a bound key with the quoted PCR values sent along", async () => {
    const { tpm, ca, client } = env;
    const enrolled = await enrolDevice({ tpm, ca: client });
    await tpm.flushContext(enrolled.ekHandle);
    try {
      const agent = await seedAgentOnDevice(ca, enrolled.deviceId);
      const bound = await issueBoundKey({
        tpm,
        ca: client,
        agentId: agent.agentId,
        akHandle: enrolled.akHandle,
        sendPcrValues: true,
      });
      await verifyLeaf("pcr-values", bound.certificate, bound.chain);
      const [event] = (await ca.running.store.tx((tx) => tx.listAuditEvents(1, 1e6))).filter(
        (e) => e.type === "certificate.issue" && e.data.serial === bound.serial,
      );
      expect(event?.data.evidence).toMatchObject({
        pcrValuesVerified: true,
        pcrSelection: "sha256:0,1,2,3,4,5,6,7",
      });
    } finally {
      await tpm.flushContext(enrolled.akHandle);
    }
  });

  it("measures a full live enrolment (EK, AK, activation round trip)", async () => {
    const { tpm, client } = env;
    for (const ekKind of ["rsa2048", "ecc384"] as const) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const e = await enrolDevice({ tpm, ca: client, ekKind, akKind: "ecc256" });
        times.push(performance.now() - t0);
        await tpm.flushContext(e.akHandle);
        await tpm.flushContext(e.ekHandle);
      }
      times.sort((a, b) => a - b);
      console.log(
        `live enrolment (${ekKind} EK, ecc256 AK, swtpm + Mayfly over HTTPS): median ${times[2]!.toFixed(1)} ms ` +
          `(min ${times[0]!.toFixed(1)}, max ${times[4]!.toFixed(1)}, n=5)`,
      );
    }
    expect(await leftovers(tpm)).toEqual([]);
  });
});
