import { constants, type KeyObject, sign } from "node:crypto";
import { bitString, DER_NULL, integerSmall, oid, sequence, tlv } from "../../src/x509/der.js";

// Builds PKCS#10 requests by hand for the cases openssl will not make on purpose:
// explicit-NULL ECDSA parameters, weak hashes, odd exponents, wrong versions.

export interface CsrParts {
  spki: Buffer;
  key: KeyObject;
  /** Signature AlgorithmIdentifier DER. */
  alg: Buffer;
  hash: string;
  padding?: "pkcs1" | "pss";
  saltLength?: number;
  version?: number;
}

export function algId(id: string, params?: Buffer | "null"): Buffer {
  if (params === undefined) return sequence(oid(id));
  return sequence(oid(id), params === "null" ? DER_NULL : params);
}

export function buildCsr(p: CsrParts): Buffer {
  const cri = sequence(
    integerSmall(p.version ?? 0),
    sequence(tlv(0x31, sequence(oid("2.5.4.3"), tlv(0x0c, Buffer.from("agent"))))),
    p.spki,
    tlv(0xa0, []),
  );
  const signature =
    p.key.asymmetricKeyType === "ec"
      ? sign(p.hash, cri, { key: p.key, dsaEncoding: "der" })
      : sign(p.hash, cri, {
          key: p.key,
          padding: p.padding === "pss" ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
          saltLength: p.saltLength,
        });
  return sequence(cri, p.alg, bitString(signature));
}

/** The three top-level TLVs of a CSR, as raw slices. */
export function splitCsr(der: Buffer): { info: Buffer; alg: Buffer; sig: Buffer } {
  const items: Buffer[] = [];
  let o = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  while (o < der.length) {
    let len = der[o + 1]!;
    let h = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[o + 2 + i]!;
      h += n;
    }
    items.push(der.subarray(o, o + h + len));
    o += h + len;
  }
  const [info, alg, sig] = items as [Buffer, Buffer, Buffer];
  return { info, alg, sig };
}
