import { createPublicKey, verify } from "node:crypto";
import { MayflyError } from "../../src/errors/index.js";
import { matchesBinding } from "../../src/evidence/binding.js";
import type { EvidenceFacts, EvidenceFormat } from "../../src/evidence/format.js";

/**
 * TEST ONLY, never registered by a shipped server: a device key held in software
 * (its SPKI stored as the device's akPublic) signs extraData. It makes every check a
 * real format must make (binding to nonce and CSR key, signature by the device's
 * registered key) so the pipeline can be tested before the TPM formats exist.
 */
export const testSignedFormat: EvidenceFormat = {
  name: "test-signed",
  async verify(att, ctx): Promise<EvidenceFacts> {
    const extraData = typeof att.extraData === "string" ? Buffer.from(att.extraData, "base64url") : null;
    const signature = typeof att.signature === "string" ? Buffer.from(att.signature, "base64url") : null;
    if (!extraData || !signature) {
      throw new MayflyError("attestation.malformed", "extraData and signature are required", {
        field: "attestation",
      });
    }
    if (!ctx.device.akPublic)
      throw new MayflyError("attestation.malformed", "the device has no registered key");
    if (!matchesBinding(extraData, ctx.nonce, ctx.csrKey.spki)) {
      throw new MayflyError("attestation.nonce_mismatch", "extraData != SHA-256(nonce || SPKI)", {
        field: "attestation.extraData",
      });
    }
    const key = createPublicKey({ key: ctx.device.akPublic, format: "der", type: "spki" });
    if (!verify("sha256", extraData, key, signature)) {
      throw new MayflyError("attestation.signature_invalid", "the device signature does not verify", {
        field: "attestation.signature",
      });
    }
    return { format: "test-signed", keyResidency: "bound", details: { deviceKey: "software-test" } };
  },
};
