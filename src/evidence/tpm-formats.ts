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

/** The TPM evidence formats, for `new EvidenceRegistry(tpmFormats())`. */
export function tpmFormats(opts: TpmFormatOptions = {}): EvidenceFormat[] {
  return [tpmCertifyFormat(opts), tpmQuoteFormat(opts)];
}
