import { MayflyError } from "../errors/index.js";
import {
  contextTag,
  integerSmall,
  octetString,
  oid,
  sequence,
  TAG_BOOLEAN,
  TAG_ENUMERATED,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  TAG_UTF8_STRING,
  tlv,
  utf8String,
} from "./der.js";
import { DerReader } from "./der-reader.js";
import { assuranceOidProblem, OID_MAYFLY_ASSURANCE } from "./oids.js";

// The Mayfly assurance extension (non-critical), so that a relying party can see
// who owns the agent, on which device it runs and how its key was attested:
//
//   id-mayfly-assurance OBJECT IDENTIFIER ::= { 2 25 292199526746055865623339137260964517254 }
//
// (the default; operators may configure another one, `ca.assuranceExtensionOid`)
//
//   MayflyAssurance ::= SEQUENCE {
//     version            INTEGER (1),
//     ownerId            UTF8String,
//     deviceId           UTF8String,
//     agentId            UTF8String,
//     attestationFormat  UTF8String,   -- e.g. "tpm-certify", "tpm-quote"
//     keyResidency       ENUMERATED { tpm(0), bound(1) }
//   }
//
// docs/mayfly-extension.md is the relying-party description of the same thing.

export type KeyResidency = "tpm" | "bound";

export interface MayflyAssurance {
  ownerId: string;
  deviceId: string;
  agentId: string;
  attestationFormat: string;
  keyResidency: KeyResidency;
}

export const MAYFLY_ASSURANCE_VERSION = 1;
/** Bound on each string, in UTF-8 octets, so a certificate stays small. */
export const MAYFLY_MAX_STRING_OCTETS = 1024;

const RESIDENCY_CODES: Record<KeyResidency, number> = { tpm: 0, bound: 1 };
const RESIDENCY_NAMES: readonly KeyResidency[] = ["tpm", "bound"];
// With the u flag, paired surrogates form one code point; only lone ones are Cs.
const LONE_SURROGATE = /\p{Cs}/u;
const STRING_FIELDS = ["ownerId", "deviceId", "agentId", "attestationFormat"] as const;

const VERSION_DER = integerSmall(MAYFLY_ASSURANCE_VERSION);
const DEFAULT_OID_DER = oid(OID_MAYFLY_ASSURANCE);

function violation(field: string, detail: string): MayflyError {
  return new MayflyError("certificate.profile_violation", detail, { field });
}

/** Refuses values the extension must not carry (programming errors upstream). */
export function checkAssurance(a: MayflyAssurance): void {
  for (const f of STRING_FIELDS) {
    const v = a[f];
    if (typeof v !== "string" || v.length === 0) throw violation(`MayflyAssurance.${f}`, `${f} is empty`);
    // Lone surrogates have no UTF-8 form; encoders would silently write U+FFFD.
    if (LONE_SURROGATE.test(v)) throw violation(`MayflyAssurance.${f}`, `${f} is not well-formed Unicode`);
    if (Buffer.byteLength(v, "utf8") > MAYFLY_MAX_STRING_OCTETS) {
      throw violation(`MayflyAssurance.${f}`, `${f} is longer than ${MAYFLY_MAX_STRING_OCTETS} octets`);
    }
  }
  if (!Object.hasOwn(RESIDENCY_CODES, a.keyResidency)) {
    throw violation("MayflyAssurance.keyResidency", `unknown key residency ${String(a.keyResidency)}`);
  }
}

/** DER of MayflyAssurance (the extnValue content). */
export function encodeMayflyAssurance(a: MayflyAssurance): Buffer {
  checkAssurance(a);
  return sequence(
    VERSION_DER,
    utf8String(a.ownerId),
    utf8String(a.deviceId),
    utf8String(a.agentId),
    utf8String(a.attestationFormat),
    tlv(TAG_ENUMERATED, Uint8Array.of(RESIDENCY_CODES[a.keyResidency])),
  );
}

/** The OBJECT IDENTIFIER TLV of an assurance OID; refuses OIDs `assuranceOidProblem` refuses. */
export function assuranceOidDer(assuranceOid: string = OID_MAYFLY_ASSURANCE): Buffer {
  if (assuranceOid === OID_MAYFLY_ASSURANCE) return DEFAULT_OID_DER;
  const problem = assuranceOidProblem(assuranceOid);
  if (problem) throw violation("assuranceOid", `assurance extension OID ${assuranceOid} ${problem}`);
  return oid(assuranceOid);
}

