import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyEkTrust } from "../../src/devices/ek-trust.js";
import { EkTrustStore, loadEkTrustStore } from "../../src/devices/ek-trust-store.js";
import { isMayflyError } from "../../src/errors/index.js";
import { ekFx, ekPublicForCert, NOW, TRUST_DIR, tpmFx } from "./helpers/ek-fixtures.js";

// Property: whatever bytes arrive as an EK certificate (bit flips, truncations, extensions of
// real ones), verifyEkTrust either accepts the original or rejects with a device.* / tpm.*
// MayflyError; it never throws anything else, never hangs, and never accepts altered bytes
// other than NV padding.

const SEEDS = [
  ["real/stm-st33htph-ek-ecc-p256.der", null],
  ["real/nuvoton-npct75x-ek-rsa-NONDER-set-ordering.der", null],
  ["swtpm/ecc256.cert.der", "swtpm/ek/ecc256.pub"],
] as const;

let shipped: EkTrustStore;
let swtpm: EkTrustStore;
beforeAll(async () => {
  shipped = await loadEkTrustStore(TRUST_DIR);
  swtpm = EkTrustStore.fromCertificates({
    roots: [ekFx("swtpm/ca-root.pem")],
    intermediates: [ekFx("swtpm/ca-intermediate.pem")],
  });
});

const mutation = (len: number) =>
  fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(len - 1), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat(len - 1) }),
    fc.record({ kind: fc.constant("append" as const), tail: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  );

describe("EK certificate robustness", () => {
  it.each(SEEDS)("%s: mutated certificates fail with a typed error", async (certPath, pubPath) => {
    const der = ekFx(certPath);
    const ekPublic = pubPath ? tpmFx(pubPath) : ekPublicForCert(der);
    const store = pubPath ? swtpm : shipped;
    await expect(verifyEkTrust({ ekPublic, ekCertificate: der }, { store, now: NOW })).resolves.toBeTruthy();
    await fc.assert(
      fc.asyncProperty(mutation(der.length), async (m) => {
        let bytes: Buffer;
        if (m.kind === "flip") {
          bytes = Buffer.from(der);
          bytes[m.at]! ^= 1 << m.bit;
        } else if (m.kind === "cut") bytes = der.subarray(0, m.at);
        else bytes = Buffer.concat([der, Buffer.from(m.tail)]);
        try {
          await verifyEkTrust({ ekPublic, ekCertificate: bytes }, { store, now: NOW });
          // Only NV padding may be added to a certificate that is still accepted.
          expect(m.kind === "append" && Buffer.from(m.tail).every((b) => b === 0xff || b === 0)).toBe(true);
        } catch (e) {
          expect(isMayflyError(e), String(e)).toBe(true);
          if (isMayflyError(e)) expect(e.code).toMatch(/^(device\.ek_untrusted|device\.ek_mismatch|tpm\.)/);
        }
      }),
      { numRuns: 300 },
    );
  });
});
