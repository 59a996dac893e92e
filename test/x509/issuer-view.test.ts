import { describe, expect, it } from "vitest";
import { issuerView } from "../../src/x509/leaf-check.js";
import { makeIssuer } from "./fixtures.js";

// issuerView is read once per issuer certificate: by Buffer identity, and by content for a
// caller that hands in a fresh copy each time (a store re-read), so no issuance pays the
// @peculiar parse. A different certificate is never served another's view.
describe("issuerView cache", () => {
  it("serves a fresh copy of the same certificate from the cache, and another certificate its own view", async () => {
    const a = await makeIssuer("P-256");
    const b = await makeIssuer("P-256");
    const va = issuerView(a.certificateDer);
    expect(issuerView(Buffer.from(a.certificateDer))).toBe(va);
    const vb = issuerView(Buffer.from(b.certificateDer));
    expect(vb).not.toBe(va);
    expect(vb.ski.equals(va.ski)).toBe(false);
    expect(vb.publicKey.equals(b.signer.publicKey)).toBe(true);
    expect(va.publicKey.equals(a.signer.publicKey)).toBe(true);
  });
});
