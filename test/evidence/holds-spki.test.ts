import { generateKeyPairSync, type KeyObject } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { holdsSpki } from "../../src/evidence/tpm-keys.js";
import {
  keyParamsFromKeyObject,
  rsaExponent,
  TPM_ALG,
  TPM_ECC_CURVE,
  type TpmtPublic,
} from "../../src/tpm/index.js";
import { readCsr } from "../../src/x509/index.js";
import { algId, buildCsr } from "../x509/csr-builder.js";

// holdsSpki (certified key == CSR key, byte for byte against the CSR's canonical SPKI)
// replaced holdsKey, which exported the CSR KeyObject to JWK and compared the numbers.
// The reference below is that old function, verbatim in logic: on generated keys and on
// mutated TPM public areas the two must answer the same.

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

const JWK_CURVES: ReadonlyMap<number, string> = new Map([
  [TPM_ECC_CURVE.NIST_P256, "P-256"],
  [TPM_ECC_CURVE.NIST_P384, "P-384"],
]);

function holdsKeyReference(pub: TpmtPublic, key: KeyObject): boolean {
  const jwk = key.export({ format: "jwk" });
  if (pub.type === TPM_ALG.RSA) {
    if (jwk.kty !== "RSA" || !jwk.n || !jwk.e) return false;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(rsaExponent(pub));
    return (
      stripZeros(Buffer.from(jwk.n, "base64url")).equals(stripZeros(pub.unique)) &&
      stripZeros(Buffer.from(jwk.e, "base64url")).equals(stripZeros(e))
    );
  }
  if (jwk.kty !== "EC" || !jwk.x || !jwk.y || jwk.crv !== JWK_CURVES.get(pub.curveId)) return false;
  return (
    stripZeros(Buffer.from(jwk.x, "base64url")).equals(stripZeros(pub.unique.x)) &&
    stripZeros(Buffer.from(jwk.y, "base64url")).equals(stripZeros(pub.unique.y))
  );
}

interface Key {
  publicKey: KeyObject;
  spki: Buffer;
  pub: TpmtPublic;
}

function tpmPublic(publicKey: KeyObject): TpmtPublic {
  const params = keyParamsFromKeyObject(publicKey);
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: 0,
    authPolicy: Buffer.alloc(0),
    symmetric: null,
    scheme: null,
    ...(params.type === TPM_ALG.ECC ? { kdf: null } : {}),
    ...params,
  } as TpmtPublic;
}

const keys: Key[] = [];

beforeAll(() => {
  const pairs = [
    ...Array.from({ length: 6 }, () => generateKeyPairSync("ec", { namedCurve: "prime256v1" })),
    ...Array.from({ length: 3 }, () => generateKeyPairSync("ec", { namedCurve: "secp384r1" })),
    ...Array.from({ length: 2 }, () => generateKeyPairSync("rsa", { modulusLength: 2048 })),
    generateKeyPairSync("rsa", { modulusLength: 3072, publicExponent: 3 }),
  ];
  for (const { publicKey } of pairs) {
    // The SPKI as readCsr returns it (the canonical one the format compares against).
    const csr = buildCsr({
      spki: publicKey.export({ type: "spki", format: "der" }),
      key: pairs.find((p) => p.publicKey === publicKey)!.privateKey,
      alg: algId(publicKey.asymmetricKeyType === "ec" ? "1.2.840.10045.4.3.2" : "1.2.840.113549.1.1.11"),
      hash: "sha256",
    });
    let spki: Buffer;
    try {
      spki = readCsr(csr).spki;
    } catch {
      spki = publicKey.export({ type: "spki", format: "der" }); // e = 3 is refused by key policy
    }
    keys.push({ publicKey, spki, pub: tpmPublic(publicKey) });
  }
}, 60_000);

type Mutation =
  | { kind: "none" }
  | { kind: "flip"; coord: "x" | "y" | "n"; at: number; bit: number }
  | { kind: "strip"; coord: "x" | "y" | "n" }
  | { kind: "pad"; coord: "x" | "y" | "n" }
  | { kind: "truncate"; coord: "x" | "y" | "n" }
  | { kind: "empty"; coord: "x" | "y" | "n" }
  | { kind: "curve"; curveId: number }
  | { kind: "exponent"; e: number };

