import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { type ErrorCode, isMayflyError, type MayflyError } from "../../src/errors/index.js";
import { type PcrPolicy, pcrPolicySchema, readPcrPolicy } from "../../src/evidence/pcr-policy.js";
import { type AttestationSigner, deviceSigner } from "../../src/evidence/tpm-common.js";
import { parsePcrValues, tpmQuoteFormat, verifyTpmQuote } from "../../src/evidence/tpm-quote.js";
import {
  computePcrDigest,
  marshalAttest,
  objectName,
  pcrSelectionOf,
  publicKeyObject,
  TPM_ALG,
  type TpmsAttest,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import {
  AK_ATTRS,
  b64,
  binding,
  certifyAttest,
  context,
  device,
  KEY_ATTRS,
  profile,
  quoteAttest,
  type SimKey,
  simKey,
  tpmSign,
} from "./helpers/tpm-sim.js";

const FX = fileURLToPath(new URL("../fixtures/tpm/", import.meta.url));
const fx = (p: string) => readFileSync(FX + p);
const hex = (p: string) => Buffer.from(fx(p).toString("utf8").trim(), "hex");

async function expectCode(
  p: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  field?: string,
): Promise<MayflyError> {
  let caught: unknown = null;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    caught = e;
  }
  expect(isMayflyError(caught), `expected ${code}, got ${String(caught)}`).toBe(true);
  const e = caught as MayflyError;
  expect(e.code, e.message).toBe(code);
  if (field) expect(e.field).toBe(field);
  return e;
}

const PCRS = [0, 1, 2, 3, 7];

function policyOf(values: Record<number, Buffer>, bank = "sha256"): PcrPolicy {
  const raw = {
    bank,
    pcrs: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.toString("hex")])),
  };
  return readPcrPolicy(profile({ pcrPolicy: raw }))!;
}

