import { generateKeyPairSync } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Certificate } from "@peculiar/asn1-x509";
import { describe, expect, it } from "vitest";
import { createLeafEncoder, OID_MAYFLY_ASSURANCE } from "../../src/x509/index.js";
import { X509Certificate } from "../../src/x509/peculiar.js";
import { makeIssuer, sampleLeaf } from "./fixtures.js";

// asn1js decodes 128-bit OID arcs to a "{hex}" placeholder and re-encodes them as
// "2.25" (PeculiarVentures/ASN1.js#174). src/x509/peculiar.js installs the fix; this
// proves parsers downstream of it see the Mayfly extension under its real OID.
describe("asn1js UUID-OID fix", () => {
  it("lets @peculiar/x509 read and re-encode the Mayfly extension OID", async () => {
    const issuer = await makeIssuer("P-256");
    const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    const der = await createLeafEncoder({
      certificateDer: issuer.certificateDer,
      signer: issuer.signer,
    }).issue(sampleLeaf(spki));
    const cert = new X509Certificate(der);
    expect(cert.extensions.map((e) => e.type)).toContain(OID_MAYFLY_ASSURANCE);
    expect(cert.getExtension(OID_MAYFLY_ASSURANCE)?.critical).toBe(false);
    expect(Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate))).equals(der)).toBe(true);
  });

  it("round-trips ordinary OIDs and big arcs after the first two", () => {
    for (const oid of [
      "1.2.840.10045.4.3.2",
      "2.999.1",
      "1.3.6.1.4.1.311.21.2",
      OID_MAYFLY_ASSURANCE,
      "1.2.18446744073709551616.7",
    ]) {
      const der = AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: oid }));
      expect(AsnConvert.parse(der, AlgorithmIdentifier).algorithm).toBe(oid);
    }
  });
});
