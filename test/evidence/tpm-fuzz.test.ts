import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import { tpmCertifyFormat } from "../../src/evidence/tpm-certify.js";
import { tpmQuoteFormat } from "../../src/evidence/tpm-quote.js";
import { marshalAttest, pcrSelectionOf, TPM_ALG } from "../../src/tpm/index.js";
import {
  AK_ATTRS,
  b64,
  binding,
  certifyAttestation,
  context,
  device,
  KEY_ATTRS,
  quoteAttest,
  simKey,
  tpmSign,
} from "./helpers/tpm-sim.js";

// Property: any change to a valid attestation's bytes (bit flip, truncation, extension) is
// refused with an attestation.* MayflyError; nothing else is thrown and nothing is accepted.

const ak = simKey("p256", AK_ATTRS);
const key = simKey("p256", KEY_ATTRS);
const ctx = context(device(ak), key);
const certify = certifyAttestation(ak, key, binding(key.spki));
const quoteBytes = marshalAttest(
  quoteAttest(ak, binding(key.spki), [pcrSelectionOf(TPM_ALG.SHA256, [0, 7])], Buffer.alloc(32, 5)),
);
const quote = { format: "tpm-quote", quoteInfo: b64(quoteBytes), signature: b64(tpmSign(ak, quoteBytes)) };

function mutate(bytes: Buffer, m: { kind: number; at: number; bit: number; tail: Uint8Array }): Buffer {
  const at = m.at % bytes.length;
  if (m.kind === 0) {
    const b = Buffer.from(bytes);
    b[at]! ^= 1 << m.bit;
    return b;
  }
  if (m.kind === 1) return bytes.subarray(0, at);
  return Buffer.concat([bytes, Buffer.from(m.tail)]);
}

const arb = fc.record({
  kind: fc.nat(2),
  at: fc.nat(),
  bit: fc.nat(7),
  tail: fc.uint8Array({ minLength: 1, maxLength: 8 }),
});

describe.each([
  ["tpm-certify", tpmCertifyFormat(), certify, ["keyPublic", "certifyInfo", "signature"]],
  ["tpm-quote", tpmQuoteFormat(), quote, ["quoteInfo", "signature"]],
] as const)("%s", (_, format, att, members) => {
  it("accepts the original", async () => {
    await expect(format.verify(att, ctx)).resolves.toBeTruthy();
  });

  it.each(members)("refuses every mutation of %s with an attestation.* code", async (member) => {
    const original = Buffer.from(att[member as keyof typeof att] as string, "base64url");
    await fc.assert(
      fc.asyncProperty(arb, async (m) => {
        const changed = { ...att, [member]: b64(mutate(original, m)) };
        const outcome = await format.verify(changed, ctx).then(
          () => "accepted",
          (e: unknown) => (isMayflyError(e) ? e.code : `not a MayflyError: ${String(e)}`),
        );
        expect(outcome).toMatch(/^attestation\./);
      }),
      { numRuns: 400 },
    );
  });
});
