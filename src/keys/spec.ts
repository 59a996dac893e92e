import { generateKeyPair, type KeyObject } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { HashName, KeySpec } from "./keystore.js";

const CURVES = { "P-256": "prime256v1", "P-384": "secp384r1" } as const;
const RSA_BITS = new Set([2048, 3072, 4096]);
const HASHES = new Set<string>(["sha256", "sha384"]);

export function specName(spec: KeySpec): string {
  return spec.kind === "ec" ? `ec-${spec.curve}` : `rsa-${spec.bits}`;
}

/** Callers may come from untyped config or CLI input, so the union is checked at runtime too. */
export function assertSpec(spec: unknown): asserts spec is KeySpec {
  const s = spec as Partial<{ kind: string; curve: string; bits: number }> | null;
  const ok =
    s !== null &&
    typeof s === "object" &&
    ((s.kind === "ec" && typeof s.curve === "string" && Object.hasOwn(CURVES, s.curve)) ||
      (s.kind === "rsa" && typeof s.bits === "number" && RSA_BITS.has(s.bits)));
  if (!ok) {
    throw new MayflyError("key.unsupported", `unsupported key spec ${JSON.stringify(spec)}`, {
      field: "spec",
    });
  }
}

export function assertHash(hash: unknown): asserts hash is HashName {
  if (typeof hash !== "string" || !HASHES.has(hash)) {
    throw new MayflyError("key.unsupported", `unsupported hash ${JSON.stringify(hash)}`, { field: "hash" });
  }
}

/** The spec of a key read back from storage; anything outside the allowed set is refused. */
export function specOf(key: KeyObject): KeySpec {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    for (const [curve, openssl] of Object.entries(CURVES)) {
      if (d.namedCurve === openssl) return { kind: "ec", curve: curve as keyof typeof CURVES };
    }
  }
  // Only e = 65537: small exponents are a classic foot-gun and nobody needs others.
  if (key.asymmetricKeyType === "rsa" && RSA_BITS.has(d.modulusLength ?? 0) && d.publicExponent === 65537n) {
    return { kind: "rsa", bits: d.modulusLength as 2048 | 3072 | 4096 };
  }
  throw new MayflyError(
    "key.unsupported",
    `stored key is ${key.asymmetricKeyType ?? "unknown"}, not an allowed spec`,
  );
}

export function sameSpec(a: KeySpec, b: KeySpec): boolean {
  return specName(a) === specName(b);
}

/** Generates a private key for `spec` on the libuv pool (RSA-4096 can take seconds). */
export function generatePrivateKey(spec: KeySpec): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (spec.kind === "ec") generateKeyPair("ec", { namedCurve: CURVES[spec.curve] }, done);
    else generateKeyPair("rsa", { modulusLength: spec.bits, publicExponent: 65537 }, done);
  });
}
