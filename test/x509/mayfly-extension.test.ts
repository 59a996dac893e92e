import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import {
  decodeMayflyAssurance,
  encodeMayflyAssurance,
  encodeMayflyExtension,
  type MayflyAssurance,
  OID_MAYFLY_ASSURANCE,
} from "../../src/x509/index.js";
import { referenceEncodeMayflyAssurance } from "../../src/x509/mayfly-extension-schema.js";
import { Extension } from "../../src/x509/peculiar.js";

const text = fc
  .oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: 60 }),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }),
    fc.string({ minLength: 120, maxLength: 400 }),
  )
  .filter((s) => Buffer.byteLength(s, "utf8") <= 1024);

const assurance: fc.Arbitrary<MayflyAssurance> = fc.record({
  ownerId: text,
  deviceId: text,
  agentId: text,
  attestationFormat: text,
  keyResidency: fc.constantFrom("tpm" as const, "bound" as const),
});

const sample: MayflyAssurance = {
  ownerId: "owner-ada",
  deviceId: "dev-42",
  agentId: "ag_7f3a",
  attestationFormat: "tpm-certify",
  keyResidency: "bound",
};

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isMayflyError(e)) return `${e.code} ${e.field}`;
    throw e;
  }
  return "no error";
}

describe("Mayfly assurance extension", () => {
  it("hand encoder equals the @peculiar/asn1-schema encoding, and decodes back", () => {
    fc.assert(
      fc.property(assurance, (a) => {
        const der = encodeMayflyAssurance(a);
        expect(der.equals(referenceEncodeMayflyAssurance(a))).toBe(true);
        expect(decodeMayflyAssurance(der)).toEqual(a);
      }),
      { numRuns: 1000 },
    );
  });

  it("has the documented fixed encoding", () => {
    expect(encodeMayflyAssurance(sample).toString("hex")).toBe(
      "302f020101" +
        "0c096f776e65722d616461" +
        "0c066465762d3432" +
        "0c0761675f37663361" +
        "0c0b74706d2d63657274696679" +
        "0a0101",
    );
  });

  it("wraps as a non-critical extension under the 2.25 UUID OID", () => {
    const ext = new Extension(encodeMayflyExtension(sample));
    expect(ext.type).toBe(OID_MAYFLY_ASSURANCE);
    expect(ext.critical).toBe(false);
    expect(Buffer.from(ext.value).equals(encodeMayflyAssurance(sample))).toBe(true);
    // 2.25.<UUID dbd394f2-c8e3-48cd-9cd9-67337fdf9586 as an integer>
    expect(OID_MAYFLY_ASSURANCE).toBe(`2.25.${BigInt("0xdbd394f2c8e348cd9cd967337fdf9586")}`);
  });

  it("rejects trailing bytes, a wrong version, bad residency, bad UTF-8 and non-DER lengths", () => {
    const good = encodeMayflyAssurance(sample);
    expect(codeOf(() => decodeMayflyAssurance(Buffer.concat([good, Buffer.from([0])])))).toBe(
      "certificate.profile_violation MayflyAssurance",
    );
    // Trailing bytes inside the SEQUENCE: lengthen it and append an element.
    const inner = Buffer.concat([good.subarray(2), Buffer.from([0x05, 0x00])]);
    const longer = Buffer.concat([Buffer.from([0x30, inner.length]), inner]);
    expect(codeOf(() => decodeMayflyAssurance(longer))).toBe("certificate.profile_violation MayflyAssurance");

    const v2 = Buffer.from(good);
    v2[4] = 2;
    expect(codeOf(() => decodeMayflyAssurance(v2))).toBe(
      "certificate.profile_violation MayflyAssurance.version",
    );

    const residency = Buffer.from(good);
    residency[residency.length - 1] = 2;
    expect(codeOf(() => decodeMayflyAssurance(residency))).toBe(
      "certificate.profile_violation MayflyAssurance.keyResidency",
    );

    const utf8 = Buffer.from(good);
    utf8[7] = 0xff; // inside ownerId
    expect(codeOf(() => decodeMayflyAssurance(utf8))).toBe(
      "certificate.profile_violation MayflyAssurance.ownerId",
    );

    // Long-form length where the short form fits.
    const nonMinimal = Buffer.concat([Buffer.from([0x30, 0x81, good[1]!]), good.subarray(2)]);
    expect(codeOf(() => decodeMayflyAssurance(nonMinimal))).toBe(
      "certificate.profile_violation MayflyAssurance",
    );

    expect(codeOf(() => decodeMayflyAssurance(good.subarray(0, good.length - 1)))).toMatch(
      /^certificate.profile_violation/,
    );
  });

  it("refuses to encode empty strings, lone surrogates and unknown residencies", () => {
    expect(codeOf(() => encodeMayflyAssurance({ ...sample, ownerId: "" }))).toBe(
      "certificate.profile_violation MayflyAssurance.ownerId",
    );
    expect(codeOf(() => encodeMayflyAssurance({ ...sample, agentId: "a\ud800b" }))).toBe(
      "certificate.profile_violation MayflyAssurance.agentId",
    );
    expect(
      codeOf(() => encodeMayflyAssurance({ ...sample, keyResidency: "software" as unknown as "tpm" })),
    ).toBe("certificate.profile_violation MayflyAssurance.keyResidency");
  });
});