/**
 * DER of the whole Extension: SEQUENCE { extnID, extnValue } (critical omitted: FALSE),
 * under `assuranceOid` (default OID_MAYFLY_ASSURANCE).
 */
export function encodeMayflyExtension(a: MayflyAssurance, assuranceOid?: string): Buffer {
  return sequence(assuranceOidDer(assuranceOid), octetString(encodeMayflyAssurance(a)));
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Strict decoder for relying parties: DER only, version 1 only, every octet consumed,
 * UTF-8 validated. Errors are certificate.profile_violation naming the field.
 */
export function decodeMayflyAssurance(extnValue: Uint8Array): MayflyAssurance {
  const buf = Buffer.from(extnValue.buffer, extnValue.byteOffset, extnValue.byteLength);
  const outer = new DerReader(buf, "certificate.profile_violation", "MayflyAssurance");
  const r = outer.enter(TAG_SEQUENCE, "MayflyAssurance");
  outer.end();
  const version = r.smallInteger("MayflyAssurance.version");
  if (version !== MAYFLY_ASSURANCE_VERSION) {
    r.fail("MayflyAssurance.version", `unsupported MayflyAssurance version ${version}`);
  }
  const strings = STRING_FIELDS.map((f) => {
    const field = `MayflyAssurance.${f}`;
    const c = r.expect(TAG_UTF8_STRING, field).content;
    let s = "";
    try {
      s = utf8.decode(c);
    } catch {
      r.fail(field, `${f} is not valid UTF-8`);
    }
    if (s.length === 0) r.fail(field, `${f} is empty`);
    return s;
  });
  const enumerated = r.expect(TAG_ENUMERATED, "MayflyAssurance.keyResidency").content;
  const residency = enumerated.length === 1 ? RESIDENCY_NAMES[enumerated[0]!] : undefined;
  if (residency === undefined) return r.fail("MayflyAssurance.keyResidency", "unknown key residency");
  r.end();
  const [ownerId, deviceId, agentId, attestationFormat] = strings as [string, string, string, string];
  return { ownerId, deviceId, agentId, attestationFormat, keyResidency: residency };
}

/**
 * The Mayfly assurance of a certificate (DER), found under `assuranceOid` (default
 * OID_MAYFLY_ASSURANCE; pass the issuing CA's `ca.assuranceExtensionOid` if it set
 * one), or null when the certificate has no such extension. The certificate is walked
 * with the strict DER reader and extension OIDs are compared as DER octets, so arcs of
 * any size work (Go, RustCrypto and Botan refuse arcs above 2^31). It does not verify
 * the certificate: do that first. A repeated extension is an error.
 */
export function findMayflyAssurance(
  certificateDer: Uint8Array,
  assuranceOid: string = OID_MAYFLY_ASSURANCE,
): MayflyAssurance | null {
  const want = assuranceOidDer(assuranceOid);
  const der = Buffer.from(certificateDer.buffer, certificateDer.byteOffset, certificateDer.byteLength);
  const top = new DerReader(der, "certificate.profile_violation", "Certificate");
  const cert = top.enter(TAG_SEQUENCE, "Certificate");
  top.end();
  const tbs = cert.enter(TAG_SEQUENCE, "tbsCertificate");
  tbs.optional(contextTag(0, true), "tbsCertificate.version");
  tbs.expect(TAG_INTEGER, "tbsCertificate.serialNumber");
  for (const f of ["signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"]) {
    tbs.expect(TAG_SEQUENCE, `tbsCertificate.${f}`);
  }
  tbs.optional(contextTag(1, false), "tbsCertificate.issuerUniqueID");
  tbs.optional(contextTag(2, false), "tbsCertificate.subjectUniqueID");
  const extsTag = tbs.optional(contextTag(3, true), "tbsCertificate.extensions");
  tbs.end();
  if (!extsTag) return null;
  const outer = tbs.child(extsTag, "tbsCertificate.extensions");
  const exts = outer.enter(TAG_SEQUENCE, "tbsCertificate.extensions");
  outer.end();
  let value: Buffer | undefined;
  while (!exts.atEnd()) {
    const ext = exts.enter(TAG_SEQUENCE, "Extension");
    const id = ext.expect(TAG_OID, "Extension.extnID").raw;
    ext.optional(TAG_BOOLEAN, "Extension.critical");
    const v = ext.expect(TAG_OCTET_STRING, "Extension.extnValue").content;
    ext.end();
    if (!id.equals(want)) continue;
    if (value) ext.fail("MayflyAssurance", "the Mayfly assurance extension appears twice");
    value = v;
  }
  return value ? decodeMayflyAssurance(value) : null;
}
