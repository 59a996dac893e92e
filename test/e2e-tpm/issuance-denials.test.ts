import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCsr,
  type CaClient,
  type Enrolment,
  enrolDevice,
  issueBoundKey,
  issueTpmKey,
  softwareCsrSigner,
  tpmCsrSigner,
} from "../../src/agent/index.js";
import { bindingDigest } from "../../src/evidence/binding.js";
import {
  certify,
  createSigningKey,
  quote,
  signingKeyTemplate,
  type TpmClient,
  withUserAuth,
} from "../../src/tpm/client/index.js";
import { pcrSelectionOf, publicSpkiDer, TPM_ALG, TPMA_OBJECT, type TpmtPublic } from "../../src/tpm/index.js";
import type { TestCa } from "../helpers/test-ca.js";
import { leftovers } from "../tpm/client/live-client.js";
import { expectDenied, type LiveEnv, seedAgentOnDevice, startLive } from "./helpers/live.js";

// Issuance denials with a real TPM and a really activated device: real certify and quote
// evidence, each request wrong in one way. Every denial carries its code, is audited with it,
// and stores no certificate (expectDenied). Inputs only a software TPM can make are in
// simulated-device.test.ts.

const b64 = (b: Buffer) => b.toString("base64url");
const PCRS = [pcrSelectionOf(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];

interface LoadedKey {
  handle: number;
  public: TpmtPublic;
  publicBytes: Buffer;
}

describe("live swtpm + Mayfly: issuance denials", () => {
  let env: LiveEnv;
  let tpm: TpmClient;
  let ca: TestCa;
  let client: CaClient;
  let dev: Enrolment;
  let agentA: string;
  let agentB: string;
  let certifyOnly: string;
  beforeAll(async () => {
    env = await startLive("e2e-issuance-denials");
    ({ tpm, ca, client } = env);
    // P-384 EK (high range: userWithAuth, no policy session to use it as the keys' parent).
    dev = await enrolDevice({ tpm, ca: client, ekKind: "ecc384", akKind: "ecc256" });
    agentA = (await seedAgentOnDevice(ca, dev.deviceId)).agentId;
    agentB = (await seedAgentOnDevice(ca, dev.deviceId)).agentId;
    certifyOnly = (await seedAgentOnDevice(ca, dev.deviceId, { agent: { profile: "certify-only" } })).agentId;
  }, 60_000);
  afterAll(async () => {
    for (const h of [dev?.akHandle, dev?.ekHandle]) if (h) await tpm.flushContext(h).catch(() => undefined);
    await env?.close();
  });

  /** A signing key under the EK, loaded for the duration of `use` (swtpm holds 3 objects). */
  async function withKey<T>(use: (k: LoadedKey) => Promise<T>, template?: TpmtPublic): Promise<T> {
    let k: LoadedKey;
    if (template) {
      const parent = (await tpm.readPublic(dev.ekHandle)).public;
      const made = await withUserAuth(tpm, parent, (auth) => tpm.create(dev.ekHandle, template, auth));
      const { handle } = await withUserAuth(tpm, parent, (auth) =>
        tpm.load(dev.ekHandle, made.privateBytes, made.publicBytes, auth),
      );
      k = { handle, public: made.public, publicBytes: made.publicBytes };
    } else {
      k = await createSigningKey(tpm, dev.ekHandle, "ecc256");
    }
    try {
      return await use(k);
    } finally {
      await tpm.flushContext(k.handle);
    }
  }

  /**
   * tpm-certify for `key` with qualifyingData over `boundSpki` (default: the key's own SPKI) and
   * a CSR for `csr` (default: the key itself, signed in the TPM).
   */
  async function certifyRequest(
    nonce: Buffer,
    key: LoadedKey,
    o: { boundSpki?: Buffer; csr?: { spki: Buffer; sign: ReturnType<typeof softwareCsrSigner> } } = {},
  ) {
    const spki = publicSpkiDer(key.public);
    const att = await certify(tpm, key.handle, dev.akHandle, bindingDigest(nonce, o.boundSpki ?? spki));
    const csr = await buildCsr(o.csr ?? { spki, sign: tpmCsrSigner(tpm, key.handle, key.public) });
    return {
      csr,
      nonce,
      attestation: {
        format: "tpm-certify",
        keyPublic: b64(key.publicBytes),
        certifyInfo: b64(att.attestBytes),
        signature: b64(att.signatureBytes),
      },
    };
  }

  it("positive controls: both formats for a default agent, tpm-certify for a certify-only one", async () => {
    const base = { tpm, ca: client, akHandle: dev.akHandle };
    const t = await issueTpmKey({ ...base, agentId: agentA, parentHandle: dev.ekHandle });
    await tpm.flushContext(t.keyHandle);
    await issueBoundKey({ ...base, agentId: agentA });
    const c = await issueTpmKey({ ...base, agentId: certifyOnly, parentHandle: dev.ekHandle });
    await tpm.flushContext(c.keyHandle);
    expect((await leftovers(tpm)).sort()).toEqual([dev.akHandle, dev.ekHandle].sort());
  });

  it("refuses a certified key with fixedTPM clear (a duplicable key the TPM made and certified)", async () => {
    const t = signingKeyTemplate("ecc256");
    const duplicable = {
      ...t,
      objectAttributes: t.objectAttributes & ~(TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent),
    };
    await withKey(async (key) => {
      expect(key.public.objectAttributes & TPMA_OBJECT.fixedTPM).toBe(0);
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key);
      const { error } = await expectDenied(ca, "attestation.key_attributes", () =>
        client.requestCertificate(agentA, body),
      );
      expect(error).toMatchObject({ field: "attestation.keyPublic.objectAttributes.fixedTPM" });
    }, duplicable);
  });

  it("refuses a quote sent as a certify and a certify sent as a quote (type)", async () => {
    await withKey(async (key) => {
      const spki = publicSpkiDer(key.public);
      const { nonce } = await client.challenge(agentA);
      const q = await quote(tpm, dev.akHandle, bindingDigest(nonce, spki), PCRS);
      const body = await certifyRequest(nonce, key);
      body.attestation.certifyInfo = b64(q.attestBytes);
      body.attestation.signature = b64(q.signatureBytes);
      const { error } = await expectDenied(ca, "attestation.type_invalid", () =>
        client.requestCertificate(agentA, body),
      );
      expect(error).toMatchObject({ field: "attestation.certifyInfo.type" });
    });
    const soft = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const spki = soft.publicKey.export({ type: "spki", format: "der" });
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const c = await certify(tpm, key.handle, dev.akHandle, bindingDigest(nonce, spki));
      const csr = await buildCsr({ spki, sign: softwareCsrSigner(soft.privateKey) });
      const attestation = {
        format: "tpm-quote",
        quoteInfo: b64(c.attestBytes),
        signature: b64(c.signatureBytes),
      };
      await expectDenied(ca, "attestation.type_invalid", () =>
        client.requestCertificate(agentA, { csr, nonce, attestation }),
      );
    });
  });

  it("refuses a real certify whose magic was altered (checked before the signature)", async () => {
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key);
      const bytes = Buffer.from(body.attestation.certifyInfo, "base64url");
      bytes[3]! ^= 0x01;
      body.attestation.certifyInfo = b64(bytes);
      await expectDenied(ca, "attestation.magic_invalid", () => client.requestCertificate(agentA, body));
    });
  });

  it("refuses a nonce used twice: one certificate per challenge", async () => {
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key);
      const first = await client.requestCertificate(agentA, body);
      expect(first.certificate).toMatch(/BEGIN CERTIFICATE/);
      // Fresh evidence, correctly bound to the same nonce: the challenge is spent all the same.
      const again = await certifyRequest(nonce, key);
      await expectDenied(ca, "challenge.consumed", () => client.requestCertificate(agentA, again));
    });
  });

  it("refuses the nonce of another agent on the same device", async () => {
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentB);
      const body = await certifyRequest(nonce, key);
      await expectDenied(ca, "challenge.agent_mismatch", () => client.requestCertificate(agentA, body));
      // Not spent by the refusal: its own agent still redeems it.
      const own = await client.requestCertificate(agentB, await certifyRequest(nonce, key));
      expect(own.certificate).toMatch(/BEGIN CERTIFICATE/);
    });
  });

  it("refuses extraData over another key's SPKI", async () => {
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      type: "spki",
      format: "der",
    });
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key, { boundSpki: other });
      const { error } = await expectDenied(ca, "attestation.nonce_mismatch", () =>
        client.requestCertificate(agentA, body),
      );
      expect(error).toMatchObject({ field: "attestation.certifyInfo.extraData" });
    });
  });

  it("refuses a CSR key other than the certified key, even with extraData over the CSR key", async () => {
    const soft = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const spki = soft.publicKey.export({ type: "spki", format: "der" });
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key, {
        boundSpki: spki,
        csr: { spki, sign: softwareCsrSigner(soft.privateKey) },
      });
      const { error } = await expectDenied(ca, "attestation.key_mismatch", () =>
        client.requestCertificate(agentA, body),
      );
      expect(error).toMatchObject({ field: "attestation.keyPublic" });
    });
  });

  it("refuses a quote (bound key) where the profile demands tpm-certify", async () => {
    const { error } = await expectDenied(ca, "attestation.format_not_allowed", () =>
      issueBoundKey({ tpm, ca: client, agentId: certifyOnly, akHandle: dev.akHandle }),
    );
    expect((error as Error).message).toMatch(/certify-only/);
  });

  it("refuses an expired nonce", async () => {
    await withKey(async (key) => {
      const { nonce } = await client.challenge(agentA);
      const body = await certifyRequest(nonce, key);
      ca.clock.advance(60_000); // the challenge TTL; expiry is exclusive
      await expectDenied(ca, "challenge.expired", () => client.requestCertificate(agentA, body));
    });
    expect((await leftovers(tpm)).sort()).toEqual([dev.akHandle, dev.ekHandle].sort());
  });
});
