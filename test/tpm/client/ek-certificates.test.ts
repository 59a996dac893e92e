import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEk,
  EK_CERT_NV_INDEX,
  EK_POLICY_A_SHA256,
  ekTemplate,
  policySecretDigest,
  readEkCertificate,
  TPM_HT,
  TPM_KEY_KINDS,
  TPM_PT,
  type TpmClient,
  type TpmKeyKind,
} from "../../../src/tpm/client/index.js";
import { nvRead } from "../../../src/tpm/client/nv-commands.js";
import { objectName, publicSpkiDer, TPM_ALG, TPM_RH, unmarshalTpm2bPublic } from "../../../src/tpm/index.js";
import { Swtpm } from "../helpers/swtpm.js";
import { writeP256EkCert } from "../helpers/swtpm-manufacture.js";
import { clientFor, leftovers } from "./live-client.js";

// A manufactured swtpm (swtpm_setup --create-ek-cert, README §4): the EK certificates in NV
// must hold exactly the keys our TCG templates recreate. Keys derive from the hierarchy seed
// and the template, so one wrong template byte gives another key: this proves the templates.

const TOOL_ALG: Record<TpmKeyKind, string> = { rsa2048: "rsa", ecc256: "ecc", ecc384: "ecc384" };

describe("live swtpm with EK certificates: NV, capabilities and the TCG EK templates", () => {
  let sw: Swtpm;
  let tpm: TpmClient;
  beforeAll(async () => {
    sw = await Swtpm.start({ manufacture: true });
    tpm = clientFor(sw, "ek-certificates");
  }, 30_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it("lists handles and reads properties and PCR banks", async () => {
    const nv = await tpm.listHandles(TPM_HT.NV_INDEX);
    expect(nv).toEqual(expect.arrayContaining([EK_CERT_NV_INDEX.rsa2048, EK_CERT_NV_INDEX.ecc384]));
    expect(nv).not.toContain(EK_CERT_NV_INDEX.ecc256); // swtpm 0.7.1 writes no P-256 cert (G11)
    // swtpm_setup persists the RSA and P-384 EKs.
    expect(await tpm.listHandles(TPM_HT.PERSISTENT)).toEqual(
      expect.arrayContaining([0x81010001, 0x81010016]),
    );
    const { properties } = await tpm.getProperties(TPM_PT.FAMILY_INDICATOR, 8);
    expect(properties[0]).toEqual({ property: TPM_PT.FAMILY_INDICATOR, value: 0x322e3000 }); // "2.0\0"
    expect(await tpm.getProperty(TPM_PT.HR_LOADED_AVAIL)).toBe(3); // gotcha G6
    expect(await tpm.getProperty(TPM_PT.NV_BUFFER_MAX)).toBeGreaterThan(0);
    const banks = await tpm.getPcrBanks();
    expect(banks.find((b) => b.hashAlg === TPM_ALG.SHA256)?.pcrSelect).toEqual(
      Buffer.from([0xff, 0xff, 0xff]),
    );
  });

  it("has no P-256 EK certificate until one is written; then all three read back whole", async () => {
    expect(await readEkCertificate(tpm, "ecc256")).toBeNull();
    const written = writeP256EkCert(sw);
    expect((await readEkCertificate(tpm, "ecc256"))?.equals(written)).toBe(true);
  });

  it.each(TPM_KEY_KINDS)(
    "%s: the certificate chains, and its key is our CreatePrimary's EK",
    async (kind) => {
      const der = await readEkCertificate(tpm, kind);
      if (!der) throw new Error(`no ${kind} EK certificate`);
      const cert = new X509Certificate(der);
      const intermediate = new X509Certificate(readFileSync(sw.caFiles.intermediate));
      const root = new X509Certificate(readFileSync(sw.caFiles.root));
      expect(cert.verify(intermediate.publicKey)).toBe(true);
      expect(intermediate.verify(root.publicKey)).toBe(true);

      // tpm2-tools first: its flush (-t, G6) would take our transient EK with it.
      const toolArgs = ["-G", TOOL_ALG[kind], "-c", `${kind}.ek.ctx`, "-u", `${kind}.ek.pub`, "-f", "tss"];
      sw.run("tpm2_createek", toolArgs);
      sw.flush();
      const tools = unmarshalTpm2bPublic(readFileSync(join(sw.dir, `${kind}.ek.pub`)));

      const ek = await createEk(tpm, kind);
      try {
        const certSpki = cert.publicKey.export({ type: "spki", format: "der" });
        expect(publicSpkiDer(ek.public).equals(certSpki)).toBe(true);
        expect(ek.name.equals(objectName(ek.public))).toBe(true);
        expect(unmarshalTpm2bPublic(ek.publicBytes)).toEqual(ek.public);
        // Everything but the key equals the template.
        const { unique: _u, ...shape } = ek.public;
        const { unique: _t, ...template } = ekTemplate(kind);
        expect(shape).toEqual(template);

        // tpm2_createek made the same key (the same Name)...
        expect(objectName(tools).equals(ek.name)).toBe(true);
        // ...and so did swtpm_setup, which persisted it.
        const persisted = { rsa2048: 0x81010001, ecc384: 0x81010016, ecc256: undefined }[kind];
        if (persisted !== undefined)
          expect((await tpm.readPublic(persisted)).name.equals(ek.name)).toBe(true);
      } finally {
        await tpm.flushContext(ek.handle);
      }
    },
  );

  it("reads NV in chunks of any size, and checks the index Name", async () => {
    const pub = await tpm.nvReadPublic(EK_CERT_NV_INDEX.rsa2048);
    expect(pub.nvIndex).toBe(EK_CERT_NV_INDEX.rsa2048);
    const whole = await tpm.nvRead(EK_CERT_NV_INDEX.rsa2048);
    expect(whole.length).toBe(pub.dataSize);
    const chunked = await nvRead(tpm, EK_CERT_NV_INDEX.rsa2048, pub.dataSize, 100);
    expect(chunked.equals(whole)).toBe(true);
    const tail = await tpm.nvRead(EK_CERT_NV_INDEX.rsa2048, { offset: 1000 });
    expect(tail.equals(whole.subarray(1000))).toBe(true);
  });

  it("PolicySecret(endorsement) in a trial session yields our policy digest (policy A for SHA-256)", async () => {
    expect(policySecretDigest(TPM_ALG.SHA256, TPM_RH.ENDORSEMENT).equals(EK_POLICY_A_SHA256)).toBe(true);
    for (const hashAlg of [TPM_ALG.SHA256, TPM_ALG.SHA384]) {
      const s = await tpm.startAuthSession("trial", hashAlg);
      try {
        await tpm.policySecret(TPM_RH.ENDORSEMENT, s);
        expect((await tpm.policyGetDigest(s)).equals(policySecretDigest(hashAlg, TPM_RH.ENDORSEMENT))).toBe(
          true,
        );
      } finally {
        await tpm.flushContext(s.handle);
      }
    }
  });

  it("leaves no objects or sessions behind", async () => {
    expect(await leftovers(tpm)).toEqual([]);
  });
});
