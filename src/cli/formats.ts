import type { EvidenceFormat } from "../evidence/format.js";
import { tpmFormats } from "../evidence/tpm-formats.js";

/**
 * The attestation formats a production server registers: TPM2_Certify and TPM2_Quote. The
 * signer's qualified name must be the one recorded at activation (QN(EK -> AK)); devices
 * activated before it was recorded get the algorithm-only check until they re-activate.
 */
export function productionFormats(): EvidenceFormat[] {
  return tpmFormats({ qualifiedSigner: (device) => device.akQualifiedName ?? null });
}
