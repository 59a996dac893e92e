import { MayflyError } from "../errors/index.js";
import { isEncodableTime } from "./der.js";
import { checkAssurance, type MayflyAssurance } from "./mayfly-extension.js";
import { isMayflySerial } from "./serial.js";

/** Everything that varies between two leaves from the same issuer. */
export interface LeafInput {
  /** 16 octets from `newSerial`. */
  serial: Buffer;
  /** Epoch milliseconds; floored to whole seconds when encoded. */
  notBefore: number;
  notAfter: number;
  /** Canonical SubjectPublicKeyInfo DER of the agent key (as `readCsr` returns it). */
  spki: Buffer;
  /** spiffe://<trust-domain>/<path>, the single URI SAN. */
  spiffeId: string;
  assurance: MayflyAssurance;
}

/** SPIFFE ID syntax (SPIFFE-ID spec §2): lowercase trust domain, path of [A-Za-z0-9._-] segments. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
/** SPIFFE-ID spec §2.3: URIs longer than 2048 octets need not be supported by relying parties. */
export const SPIFFE_ID_MAX_OCTETS = 2048;

function violation(field: string, detail: string): MayflyError {
  return new MayflyError("certificate.profile_violation", detail, { field });
}

/**
 * Refuses inputs that would yield a leaf outside the profile. The encoder runs this
 * before writing a byte, so the template can trust the shapes it fills in.
 */
export function checkLeafInput(input: LeafInput): void {
  if (!isMayflySerial(input.serial))
    throw violation("LeafInput.serial", "serial is not a 16-octet Mayfly serial");
  if (!isEncodableTime(input.notBefore)) throw violation("LeafInput.notBefore", "notBefore is out of range");
  if (!isEncodableTime(input.notAfter)) throw violation("LeafInput.notAfter", "notAfter is out of range");
  if (Math.floor(input.notAfter / 1000) < Math.floor(input.notBefore / 1000)) {
    throw violation("LeafInput.notAfter", "notAfter is before notBefore");
  }
  checkSpiffeId(input.spiffeId);
  checkAssurance(input.assurance);
}

export function checkSpiffeId(id: string): void {
  if (typeof id !== "string" || !SPIFFE_ID.test(id) || id.length > SPIFFE_ID_MAX_OCTETS) {
    throw violation("LeafInput.spiffeId", "not a valid SPIFFE ID");
  }
  const path = id.slice("spiffe://".length).split("/").slice(1);
  if (path.some((s) => s === "." || s === "..")) {
    throw violation("LeafInput.spiffeId", "SPIFFE ID path has a dot segment");
  }
}