describe("tpm-quote on real swtpm quotes (tpm2_quote -l sha256:0,1,2,3,7)", () => {
  const values = fx("swtpm/quote/rsa2048.pcrvalues.bin");
  const pcr = (i: number) => values.subarray(PCRS.indexOf(i) * 32, PCRS.indexOf(i) * 32 + 32);
  const all = Object.fromEntries(PCRS.map((i) => [i, pcr(i)]));
  const signer = (t: "rsa2048" | "ecc384"): AttestationSigner =>
    deviceSigner(device({ tpm2b: fx(`swtpm/ak/${t}.pub`), name: fx(`swtpm/ak/${t}.name`) }));
  const quote = (t: "rsa2048" | "ecc384") => ({
    quoteInfo: fx(`swtpm/quote/${t}.msg`),
    signature: fx(`swtpm/quote/${t}.sig`),
  });
  const x = (t: "rsa2048" | "ecc384", pcrPolicy: PcrPolicy | null = null) => ({
    signer: signer(t),
    extraData: hex(`swtpm/quote/${t}.nonce.hex`),
    pcrPolicy,
  });
  const pcrValues = (v: Record<number, Buffer>) =>
    parsePcrValues({ sha256: Object.fromEntries(Object.entries(v).map(([k, b]) => [k, b.toString("hex")])) });

  it.each(["rsa2048", "ecc384"] as const)("AK %s: verifies, reports the selection and digest", (t) => {
    const facts = verifyTpmQuote(quote(t), x(t));
    expect(facts).toMatchObject({
      format: "tpm-quote",
      keyResidency: "bound",
      details: { pcrSelection: "sha256:0,1,2,3,7", pcrPolicy: "none", pcrValuesVerified: false },
    });
    expect(facts.details.pcrDigest).toBe(
      createHash("sha256")
        .update(fx(`swtpm/quote/${t}.pcrvalues.bin`))
        .digest("hex"),
    );
  });

  it("pcrValues are checked against pcrDigest", async () => {
    expect(
      verifyTpmQuote({ ...quote("rsa2048"), pcrValues: pcrValues(all) }, x("rsa2048")).details
        .pcrValuesVerified,
    ).toBe(true);
    await expectCode(
      () =>
        verifyTpmQuote(
          { ...quote("rsa2048"), pcrValues: pcrValues({ ...all, 7: Buffer.alloc(32) }) },
          x("rsa2048"),
        ),
      "attestation.pcr_mismatch",
      "attestation.pcrValues",
    );
    const { 7: _, ...missing7 } = all;
    await expectCode(
      () => verifyTpmQuote({ ...quote("rsa2048"), pcrValues: pcrValues(missing7) }, x("rsa2048")),
      "attestation.pcr_mismatch",
    );
    await expectCode(
      () =>
        verifyTpmQuote(
          { ...quote("rsa2048"), pcrValues: pcrValues({ ...all, 8: Buffer.alloc(32) }) },
          x("rsa2048"),
        ),
      "attestation.malformed",
      "attestation.pcrValues",
    );
  });

  it("a PCR policy holding the quoted values matches; one changed value does not", async () => {
    const ok = verifyTpmQuote(quote("rsa2048"), x("rsa2048", policyOf(all)));
    expect(ok.details.pcrPolicy).toBe("matched");
    const changed = { ...all, 0: Buffer.alloc(32, 0xaa) };
    await expectCode(
      () => verifyTpmQuote(quote("rsa2048"), x("rsa2048", policyOf(changed))),
      "attestation.pcr_mismatch",
      "attestation.quoteInfo.attested.quote.pcrDigest",
    );
    await expectCode(
      () =>
        verifyTpmQuote({ ...quote("rsa2048"), pcrValues: pcrValues(all) }, x("rsa2048", policyOf(changed))),
      "attestation.pcr_mismatch",
    );
  });

  it("a policy PCR the quote does not select", async () => {
    await expectCode(
      () => verifyTpmQuote(quote("rsa2048"), x("rsa2048", policyOf({ ...all, 8: Buffer.alloc(32) }))),
      "attestation.pcr_mismatch",
      "attestation.quoteInfo.attested.quote.pcrSelect",
    );
    await expectCode(
      () => verifyTpmQuote(quote("rsa2048"), x("rsa2048", policyOf({ 0: Buffer.alloc(48) }, "sha384"))),
      "attestation.pcr_mismatch",
    );
  });

  it("a policy on a subset of the quoted PCRs needs pcrValues for the rest", async () => {
    const subset = policyOf({ 0: pcr(0), 7: pcr(7) });
    await expectCode(
      () => verifyTpmQuote(quote("rsa2048"), x("rsa2048", subset)),
      "attestation.pcr_mismatch",
    );
    const facts = verifyTpmQuote({ ...quote("rsa2048"), pcrValues: pcrValues(all) }, x("rsa2048", subset));
    expect(facts.details.pcrPolicy).toBe("matched");
  });

  it("through the format, the real quote stops at the binding", async () => {
    const k = simKey("p256", KEY_ATTRS);
    const att = {
      format: "tpm-quote",
      quoteInfo: b64(quote("rsa2048").quoteInfo),
      signature: b64(quote("rsa2048").signature),
    };
    const dev = device({ tpm2b: fx("swtpm/ak/rsa2048.pub"), name: fx("swtpm/ak/rsa2048.name") });
    await expectCode(
      tpmQuoteFormat().verify(att, context(dev, k, { nonce: hex("swtpm/quote/rsa2048.nonce.hex") })),
      "attestation.nonce_mismatch",
    );
  });

  it("signed by another AK", async () => {
    await expectCode(
      () => verifyTpmQuote(quote("rsa2048"), { ...x("rsa2048"), signer: signer("ecc384") }),
      "attestation.signer_mismatch",
    );
  });
});

