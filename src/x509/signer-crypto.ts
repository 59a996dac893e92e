import { webcrypto } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, HashName } from "../keys/keystore.js";
import { TAG_SEQUENCE } from "./der.js";
import { DerReader } from "./der-reader.js";
import { type IssuerAlgorithm, issuerAlgorithm } from "./signature-algorithms.js";

// @peculiar/x509 signs through a WebCrypto `Crypto` and a CryptoKey. A CA key may sit
// in an HSM and is only reachable through CaSigner.sign, so this adapter offers a
// Crypto whose subtle.sign, for one placeholder key, calls the signer instead, and
// whose every other method is native WebCrypto (digests for key identifiers, public
// key import/export). The placeholder is the signer's public key imported into
// WebCrypto: a genuine CryptoKey carrying the right algorithm, which is all the
// generator reads from it, and which cannot sign anything by itself.

export interface SignerCrypto {
  crypto: webcrypto.Crypto;
  signingKey: webcrypto.CryptoKey;
  signingAlgorithm: IssuerAlgorithm["webcrypto"];
}

const native = webcrypto;

export async function signerCrypto(signer: CaSigner): Promise<SignerCrypto> {
  const alg = issuerAlgorithm(signer.spec);
  const spec = signer.spec;
  const importAlg = spec.kind === "ec" ? { name: "ECDSA", namedCurve: spec.curve } : alg.webcrypto;
  const signingKey = await native.subtle.importKey("spki", signer.spki, importAlg, true, ["verify"]);
  const coordinate = spec.kind === "ec" ? (spec.curve === "P-256" ? 32 : 48) : 0;

  async function sign(
    algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams | webcrypto.RsaPssParams,
    key: webcrypto.CryptoKey,
    data: webcrypto.BufferSource,
  ): Promise<ArrayBuffer> {
    if (key !== signingKey) return native.subtle.sign(algorithm, key, data);
    const name = typeof algorithm === "string" ? algorithm : algorithm.name;
    if (name.toUpperCase() !== alg.webcrypto.name.toUpperCase()) {
      throw new MayflyError("key.unsupported", `signer ${signer.label} cannot sign with ${name}`);
    }
    const hash = hashOf(algorithm) ?? alg.hash;
    const bytes = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    const sig = await signer.sign(bytes, hash);
    const out = coordinate ? derToP1363(sig, coordinate) : sig;
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
  }

  const subtle = new Proxy(native.subtle, {
    get(target, prop) {
      if (prop === "sign") return sign;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const crypto = {
    subtle,
    // Randomness is injected in Mayfly (serials come from a Random); a library call
    // that wants its own is a bug to surface, not to serve.
    getRandomValues(): never {
      throw new MayflyError("internal.error", "signerCrypto provides no randomness; pass serials explicitly");
    },
    randomUUID(): never {
      throw new MayflyError("internal.error", "signerCrypto provides no randomness");
    },
  } as unknown as webcrypto.Crypto;
  return { crypto, signingKey, signingAlgorithm: alg.webcrypto };
}

function hashOf(algorithm: unknown): HashName | undefined {
  if (typeof algorithm !== "object" || algorithm === null || !("hash" in algorithm)) return undefined;
  const h = (algorithm as { hash: unknown }).hash;
  const name = typeof h === "string" ? h : (h as { name?: string } | undefined)?.name;
  switch (name?.toUpperCase()) {
    case "SHA-256":
      return "sha256";
    case "SHA-384":
      return "sha384";
    default:
      throw new MayflyError("key.unsupported", `unsupported signature hash ${String(name)}`);
  }
}

/** Ecdsa-Sig-Value DER (what CaSigner returns) to r||s, each left-padded to `size`. */
export function derToP1363(der: Buffer, size: number): Buffer {
  const top = new DerReader(der, "internal.error", "Ecdsa-Sig-Value");
  const seq = top.enter(TAG_SEQUENCE, "Ecdsa-Sig-Value");
  top.end();
  const out = Buffer.alloc(2 * size);
  for (const [i, field] of [
    [0, "r"],
    [1, "s"],
  ] as const) {
    let v = seq.integerBytes(`Ecdsa-Sig-Value.${field}`);
    if (v[0]! & 0x80) seq.fail(`Ecdsa-Sig-Value.${field}`, `${field} is negative`);
    if (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > size) seq.fail(`Ecdsa-Sig-Value.${field}`, `${field} is longer than ${size} octets`);
    v.copy(out, i * size + size - v.length);
  }
  seq.end();
  return out;
}
