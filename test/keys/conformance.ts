import { constants, createPublicKey, KeyObject, verify } from "node:crypto";
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ErrorCode } from "../../src/errors/index.js";
import type { CaSigner, HashName, KeySpec, KeyStore } from "../../src/keys/keystore.js";

export const ALL_SPECS: KeySpec[] = [
  { kind: "ec", curve: "P-256" },
  { kind: "ec", curve: "P-384" },
  { kind: "rsa", bits: 2048 },
  { kind: "rsa", bits: 3072 },
  { kind: "rsa", bits: 4096 },
];
const HASHES: HashName[] = ["sha256", "sha384"];
const P256: KeySpec = { kind: "ec", curve: "P-256" };

export async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<Error> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeDefined();
  expect((err as { code?: string }).code).toBe(code);
  return err as Error;
}

/** Verifies with node:crypto from the SPKI bytes alone, as a relying party would. */
export function verifies(signer: CaSigner, data: Buffer, sig: Buffer, hash: HashName): boolean {
  const key = createPublicKey({ key: signer.spki, format: "der", type: "spki" });
  return signer.spec.kind === "ec"
    ? verify(hash, data, { key, dsaEncoding: "der" }, sig)
    : verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
}

/** Every KeyObject reachable through own properties (enumerable or not, symbols too). */
function reachableKeyObjects(root: unknown): KeyObject[] {
  const seen = new Set<unknown>();
  const found: KeyObject[] = [];
  const walk = (v: unknown): void => {
    if (v === null || (typeof v !== "object" && typeof v !== "function") || seen.has(v)) return;
    seen.add(v);
    if (v instanceof KeyObject) found.push(v);
    for (const key of Reflect.ownKeys(v as object)) {
      const d = Object.getOwnPropertyDescriptor(v, key);
      if (d && "value" in d) walk(d.value);
    }
  };
  walk(root);
  return found;
}

export type KeyStoreConformanceOptions = {
  /** Closes `store` and opens a new one over the same keys, to prove persistence. */
  reopen?: (store: KeyStore) => Promise<KeyStore>;
};

/**
 * The KeyStore contract, written against the interface only. Every backend runs it:
 *
 *   runKeyStoreConformance("file", () => FileKeyStore.open({ dir, passphrase }), { reopen });
 *
 * `make` must return a store over a fresh, empty backend each time; the suite closes it.
 */
