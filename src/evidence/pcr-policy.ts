import { z } from "zod";
import type { Profile } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import { TPM_ALG } from "../tpm/index.js";

// A profile's optional PCR policy for tpm-quote: the values the quoted PCRs must hold.
//   pcrPolicy: { bank: sha256, pcrs: { "0": "<hex>", "7": "<hex>" } }
// The same fragment belongs in the profile schema (src/config/schema.ts); it is repeated
// here so a profile without it, or from an older schema, is still validated before use.

const DIGEST_HEX: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

export const pcrPolicySchema = z
  .object({
    bank: z.enum(["sha256", "sha384", "sha512"]).default("sha256"),
    pcrs: z.record(
      z.string().regex(/^(?:[0-9]|1[0-9]|2[0-3])$/, "a PCR index, 0-23"),
      z.string().regex(/^[0-9a-fA-F]+$/, "a hex digest"),
    ),
  })
  .strict()
  .refine((p) => Object.keys(p.pcrs).length > 0, { message: "at least one PCR", path: ["pcrs"] })
  .refine((p) => Object.values(p.pcrs).every((v) => v.length === DIGEST_HEX[p.bank]), {
    message: "each value is one digest of the bank's hash, in hex",
    path: ["pcrs"],
  });

export interface PcrPolicy {
  /** TPM_ALG_ID of the bank. */
  readonly bank: number;
  readonly bankName: string;
  /** Expected values by PCR index. */
  readonly pcrs: ReadonlyMap<number, Buffer>;
}

const BANKS: Readonly<Record<string, number>> = {
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
};

/** The profile's PCR policy, or null when it has none. A malformed one is a configuration error. */
export function readPcrPolicy(profile: Profile): PcrPolicy | null {
  const raw = (profile as { pcrPolicy?: unknown }).pcrPolicy;
  if (raw === undefined || raw === null) return null;
  const r = pcrPolicySchema.safeParse(raw);
  if (!r.success) {
    throw new MayflyError("config.invalid", `profile pcrPolicy: ${r.error.issues[0]?.message ?? "invalid"}`, {
      field: "profiles.pcrPolicy",
    });
  }
  const pcrs = new Map(Object.entries(r.data.pcrs).map(([k, v]) => [Number(k), Buffer.from(v, "hex")]));
  return { bank: BANKS[r.data.bank]!, bankName: r.data.bank, pcrs };
}
