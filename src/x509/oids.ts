// Every object identifier the x509 module reads or writes, in dotted form. The hand
// encoder turns these into DER once, at module load (see der.ts `oid`).

/**
 * The Mayfly assurance extension. Registered under the UUID arc (ITU-T X.667, 2.25),
 * which needs no registration authority: the arc is the decimal value of a random UUID,
 * generated once for this project:
 *   UUID dbd394f2-c8e3-48cd-9cd9-67337fdf9586
 *   = 292199526746055865623339137260964517254
 * Caveat (docs/mayfly-extension.md): Go's crypto/x509 refuses any certificate with an
 * extension OID arc above 2^31, so Go TLS peers reject leaves carrying this OID. It is
 * only the default: operators set `ca.assuranceExtensionOid` to an arc under their own
 * IANA Private Enterprise Number.
 */
export const OID_MAYFLY_ASSURANCE = "2.25.292199526746055865623339137260964517254";

/** Longest `ca.assuranceExtensionOid` accepted, in characters (the default has 44). */
export const ASSURANCE_OID_MAX_LENGTH = 128;

const DOTTED = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
// Arcs of standard extensions (id-ce, id-pkix): a relying party would read the Mayfly
// payload with their syntax, and an OID the leaf already carries would repeat an
// extension (RFC 5280 §4.2 forbids that).
const RESERVED_ARCS = ["2.5.29", "1.3.6.1.5.5.7"];
const SEVEN_OCTETS = 2n ** 49n;
const EIGHT_OCTETS = 2n ** 56n;

/**
 * Why `dotted` cannot be the Mayfly assurance extension's OID, or null if it can; the
 * reason reads after the OID ("1.2 has fewer than three arcs").
 * Strict: decimal arcs without leading zeros, at least three, first 0-2, second < 40
 * under 0 and 1. Also refused: the standard extension arcs, and sub-identifiers that
 * asn1js (the parser under the post-signing check) cannot carry: a first one
 * (40 * arc1 + arc2) from 2^49, or a later one of exactly 8 base-128 octets (2^49 up to
 * 2^56), which it encodes as nothing and decodes through a lossy Number (see
 * asn1js-oid-fix.ts; longer arcs, such as the default's, are handled by the fix).
 */
export function assuranceOidProblem(dotted: string): string | null {
  if (dotted.length > ASSURANCE_OID_MAX_LENGTH)
    return `is longer than ${ASSURANCE_OID_MAX_LENGTH} characters`;
  if (!DOTTED.test(dotted))
    return "is not a dotted OID such as 1.3.6.1.4.1.<PEN>.1 (decimal arcs, no leading zeros)";
  const arcs = dotted.split(".").map(BigInt);
  if (arcs.length < 3) return "has fewer than three arcs";
  const [first, second] = arcs as [bigint, bigint];
  if (first > 2n) return "must start with 0, 1 or 2";
  if (first < 2n && second >= 40n) return "must have a second arc below 40 when the first is 0 or 1";
  if (RESERVED_ARCS.some((r) => dotted === r || dotted.startsWith(`${r}.`))) {
    return `must not be under a standard extension arc (${RESERVED_ARCS.join(", ")})`;
  }
  if (first * 40n + second >= SEVEN_OCTETS) return "has a second arc too large for asn1js";
  if (arcs.slice(2).some((a) => a >= SEVEN_OCTETS && a < EIGHT_OCTETS)) {
    return "has an arc from 2^49 up to 2^56 (8 base-128 octets), which asn1js mishandles";
  }
  return null;
}

// Certificate extensions (RFC 5280 §4.2.1).
export const OID_SUBJECT_KEY_IDENTIFIER = "2.5.29.14";
export const OID_KEY_USAGE = "2.5.29.15";
export const OID_SUBJECT_ALT_NAME = "2.5.29.17";
export const OID_BASIC_CONSTRAINTS = "2.5.29.19";
export const OID_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35";
export const OID_EXT_KEY_USAGE = "2.5.29.37";

// Extended key usages (RFC 5280 §4.2.1.12).
export const OID_KP_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
export const OID_KP_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

// Public key algorithms and curves (RFC 3279, RFC 5480, RFC 4055).
export const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
export const OID_P256 = "1.2.840.10045.3.1.7";
export const OID_P384 = "1.3.132.0.34";
export const OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
export const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
export const OID_MGF1 = "1.2.840.113549.1.1.8";

// Signature algorithms (RFC 5758, RFC 4055). The weak ones are named only so that a
// CSR using them is refused with a precise message rather than "unknown algorithm".
export const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
export const OID_ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3";
export const OID_ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4";
export const OID_ECDSA_WITH_SHA1 = "1.2.840.10045.4.1";
export const OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
export const OID_SHA384_WITH_RSA = "1.2.840.113549.1.1.12";
export const OID_SHA512_WITH_RSA = "1.2.840.113549.1.1.13";
export const OID_SHA1_WITH_RSA = "1.2.840.113549.1.1.5";
export const OID_MD5_WITH_RSA = "1.2.840.113549.1.1.4";

// Hash algorithms, as they appear inside RSASSA-PSS parameters.
export const OID_SHA1 = "1.3.14.3.2.26";
export const OID_SHA256 = "2.16.840.1.101.3.4.2.1";
export const OID_SHA384 = "2.16.840.1.101.3.4.2.2";
export const OID_SHA512 = "2.16.840.1.101.3.4.2.3";