function mutateBytes(b: Buffer, m: Mutation): Buffer {
  switch (m.kind) {
    case "flip": {
      const out = Buffer.from(b);
      if (out.length > 0) out[m.at % out.length]! ^= 1 << m.bit;
      return out;
    }
    case "strip":
      // Zero the top octet, then drop it: a different number, written short.
      return stripZeros(Buffer.concat([Buffer.alloc(1), b.subarray(1)]));
    case "pad":
      return Buffer.concat([Buffer.alloc(1), b]);
    case "truncate":
      return b.subarray(1);
    case "empty":
      return Buffer.alloc(0);
    default:
      return b;
  }
}

function mutate(pub: TpmtPublic, m: Mutation): TpmtPublic {
  if (m.kind === "none") return pub;
  if (pub.type === TPM_ALG.RSA) {
    if (m.kind === "exponent") return { ...pub, exponent: m.e };
    if (m.kind === "curve") return pub;
    return { ...pub, unique: mutateBytes(pub.unique, m) };
  }
  if (m.kind === "curve") return { ...pub, curveId: m.curveId };
  if (m.kind === "exponent") return pub;
  const coord = m.coord === "y" ? "y" : "x";
  return { ...pub, unique: { ...pub.unique, [coord]: mutateBytes(pub.unique[coord], m) } };
}

const coord = fc.constantFrom("x" as const, "y" as const, "n" as const);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({
    kind: fc.constant("flip" as const),
    coord,
    at: fc.nat(600),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant("strip" as const), coord }),
  fc.record({ kind: fc.constant("pad" as const), coord }),
  fc.record({ kind: fc.constant("truncate" as const), coord }),
  fc.record({ kind: fc.constant("empty" as const), coord }),
  fc.record({
    kind: fc.constant("curve" as const),
    curveId: fc.constantFrom(
      TPM_ECC_CURVE.NIST_P256,
      TPM_ECC_CURVE.NIST_P384,
      TPM_ECC_CURVE.NIST_P521,
      0x0010,
    ),
  }),
  fc.record({ kind: fc.constant("exponent" as const), e: fc.constantFrom(0, 3, 65537, 65539, 0x10001) }),
);

describe("holdsSpki (certified key == CSR key)", () => {
  it("holds its own key and no other key", () => {
    for (const a of keys) {
      for (const b of keys) {
        expect(holdsSpki(a.pub, b.spki)).toBe(a === b);
        expect(holdsSpki(a.pub, b.spki)).toBe(holdsKeyReference(a.pub, b.publicKey));
      }
    }
  });

  it("answers as the JWK comparison it replaced on mutated TPM public areas", () => {
    fc.assert(
      fc.property(
        fc.nat(keys.length - 1),
        fc.nat(keys.length - 1),
        mutation,
        fc.boolean(),
        (i, j, m, same) => {
          const tpm = keys[i]!;
          const csr = same ? tpm : keys[j]!;
          const pub = mutate(tpm.pub, m);
          expect(holdsSpki(pub, csr.spki)).toBe(holdsKeyReference(pub, csr.publicKey));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("never matches a non-canonical SPKI of the same key (compressed point)", () => {
    const k = keys[0]!;
    const jwk = k.publicKey.export({ format: "jwk" });
    const y = Buffer.from(jwk.y!, "base64url");
    const x = Buffer.from(jwk.x!, "base64url");
    const compressed = Buffer.concat([
      Buffer.from("3039301306072a8648ce3d020106082a8648ce3d030107032200", "hex"),
      Buffer.from([2 + (y[31]! & 1)]),
      x,
    ]);
    expect(holdsSpki(k.pub, compressed)).toBe(false);
    expect(holdsSpki(k.pub, k.spki)).toBe(true);
    expect(holdsSpki(k.pub, Buffer.concat([k.spki, Buffer.alloc(1)]))).toBe(false);
    expect(holdsSpki(k.pub, k.spki.subarray(0, k.spki.length - 1))).toBe(false);
  });
});
