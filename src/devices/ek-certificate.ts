import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  type AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  KeyUsage,
  type Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import "../x509/asn1js-oid-fix.js"; // before any parse: see the file

// X.509 certificates on the EK trust path (EK certificates, vendor CAs), parsed leniently
// where real TPMs need it and nowhere else:
// - trailing NV padding (0xFF or 0x00 filler after the DER, as read from an NV index) is
//   stripped; any other trailing byte is refused;
// - BER where DER is required (Nuvoton's unsorted multi-valued RDN SETs) parses, and the
//   signature is always checked over the TBS bytes exactly as received, never re-encoded;
// - names are compared canonically (RDN members sorted, strings case- and space-folded),
//   so an unsorted SET in a child's issuer still matches its CA's subject.

/** Upper bound for one certificate, padding included: NV indices hold a few KiB at most. */
export const EK_CERT_MAX_BYTES = 16_384;

export const OID_TCG_EK_CERTIFICATE = "2.23.133.8.1";
const OID_TPM_MANUFACTURER = "2.23.133.2.1";
const OID_TPM_MODEL = "2.23.133.2.2";
const OID_TPM_VERSION = "2.23.133.2.3";
const OID_RSAES_OAEP = "1.2.840.113549.1.1.7";

const EXT = {
  subjectDirectoryAttributes: "2.5.29.9",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  certificatePolicies: "2.5.29.32",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
} as const;

/**
 * Extensions Mayfly either processes or may safely ignore when marked critical. Policies
 * are not enforced (EK paths carry no policy requirement); an unknown critical extension
 * makes the certificate unusable, as RFC 5280 §4.2 requires.
 */
const KNOWN_CRITICAL: ReadonlySet<string> = new Set(Object.values(EXT));

/** KeyUsage bit for keyCertSign in @peculiar's numbering. */
const KU_KEY_CERT_SIGN = 32;

export interface TpmDeviceAttributes {
  manufacturer?: string;
  model?: string;
  version?: string;
}

export interface ParsedCertificate {
  /** The certificate without NV padding. */
  readonly der: Buffer;
  /** SHA-256 of `der`: identity for de-duplication and loop detection. */
  readonly fingerprint: string;
  /** The TBSCertificate bytes as received: what the signature covers. */
  readonly tbs: Buffer;
  readonly signature: Buffer;
  readonly signatureAlgorithm: string;
  readonly subject: string;
  readonly issuer: string;
  /** Canonical forms for matching issuer to subject. */
  readonly subjectKey: string;
  readonly issuerKey: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly isCa: boolean | undefined;
  readonly pathLen: number | undefined;
  /** @peculiar KeyUsage flags, or undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly subjectKeyId: Buffer | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly unknownCritical: readonly string[];
  readonly tpm: TpmDeviceAttributes;
  /** Public key, or the reason it is not usable (unknown algorithm, bad encoding). */
  readonly publicKey: KeyObject | string;
}

type Fail = (detail: string, cause?: unknown) => Error;

/** Length of the outer DER SEQUENCE at the start of `der` (header included). */
function outerLength(der: Buffer, fail: Fail): number {
  if (der.length < 2 || der[0] !== 0x30) throw fail("not a DER SEQUENCE");
  let len = der[1]!;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 2) throw fail("certificate length is indefinite or too large");
    if (der.length < 2 + n) throw fail("certificate is truncated");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
    off += n;
  }
  const end = off + len;
  if (end > der.length) throw fail(`certificate is truncated (${der.length} of ${end} bytes)`);
  return end;
}

/**
 * Removes NV padding after the outer SEQUENCE. Only a run of one filler byte (all 0xFF, as
 * erased flash reads, or all 0x00) counts as padding: anything else after the DER could be a
 * second structure smuggled past a lenient parser, so it is refused.
 */
export function stripNvPadding(der: Buffer, fail: Fail): Buffer {
  if (der.length > EK_CERT_MAX_BYTES) throw fail(`${der.length} bytes exceed ${EK_CERT_MAX_BYTES}`);
  const end = outerLength(der, fail);
  if (end === der.length) return der;
  const rest = der.subarray(end);
  const filler = rest[0]!;
  if ((filler !== 0xff && filler !== 0x00) || !rest.every((b) => b === filler)) {
    throw fail(`${rest.length} trailing byte(s) after the certificate are not NV padding`);
  }
  return der.subarray(0, end);
}

const SHORT_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.97": "organizationIdentifier",
  "1.2.840.113549.1.9.1": "emailAddress",
};

