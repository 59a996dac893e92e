import { type KeyObject, timingSafeEqual } from "node:crypto";
import { isMayflyError, MayflyError } from "../errors/index.js";
import type { Device } from "../store/types.js";
import {
  hashAlgInfo,
  isHashAlgAllowed,
  objectName,
  publicKeyObject,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST,
  type TpmsAttest,
  type TpmtPublic,
  type TpmtSignature,
  unmarshalAttest,
  unmarshalSignature,
  unmarshalTpm2bPublic,
  verifyTpmSignature,
} from "../tpm/index.js";

// What tpm-certify and tpm-quote share: strict field decoding, the TPMS_ATTEST envelope
// (magic, type), the signer (this device's activated AK) and the nonce binding. Each check
// throws its own attestation.* code so a deny names exactly what failed.

/** Upper bound for one base64url field: larger than any TPM2B_PUBLIC, TPMS_ATTEST or signature. */
const MAX_FIELD_CHARS = 4096;
const B64URL = /^[A-Za-z0-9_-]*$/;

function malformed(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(
    "attestation.malformed",
    `${field}: ${detail}`,
    cause === undefined ? { field } : { field, cause },
  );
}

/** Refuses members other than `allowed`: an unknown field is a client the CA does not understand. */
export function checkMembers(att: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(att)) {
    if (!allowed.includes(k)) throw malformed(`attestation.${k}`, "is not a member of this format");
  }
}

/** A base64url (no padding) member decoded to bytes; canonical encodings only. */
export function b64urlMember(att: Record<string, unknown>, name: string): Buffer {
  const field = `attestation.${name}`;
  const v = att[name];
  if (typeof v !== "string" || v.length === 0) throw malformed(field, "a base64url string is required");
  if (v.length > MAX_FIELD_CHARS) throw malformed(field, `longer than ${MAX_FIELD_CHARS} characters`);
  if (!B64URL.test(v) || v.length % 4 === 1) throw malformed(field, "is not base64url without padding");
  const bytes = Buffer.from(v, "base64url");
  if (bytes.toString("base64url") !== v) throw malformed(field, "is not canonical base64url");
  return bytes;
}

/** Re-labels a wire-format parse failure (tpm.malformed / tpm.unsupported) as this attestation member's. */
function parsed<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (isMayflyError(e) && e.code.startsWith("tpm.")) throw malformed(field, `${e.field}: ${e.detail}`, e);
    throw e;
  }
}

export function parseKeyPublic(bytes: Buffer, field: string): TpmtPublic {
  return parsed(field, () => unmarshalTpm2bPublic(bytes));
}

export function parseSignature(bytes: Buffer, field: string): TpmtSignature {
  return parsed(field, () => unmarshalSignature(bytes));
}

type AttestOf<T extends TpmsAttest["type"]> = Extract<TpmsAttest, { type: T }>;

/**
 * The magic and type are checked on the raw bytes before the strict parse, so "not made by a
 * TPM" and "a quote where a certify belongs" get their own codes whatever follows them.
 */
export function parseAttest<T extends TpmsAttest["type"]>(
  bytes: Buffer,
  type: T,
  field: string,
): AttestOf<T> {
  if (bytes.length < 6) throw malformed(field, `${bytes.length} bytes cannot hold a TPMS_ATTEST`);
  const magic = bytes.readUInt32BE(0);
  if (magic !== TPM_GENERATED_VALUE) {
    throw new MayflyError(
      "attestation.magic_invalid",
      `${field}: magic 0x${magic.toString(16).padStart(8, "0")} is not TPM_GENERATED_VALUE`,
      { field: `${field}.magic` },
    );
  }
  const got = bytes.readUInt16BE(4);
  if (got !== type) {
    throw new MayflyError(
      "attestation.type_invalid",
      `${field}: type 0x${got.toString(16)} is not 0x${type.toString(16)} (${type === TPM_ST.ATTEST_CERTIFY ? "certify" : "quote"})`,
      { field: `${field}.type` },
    );
  }
  return parsed(field, () => unmarshalAttest(bytes)) as AttestOf<T>;
}

export interface TpmFormatOptions {
  /**
   * The AK's expected qualifiedSigner for a device, when the activation recorded one (e.g.
   * akQualifiedNameUnderEk for AKs created under the EK). Without it only the qualified
   * name's algorithm is checked; the AK signature is what binds evidence to the device.
   */
  qualifiedSigner?: (device: Device) => Buffer | null | undefined;
}

/** The device's activated AK, as the CA stored it at activation. */
export interface AttestationSigner {
  readonly key: KeyObject;
  /** The AK's nameAlg: every qualified name of the AK uses it. */
  readonly nameAlg: number;
  readonly name: Buffer;
  /** The AK's expected qualifiedSigner, when known (see TpmFormatOptions.qualifiedSigner). */
  readonly qualifiedName: Buffer | null;
}

/**
 * Parsed and imported AKs by their exact TPM2B_PUBLIC bytes (the key is the bytes themselves,
 * as a latin1 string, so two different AKs can never share an entry). Least recently used
 * goes first. Sized above the number of devices that renew in one busy stretch: a cache
 * smaller than the working set misses on every round-robin visit (the load benchmark's 2000
 * devices did exactly that at 1024) and each miss is a ~0.1 ms key import. An entry is a
 * few hundred bytes of public data.
 */
const signerCache = new Map<string, Omit<AttestationSigner, "qualifiedName">>();
export const SIGNER_CACHE_MAX = 16384;

