import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { readAgentKey } from "../../src/x509/agent-key.js";

// readAgentKey keeps an already-canonical EC SPKI as received (skipping a JWK round trip):
// what it returns must be exactly what the round trip through node:crypto gives.
describe("readAgentKey canonical EC SPKI", () => {
  it("returns node:crypto's own export for uncompressed P-256 and P-384 keys", () => {
    for (const curve of ["P-256", "P-384", "P-256", "P-384"]) {
      const spki = generateKeyPairSync("ec", { namedCurve: curve }).publicKey.export({
        type: "spki",
        format: "der",
      });
      const k = readAgentKey(spki, "spki");
      const roundTrip = createPublicKey({ key: k.publicKey.export({ format: "jwk" }), format: "jwk" }).export(
        {
          type: "spki",
          format: "der",
        },
      );
      expect(k.spki.equals(roundTrip)).toBe(true);
      expect(k.spki.equals(spki)).toBe(true);
      expect(k.spki.buffer).not.toBe(spki.buffer); // a copy, not a view of the request
    }
  });

  it("still refuses a point that is not on the curve", () => {
    const spki = Buffer.from(
      generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
    );
    spki[spki.length - 1] = spki[spki.length - 1]! ^ 1; // y off by one: not on P-256
    expect(() => readAgentKey(spki, "spki")).toThrow(/does not decode/);
  });
});
