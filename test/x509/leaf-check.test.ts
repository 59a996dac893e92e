import { generateKeyPairSync } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { beforeAll, describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import {
  checkLeaf,
  checkLeafFast,
  createLeafEncoder,
  type LeafExpectation,
  type LeafInput,
} from "../../src/x509/index.js";
import { MayflyAssuranceAsn } from "../../src/x509/mayfly-extension-schema.js";
import { OID_MAYFLY_ASSURANCE } from "../../src/x509/oids.js";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from "../../src/x509/peculiar.js";
import { makeIssuer, sampleLeaf, type TestIssuer } from "./fixtures.js";

// checkLeaf must catch any leaf that differs from the intended one, even when it is
// properly signed by the right issuer. The tampered leaves here are built with
// @peculiar/x509 and signed with the issuer's real key, one deviation each.

let issuer: TestIssuer;
let other: TestIssuer;
let leaf: LeafInput;

interface Variant {
  spiffeId?: string;
  sanCritical?: boolean;
  eku?: string[];
  drop?: string;
  extra?: Extension;
  subject?: string;
  serial?: string;
  notAfter?: number;
  ownerId?: string;
  signWith?: TestIssuer;
  assuranceOid?: string;
}

async function variant(v: Variant): Promise<Buffer> {
  const iss = v.signWith ?? issuer;
  const a = new MayflyAssuranceAsn();
  Object.assign(a, { ...leaf.assurance, keyResidency: 0, version: 1 });
  if (v.ownerId) a.ownerId = v.ownerId;
  const skiOfIssuer = issuer.reference.certificate.getExtension(SubjectKeyIdentifierExtension)!.keyId;
  const exts: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension(v.eku ?? [ExtendedKeyUsage.clientAuth, ExtendedKeyUsage.serverAuth], false),
    new SubjectAlternativeNameExtension(
      [{ type: "url", value: v.spiffeId ?? leaf.spiffeId }],
      v.sanCritical ?? true,
    ),
    new AuthorityKeyIdentifierExtension(skiOfIssuer, false),
    await SubjectKeyIdentifierExtension.create(leaf.spki, false),
    new Extension(v.assuranceOid ?? OID_MAYFLY_ASSURANCE, false, AsnConvert.serialize(a)),
  ].filter((e) => e.type !== v.drop);
  if (v.extra) exts.push(v.extra);
  const cert = await X509CertificateGenerator.create({
    serialNumber: v.serial ?? leaf.serial.toString("hex"),
    issuer: issuer.reference.certificate.subjectName,
    ...(v.subject ? { subject: v.subject } : {}),
    notBefore: new Date(leaf.notBefore),
    notAfter: new Date(v.notAfter ?? leaf.notAfter),
    publicKey: leaf.spki,
    signingKey: iss.reference.signingKey,
    signingAlgorithm: iss.reference.signingAlgorithm,
    extensions: exts,
  });
  return Buffer.from(cert.rawData);
}

type Checker = (der: Buffer, expected: LeafExpectation) => void;

function fieldWith(check: Checker, der: Buffer, assuranceOid?: string): string {
  try {
    check(der, { issuerCertificate: issuer.certificateDer, leaf, assuranceOid });
  } catch (e) {
    if (isMayflyError(e) && e.code === "certificate.profile_violation") return e.field ?? "?";
    throw e;
  }
  return "accepted";
}

/**
 * The field the reference check (checkLeaf, @peculiar) names; the hot path's checkLeafFast
 * must name the same one on every leaf, or the test fails here.
 */
function fieldOf(der: Buffer, assuranceOid?: string): string {
  const reference = fieldWith(checkLeaf, der, assuranceOid);
  expect(fieldWith(checkLeafFast, der, assuranceOid)).toBe(reference);
  return reference;
}

beforeAll(async () => {
  [issuer, other] = await Promise.all([makeIssuer("P-256"), makeIssuer("P-256")]);
  leaf = sampleLeaf(
    generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
  );
});

describe("checkLeaf", () => {
  it("accepts the fast encoder's leaf and the untampered reference", async () => {
    const der = await createLeafEncoder({
      certificateDer: issuer.certificateDer,
      signer: issuer.signer,
    }).issue(leaf);
    expect(fieldOf(der)).toBe("accepted");
    expect(fieldOf(await variant({}))).toBe("accepted");
  });

  it("names the field that differs", async () => {
    const cases: [Variant, string][] = [
      [{ spiffeId: "spiffe://mayfly.internal/agent/someone-else" }, "extensions.subjectAltName.uri"],
      [{ sanCritical: false }, "extensions.subjectAltName.critical"],
      [{ eku: [ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth] }, "extensions.extKeyUsage"],
      [{ drop: OID_MAYFLY_ASSURANCE }, "tbsCertificate.extensions.length"],
      [{ drop: "2.5.29.17" }, "tbsCertificate.extensions.length"],
      [
        { extra: new Extension("1.2.3.4", false, new Uint8Array([5, 0])) },
        "tbsCertificate.extensions.length",
      ],
      [{ subject: "CN=agent" }, "tbsCertificate.subject"],
      [{ serial: "4f0123456789abcdef0123456789abce" }, "tbsCertificate.serialNumber"],
      [{ notAfter: leaf.notAfter + 1000 }, "tbsCertificate.validity.notAfter"],
      [{ ownerId: "owner-eve" }, "extensions.mayflyAssurance.ownerId"],
      [{ signWith: other }, "signatureValue"],
    ];
    for (const [v, field] of cases) expect([v, fieldOf(await variant(v))]).toEqual([v, field]);
  });

  it("rejects trailing bytes and a swapped extension order", async () => {
    const good = await variant({});
    expect(fieldOf(Buffer.concat([good, Buffer.from([0])]))).toBe("Certificate");
    const swapped = await variant({
      drop: "2.5.29.19",
      extra: new BasicConstraintsExtension(false, undefined, true),
    });
    expect(fieldOf(swapped)).toBe("extensions[0].extnID");
  });

  it("checks the Mayfly extension under the configured OID", async () => {
    const pen = "1.3.6.1.4.1.32473.1"; // IANA's documentation PEN (RFC 5612)
    const der = await createLeafEncoder({
      certificateDer: issuer.certificateDer,
      signer: issuer.signer,
      assuranceOid: pen,
    }).issue(leaf);
    expect(fieldOf(der, pen)).toBe("accepted");
    expect(fieldOf(await variant({ assuranceOid: pen }), pen)).toBe("accepted");
    // The OID differs from the one expected, either way round.
    expect(fieldOf(der)).toBe("extensions[6].extnID");
    expect(fieldOf(der, OID_MAYFLY_ASSURANCE)).toBe("extensions[6].extnID");
    expect(fieldOf(der, "1.3.6.1.4.1.32473.2")).toBe("extensions[6].extnID");
    expect(fieldOf(await variant({}), pen)).toBe("extensions[6].extnID");
    expect(fieldOf(await variant({ assuranceOid: "1.3.6.1.4.1.32473.1.1" }), pen)).toBe(
      "extensions[6].extnID",
    );
    // The payload is still checked under the configured OID.
    expect(fieldOf(await variant({ assuranceOid: pen, ownerId: "owner-eve" }), pen)).toBe(
      "extensions.mayflyAssurance.ownerId",
    );
  });

  it("rejects a leaf checked against the wrong issuer", async () => {
    const der = await variant({});
    for (const check of [checkLeaf, checkLeafFast]) {
      expect(() => check(der, { issuerCertificate: other.certificateDer, leaf })).toThrow(
        /profile_violation/,
      );
    }
  });
});
