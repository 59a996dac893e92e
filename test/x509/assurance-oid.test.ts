import { generateKeyPairSync } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Certificate } from "@peculiar/asn1-x509";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import { oid } from "../../src/x509/der.js";
import {
  assuranceOidProblem,
  createLeafEncoder,
  encodeMayflyAssurance,
  encodeMayflyExtension,
  findMayflyAssurance,
  type LeafInput,
  OID_MAYFLY_ASSURANCE,
} from "../../src/x509/index.js";
import { Extension, X509Certificate, X509CertificateGenerator } from "../../src/x509/peculiar.js";
import { makeIssuer, sampleLeaf, type TestIssuer } from "./fixtures.js";

// The Mayfly assurance extension under a configured OID (ca.assuranceExtensionOid):
// which OIDs are accepted, that every accepted one survives asn1js (the parser under
// checkLeaf and @peculiar/x509), and the relying-party lookup findMayflyAssurance.

const PEN = "1.3.6.1.4.1.32473.1"; // IANA's documentation PEN (RFC 5612)

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isMayflyError(e)) return `${e.code} ${e.field}`;
    throw e;
  }
  return "no error";
}

describe("assuranceOidProblem", () => {
  it("accepts the default, PEN arcs and other well-formed OIDs", () => {
    for (const ok of [
      OID_MAYFLY_ASSURANCE,
      PEN,
      "1.3.6.1.4.1.32473.1.2.3",
      "0.0.0",
      "1.39.0",
      "2.999.1",
      `2.25.${2n ** 128n - 1n}`,
      `1.2.${2n ** 49n - 1n}`,
      `1.2.${2n ** 56n}`,
    ]) {
      expect([ok, assuranceOidProblem(ok)]).toEqual([ok, null]);
    }
  });

  it("refuses malformed, standard and asn1js-unsafe OIDs", () => {
    for (const [bad, why] of [
      ["", /not a dotted OID/],
      ["abc", /not a dotted OID/],
      ["1.3.6.1.4.1.32473.1.", /not a dotted OID/],
      [".1.3.6", /not a dotted OID/],
      ["1..3", /not a dotted OID/],
      ["1.3.6.01.4", /not a dotted OID/],
      ["1.3.6.-1", /not a dotted OID/],
      [" 1.3.6.1", /not a dotted OID/],
      ["1.3.6.1\n", /not a dotted OID/],
      ["1", /fewer than three arcs/],
      ["1.3", /fewer than three arcs/],
      ["3.1.2", /start with 0, 1 or 2/],
      ["1.40.1", /second arc below 40/],
      ["0.99.1", /second arc below 40/],
      ["2.5.29.17", /standard extension arc/],
      ["2.5.29.99.1", /standard extension arc/],
      ["1.3.6.1.5.5.7.1.1", /standard extension arc/],
      [`2.${2n ** 49n - 80n}.1`, /second arc too large/],
      [`2.${2n ** 60n}.1`, /second arc too large/],
      [`1.2.${2n ** 49n}`, /2\^49 up to 2\^56/],
      [`1.2.${2n ** 53n + 1n}`, /2\^49 up to 2\^56/],
      [`1.2.${2n ** 56n - 1n}.5`, /2\^49 up to 2\^56/],
      [`1.2.${"1.".repeat(70)}1`, /longer than 128/],
    ] as const) {
      expect([bad, assuranceOidProblem(bad)]).toEqual([bad, expect.stringMatching(why)]);
    }
  });

  it("accepts only OIDs that asn1js round-trips and that der.ts encodes identically", () => {
    const arc = fc.oneof(
      fc.bigInt({ min: 0n, max: 200n }),
      fc.bigInt({ min: 0n, max: 2n ** 32n }),
      fc.bigInt({ min: 2n ** 47n, max: 2n ** 58n }),
      fc.bigInt({ min: 0n, max: 2n ** 130n }),
    );
    const dotted = fc
      .tuple(fc.constantFrom(0n, 1n, 2n), arc, fc.array(arc, { minLength: 1, maxLength: 6 }))
      .map(([a, b, rest]) => [a, a < 2n ? b % 40n : b, ...rest].join("."));
    let accepted = 0;
    fc.assert(
      fc.property(dotted, (text) => {
        if (assuranceOidProblem(text) !== null) return;
        accepted++;
        const der = Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: text })));
        // AlgorithmIdentifier: SEQUENCE { OID } with no parameters.
        expect(der.subarray(2).equals(oid(text))).toBe(true);
        expect(AsnConvert.parse(der, AlgorithmIdentifier).algorithm).toBe(text);
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(500);
  });
});

