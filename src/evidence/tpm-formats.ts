import type { EvidenceFormat } from "./format.js";
import { tpmCertifyFormat } from "./tpm-certify.js";
import type { TpmFormatOptions } from "./tpm-common.js";
import { tpmQuoteFormat } from "./tpm-quote.js";

export { type PcrPolicy, pcrPolicySchema, readPcrPolicy } from "./pcr-policy.js";
export {
  type CertifyEvidence,
  type CertifyExpectation,
  TPM_CERTIFY,
  verifyTpmCertify,
} from "./tpm-certify.js";
export { type AttestationSigner, deviceSigner, type TpmFormatOptions } from "./tpm-common.js";
export {
  parsePcrValues,
  type QuoteEvidence,
  type QuoteExpectation,
  TPM_QUOTE,
  verifyTpmQuote,
} from "./tpm-quote.js";
export { tpmCertifyFormat, tpmQuoteFormat };

/** The AK's qualified name recorded at activation (QN(EK -> AK)); null for older rows. */
export const storedQualifiedSigner: NonNullable<TpmFormatOptions["qualifiedSigner"]> = (device) =>
  device.akQualifiedName ?? null;

/**
 * The TPM evidence formats, for `new EvidenceRegistry(tpmFormats())`. By default the
 * attestation's qualifiedSigner must equal the qualified name stored at activation.
 */
export function tpmFormats(
  opts: TpmFormatOptions = { qualifiedSigner: storedQualifiedSigner },
): EvidenceFormat[] {
  return [tpmCertifyFormat(opts), tpmQuoteFormat(opts)];
}
