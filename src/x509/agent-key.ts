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

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiTlv, format: "der", type: "spki" });
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
    type = { keyType: "rsa", bits };
    return { ...type, publicKey, spki: publicKey.export({ type: "spki", format: "der" }) };
  }
  // Round-trip through JWK so the point is re-encoded uncompressed, whatever form the
  // request used: the leaf carries one canonical SPKI per key.
  const canonical = createPublicKey({ key: publicKey.export({ format: "jwk" }), format: "jwk" });
  return { ...type, publicKey: canonical, spki: canonical.export({ type: "spki", format: "der" }) };
}
