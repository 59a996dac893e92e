import { describe, expect, it } from "vitest";
import {
  hierarchyQualifiedName,
  objectName,
  objectNameOfPublicArea,
  qualifiedName,
  TPM_RH,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import { expectTpmError } from "./helpers/expect-tpm-error.js";
import { EK_TYPES, fx } from "./helpers/fixtures.js";

describe("Names and qualified names (Part 1 §16)", () => {
  it.each(EK_TYPES)("EK %s: Name equals the artefact", (t) => {
    expect(objectName(unmarshalTpm2bPublic(fx(`swtpm/ek/${t}.pub`))).equals(fx(`swtpm/ek/${t}.name`))).toBe(
      true,
    );
  });

  it.each(EK_TYPES)("AK under %s: Name equals the artefact and the TPM's loadexternal Name", (t) => {
    const name = objectName(unmarshalTpmtPublic(fx(`swtpm/ak/${t}.tpmt`)));
    expect(name.equals(fx(`swtpm/ak/${t}.name`))).toBe(true);
    expect(name.equals(fx(`swtpm/ak/${t}.loadexternal.name`))).toBe(true);
  });

  it("the AK under the P-384 EK has a 50-byte SHA-384 Name", () => {
    expect(fx("swtpm/ak/ecc384.name").length).toBe(50);
    expect(
      objectName(unmarshalTpm2bPublic(fx("swtpm/ak/ecc384.pub")))
        .subarray(0, 2)
        .toString("hex"),
    ).toBe("000c");
  });

  it.each(EK_TYPES)(
    "AK under %s: QN = H(QN(EK) || Name(AK)) with QN(EK) = H(TPM_RH_ENDORSEMENT || Name(EK))",
    (t) => {
      const ekName = objectName(unmarshalTpm2bPublic(fx(`swtpm/ek/${t}.pub`)));
      const akName = objectName(unmarshalTpm2bPublic(fx(`swtpm/ak/${t}.pub`)));
      const ekQn = qualifiedName(hierarchyQualifiedName(TPM_RH.ENDORSEMENT), ekName);
      expect(qualifiedName(ekQn, akName).equals(fx(`swtpm/ak/${t}.qname`))).toBe(true);
    },
  );

  it.each(["ecc", "rsa"])("certified key %s: Name equals the artefact", (k) => {
    expect(
      objectName(unmarshalTpm2bPublic(fx(`swtpm/keys/${k}.pub`))).equals(fx(`swtpm/keys/${k}.name`)),
    ).toBe(true);
  });

  it.each([...EK_TYPES.map((t) => `ek/${t}`), ...EK_TYPES.map((t) => `ak/${t}`), "keys/ecc", "keys/rsa"])(
    "%s: the Name over the received public area is the artefact and objectName's",
    (p) => {
      // tpm-certify hashes the bytes as received; fuzz.test.ts proves every TPM2B_PUBLIC the
      // strict parser accepts marshals back to exactly those bytes, so the two always agree.
      const bytes = fx(`swtpm/${p}.pub`);
      const pub = unmarshalTpm2bPublic(bytes);
      const name = objectNameOfPublicArea(pub.nameAlg, bytes.subarray(2));
      expect(name.equals(objectName(pub))).toBe(true);
      expect(name.equals(fx(`swtpm/${p}.name`))).toBe(true);
    },
  );

  it("refuses to qualify a handle or a Name of the wrong size", () => {
    expectTpmError(
      () => qualifiedName(hierarchyQualifiedName(TPM_RH.OWNER), Buffer.from("40000001", "hex")),
      "tpm.malformed",
      "name",
    );
    expectTpmError(
      () => qualifiedName(Buffer.alloc(0), Buffer.from("000b01", "hex")),
      "tpm.malformed",
      "name.size",
    );
    expectTpmError(() => qualifiedName(Buffer.alloc(0), Buffer.alloc(34)), "tpm.unsupported", "name.hashAlg");
  });
});
