import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { HashName } from "../../src/keys/keystore.js";
import { oid } from "../../src/x509/der.js";
import {
  checkLeaf,
  checkLeafFast,
  createLeafEncoder,
  type LeafEncoder,
  type LeafInput,
  newSerial,
} from "../../src/x509/index.js";
import { buildReferenceLeaf, signatureOf, tbsOf } from "../../src/x509/leaf-reference.js";
import { OID_MAYFLY_ASSURANCE } from "../../src/x509/oids.js";
import { type AgentKeyFixture, agentKeyPool, makeIssuer, type TestIssuer } from "./fixtures.js";

// The fast encoder against @peculiar/x509 on random inputs: the TBS must be
// byte-identical, and so must the whole certificate once the fast path is handed the
// reference's own signature (ECDSA signatures are randomized, so that is the only way
// to compare the complete DER). Each case is also signed for real and passed through
// checkLeaf. CI runs at least 1,000 cases; MAYFLY_PROPERTY_RUNS raises it locally.
// A second run repeats it with a configured short assurance OID (ca.assuranceExtensionOid).
const RUNS = Math.max(1000, Number(process.env.MAYFLY_PROPERTY_RUNS ?? 0));
const PEN_RUNS = Math.max(300, Math.floor(RUNS / 3));
/** Under IANA's documentation PEN 32473 (RFC 5612). */
const PEN_OID = "1.3.6.1.4.1.32473.1";

const MIN_MS = Date.UTC(1950, 0, 1);
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const Y2050 = Date.UTC(2050, 0, 1);
const DAY = 86_400_000;

const instant = fc.oneof(
  fc.integer({ min: MIN_MS, max: MAX_MS }),
  fc.integer({ min: Y2050 - 2 * DAY, max: Y2050 + 2 * DAY }), // the UTCTime/GeneralizedTime switch
  fc.integer({ min: Y2050 - 2000, max: Y2050 + 2000 }),
  fc.integer({ min: MIN_MS, max: MIN_MS + DAY }),
  fc.integer({ min: MAX_MS - DAY, max: MAX_MS }),
  fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2049, 11, 31) }),
);
const validity = fc
  .tuple(
    instant,
    fc.oneof(fc.integer({ min: 0, max: 10 * 60_000 }), fc.integer({ min: 0, max: 200 * 365 * DAY })),
  )
  .map(([nb, d]) => [nb, Math.min(nb + d, MAX_MS)] as const);

const TD = "abcdefghijklmnopqrstuvwxyz0123456789.-_".split("");
const SEG = [...TD, ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ"];
const segment = fc
  .oneof(
    fc.string({ unit: fc.constantFrom(...SEG), minLength: 1, maxLength: 12 }),
    fc.string({ unit: fc.constantFrom(...SEG), minLength: 100, maxLength: 400 }), // > 127 and > 255 octets
  )
  .filter((s) => s !== "." && s !== "..");
const spiffeId = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...TD), minLength: 1, maxLength: 40 }),
    fc.array(segment, { maxLength: 4 }),
  )
  .map(([td, path]) => `spiffe://${[td, ...path].join("/")}`)
  .filter((s) => s.length <= 2048);

const id = fc
  .oneof(
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
    fc.string({ minLength: 100, maxLength: 300 }),
  )
  .filter((s) => s.length > 0 && Buffer.byteLength(s, "utf8") <= 1024);