/**
 * The signer from the stored device record. The stored AK passed the AK checks at activation;
 * here it is only re-parsed, and its Name is recomputed and compared with the stored one.
 * Parsing and key import are cached by the AK's bytes (public data, bounded LRU).
 */
export function deviceSigner(device: Device, qualifiedName: Buffer | null = null): AttestationSigner {
  if (!device.akPublic) {
    throw new MayflyError("device.not_activated", `device ${device.id} has no activated AK`, {
      field: "device.akPublic",
    });
  }
  const cacheKey = device.akPublic.toString("latin1");
  let s = signerCache.get(cacheKey);
  if (s) {
    // Refresh recency: Map iteration order is insertion order, so the first key is the LRU.
    signerCache.delete(cacheKey);
    signerCache.set(cacheKey, s);
  } else {
    let pub: TpmtPublic;
    let key: KeyObject;
    try {
      pub = unmarshalTpm2bPublic(device.akPublic);
      key = publicKeyObject(pub);
    } catch (cause) {
      throw new MayflyError("device.ak_invalid", `device ${device.id}: the stored AK does not parse`, {
        field: "device.akPublic",
        cause,
      });
    }
    s = { key, nameAlg: pub.nameAlg, name: objectName(pub) };
    if (signerCache.size >= SIGNER_CACHE_MAX) signerCache.delete(signerCache.keys().next().value!);
    signerCache.set(cacheKey, s);
  }
  if (device.akName && !device.akName.equals(s.name)) {
    throw new MayflyError(
      "device.ak_invalid",
      `device ${device.id}: the stored AK Name is not the AK's Name`,
      {
        field: "device.akName",
      },
    );
  }
  // Named, not `{ ...s, qualifiedName }`: on Node 20 a spread followed by members costs µs.
  return { key: s.key, nameAlg: s.nameAlg, name: s.name, qualifiedName };
}

/**
 * The signature is by the signer, with an allowed hash, and qualifiedSigner names a key
 * with the AK's nameAlg (equal to the expected QN when one is known). The CA knows the AK's
 * Name but not, in general, its parent: QN = H(QN(parent) || Name) depends on the hierarchy
 * the AK was created in, so without a stored QN only its algorithm can be checked. The
 * signature by the activated AK is what binds the attestation to the device.
 */
export function checkSigner(
  attest: TpmsAttest,
  signed: Buffer,
  sig: TpmtSignature,
  signer: AttestationSigner,
  field: { attest: string; signature: string },
): void {
  if (!isHashAlgAllowed(sig.hashAlg)) {
    throw new MayflyError(
      "attestation.hash_not_allowed",
      `${field.signature}: signature hash 0x${sig.hashAlg.toString(16)} is not allowed`,
      { field: `${field.signature}.hash` },
    );
  }
  const qs = attest.qualifiedSigner;
  const qsAlg = qs.length > 4 ? qs.readUInt16BE(0) : -1;
  if (qsAlg !== signer.nameAlg) {
    throw new MayflyError(
      "attestation.signer_mismatch",
      `${field.attest}: qualifiedSigner is not a qualified name with the AK's nameAlg`,
      { field: `${field.attest}.qualifiedSigner` },
    );
  }
  if (signer.qualifiedName && !signer.qualifiedName.equals(qs)) {
    throw new MayflyError("attestation.signer_mismatch", `${field.attest}: qualifiedSigner is not the AK's`, {
      field: `${field.attest}.qualifiedSigner`,
    });
  }
  if (!verifyTpmSignatureSafe(sig, signed, signer.key)) {
    throw new MayflyError(
      "attestation.signature_invalid",
      `${field.signature}: does not verify with the device's activated AK`,
      { field: field.signature },
    );
  }
}

function verifyTpmSignatureSafe(sig: TpmtSignature, signed: Buffer, key: KeyObject): boolean {
  try {
    return verifyTpmSignature(sig, signed, key);
  } catch {
    return false;
  }
}

/** extraData must be exactly the expected binding (SHA-256(nonce || CSR SPKI) in the formats). */
export function checkExtraData(attest: TpmsAttest, expected: Buffer, field: string): void {
  const got = attest.extraData;
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new MayflyError(
      "attestation.nonce_mismatch",
      `${field}: extraData is not SHA-256(nonce || SPKI of the CSR key)`,
      { field: `${field}.extraData` },
    );
  }
}

const SIG_SCHEMES: Readonly<Record<number, string>> = {
  [TPM_ALG.RSASSA]: "rsassa",
  [TPM_ALG.RSAPSS]: "rsapss",
  [TPM_ALG.ECDSA]: "ecdsa",
};

/** Facts every TPM format reports: safe to log (public names and counters, no secrets). */
export function attestDetails(
  attest: TpmsAttest,
  sig: TpmtSignature,
  signer: AttestationSigner,
): Record<string, string | number | boolean> {
  return {
    akName: signer.name.toString("hex"),
    qualifiedSignerChecked: signer.qualifiedName !== null,
    signatureScheme: SIG_SCHEMES[sig.sigAlg] ?? String(sig.sigAlg),
    signatureHash: hashAlgInfo(sig.hashAlg, "signature.hash").node,
    firmwareVersion: `0x${attest.firmwareVersion.toString(16).padStart(16, "0")}`,
    resetCount: attest.clockInfo.resetCount,
    restartCount: attest.clockInfo.restartCount,
    clockSafe: attest.clockInfo.safe,
  };
}
