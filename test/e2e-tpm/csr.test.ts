import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCsr,
  certificationRequestInfo,
  commonNameSubject,
  csrAlgorithm,
  errorCode,
  softwareCsrSigner,
  tpmCsrSigner,
} from "../../src/agent/index.js";
import { createSigningKey, createSrk, type TpmClient, type TpmKeyKind } from "../../src/tpm/client/index.js";
import { publicSpkiDer } from "../../src/tpm/index.js";
import { readCsr } from "../../src/x509/index.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { clientFor, leftovers } from "../tpm/client/live-client.js";
import { Swtpm } from "../tpm/helpers/swtpm.js";

// CSRs signed inside the TPM (TPM2_Sign over the digest of CertificationRequestInfo) and in
// software: openssl req -verify accepts both, and so does the CA's strict reader.

const SIG_ALG: Record<TpmKeyKind, string> = {
  rsa2048: "sha256WithRSAEncryption",
  ecc256: "ecdsa-with-SHA256",
  ecc384: "ecdsa-with-SHA384",
};

const SIG_ALG_DER: Record<TpmKeyKind, string> = {
  ecc256: "300a06082a8648ce3d040302",
  ecc384: "300a06082a8648ce3d040303",
  rsa2048: "300d06092a864886f70d01010b0500",
};

describe("PKCS#10 from the agent library", () => {
  let sw: Swtpm;
  let tpm: TpmClient;
  let work: string;
  let srk: number;
  beforeAll(async () => {
    sw = await Swtpm.start();
    tpm = clientFor(sw, "e2e-csr");
    srk = (await createSrk(tpm)).handle;
    work = mkdtempSync(join(tmpdir(), "mayfly-e2e-csr-"));
  }, 30_000);
  afterAll(async () => {
    if (srk) await tpm.flushContext(srk).catch(() => undefined);
    await tpm?.close();
    await sw?.stop();
    rmSync(work ?? "/nonexistent", { recursive: true, force: true });
  });

  async function opensslAccepts(name: string, der: Buffer, sigAlg: string, subject: string) {
    const path = await writeTemp(work, `${name}.csr.der`, der);
    const r = await openssl(["req", "-verify", "-noout", "-text", "-inform", "DER", "-in", path]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/verify OK|Certificate request self-signature verify OK/);
    expect(r.stdout).toContain(`Signature Algorithm: ${sigAlg}`);
    expect(r.stdout).toMatch(new RegExp(`Subject: ?${subject}\\n`));
    expect(r.stdout).toMatch(/Attributes:\s*\n\s*\(none\)/);
  }

  it.each(["ecc256", "ecc384", "rsa2048"] as const)(
    "%s key in the TPM, signed by TPM2_Sign",
    async (kind) => {
      const key = await createSigningKey(tpm, srk, kind);
      try {
        const spki = publicSpkiDer(key.public);
        const der = await buildCsr({ spki, sign: tpmCsrSigner(tpm, key.handle, key.public) });
        await opensslAccepts(`tpm-${kind}`, der, SIG_ALG[kind], "");
        const read = readCsr(der);
        expect(read.spki.equals(spki)).toBe(true);
        // The signatureAlgorithm as emitted: ECDSA without parameters (RFC 5758), RSA with NULL.
        const tbsThenAlg = Buffer.concat([
          certificationRequestInfo(spki),
          Buffer.from(SIG_ALG_DER[kind], "hex"),
        ]);
        expect(der.includes(tbsThenAlg)).toBe(true);
      } finally {
        await tpm.flushContext(key.handle);
      }
      expect(await leftovers(tpm)).toEqual([srk]);
    },
  );

  const software: Array<[TpmKeyKind, () => { privateKey: KeyObject; publicKey: KeyObject }]> = [
    ["ecc256", () => generateKeyPairSync("ec", { namedCurve: "P-256" })],
    ["ecc384", () => generateKeyPairSync("ec", { namedCurve: "P-384" })],
    ["rsa2048", () => generateKeyPairSync("rsa", { modulusLength: 2048 })],
  ];
  it.each(software)("%s software key, with a subject", async (kind, gen) => {
    const { privateKey, publicKey } = gen();
    const spki = publicKey.export({ type: "spki", format: "der" });
    const der = await buildCsr({
      spki,
      subject: commonNameSubject("agent-7"),
      sign: softwareCsrSigner(privateKey),
    });
    await opensslAccepts(`sw-${kind}`, der, SIG_ALG[kind], "CN = agent-7");
    expect(readCsr(der).spki.equals(spki)).toBe(true);
  });

  it("refuses keys Mayfly cannot certify", () => {
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    for (const spki of [ed, k1, Buffer.from("3000", "hex")]) {
      let code: string | null = null;
      try {
        csrAlgorithm(spki);
      } catch (e) {
        code = errorCode(e);
      }
      expect(code).toBe("agent.key_unsupported");
    }
  });
});