describe("fast leaf encoder vs @peculiar/x509", () => {
  let issuers: TestIssuer[];
  let keys: AgentKeyFixture[];
  // Keyed by issuer name and assurance OID.
  const encoders = new Map<string, { fake: LeafEncoder; real: LeafEncoder }>();
  // What the fake signer returns next, and the TBS it was last asked to sign.
  let nextSignature: Buffer = Buffer.alloc(0);
  let signedTbs: Buffer = Buffer.alloc(0);

  beforeAll(async () => {
    issuers = await Promise.all([makeIssuer("P-256"), makeIssuer("P-384"), makeIssuer("RSA-2048")]);
    keys = agentKeyPool();
    for (const iss of issuers) {
      const fakeSigner = {
        ...iss.signer,
        async sign(data: Uint8Array, _hash: HashName) {
          signedTbs = Buffer.from(data);
          return nextSignature;
        },
      };
      encoders.set(`${iss.name} ${OID_MAYFLY_ASSURANCE}`, {
        fake: createLeafEncoder({ certificateDer: iss.certificateDer, signer: fakeSigner }),
        real: createLeafEncoder({ certificateDer: iss.certificateDer, signer: iss.signer }),
      });
      encoders.set(`${iss.name} ${PEN_OID}`, {
        fake: createLeafEncoder({
          certificateDer: iss.certificateDer,
          signer: fakeSigner,
          assuranceOid: PEN_OID,
        }),
        real: createLeafEncoder({
          certificateDer: iss.certificateDer,
          signer: iss.signer,
          assuranceOid: PEN_OID,
        }),
      });
    }
  });

  /** One property run; `assuranceOid` undefined means the default, as callers that pass none get. */
  async function differential(runs: number, assuranceOid: string | undefined): Promise<void> {
    const oidText = assuranceOid ?? OID_MAYFLY_ASSURANCE;
    const oidDer = oid(oidText);
    const otherDer = oid(assuranceOid ? OID_MAYFLY_ASSURANCE : PEN_OID);
    const stats = { generalized: 0, longSan: 0, kinds: new Set<string>() };
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        validity,
        spiffeId,
        fc.record({ ownerId: id, deviceId: id, agentId: id }),
        fc.oneof(fc.constantFrom("tpm-certify", "tpm-quote"), id),
        fc.constantFrom("tpm" as const, "bound" as const),
        fc.nat(),
        fc.nat(),
        async (serialBytes, [notBefore, notAfter], spiffe, ids, attestationFormat, keyResidency, ki, ii) => {
          const key = keys[ki % keys.length]!;
          const issuer = issuers[ii % issuers.length]!;
          const input: LeafInput = {
            serial: newSerial({ bytes: () => Buffer.from(serialBytes) }),
            notBefore,
            notAfter,
            spki: key.spki,
            spiffeId: spiffe,
            assurance: { ...ids, attestationFormat, keyResidency },
          };
          const enc = encoders.get(`${issuer.name} ${oidText}`)!;
          const reference = await buildReferenceLeaf({ ...issuer.reference, assuranceOid }, input);
          const referenceTbs = tbsOf(reference);

          const tbs = enc.fake.encodeTbs(input);
          expect(tbs.equals(referenceTbs)).toBe(true);
          expect(tbs.includes(oidDer)).toBe(true);
          expect(tbs.includes(otherDer)).toBe(false);
          nextSignature = signatureOf(reference);
          const whole = await enc.fake.issue(input);
          expect(signedTbs.equals(referenceTbs)).toBe(true);
          expect(whole.equals(reference)).toBe(true);

          const real = await enc.real.issue(input);
          const expected = { issuerCertificate: issuer.certificateDer, leaf: input, assuranceOid };
          checkLeaf(real, expected);
          // The hot path's check accepts exactly what the reference accepts: the real leaf,
          // the @peculiar-built one, and neither once any field is off by one.
          checkLeafFast(real, expected);
          checkLeafFast(reference, expected);
          const off = { ...input, notAfter: input.notAfter + 1000, spiffeId: `${input.spiffeId}x` };
          for (const check of [checkLeaf, checkLeafFast]) {
            expect(() => check(real, { ...expected, leaf: off })).toThrow(/profile_violation/);
          }

          if (notAfter >= Y2050) stats.generalized++;
          if (spiffe.length > 255) stats.longSan++;
          stats.kinds.add(`${issuer.name}/${key.kind}`);
        },
      ),
      { numRuns: runs },
    );
    // The generators must actually reach the interesting regions.
    expect(stats.generalized).toBeGreaterThan(runs / 20);
    expect(stats.longSan).toBeGreaterThan(runs / 20);
    expect(stats.kinds.size).toBe(9);
  }

  it(`is byte-identical on ${RUNS} random leaves`, () => differential(RUNS, undefined), 120_000);

  it(
    `is byte-identical on ${PEN_RUNS} random leaves under the configured OID ${PEN_OID}`,
    () => differential(PEN_RUNS, PEN_OID),
    120_000,
  );
});
