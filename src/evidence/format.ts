import type { KeyObject } from "node:crypto";
import type { Profile } from "../config/schema.js";
import type { Clock } from "../runtime/clock.js";
import type { Device, IssuanceAgent } from "../store/types.js";

export type KeyResidency = "tpm" | "bound";

/** What an evidence verifier is given: the request's claims and the stored facts it checks them against. */
export interface EvidenceContext {
  agent: IssuanceAgent;
  device: Device;
  /** The challenge nonce the attestation must be bound to. */
  nonce: Buffer;
  /**
   * The key in the CSR (already parsed and its signature verified); spki is its canonical
   * SubjectPublicKeyInfo DER as readCsr returns it (tpm-certify compares TPM keys to it byte for byte).
   */
  csrKey: { spki: Buffer; publicKey: KeyObject };
  profile: Profile;
  clock: Clock;
}

/** What a verifier proved. Policy decides on these; it never sees raw evidence. */
export interface EvidenceFacts {
  format: string;
  keyResidency: KeyResidency;
  /** Safe to log and audit: no secrets, no raw structures larger than a hash. */
  details: Record<string, string | number | boolean | null>;
}

/**
 * One attestation format. `verify` parses strictly, verifies every check the format
 * defines and returns facts, or throws a MayflyError with an `attestation.*` code.
 * It never writes state.
 */
export interface EvidenceFormat {
  readonly name: string;
  verify(attestation: Record<string, unknown>, ctx: EvidenceContext): Promise<EvidenceFacts>;
}
