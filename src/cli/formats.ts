import type { EvidenceFormat } from "../evidence/format.js";

/**
 * The attestation formats a production server registers. Empty until the TPM
 * formats land: with none registered every issuance fails closed with
 * attestation.format_unsupported.
 */
export function productionFormats(): EvidenceFormat[] {
  return [];
}
