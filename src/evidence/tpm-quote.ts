import { MayflyError } from "../errors/index.js";
import {
  computePcrDigest,
  hashAlgInfo,
  type PcrBanks,
  type QuoteAttest,
  selectedPcrs,
  TPM_ALG,
  TPM_ST,
  type TpmtSignature,
} from "../tpm/index.js";
import { bindingDigest } from "./binding.js";
import type { EvidenceContext, EvidenceFacts, EvidenceFormat } from "./format.js";
import { type PcrPolicy, readPcrPolicy } from "./pcr-policy.js";
import {
  type AttestationSigner,
  attestDetails,
  b64urlMember,
  checkExtraData,
  checkMembers,
  checkSigner,
  deviceSigner,
  parseAttest,
  parseSignature,
  type TpmFormatOptions,
} from "./tpm-common.js";

// "tpm-quote": a software CSR key, bound to the device at this moment. The device's AK
// quoted its PCRs with qualifyingData = SHA-256(nonce || CSR SPKI): the key was chosen by
// software running on the device that holds the AK, now. Weaker than tpm-certify (the key
// can be copied off the device), hence key residency "bound".
//
//   { format: "tpm-quote", quoteInfo: TPMS_ATTEST, signature: TPMT_SIGNATURE,
//     pcrValues?: { sha256: { "0": hex, ... }, ... } }
//
// pcrValues, when sent, must cover exactly the quoted selection and hash to pcrDigest. A
// profile PCR policy is checked against pcrDigest: with pcrValues, the policy PCRs must hold
// the expected values; without, the quote must select only policy PCRs and pcrDigest must be
// the digest of the expected values.

export const TPM_QUOTE = "tpm-quote";

export interface QuoteEvidence {
  quoteInfo: Buffer;
  signature: Buffer;
  pcrValues?: PcrBanks;
}

export interface QuoteExpectation {
  signer: AttestationSigner;
  extraData: Buffer;
  pcrPolicy: PcrPolicy | null;
}

const F = { attest: "attestation.quoteInfo", signature: "attestation.signature" } as const;
const PCR_FIELD = "attestation.pcrValues";

const BANK_NAMES: Readonly<Record<string, number>> = {
  sha1: TPM_ALG.SHA1,
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
};

function malformed(field: string, detail: string): MayflyError {
  return new MayflyError("attestation.malformed", `${field}: ${detail}`, { field });
}

function pcrMismatch(detail: string, field = `${F.attest}.attested.quote.pcrDigest`): MayflyError {
  return new MayflyError("attestation.pcr_mismatch", `${field}: ${detail}`, { field });
}

/** `{ sha256: { "0": hex } }` to PcrBanks; every value one digest of its bank's size. */
export function parsePcrValues(v: unknown): PcrBanks {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw malformed(PCR_FIELD, "must be an object");
  const banks = new Map<number, Map<number, Buffer>>();
  for (const [bankName, pcrs] of Object.entries(v)) {
    const field = `${PCR_FIELD}.${bankName}`;
    const alg = BANK_NAMES[bankName];
    if (alg === undefined) throw malformed(field, "is not a PCR bank (sha1, sha256, sha384, sha512)");
    if (typeof pcrs !== "object" || pcrs === null || Array.isArray(pcrs))
      throw malformed(field, "must be an object");
    const size = hashAlgInfo(alg, field).size;
    const values = new Map<number, Buffer>();
    for (const [idx, hex] of Object.entries(pcrs as Record<string, unknown>)) {
      if (!/^(?:[0-9]|1[0-9]|2[0-3])$/.test(idx))
        throw malformed(`${field}.${idx}`, "is not a PCR index 0-23");
      if (typeof hex !== "string" || hex.length !== size * 2 || !/^[0-9a-fA-F]+$/.test(hex)) {
        throw malformed(`${field}.${idx}`, `must be ${size * 2} hex digits`);
      }
      values.set(Number(idx), Buffer.from(hex, "hex"));
    }
    banks.set(alg, values);
  }
  return banks;
}

function selectionText(attest: QuoteAttest): string {
  return attest.attested.pcrSelect
    .map((s) => {
      const pcrs = selectedPcrs([s]).map((p) => p.pcr);
      return `${hashAlgInfo(s.hashAlg, "pcrSelect.hash").node}:${pcrs.join(",")}`;
    })
    .join("+");
}

function digestOf(sig: TpmtSignature, attest: QuoteAttest, values: PcrBanks): Buffer | null {
  try {
    return computePcrDigest(sig.hashAlg, attest.attested.pcrSelect, values);
  } catch {
    return null; // a selected PCR has no value
  }
}

