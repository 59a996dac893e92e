import { MayflyError } from "../errors/index.js";
import {
  integerSmall,
  octetString,
  oid,
  sequence,
  TAG_ENUMERATED,
  TAG_SEQUENCE,
  TAG_UTF8_STRING,
  tlv,
  utf8String,
} from "./der.js";
import { DerReader } from "./der-reader.js";
import { OID_MAYFLY_ASSURANCE } from "./oids.js";

// The Mayfly assurance extension (non-critical), so that a relying party can see
// who owns the agent, on which device it runs and how its key was attested:
//
//   id-mayfly-assurance OBJECT IDENTIFIER ::= { 2 25 292199526746055865623339137260964517254 }
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
const EXTENSION_PREFIX = oid(OID_MAYFLY_ASSURANCE);

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

/** DER of the whole Extension: SEQUENCE { extnID, extnValue } (critical omitted: FALSE). */
export function encodeMayflyExtension(a: MayflyAssurance): Buffer {
  return sequence(EXTENSION_PREFIX, octetString(encodeMayflyAssurance(a)));
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
