import { createHash } from "node:crypto";
import { compactVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trustFromPem, verifyBundleUpdate } from "../../src/agent/bundle-verify.js";
import { bundlePayload, signBundlePayload } from "../../src/authority/rotation-bundle.js";
import { rootPrepare } from "../../src/authority/rotation-root.js";
import { systemRandom } from "../../src/runtime/clock.js";
import { buildRoot, newSerial } from "../../src/x509/index.js";
import { https } from "../helpers/https.js";
import { memorySigner } from "../helpers/memory-signer.js";
import { type BundleJson, type RotationCa, startRotationCa } from "./helpers.js";

// The signed bundle and its verification: a bundle update is accepted only if a root the
// holder trusts signed it, and a new root only when a trusted root cross-signed it.

const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
rotation:
  auto: false
  propagation: 1h
`;

type Signed = BundleJson & { trustDomain: string; signatures: { protected: string; signature: string }[] };
let ca: RotationCa;
let steady: Signed;
let prepared: Signed;
beforeAll(async () => {
  ca = await startRotationCa(CONFIG);
  steady = (await https(`${ca.url}/v1/bundle`, { ca: ca.rootPem })).json as Signed;
  await rootPrepare(ca.deps());
  await ca.running.rotation.refresh();
  prepared = (await https(`${ca.url}/v1/bundle`, { ca: ca.rootPem })).json as Signed;
});
afterAll(async () => {
  await ca?.close();
});

const held = () => trustFromPem(ca.rootPem, "mayfly.internal");
const now = () => ca.clock.now();
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code: string }).code;
  }
  return "accepted";
}
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Re-signs a bundle's content with a root's key from the CA's key store. */
async function resign(b: Signed, rootIds: string[]): Promise<Signed> {
  const { signatures: _s, ...content } = b;
  const payload = bundlePayload(content as never);
  const rows = await ca.running.store.tx((tx) => tx.listCaCertificates());
  const signatures = [];
  for (const id of rootIds) {
    const row = rows.find((r) => r.id === id)!;
    signatures.push(await signBundlePayload(payload, row, await ca.running.keys.load(row.keyLabel)));
  }
  return { ...b, signatures };
}

describe("the signed bundle", () => {
  it("is a detached ES256 JWS per root over the canonical JSON, which jose verifies on its own", async () => {
    expect(steady.signatures).toHaveLength(1);
    const s = steady.signatures[0]!;
    const header = JSON.parse(Buffer.from(s.protected, "base64url").toString());
    const root = steady.roots[0]!;
    const der = Buffer.from(root.pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    expect(header).toEqual({
      alg: "ES256",
      kid: root.id,
      typ: "mayfly-bundle+jws",
      "x5t#S256": createHash("sha256").update(der).digest("base64url"),
    });
    const { signatures: _omit, ...content } = steady;
    const payload = bundlePayload(content as never).toString("base64url");
    const { X509Certificate } = await import("node:crypto");
    const key = new X509Certificate(der).publicKey;
    const r = await compactVerify(`${s.protected}.${payload}.${s.signature}`, key);
    expect(JSON.parse(Buffer.from(r.payload).toString())).toEqual(content);
    expect(steady.sequence).toBe(0);
    expect(prepared.sequence).toBeGreaterThan(steady.sequence);
    expect(prepared.signatures).toHaveLength(2);
  });

  it("an update signed by a trusted root is accepted; a new root comes in through its cross certificate", async () => {
    const a = await verifyBundleUpdate(held(), steady, { now: now() });
    expect(a.signedBy).toEqual([steady.roots[0]!.id]);
    expect(a.trust.sequence).toBe(0);
    const b = await verifyBundleUpdate(a.trust, prepared, { now: now() });
    expect(b.addedRoots).toEqual([prepared.roots[1]!.id]);
    expect(b.signedBy.sort()).toEqual(prepared.roots.map((r) => r.id).sort());
    expect(b.pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(4);
  });

  it("refuses a bundle signed by an unknown key: bundle.signer_unknown", async () => {
    const foreign = memorySigner({ kind: "ec", curve: "P-256" }, "foreign");
    const t = Date.now();
    const froot = await buildRoot({
      signer: foreign,
      serial: newSerial(systemRandom),
      subject: { commonName: "Mayfly Development Root CA" },
      notBefore: t - 60_000,
      notAfter: t + 86_400_000,
    });
    const fid = froot.ski.toString("hex");
    const { signatures: _s, ...content } = steady;
    const sig = await signBundlePayload(
      bundlePayload(content as never),
      {
        id: fid,
        role: "root",
        slot: "current",
        keyLabel: "x",
        der: froot.der,
        notBefore: t,
        notAfter: t,
        createdAt: t,
      },
      foreign,
    );
    expect(await code(verifyBundleUpdate(held(), { ...steady, signatures: [sig] }, { now: now() }))).toBe(
      "bundle.signer_unknown",
    );
    // Claiming a trusted kid does not help: the signature then fails against the trusted key.
    const spoof = {
      ...sig,
      protected: Buffer.from(
        JSON.stringify({
          ...JSON.parse(Buffer.from(sig.protected, "base64url").toString()),
          kid: steady.roots[0]!.id,
        }),
      ).toString("base64url"),
    };
    expect(await code(verifyBundleUpdate(held(), { ...steady, signatures: [spoof] }, { now: now() }))).toBe(
      "bundle.signature_invalid",
    );
    expect(await code(verifyBundleUpdate(held(), { ...steady, signatures: [] }, { now: now() }))).toBe(
      "bundle.signer_unknown",
    );
    // A whole other CA's bundle (another root, same trust domain) is unknown too.
    const other = await startRotationCa(CONFIG);
    try {
      const theirs = (await https(`${other.url}/v1/bundle`, { ca: other.rootPem })).json;
      expect(await code(verifyBundleUpdate(held(), theirs, { now: now() }))).toBe("bundle.signer_unknown");
    } finally {
      await other.close();
    }
  });

  it("refuses tampering, staleness, another trust domain, and a new root no trusted root cross-signed", async () => {
    const tampered = clone(steady);
    tampered.intermediates[0]!.slot = "previous";
    expect(await code(verifyBundleUpdate(held(), tampered, { now: now() }))).toBe("bundle.signature_invalid");

    const after = (await verifyBundleUpdate(held(), prepared, { now: now() })).trust;
    expect(await code(verifyBundleUpdate(after, steady, { now: now() }))).toBe("bundle.stale");
    expect(
      await code(verifyBundleUpdate({ ...held(), trustDomain: "other.internal" }, steady, { now: now() })),
    ).toBe("bundle.trust_domain_mismatch");

    // The CA's own old root signs a bundle that adds the next root without its cross certificate.
    const uncrossed = await resign(
      { ...clone(prepared), crossSigned: [] },
      prepared.roots.map((r) => r.id),
    );
    expect(await code(verifyBundleUpdate(held(), uncrossed, { now: now() }))).toBe(
      "bundle.root_not_endorsed",
    );
    // ... or with it, but without the new root's own signature.
    const unsigned = await resign(clone(prepared), [prepared.roots[0]!.id]);
    expect(await code(verifyBundleUpdate(held(), unsigned, { now: now() }))).toBe("bundle.root_not_endorsed");
    expect(await code(verifyBundleUpdate(held(), { ...steady, roots: "x" }, { now: now() }))).toBe(
      "bundle.malformed",
    );
  });
});