/** pcrValues must be exactly the selection's values and hash to pcrDigest. */
function checkPcrValues(attest: QuoteAttest, sig: TpmtSignature, values: PcrBanks): void {
  const selected = selectedPcrs(attest.attested.pcrSelect);
  for (const [bank, pcrs] of values) {
    for (const pcr of pcrs.keys()) {
      if (!selected.some((s) => s.hashAlg === bank && s.pcr === pcr)) {
        throw malformed(
          `${PCR_FIELD}`,
          `holds PCR ${pcr} of bank 0x${bank.toString(16)}, which the quote does not select`,
        );
      }
    }
  }
  const digest = digestOf(sig, attest, values);
  if (!digest) throw pcrMismatch("pcrValues do not cover every quoted PCR", PCR_FIELD);
  if (!digest.equals(attest.attested.pcrDigest))
    throw pcrMismatch("pcrValues do not hash to the quoted pcrDigest", PCR_FIELD);
}

function checkPolicy(
  attest: QuoteAttest,
  sig: TpmtSignature,
  policy: PcrPolicy,
  values: PcrBanks | undefined,
): void {
  const selected = selectedPcrs(attest.attested.pcrSelect);
  for (const pcr of policy.pcrs.keys()) {
    if (!selected.some((s) => s.hashAlg === policy.bank && s.pcr === pcr)) {
      throw pcrMismatch(
        `the quote does not select ${policy.bankName} PCR ${pcr}`,
        `${F.attest}.attested.quote.pcrSelect`,
      );
    }
  }
  if (values) {
    // Already proven to be the quoted values: compare the policy's PCRs.
    for (const [pcr, want] of policy.pcrs) {
      const got = values.get(policy.bank)?.get(pcr);
      if (!got || !want.equals(got)) {
        throw pcrMismatch(`${policy.bankName} PCR ${pcr} does not hold the expected value`);
      }
    }
    return;
  }
  const digest = digestOf(sig, attest, new Map([[policy.bank, policy.pcrs]]));
  if (!digest) throw pcrMismatch("the quote selects PCRs outside the policy; send pcrValues");
  if (!digest.equals(attest.attested.pcrDigest))
    throw pcrMismatch("pcrDigest is not the digest of the expected values");
}

/**
 * Verifies tpm-quote evidence. Order: quoteInfo (magic, type, strict), signature -> signature
 * hash, qualifiedSigner, AK signature -> extraData -> pcrValues -> PCR policy.
 */
export function verifyTpmQuote(e: QuoteEvidence, x: QuoteExpectation): EvidenceFacts {
  const attest = parseAttest(e.quoteInfo, TPM_ST.ATTEST_QUOTE, F.attest);
  const sig = parseSignature(e.signature, F.signature);
  checkSigner(attest, e.quoteInfo, sig, x.signer, F);
  checkExtraData(attest, x.extraData, F.attest);
  if (e.pcrValues) checkPcrValues(attest, sig, e.pcrValues);
  if (x.pcrPolicy) checkPolicy(attest, sig, x.pcrPolicy, e.pcrValues);
  return {
    format: TPM_QUOTE,
    keyResidency: "bound",
    // Added to attestDetails' fresh object: on Node 20 a spread followed by members costs µs.
    details: Object.assign(attestDetails(attest, sig, x.signer), {
      pcrSelection: selectionText(attest),
      pcrDigest: attest.attested.pcrDigest.toString("hex"),
      pcrValuesVerified: e.pcrValues !== undefined,
      pcrPolicy: x.pcrPolicy ? "matched" : "none",
    }),
  };
}

export function tpmQuoteFormat(opts: TpmFormatOptions = {}): EvidenceFormat {
  return {
    name: TPM_QUOTE,
    async verify(att: Record<string, unknown>, ctx: EvidenceContext): Promise<EvidenceFacts> {
      checkMembers(att, ["format", "quoteInfo", "signature", "pcrValues"]);
      const evidence: QuoteEvidence = {
        quoteInfo: b64urlMember(att, "quoteInfo"),
        signature: b64urlMember(att, "signature"),
        ...(att.pcrValues === undefined ? {} : { pcrValues: parsePcrValues(att.pcrValues) }),
      };
      const pcrPolicy = readPcrPolicy(ctx.profile);
      const signer = deviceSigner(ctx.device, opts.qualifiedSigner?.(ctx.device) ?? null);
      return verifyTpmQuote(evidence, {
        signer,
        extraData: bindingDigest(ctx.nonce, ctx.csrKey.spki),
        pcrPolicy,
      });
    },
  };
}
