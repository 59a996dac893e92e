import { createPublicKey, type KeyObject } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { TAG_NULL, TAG_OID, TAG_SEQUENCE } from "./der.js";
import { DerReader } from "./der-reader.js";
import { OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA_ENCRYPTION } from "./oids.js";

// The key policy for agent keys (the keys leaves certify): EC P-256 or P-384 with a
// named curve, or RSA of 2048..8192 bits with e = 65537. The upper RSA bound keeps a
// request from buying seconds of CPU per verification. Everything else, including
// RSASSA-PSS-restricted RSA keys, is csr.key_unsupported.

export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;

export type AgentKeyType = { keyType: "ec"; curve: "P-256" | "P-384" } | { keyType: "rsa"; bits: number };

export type AgentKey = AgentKeyType & {
  /** Canonical SPKI DER, as node:crypto re-exports it (EC points uncompressed). */
  spki: Buffer;
  publicKey: KeyObject;
};

const CURVES: Record<string, "P-256" | "P-384"> = { [OID_P256]: "P-256", [OID_P384]: "P-384" };

// SPKI DER up to and including the uncompressed-point marker 04, as node:crypto exports it.
const CANONICAL_EC_PREFIX = {
  "P-256": Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex"),
  "P-384": Buffer.from("3076301006072a8648ce3d020106052b8104002203620004", "hex"),
} as const;
/** x || y after the 04. */
const POINT_OCTETS = { "P-256": 64, "P-384": 96 } as const;

function unsupported(field: string, detail: string): MayflyError {
  return new MayflyError("csr.key_unsupported", detail, { field });
}

/** Reads an agent's SubjectPublicKeyInfo (a complete TLV) and applies the key policy. */
export function readAgentKey(spkiTlv: Buffer, field: string): AgentKey {
  const top = new DerReader(spkiTlv, "csr.malformed", field);
  const spki = top.enter(TAG_SEQUENCE, field);
  top.end();
  const alg = spki.enter(TAG_SEQUENCE, `${field}.algorithm`);
  const algOid = alg.oid(`${field}.algorithm.algorithm`);
  spki.octetAlignedBits(`${field}.subjectPublicKey`);
  spki.end();

  let type: AgentKeyType;
  if (algOid === OID_EC_PUBLIC_KEY) {
    // Explicit curve parameters (a SEQUENCE) are refused: RFC 5480 §2.1.1 forbids them in PKIX.
    if (alg.peekTag() !== TAG_OID)
      throw unsupported(`${field}.algorithm.parameters`, "EC key without a named curve");
    const curveOid = alg.oid(`${field}.algorithm.parameters`);
    alg.end();
    const curve = CURVES[curveOid];
    if (!curve)
      throw unsupported(
        `${field}.algorithm.parameters`,
        `EC curve ${curveOid} is not allowed (P-256, P-384)`,
      );
    type = { keyType: "ec", curve };
  } else if (algOid === OID_RSA_ENCRYPTION) {
    // RFC 3279 §2.3.1: the parameters MUST be NULL.
    const p = alg.expect(TAG_NULL, `${field}.algorithm.parameters`);
    if (p.content.length !== 0) alg.fail(`${field}.algorithm.parameters`, "RSA key parameters are not NULL");
    alg.end();
    type = { keyType: "rsa", bits: 0 };
  } else {
    throw unsupported(`${field}.algorithm`, `key algorithm ${algOid} is not allowed (EC, RSA)`);
  }

  const curve = type.keyType === "ec" ? type.curve : null;
  const canonicalEc =
    curve !== null &&
    spkiTlv.length === CANONICAL_EC_PREFIX[curve].length + POINT_OCTETS[curve] &&
    spkiTlv.subarray(0, CANONICAL_EC_PREFIX[curve].length).equals(CANONICAL_EC_PREFIX[curve]);
  let publicKey: KeyObject;
  try {
    if (canonicalEc) {
      // The same key through JWK: node:crypto checks the point is on the curve either way,
      // and its JWK import skips OpenSSL 3's DER decoder (~40% cheaper).
      const n = POINT_OCTETS[curve] / 2;
      const xy = spkiTlv.subarray(CANONICAL_EC_PREFIX[curve].length);
      publicKey = createPublicKey({
        key: {
          kty: "EC",
          crv: curve,
          x: xy.subarray(0, n).toString("base64url"),
          y: xy.subarray(n).toString("base64url"),
        },
        format: "jwk",
      });
    } else publicKey = createPublicKey({ key: spkiTlv, format: "der", type: "spki" });
  } catch (cause) {
    throw new MayflyError("csr.malformed", "the public key does not decode", { field, cause });
  }

  if (type.keyType === "rsa") {
    const d = publicKey.asymmetricKeyDetails ?? {};
    const bits = d.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
      throw unsupported(field, `RSA key of ${bits} bits (allowed ${RSA_MIN_BITS}..${RSA_MAX_BITS})`);
    }
    if (d.publicExponent !== 65537n)
      throw unsupported(field, `RSA public exponent ${d.publicExponent} (must be 65537)`);
    // Each answer named member by member: on Node 20 `{ ...type, publicKey, spki }` (a
    // spread followed by members) costs µs.
    return { keyType: "rsa", bits, publicKey, spki: publicKey.export({ type: "spki", format: "der" }) };
  }
  // The leaf carries one canonical SPKI per key. The usual request already sends it (named
  // curve, uncompressed point): node:crypto has decoded and checked the point, and would
  // export the very same octets, so they are kept. Anything else (a compressed point) is
  // re-encoded through JWK. Both node:crypto round trips cost ~0.3 ms on OpenSSL 3.
  if (canonicalEc) return { keyType: "ec", curve, publicKey, spki: Buffer.from(spkiTlv) };
  const canonical = createPublicKey({ key: publicKey.export({ format: "jwk" }), format: "jwk" });
  return {
    keyType: "ec",
    curve: curve!,
    publicKey: canonical,
    spki: canonical.export({ type: "spki", format: "der" }),
  };
}
