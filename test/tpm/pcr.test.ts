import { describe, expect, it } from "vitest";
import {
  computePcrDigest,
  marshalPcrSelection,
  pcrSelectionOf,
  selectedPcrs,
  TPM_ALG,
  unmarshalPcrSelection,
} from "../../src/tpm/index.js";
import { expectTpmError } from "./helpers/expect-tpm-error.js";

describe("TPML_PCR_SELECTION", () => {
  it("encodes sha256:0,1,2,3,7 as tpm2_quote does (bitmap 8f 00 00)", () => {
    const bytes = marshalPcrSelection([pcrSelectionOf(TPM_ALG.SHA256, [0, 1, 2, 3, 7])]);
    expect(bytes.toString("hex")).toBe("00000001000b038f0000");
    expect(unmarshalPcrSelection(bytes)).toEqual([pcrSelectionOf(TPM_ALG.SHA256, [7, 3, 2, 1, 0])]);
  });

  it("lists PCRs in digest order: bank by bank, ascending within a bank", () => {
    const sel = [pcrSelectionOf(TPM_ALG.SHA256, [16, 0]), pcrSelectionOf(TPM_ALG.SHA1, [23, 8])];
    expect(selectedPcrs(sel)).toEqual([
      { hashAlg: TPM_ALG.SHA256, pcr: 0 },
      { hashAlg: TPM_ALG.SHA256, pcr: 16 },
      { hashAlg: TPM_ALG.SHA1, pcr: 8 },
      { hashAlg: TPM_ALG.SHA1, pcr: 23 },
    ]);
  });

  it("names the missing or wrong-sized PCR value", () => {
    const sel = [pcrSelectionOf(TPM_ALG.SHA256, [0, 7])];
    const values = new Map([[TPM_ALG.SHA256, new Map([[0, Buffer.alloc(32)]])]]);
    expectTpmError(
      () => computePcrDigest(TPM_ALG.SHA256, sel, values),
      "tpm.malformed",
      "pcrValues[0x000b][7]",
    );
    values.get(TPM_ALG.SHA256)?.set(7, Buffer.alloc(20));
    expectTpmError(
      () => computePcrDigest(TPM_ALG.SHA256, sel, values),
      "tpm.malformed",
      "pcrValues[0x000b][7]",
    );
  });

  it("bounds count and sizeofSelect", () => {
    expectTpmError(
      () => unmarshalPcrSelection(Buffer.from("00000011", "hex")),
      "tpm.malformed",
      "TPML_PCR_SELECTION.count",
    );
    expectTpmError(
      () => unmarshalPcrSelection(Buffer.from("00000001000b21", "hex")),
      "tpm.malformed",
      "TPML_PCR_SELECTION.pcrSelections[0].sizeofSelect",
    );
    expectTpmError(
      () => unmarshalPcrSelection(Buffer.from("000000010099038f0000", "hex")),
      "tpm.unsupported",
      "TPML_PCR_SELECTION.pcrSelections[0].hash",
    );
  });
});