function attributeText(v: AttributeValue): string {
  const s =
    v.utf8String ?? v.printableString ?? v.ia5String ?? v.teletexString ?? v.bmpString ?? v.universalString;
  if (s !== undefined) return s;
  return `#${Buffer.from(v.anyValue ?? new ArrayBuffer(0)).toString("hex")}`;
}

/** RFC 4514-like text for humans and audit records ("" for the empty subject). */
function nameText(name: Name): string {
  return name
    .map((rdn) => rdn.map((a) => `${SHORT_NAMES[a.type] ?? a.type}=${attributeText(a.value)}`).join("+"))
    .join(", ");
}

/** Canonical key: RDN order kept, members of a multi-valued RDN sorted, strings folded. */
function nameKey(name: Name): string {
  const rdns = name.map((rdn) =>
    rdn
      .map((a) => {
        const text = attributeText(a.value);
        const folded = text.startsWith("#") ? text : text.trim().replace(/\s+/g, " ").toLowerCase();
        return JSON.stringify([a.type, folded]);
      })
      .sort()
      .join("+"),
  );
  return JSON.stringify(rdns);
}

function tpmAttributes(san: SubjectAlternativeName): TpmDeviceAttributes {
  const out: TpmDeviceAttributes = {};
  for (const gn of san) {
    for (const rdn of gn.directoryName ?? []) {
      for (const a of rdn) {
        if (a.type === OID_TPM_MANUFACTURER) out.manufacturer = attributeText(a.value);
        else if (a.type === OID_TPM_MODEL) out.model = attributeText(a.value);
        else if (a.type === OID_TPM_VERSION) out.version = attributeText(a.value);
      }
    }
  }
  return out;
}

/**
 * The key in a SubjectPublicKeyInfo. Some older RSA EK certificates label the key
 * id-RSAES-OAEP (RFC 4055) instead of rsaEncryption; the key bits are the same RSAPublicKey.
 */
function subjectPublicKey(cert: Certificate): KeyObject | string {
  const spki = cert.tbsCertificate.subjectPublicKeyInfo;
  try {
    if (spki.algorithm.algorithm === OID_RSAES_OAEP) {
      return createPublicKey({ key: Buffer.from(spki.subjectPublicKey), format: "der", type: "pkcs1" });
    }
    return createPublicKey({ key: Buffer.from(AsnConvert.serialize(spki)), format: "der", type: "spki" });
  } catch {
    return `public key (${spki.algorithm.algorithm}) is not usable`;
  }
}

/** Parses one certificate (NV padding stripped). `fail` chooses the error code for the context. */
export function parseCertificate(input: Buffer, fail: Fail): ParsedCertificate {
  const der = stripNvPadding(input, fail);
  let parsed: ParsedCertificate | string;
  try {
    parsed = parseDer(der);
  } catch (cause) {
    throw fail("not an X.509 certificate", cause);
  }
  if (typeof parsed === "string") throw fail(parsed);
  return parsed;
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** One TLV with a definite, minimally encoded length, or a string naming the problem. */
function readTlv(b: Buffer, start: number, limit: number): Tlv | string {
  if (start + 2 > limit) return "truncated";
  const tag = b[start]!;
  let len = b[start + 1]!;
  let contentStart = start + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || contentStart + n > limit || b[contentStart] === 0) return "a length is not DER";
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[contentStart + i]!;
    if (len < 0x80) return "a length is not DER";
    contentStart += n;
  }
  const end = contentStart + len;
  return end > limit ? "truncated" : { tag, start, contentStart, end };
}

/**
 * The unsigned envelope around the TBS must be DER: SEQUENCE { tbs, algorithm, BIT STRING with
 * no unused bits }. Leniency stays inside the signed TBS bytes (Nuvoton's SET order), where
 * the signature decides; outside it, any alternative encoding would be free malleability.
 */
function envelopeProblem(der: Buffer, tbs: Buffer): string | null {
  const outer = readTlv(der, 0, der.length);
  if (typeof outer === "string") return outer;
  const parts: Tlv[] = [];
  for (let at = outer.contentStart; at < outer.end; ) {
    const t = readTlv(der, at, outer.end);
    if (typeof t === "string") return t;
    parts.push(t);
    at = t.end;
  }
  const [t, a, sig] = parts;
  if (parts.length !== 3 || t?.tag !== 0x30 || a?.tag !== 0x30 || sig?.tag !== 0x03) {
    return "not SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }";
  }
  if (!der.subarray(t.start, t.end).equals(tbs)) return "the TBSCertificate bytes do not match";
  if (sig.end === sig.contentStart || der[sig.contentStart] !== 0) return "signatureValue has unused bits";
  return null;
}

