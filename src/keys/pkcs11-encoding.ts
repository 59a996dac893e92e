import { createPublicKey, type KeyObject } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { DerReader, seq, TAG, tlv } from "./der.js";
import type { HashName } from "./keystore.js";

type Curve = "P-256" | "P-384";

/** CKA_EC_PARAMS is the DER of the curve's OID (namedCurve form). */
export const EC_PARAMS: Record<Curve, Buffer> = {
  "P-256": Buffer.from("06082a8648ce3d030107", "hex"), // 1.2.840.10045.3.1.7
  "P-384": Buffer.from("06052b81040022", "hex"), // 1.3.132.0.34
};
export const COORD_BYTES: Record<Curve, number> = { "P-256": 32, "P-384": 48 };

export function curveOfParams(params: Buffer): Curve {
  for (const [curve, der] of Object.entries(EC_PARAMS)) if (der.equals(params)) return curve as Curve;
  throw new MayflyError(
    "key.unsupported",
    `token key is on an unsupported curve (CKA_EC_PARAMS ${params.toString("hex")})`,
  );
}

/**
 * The uncompressed point from CKA_EC_POINT. PKCS#11 says it is DER (an OCTET STRING
 * around the point), which SoftHSM follows; some tokens give the bare point. The two
 * are told apart by length, which is unambiguous for a known curve.
 */
export function ecPoint(attr: Buffer, curve: Curve): Buffer {
  const n = COORD_BYTES[curve];
  let point = attr;
  if (attr.length !== 2 * n + 1) {
    try {
      const r = new DerReader(attr, "CKA_EC_POINT");
      point = r.read(TAG.OCTET_STRING, "point");
      r.end();
    } catch {
      point = Buffer.alloc(0);
    }
  }
  if (point.length !== 2 * n + 1 || point[0] !== 0x04) {
    throw new MayflyError("key.unsupported", `CKA_EC_POINT is not an uncompressed ${curve} point`);
  }
  return point;
}

const b64u = (b: Buffer): string => b.toString("base64url");

/** node:crypto checks that the point is on the curve; a bad point fails here, not in a relying party. */
export function ecPublicKey(curve: Curve, point: Buffer): KeyObject {
  const n = COORD_BYTES[curve];
  return createPublicKey({
    key: { kty: "EC", crv: curve, x: b64u(point.subarray(1, 1 + n)), y: b64u(point.subarray(1 + n)) },
    format: "jwk",
  });
}

export function rsaPublicKey(modulus: Buffer, exponent: Buffer): KeyObject {
  const strip = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i);
  };
  return createPublicKey({
    key: { kty: "RSA", n: b64u(strip(modulus)), e: b64u(strip(exponent)) },
    format: "jwk",
  });
}

/** An unsigned big-endian integer as a minimal DER INTEGER. */
function derUint(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = v.subarray(i);
  return tlv(TAG.INTEGER, (body[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

/**
 * CKM_ECDSA answers r || s, each as wide as the curve's order (PKCS#11 §2.3.1);
 * X.509 carries Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
 */
export function ecdsaRawToDer(raw: Buffer, coordBytes: number): Buffer {
  if (raw.length !== 2 * coordBytes) {
    throw new MayflyError(
      "key.token_failed",
      `the token returned a ${raw.length}-byte ECDSA signature, expected ${2 * coordBytes}`,
    );
  }
  const r = raw.subarray(0, coordBytes);
  const s = raw.subarray(coordBytes);
  if (r.every((b) => b === 0) || s.every((b) => b === 0)) {
    throw new MayflyError("key.token_failed", "the token returned an ECDSA signature with r or s zero");
  }
  return seq(derUint(r), derUint(s));
}

// DigestInfo ::= SEQUENCE { AlgorithmIdentifier { hash OID, NULL }, OCTET STRING digest } (RFC 8017 §9.2 note 1)
const DIGEST_INFO_PREFIX: Record<HashName, Buffer> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
};

/** The input of CKM_RSA_PKCS for a PKCS#1 v1.5 signature over an already computed digest. */
export function digestInfo(hash: HashName, digest: Buffer): Buffer {
  return Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]);
}