describe("the assurance extension under a configured OID", () => {
  let issuer: TestIssuer;
  let leaf: LeafInput;
  beforeAll(async () => {
    issuer = await makeIssuer("P-256");
    leaf = sampleLeaf(
      generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
    );
  });

  const issue = (assuranceOid?: string) =>
    createLeafEncoder({ certificateDer: issuer.certificateDer, signer: issuer.signer, assuranceOid }).issue(
      leaf,
    );

  it("encodes the extension under the OID given, non-critical", () => {
    const ext = new Extension(encodeMayflyExtension(leaf.assurance, PEN));
    expect(ext.type).toBe(PEN);
    expect(ext.critical).toBe(false);
    expect(Buffer.from(ext.value).equals(encodeMayflyAssurance(leaf.assurance))).toBe(true);
    expect(new Extension(encodeMayflyExtension(leaf.assurance)).type).toBe(OID_MAYFLY_ASSURANCE);
  });

  it("puts the configured OID in the leaf, readable by @peculiar/x509 and asn1js", async () => {
    const der = await issue(PEN);
    const cert = new X509Certificate(der);
    expect(cert.getExtension(PEN)?.critical).toBe(false);
    expect(cert.extensions.map((e) => e.type)).not.toContain(OID_MAYFLY_ASSURANCE);
    expect(Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate))).equals(der)).toBe(true);
  });

  it("findMayflyAssurance finds it under the OID asked for, and only there", async () => {
    const pen = await issue(PEN);
    const dflt = await issue();
    expect(findMayflyAssurance(pen, PEN)).toEqual(leaf.assurance);
    expect(findMayflyAssurance(pen)).toBeNull();
    expect(findMayflyAssurance(dflt)).toEqual(leaf.assurance);
    expect(findMayflyAssurance(dflt, OID_MAYFLY_ASSURANCE)).toEqual(leaf.assurance);
    expect(findMayflyAssurance(dflt, PEN)).toBeNull();
    // A prefix or extension of the OID is another OID.
    expect(findMayflyAssurance(pen, "1.3.6.1.4.1.32473")).toBeNull();
    expect(findMayflyAssurance(pen, `${PEN}.1`)).toBeNull();
    // A certificate without extensions (the issuer's has only an SKI) and broken DER.
    expect(findMayflyAssurance(issuer.certificateDer, PEN)).toBeNull();
    expect(codeOf(() => findMayflyAssurance(Buffer.concat([pen, Buffer.from([0])]), PEN))).toBe(
      "certificate.profile_violation Certificate",
    );
    expect(codeOf(() => findMayflyAssurance(pen, "2.5.29.17"))).toBe(
      "certificate.profile_violation assuranceOid",
    );
  });

  it("findMayflyAssurance refuses a certificate that repeats the extension", async () => {
    const value = encodeMayflyAssurance(leaf.assurance);
    const twice = await X509CertificateGenerator.create({
      serialNumber: "01",
      issuer: issuer.reference.certificate.subjectName,
      notBefore: new Date(leaf.notBefore),
      notAfter: new Date(leaf.notAfter),
      publicKey: leaf.spki,
      signingKey: issuer.reference.signingKey,
      signingAlgorithm: issuer.reference.signingAlgorithm,
      extensions: [new Extension(PEN, false, value), new Extension(PEN, false, value)],
    });
    const der = Buffer.from(twice.rawData);
    expect(codeOf(() => findMayflyAssurance(der, PEN))).toBe("certificate.profile_violation MayflyAssurance");
    expect(findMayflyAssurance(der)).toBeNull();
  });

  it("refuses an unacceptable OID when the encoder is created", () => {
    for (const bad of ["1.2", "2.5.29.17", "1.3.6.01.4", `1.2.${2n ** 54n}`]) {
      expect(codeOf(() => createLeafEncoder({ ...issuer, assuranceOid: bad }))).toBe(
        "certificate.profile_violation assuranceOid",
      );
    }
  });
});
