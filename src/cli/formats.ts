import type { EvidenceFormat } from "../evidence/format.js";
import { tpmFormats } from "../evidence/tpm-formats.js";

/** The attestation formats a production server registers: TPM2_Certify and TPM2_Quote. */
export function productionFormats(): EvidenceFormat[] {
  return tpmFormats();
}