describe("tpm-quote on real cloud vTPM quotes", () => {
  it("Google GCE vTPM, SHA-256 bank of PCRs 0-23, RSASSA-SHA256 AK, with a policy on PCRs 0-23", () => {
    const ak = unmarshalTpmtPublic(fx("real/gce-vtpm/ak_pub.tpmt_public.bin"));
    const signer = {
      key: publicKeyObject(ak),
      nameAlg: ak.nameAlg,
      name: objectName(ak),
      qualifiedName: null,
    };
    const decoded = JSON.parse(fx("real/gce-vtpm/pb-decoded.json").toString()) as {
      quotes: Array<{ pcrHashAlgo: number; pcrs: Record<string, string> }>;
    };
    const bank = decoded.quotes[1]!;
    expect(bank.pcrHashAlgo).toBe(TPM_ALG.SHA256);
    const pcrPolicy = readPcrPolicy(profile({ pcrPolicy: { bank: "sha256", pcrs: bank.pcrs } }));
    const facts = verifyTpmQuote(
      {
        quoteInfo: fx("real/gce-vtpm/quote-1.tpms_attest.bin"),
        signature: fx("real/gce-vtpm/quote-1.tpmt_signature.bin"),
      },
      { signer, extraData: Buffer.from("9009", "hex"), pcrPolicy },
    );
    expect(facts.details).toMatchObject({ pcrPolicy: "matched", signatureHash: "sha256" });
    expect(facts.details.pcrSelection).toBe(`sha256:${Array.from({ length: 24 }, (_, i) => i).join(",")}`);
  });

  it("Windows on a GCP Shielded VM signs its quote with SHA-1: refused", async () => {
    const ak = unmarshalTpmtPublic(fx("real/gcp-windows/ak_public.tpmt_public.bin"));
    const signer = {
      key: publicKeyObject(ak),
      nameAlg: ak.nameAlg,
      name: objectName(ak),
      qualifiedName: null,
    };
    await expectCode(
      () =>
        verifyTpmQuote(
          {
            quoteInfo: fx("real/gcp-windows/quote.tpms_attest.bin"),
            signature: fx("real/gcp-windows/quote_signature.tpmt_signature.bin"),
          },
          { signer, extraData: Buffer.alloc(0), pcrPolicy: null },
        ),
      "attestation.hash_not_allowed",
    );
  });
});