/** The certificate's facts, or a string naming what is wrong; throws only on broken encodings. */
function parseDer(der: Buffer): ParsedCertificate | string {
  const cert = AsnConvert.parse(der, Certificate);
  if (!cert.tbsCertificateRaw) return "the TBSCertificate bytes were not kept";
  const envelope = envelopeProblem(der, Buffer.from(cert.tbsCertificateRaw));
  if (envelope) return envelope;
  const tbsCert = cert.tbsCertificate;
  // RFC 5280 §4.1.1.2: the unsigned outer algorithm must be the signed one, parameters included.
  const outerAlg = Buffer.from(AsnConvert.serialize(cert.signatureAlgorithm));
  if (!outerAlg.equals(Buffer.from(AsnConvert.serialize(tbsCert.signature)))) {
    return "signatureAlgorithm differs from TBSCertificate.signature";
  }
  let isCa: boolean | undefined;
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let subjectKeyId: Buffer | undefined;
  let authorityKeyId: Buffer | undefined;
  let tpm: TpmDeviceAttributes = {};
  const unknownCritical: string[] = [];
  const seen = new Set<string>();
  for (const ext of tbsCert.extensions ?? []) {
    if (seen.has(ext.extnID)) return `extension ${ext.extnID} appears twice`;
    seen.add(ext.extnID);
    if (ext.critical && !KNOWN_CRITICAL.has(ext.extnID)) unknownCritical.push(ext.extnID);
    const value = ext.extnValue.buffer;
    switch (ext.extnID) {
      case EXT.basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        isCa = bc.cA;
        pathLen = bc.pathLenConstraint;
        break;
      }
      case EXT.keyUsage:
        keyUsage = AsnConvert.parse(value, KeyUsage).toNumber();
        break;
      case EXT.extKeyUsage:
        extKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)];
        break;
      case EXT.subjectKeyIdentifier:
        subjectKeyId = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
        break;
      case EXT.authorityKeyIdentifier: {
        const id = AsnConvert.parse(value, AuthorityKeyIdentifier).keyIdentifier;
        authorityKeyId = id ? Buffer.from(id.buffer) : undefined;
        break;
      }
      case EXT.subjectAltName:
        tpm = tpmAttributes(AsnConvert.parse(value, SubjectAlternativeName));
        break;
    }
  }
  const notBefore = tbsCert.validity.notBefore.getTime().getTime();
  const notAfter = tbsCert.validity.notAfter.getTime().getTime();
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) return "the validity period does not parse";
  return {
    der,
    fingerprint: createHash("sha256").update(der).digest("hex"),
    tbs: Buffer.from(cert.tbsCertificateRaw),
    signature: Buffer.from(cert.signatureValue),
    signatureAlgorithm: cert.signatureAlgorithm.algorithm,
    subject: nameText(tbsCert.subject),
    issuer: nameText(tbsCert.issuer),
    subjectKey: nameKey(tbsCert.subject),
    issuerKey: nameKey(tbsCert.issuer),
    notBefore,
    notAfter,
    isCa,
    pathLen,
    keyUsage,
    extKeyUsage,
    subjectKeyId,
    authorityKeyId,
    unknownCritical,
    tpm,
    publicKey: subjectPublicKey(cert),
  };
}

export function canSignCertificates(c: ParsedCertificate): boolean {
  return c.keyUsage === undefined || (c.keyUsage & KU_KEY_CERT_SIGN) !== 0;
}

/**
 * Splits PEM text (comment lines between blocks allowed), or returns the one certificate of
 * a DER file. Vendors publish some DER files with a trailing newline; trailing whitespace
 * is dropped there (trust files only: EK certificates from clients get no such leniency).
 */
export function certificatesInFile(bytes: Buffer): Buffer[] {
  const text = bytes.toString("latin1");
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    const end = outerLength(bytes, (d) => new Error(d));
    if (!bytes.subarray(end).every((b) => b === 0x0a || b === 0x0d || b === 0x20 || b === 0x09)) {
      throw new Error(`${bytes.length - end} trailing byte(s) after the DER certificate`);
    }
    return [bytes.subarray(0, end)];
  }
  const out: Buffer[] = [];
  for (const m of text.matchAll(
    /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g,
  )) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
  }
  const blocks = text.split("-----BEGIN CERTIFICATE-----").length - 1;
  if (out.length !== blocks) throw new Error(`${blocks - out.length} PEM block(s) are not well-formed`);
  return out;
}
