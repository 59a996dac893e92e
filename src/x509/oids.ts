// Every object identifier the x509 module reads or writes, in dotted form. The hand
// encoder turns these into DER once, at module load (see der.ts `oid`).

/**
 * The Mayfly assurance extension. Registered under the UUID arc (ITU-T X.667, 2.25),
 * which needs no registration authority: the arc is the decimal value of a random UUID,
 * generated once for this project:
 *   UUID dbd394f2-c8e3-48cd-9cd9-67337fdf9586
 *   = 292199526746055865623339137260964517254
 * Caveat (docs/mayfly-extension.md): Go's crypto/x509 refuses any certificate with an
 * extension OID arc above 2^31, so Go TLS peers reject leaves carrying this OID.
 */
export const OID_MAYFLY_ASSURANCE = "2.25.292199526746055865623339137260964517254";

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
