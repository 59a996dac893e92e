import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MayflyError } from "../../../src/errors/index.js";
import {
  certify,
  createAk,
  createEk,
  createSigningKey,
  createSrk,
  quote,
  sign,
  TPM_HT,
  TPM_KEY_KINDS,
  type TpmClient,
  type TpmKeyKind,
} from "../../../src/tpm/client/index.js";
import {
  computePcrDigest,
  hierarchyQualifiedName,
  objectName,
  pcrSelectionOf,
  qualifiedName,
  TPM_ALG,
  TPM_RH,
  TPM_ST,
  type TpmtPublic,
  unmarshalTpm2bPublic,
  verifyTpmSignature,
} from "../../../src/tpm/index.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { Swtpm } from "../helpers/swtpm.js";
import { clientFor, leftovers } from "./live-client.js";

// The agent's evidence, made by our client on a real TPM and checked with the CA's own
// verifier: TPM2_Certify of a non-exportable signing key by each kind of AK over a nonce,
// TPM2_Quote over PCRs, and TPM2_Sign. swtpm has 3 transient slots, so the signing keys are
// made persistent (EvictControl) and each AK lives only for its own checks.

const PCRS = [0, 1, 2, 3, 7];
const KEYS: Record<"ecc256" | "rsa2048", number> = { ecc256: 0x81000100, rsa2048: 0x81000101 };

describe("live swtpm: certify, quote and sign through our client", () => {
  let sw: Swtpm;
  let tpm: TpmClient;
  const random = seededRandom("attestation");
  const keyPublic = new Map<number, TpmtPublic>();
  beforeAll(async () => {
    sw = await Swtpm.start();
    for (const p of PCRS)
      sw.run("tpm2_pcrextend", [`${p}:sha256=${createHash("sha256").update(`fake-${p}`).digest("hex")}`]);
    tpm = clientFor(sw, "attestation");
  }, 30_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it("makes the SRK tpm2_createprimary makes, and persists two signing keys under it", async () => {
    const attrs = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";
    sw.run("tpm2_createprimary", [
      "-C",
      "o",
      "-g",
      "sha256",
      "-G",
      "ecc256:aes128cfb",
      "-a",
      attrs,
      "-c",
      "srk.ctx",
    ]);
    sw.run("tpm2_readpublic", ["-c", "srk.ctx", "-n", "srk.name"]);
    sw.flush();
    const srk = await createSrk(tpm);
    try {
      expect(srk.name.equals(readFileSync(join(sw.dir, "srk.name")))).toBe(true);
      for (const kind of ["ecc256", "rsa2048"] as const) {
        const key = await createSigningKey(tpm, srk.handle, kind);
        await tpm.evictControl(key.handle, KEYS[kind]);
        await tpm.flushContext(key.handle);
        const persisted = await tpm.readPublic(KEYS[kind]);
        expect(persisted.name.equals(key.name)).toBe(true);
        expect(persisted.public).toEqual(unmarshalTpm2bPublic(key.publicBytes));
        keyPublic.set(KEYS[kind], persisted.public);
      }
    } finally {
      await tpm.flushContext(srk.handle);
    }
  });

  it.each(TPM_KEY_KINDS)(
    "%s AK: certifies both keys and quotes PCRs over a nonce",
    async (kind: TpmKeyKind) => {
      const ek = await createEk(tpm, kind);
      const ak = await createAk(tpm, ek.handle, kind);
      await tpm.flushContext(ek.handle); // the AK stays loaded; its parent need not
      try {
        const expectedSigner = qualifiedName(
          qualifiedName(hierarchyQualifiedName(TPM_RH.ENDORSEMENT), ek.name),
          ak.name,
        );
        expect((await tpm.readPublic(ak.handle)).qualifiedName.equals(expectedSigner)).toBe(true);

        for (const handle of Object.values(KEYS)) {
          const nonce = random.bytes(32);
          const c = await certify(tpm, handle, ak.handle, nonce);
          expect(verifyTpmSignature(c.signature, c.attestBytes, ak.public)).toBe(true);
          expect(c.attest.type).toBe(TPM_ST.ATTEST_CERTIFY);
          if (c.attest.type !== TPM_ST.ATTEST_CERTIFY) throw new Error("not a certify attest");
          expect(c.attest.extraData.equals(nonce)).toBe(true);
          expect(c.attest.qualifiedSigner.equals(expectedSigner)).toBe(true);
          expect(c.attest.attested.name.equals(objectName(keyPublic.get(handle)!))).toBe(true);
          // A flipped byte in the signed bytes must not verify.
          const tampered = Buffer.from(c.attestBytes);
          tampered[tampered.length - 1]! ^= 1;
          expect(verifyTpmSignature(c.signature, tampered, ak.public)).toBe(false);
        }

        const nonce = random.bytes(32);
        const selection = [pcrSelectionOf(TPM_ALG.SHA256, PCRS)];
        const q = await quote(tpm, ak.handle, nonce, selection);
        expect(verifyTpmSignature(q.signature, q.attestBytes, ak.public)).toBe(true);
        if (q.attest.type !== TPM_ST.ATTEST_QUOTE) throw new Error("not a quote");
        expect(q.attest.extraData.equals(nonce)).toBe(true);
        expect(q.attest.attested.pcrSelect).toEqual(selection);
        const read = await tpm.pcrRead(selection);
        expect(read.selection).toEqual(selection);
        const values = new Map([[TPM_ALG.SHA256, new Map(PCRS.map((p, i) => [p, read.digests[i]!]))]]);
        expect(read.digests[4]!.equals(Buffer.alloc(32))).toBe(false); // the extends happened
        // pcrDigest is hashed with the signing scheme's hash (SHA-384 for the P-384 AK).
        const digest = computePcrDigest(q.signature.hashAlg, selection, values);
        expect(q.attest.attested.pcrDigest.equals(digest)).toBe(true);

        // A restricted key signs only what the TPM made itself: no ticket, no signature.
        const refused = await sign(tpm, ak.handle, createHash("sha256").update("x").digest()).then(
          () => ({}),
          (e: MayflyError) => ({ code: e.code, ...e.extra }),
        );
        expect(refused).toMatchObject({ code: "tpm.command_failed", name: "TPM_RC_TICKET" });
      } finally {
        await tpm.flushContext(ak.handle);
      }
    },
  );

  it.each(Object.entries(KEYS))("the %s signing key signs a digest that verifies", async (_, handle) => {
    const message = Buffer.from("proof of possession");
    const pub = keyPublic.get(handle)!;
    const s = await sign(tpm, handle, createHash("sha256").update(message).digest());
    expect(s.signature.hashAlg).toBe(TPM_ALG.SHA256);
    expect(verifyTpmSignature(s.signature, message, pub)).toBe(true);
    expect(verifyTpmSignature(s.signature, Buffer.from("something else"), pub)).toBe(false);
  });

  it("evicts the persistent keys and leaves no objects or sessions behind", async () => {
    for (const handle of Object.values(KEYS)) await tpm.evictControl(handle, handle);
    const persistent = await tpm.listHandles(TPM_HT.PERSISTENT);
    expect(persistent.filter((h) => Object.values(KEYS).includes(h))).toEqual([]);
    expect(await leftovers(tpm)).toEqual([]);
  });
});