export function runKeyStoreConformance(
  name: string,
  make: () => Promise<KeyStore>,
  opts: KeyStoreConformanceOptions = {},
): void {
  describe(`KeyStore conformance: ${name}`, () => {
    let ks: KeyStore;
    beforeEach(async () => {
      ks = await make();
    });
    afterEach(async () => {
      await ks.close();
    });

    it("names its kind and starts empty", async () => {
      expect(ks.kind.length).toBeGreaterThan(0);
      expect(await ks.list()).toEqual([]);
      expect(await ks.has("root")).toBe(false);
    });

    it.each(ALL_SPECS)("generates, signs and reloads %j", async (spec) => {
      const data = Buffer.from(`to be signed by ${JSON.stringify(spec)}`);
      const label = `k-${spec.kind}-${"curve" in spec ? spec.curve : spec.bits}`;
      const gen = await ks.generate(label, spec);
      expect(gen.label).toBe(label);
      expect(gen.spec).toEqual(spec);
      expect(gen.publicKey.type).toBe("public");
      expect(gen.spki.equals(gen.publicKey.export({ type: "spki", format: "der" }))).toBe(true);
      const details = gen.publicKey.asymmetricKeyDetails ?? {};
      if (spec.kind === "ec") {
        expect(details.namedCurve).toBe(spec.curve === "P-256" ? "prime256v1" : "secp384r1");
      } else {
        expect(details.modulusLength).toBe(spec.bits);
        expect(details.publicExponent).toBe(65537n);
      }

      const signers = [gen, await ks.load(label)];
      if (opts.reopen) {
        ks = await opts.reopen(ks);
        signers.push(await ks.load(label));
      }
      for (const s of signers) {
        expect(s.spki.equals(gen.spki)).toBe(true);
        expect(s.spec).toEqual(spec);
        for (const hash of HASHES) {
          const sig = await s.sign(data, hash);
          if (spec.kind === "ec") {
            expect(sig[0]).toBe(0x30); // DER Ecdsa-Sig-Value, not IEEE P1363 r||s
            expect(sig[1]).toBe(sig.length - 2);
          } else {
            expect(sig.length).toBe(spec.bits / 8);
          }
          expect(verifies(s, data, sig, hash)).toBe(true);
          expect(verifies(s, Buffer.concat([data, Buffer.from([0])]), sig, hash)).toBe(false);
        }
      }
    });

    it("lists and reports labels", async () => {
      await ks.generate("b-intermediate", P256);
      await ks.generate("a-root", P256);
      expect([...(await ks.list())].sort()).toEqual(["a-root", "b-intermediate"]);
      expect(await ks.has("a-root")).toBe(true);
      expect(await ks.has("c-none")).toBe(false);
      if (opts.reopen) {
        ks = await opts.reopen(ks);
        expect([...(await ks.list())].sort()).toEqual(["a-root", "b-intermediate"]);
      }
    });

    it("refuses a taken label and keeps the original key", async () => {
      const first = await ks.generate("root", P256);
      await expectCode(ks.generate("root", P256), "key.exists");
      await expectCode(ks.generate("root", { kind: "rsa", bits: 2048 }), "key.exists");
      expect((await ks.load("root")).spki.equals(first.spki)).toBe(true);
    });

    it("lets exactly one of several concurrent generations of a label win", async () => {
      const results = await Promise.allSettled([1, 2, 3].map(() => ks.generate("race", P256)));
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason.code).toBe("key.exists");
      const winner = (won[0] as PromiseFulfilledResult<CaSigner>).value;
      expect((await ks.load("race")).spki.equals(winner.spki)).toBe(true);
    });

    it("answers key.not_found for an absent label", async () => {
      await expectCode(ks.load("absent"), "key.not_found");
    });

    it("validates labels on every call", async () => {
      const bad = [
        "",
        ".hidden",
        "..",
        "../escape",
        "a/b",
        "a\\b",
        "with space",
        "nul\u0000x",
        "é",
        "x".repeat(65),
      ];
      for (const label of bad) {
        await expectCode(() => ks.generate(label, P256), "key.label_invalid");
        await expectCode(() => ks.load(label), "key.label_invalid");
        await expectCode(() => ks.has(label), "key.label_invalid");
      }
      await ks.generate("x".repeat(64), P256);
      await ks.generate("root-20250101T000000Z.v2_a", P256);
    });

    it("refuses unsupported specs and hashes", async () => {
      const specs = [{ kind: "ec", curve: "P-521" }, { kind: "rsa", bits: 1024 }, { kind: "ed25519" }, null];
      for (const spec of specs)
        await expectCode(() => ks.generate("k", spec as unknown as KeySpec), "key.unsupported");
      expect(await ks.has("k")).toBe(false);
      const s = await ks.generate("k", P256);
      await expectCode(() => s.sign(Buffer.from("x"), "sha1" as HashName), "key.unsupported");
    });

    it("never exposes the private key through the signer", async () => {
      for (const s of [await ks.generate("secret", P256), await ks.load("secret")]) {
        for (const k of reachableKeyObjects(s)) expect(k.type).not.toBe("private");
        const views = [
          JSON.stringify(s),
          inspect(s, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
          String(s),
          JSON.stringify({ ...s }),
        ];
        for (const v of views) expect(v).not.toMatch(/PRIVATE|"d"|privateKey/i);
        expect(Object.keys(s).sort()).toEqual(expect.not.arrayContaining(["privateKey", "key"]));
      }
    });
  });
}
