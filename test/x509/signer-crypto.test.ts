import { createHash, webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signerCrypto } from "../../src/x509/index.js";
import { derToP1363 } from "../../src/x509/signer-crypto.js";
import { memorySigner } from "../helpers/memory-signer.js";

describe("signerCrypto adapter", () => {
  it("converts DER ECDSA signatures to fixed-width r||s", () => {
    // r = 1 (one octet), s = 0x80ff..ff (32 octets, so DER needs a 0x00 pad: 33)
    const s = Buffer.from(`80${"ff".repeat(31)}`, "hex");
    const derPadded = Buffer.concat([Buffer.from([0x30, 3 + 2 + 33, 2, 1, 1, 2, 33, 0]), s]);
    const out = derToP1363(derPadded, 32);
    expect(out.length).toBe(64);
    expect(out.subarray(0, 32).equals(Buffer.concat([Buffer.alloc(31), Buffer.from([1])]))).toBe(true);
    expect(out.subarray(32).equals(s)).toBe(true);
    expect(() => derToP1363(Buffer.concat([derPadded, Buffer.from([0])]), 32)).toThrow();
    expect(() => derToP1363(derPadded, 16)).toThrow();
  });

  for (const spec of [
    { kind: "ec", curve: "P-256" },
    { kind: "ec", curve: "P-384" },
    { kind: "rsa", bits: 2048 },
  ] as const) {
    it(`signs through the CaSigner for ${spec.kind} ${"curve" in spec ? spec.curve : spec.bits}`, async () => {
      const signer = memorySigner(spec);
      const sc = await signerCrypto(signer);
      expect(sc.signingKey.type).toBe("public"); // the placeholder can sign nothing itself
      const data = Buffer.from("tbs bytes");
      const sig = await sc.crypto.subtle.sign(sc.signingAlgorithm, sc.signingKey, data);
      const verifyKey = await webcrypto.subtle.importKey(
        "spki",
        signer.spki,
        spec.kind === "ec" ? { name: "ECDSA", namedCurve: spec.curve } : sc.signingAlgorithm,
        false,
        ["verify"],
      );
      expect(await webcrypto.subtle.verify(sc.signingAlgorithm, verifyKey, sig, data)).toBe(true);
      // Everything else is native WebCrypto.
      const digest = await sc.crypto.subtle.digest("SHA-256", data);
      expect(Buffer.from(digest).equals(createHash("sha256").update(data).digest())).toBe(true);
      const other = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
        "sign",
      ]);
      const otherSig = await sc.crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        other.privateKey,
        data,
      );
      expect(otherSig.byteLength).toBe(64);
      expect(() => sc.crypto.getRandomValues(new Uint8Array(4))).toThrow(/randomness/);
    });
  }
});
