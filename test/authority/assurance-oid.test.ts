import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findMayflyAssurance, OID_MAYFLY_ASSURANCE } from "../../src/x509/index.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { issueVia, startTestCa, TEST_CONFIG, type TestCa } from "../helpers/test-ca.js";

// ca.assuranceExtensionOid end to end: a CA configured with a PEN-style OID issues
// leaves whose Mayfly extension sits under that OID (and not under the 2.25 default),
// and its own post-signing check accepts them.

const PEN_OID = "1.3.6.1.4.1.32473.1"; // IANA's documentation PEN (RFC 5612)

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa(`${TEST_CONFIG}ca:\n  assuranceExtensionOid: ${PEN_OID}\n`);
});
afterAll(async () => {
  await ca?.close();
});

describe("a CA with ca.assuranceExtensionOid set", () => {
  it("issues leaves carrying the Mayfly extension under the configured OID", async () => {
    const agent = await ca.seedAgent();
    const { res } = await issueVia(ca, agent);
    expect(res.status).toBe(201);
    const out = res.json as { certificate: string; chain: string[] };

    const leaf = await writeTemp(ca.dir, "leaf-pen.pem", out.certificate);
    const root = await writeTemp(ca.dir, "root-pen.pem", ca.rootPem);
    const chain = await writeTemp(ca.dir, "chain-pen.pem", out.chain.join(""));
    const v = await openssl(["verify", "-x509_strict", "-CAfile", root, "-untrusted", chain, leaf]);
    expect(v.stdout.trim()).toBe(`${leaf}: OK`);

    const text = (await openssl(["x509", "-in", leaf, "-noout", "-text"])).stdout;
    expect(text).toContain(`${PEN_OID}: \n`); // present, and not critical
    expect(text).not.toContain(`${PEN_OID}: critical`);
    expect(text).not.toMatch(/2\.25\./);
    expect(text).not.toContain(OID_MAYFLY_ASSURANCE);
    const exts = (text.match(/X509v3 [A-Za-z ]+:|\d+(\.\d+){2,}:/g) ?? []).filter(
      (e) => e !== "X509v3 extensions:",
    );
    expect(exts).toHaveLength(7);
    expect(exts.at(-1)).toBe(`${PEN_OID}:`);

    const der = new X509Certificate(out.certificate).raw;
    expect(findMayflyAssurance(der, PEN_OID)).toEqual({
      ownerId: agent.ownerId,
      deviceId: agent.deviceId,
      agentId: agent.agentId,
      attestationFormat: "test-signed",
      keyResidency: "bound",
    });
    expect(findMayflyAssurance(der)).toBeNull();
  });
});
