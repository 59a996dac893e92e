import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Bundle, BundleEntry } from "../../src/authority/bundle.js";
import { bundlePem } from "../../src/authority/bundle.js";
import { toPem } from "../../src/authority/ca-state.js";
import { type IssuedParts, issuanceAnswers, leafPemJson } from "../../src/server/routes/issuance-answer.js";

// The issuance answers are built as text; they must be byte for byte what JSON.stringify
// gives for the objects the routes answered with before (and what express's res.json sends).

function entry(der: Buffer): BundleEntry {
  return { id: "x", slot: "current", pem: toPem(der), fingerprint: "", notBefore: "", notAfter: "" };
}

function bundleOf(...ders: Buffer[]): Bundle {
  return {
    trustDomain: "mayfly.internal",
    sequence: 1,
    issuedAt: new Date(0).toISOString(),
    roots: [entry(ders[0]!)],
    intermediates: ders.slice(1).map(entry),
    crossSigned: [],
    rotation: { state: "steady" },
    signatures: [],
  };
}

function expected(out: IssuedParts & { bundle: Bundle }): string {
  return JSON.stringify({
    certificate: toPem(out.der),
    chain: out.chain.map(toPem),
    serial: out.serial.toString("hex"),
    notBefore: new Date(out.notBefore).toISOString(),
    notAfter: new Date(out.notAfter).toISOString(),
    renewAfter: new Date(out.renewAfter).toISOString(),
    bundle: bundlePem(out.bundle),
  });
}

describe("issuance answers as text", () => {
  it("a leaf's PEM as a JSON string, at every length around the 48-byte line boundary", () => {
    for (let n = 1; n <= 600; n++) {
      const der = randomBytes(n);
      expect(leafPemJson(der), `${n} bytes`).toBe(JSON.stringify(toPem(der)));
    }
  });

  it("the certificate answer is JSON.stringify of the answer object, kept parts swapped when they change", () => {
    const answers = issuanceAnswers();
    const [root, mid, mid2] = [randomBytes(400), randomBytes(480), randomBytes(470)];
    let bundle = bundleOf(root, mid);
    const now = Date.UTC(2031, 4, 6, 7, 8, 9, 123);
    for (let i = 0; i < 40; i++) {
      // A rotation halfway: a new issuer Buffer and a new bundle object.
      if (i === 20) bundle = bundleOf(root, mid, mid2);
      const chain = i < 20 ? [mid] : i % 2 ? [mid2] : [mid2, mid];
      const out = {
        der: randomBytes(500 + i),
        chain,
        serial: randomBytes(16),
        notBefore: now - 30_000 + i,
        notAfter: now + 300_000 + i,
        renewAfter: now + 150_000 + i,
      };
      const text = answers.certificate(out, bundle);
      expect(text).toBe(expected({ ...out, bundle }));
    }
  });

  it("the challenge answer is JSON.stringify of { nonce, expiresAt }", () => {
    const answers = issuanceAnswers();
    for (let i = 0; i < 50; i++) {
      const nonce = randomBytes(32);
      const expiresAt = Date.UTC(2030, 0, 1) + i * 7919;
      expect(answers.challenge(nonce, expiresAt)).toBe(
        JSON.stringify({ nonce: nonce.toString("base64url"), expiresAt: new Date(expiresAt).toISOString() }),
      );
    }
  });
});