describe("tpm-quote through the format, nonce-bound (software-signed TPMS_ATTEST)", () => {
  const format = tpmQuoteFormat();
  const sel = [pcrSelectionOf(TPM_ALG.SHA256, PCRS)];
  const values = Object.fromEntries(PCRS.map((i) => [i, createHash("sha256").update(`fake-${i}`).digest()]));
  const banks = new Map([[TPM_ALG.SHA256, new Map(Object.entries(values).map(([k, v]) => [Number(k), v]))]]);
  const digest = computePcrDigest(TPM_ALG.SHA256, sel, banks);
  let ak: SimKey;
  let rsaAk: SimKey;
  let csrKey: SimKey; // a software key: any key pair the agent made
  beforeAll(() => {
    ak = simKey("p256", AK_ATTRS);
    rsaAk = simKey("rsa2048", AK_ATTRS);
    csrKey = simKey("p256", 0);
  });

  function attestation(
    signer: SimKey,
    extraData: Buffer,
    o: {
      edit?: (a: TpmsAttest) => TpmsAttest;
      hash?: "sha1" | "sha256";
      by?: SimKey;
      extra?: Record<string, unknown>;
    } = {},
  ): Record<string, unknown> {
    const a = (o.edit ?? ((q) => q))(quoteAttest(signer, extraData, sel, digest));
    const bytes = marshalAttest(a);
    return {
      format: "tpm-quote",
      quoteInfo: b64(bytes),
      signature: b64(tpmSign(o.by ?? signer, bytes, o.hash)),
      ...o.extra,
    };
  }
  const ctx = (a: SimKey, p = profile()) => context(device(a), csrKey, { profile: p });
  const withPolicy = (pcrs: Record<string, string>) => profile({ pcrPolicy: { bank: "sha256", pcrs } });
  const hexValues = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.toString("hex")]));

  it.each(["P-256", "RSA-2048"])("%s AK: verifies, keyResidency bound", async (kind) => {
    const a = kind === "P-256" ? ak : rsaAk;
    const facts = await format.verify(attestation(a, binding(csrKey.spki)), ctx(a));
    expect(facts).toMatchObject({
      format: "tpm-quote",
      keyResidency: "bound",
      details: { akName: a.name.toString("hex") },
    });
  });

  it("a profile PCR policy: matched, and mismatched", async () => {
    const att = attestation(ak, binding(csrKey.spki));
    await expect(format.verify(att, ctx(ak, withPolicy(hexValues)))).resolves.toMatchObject({
      details: { pcrPolicy: "matched" },
    });
    await expectCode(
      format.verify(att, ctx(ak, withPolicy({ ...hexValues, "7": "00".repeat(32) }))),
      "attestation.pcr_mismatch",
    );
    const withValues = attestation(ak, binding(csrKey.spki), { extra: { pcrValues: { sha256: hexValues } } });
    await expect(
      format.verify(withValues, ctx(ak, withPolicy({ "0": hexValues["0"]! }))),
    ).resolves.toMatchObject({
      details: { pcrPolicy: "matched", pcrValuesVerified: true },
    });
  });

  it("a broken profile policy is a configuration error, not a pass", async () => {
    const att = attestation(ak, binding(csrKey.spki));
    await expectCode(format.verify(att, ctx(ak, withPolicy({ "0": "abcd" }))), "config.invalid");
    await expectCode(
      format.verify(att, ctx(ak, profile({ pcrPolicy: { bank: "sha1", pcrs: { "0": "00".repeat(20) } } }))),
      "config.invalid",
    );
  });

  it("wrong magic, wrong type, SHA-1 signature, another signer, extraData over another key", async () => {
    const b = binding(csrKey.spki);
    await expectCode(
      format.verify(attestation(ak, b, { edit: (a) => ({ ...a, magic: 0 }) }), ctx(ak)),
      "attestation.magic_invalid",
    );
    const certify = marshalAttest(certifyAttest(ak, simKey("p256", KEY_ATTRS), b));
    const asQuote = { format: "tpm-quote", quoteInfo: b64(certify), signature: b64(tpmSign(ak, certify)) };
    await expectCode(
      format.verify(asQuote, ctx(ak)),
      "attestation.type_invalid",
      "attestation.quoteInfo.type",
    );
    await expectCode(
      format.verify(attestation(rsaAk, b, { hash: "sha1" }), ctx(rsaAk)),
      "attestation.hash_not_allowed",
    );
    await expectCode(
      format.verify(attestation(ak, b, { by: simKey("p256", AK_ATTRS) }), ctx(ak)),
      "attestation.signature_invalid",
    );
    const other = simKey("p256", 0);
    await expectCode(
      format.verify(attestation(ak, binding(other.spki)), ctx(ak)),
      "attestation.nonce_mismatch",
    );
  });

  it("malformed pcrValues and members", async () => {
    const b = binding(csrKey.spki);
    for (const pcrValues of [
      [],
      { sha257: {} },
      { sha256: { "24": "00".repeat(32) } },
      { sha256: { "0": "00".repeat(31) } },
      { sha256: { "0": 5 } },
    ]) {
      await expectCode(
        format.verify(attestation(ak, b, { extra: { pcrValues } }), ctx(ak)),
        "attestation.malformed",
      );
    }
    await expectCode(
      format.verify(attestation(ak, b, { extra: { keyPublic: "AA" } }), ctx(ak)),
      "attestation.malformed",
    );
  });
});

describe("the PCR policy schema fragment", () => {
  it("parses the documented shape, defaults the bank, and refuses what it must", () => {
    const pcrs = { "0": "ab".repeat(32) };
    expect(pcrPolicySchema.parse({ pcrs })).toEqual({ bank: "sha256", pcrs });
    for (const bad of [
      { pcrs: {} },
      { pcrs: { "24": "ab".repeat(32) } },
      { bank: "sha384", pcrs },
      { bank: "sha1", pcrs: { "0": "ab".repeat(20) } },
      { pcrs, extra: 1 },
    ]) {
      expect(pcrPolicySchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(readPcrPolicy(profile())).toBeNull();
  });
});
