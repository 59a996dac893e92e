import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/index.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { attest, issueVia, newAgentKey, startTestCa, type TestCa } from "../helpers/test-ca.js";

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca?.close();
});

async function counts() {
  return ca.running.store.tx(async (tx) => ({
    certs: await tx.countCertificates(),
    audit: (await tx.listAuditEvents(1, 100_000)).length,
  }));
}

async function lastAudit() {
  const all = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 100_000));
  return all[all.length - 1]!;
}

/** Asserts a deny: the code in problem+json, one audit event with it, no certificate written. */
async function expectDenied(
  p: Promise<{ status: number; json: unknown; headers: Record<string, unknown> }>,
  code: string,
  status?: number,
) {
  const before = await counts();
  const res = await p;
  const body = res.json as { code: string; type: string; status: number };
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(body.code).toBe(code);
  expect(body.type).toBe(`urn:mayfly:problem:${code}`);
  if (status) expect(res.status).toBe(status);
  const after = await counts();
  expect(after.certs).toBe(before.certs);
  return { before, after, body };
}

describe("issuance pipeline", () => {
  it("issues a leaf that openssl verifies strictly and that carries exactly the profile", async () => {
    const agent = await ca.seedAgent();
    const { res } = await issueVia(ca, agent);
    expect(res.status).toBe(201);
    const out = res.json as {
      certificate: string;
      chain: string[];
      notBefore: string;
      notAfter: string;
      renewAfter: string;
      bundle: string;
    };
    const leaf = await writeTemp(ca.dir, "leaf.pem", out.certificate);
    const root = await writeTemp(ca.dir, "root.pem", ca.rootPem);
    const chain = await writeTemp(ca.dir, "chain.pem", out.chain.join(""));
    const v = await openssl([
      "verify",
      "-x509_strict",
      "-purpose",
      "sslclient",
      "-CAfile",
      root,
      "-untrusted",
      chain,
      leaf,
    ]);
    expect(v.stderr).toBe("");
    expect(v.stdout.trim()).toBe(`${leaf}: OK`);
    const vs = await openssl([
      "verify",
      "-x509_strict",
      "-purpose",
      "sslserver",
      "-CAfile",
      root,
      "-untrusted",
      chain,
      leaf,
    ]);
    expect(vs.code).toBe(0);

    const text = (await openssl(["x509", "-in", leaf, "-noout", "-text"])).stdout;
    expect(text).toMatch(/Version: 3 \(0x2\)/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(
      /X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication, TLS Web Server Authentication/,
    );
    expect(text).toMatch(
      new RegExp(
        `X509v3 Subject Alternative Name: critical\\s+URI:spiffe://mayfly.internal/agent/${agent.agentId}\\n`,
      ),
    );
    expect(text).toMatch(/X509v3 Authority Key Identifier:/);
    expect(text).toMatch(/X509v3 Subject Key Identifier:/);
    expect(text).toMatch(/2\.25\.\d+:/); // the Mayfly extension, non-critical
    expect(text).not.toMatch(/2\.25\.\d+: critical/);
    const exts = (text.match(/X509v3 [A-Za-z ]+:|2\.25\.\d+:/g) ?? []).filter(
      (e) => e !== "X509v3 extensions:",
    );
    expect(exts).toHaveLength(7);

    const nb = Date.parse(out.notBefore);
    const na = Date.parse(out.notAfter);
    const now = ca.clock.now();
    const floorS = (t: number) => t - (t % 1000);
    expect(nb).toBe(floorS(now - 30_000));
    expect(na).toBe(floorS(now + 5 * 60_000));
    expect(Date.parse(out.renewAfter)).toBeGreaterThan(now);
    expect(Date.parse(out.renewAfter)).toBeLessThan(na);
  });
});

describe("every deny: a stable code, one audit event, nothing else written", () => {
  it("unknown attestation format", async () => {
    const agent = await ca.seedAgent();
    const k = await newAgentKey();
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = (ch.json as { nonce: string }).nonce;
    const { before, after } = await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce,
        attestation: { format: "android-key" },
      }) as never,
      "attestation.format_unsupported",
      400,
    );
    expect(after.audit).toBe(before.audit + 1);
    const ev = await lastAudit();
    expect(ev.decision).toBe("deny");
    expect(ev.code).toBe("attestation.format_unsupported");
    expect(ev.subject).toBe(`agent:${agent.agentId}`);
    // The challenge was not consumed: the agent can still use it.
    const ok = await ca.call(`/v1/agents/${agent.agentId}/certificates`, {
      csr: k.csrDer.toString("base64url"),
      nonce,
      attestation: attest(agent.deviceKey, Buffer.from(nonce, "base64url"), k.spki),
    });
    expect(ok.status).toBe(201);
  });

  it("evidence bound to another key", async () => {
    const agent = await ca.seedAgent();
    const k = await newAgentKey();
    const other = await newAgentKey();
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce: nonce.toString("base64url"),
        attestation: attest(agent.deviceKey, nonce, other.spki),
      }) as never,
      "attestation.nonce_mismatch",
      400,
    );
  });

  it("evidence signed by another device", async () => {
    const agent = await ca.seedAgent();
    const intruder = await ca.seedAgent();
    const k = await newAgentKey();
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce: nonce.toString("base64url"),
        attestation: attest(intruder.deviceKey, nonce, k.spki),
      }) as never,
      "attestation.signature_invalid",
    );
  });

  it("a challenge yields one certificate", async () => {
    const agent = await ca.seedAgent();
    const first = await issueVia(ca, agent);
    expect(first.res.status).toBe(201);
    const k = await newAgentKey();
    await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce: first.nonce.toString("base64url"),
        attestation: attest(agent.deviceKey, first.nonce, k.spki),
      }) as never,
      "challenge.consumed",
    );
  });

  it("a challenge of another agent", async () => {
    const a = await ca.seedAgent();
    const b = await ca.seedAgent();
    const k = await newAgentKey();
    const ch = await ca.call(`/v1/agents/${a.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    await expectDenied(
      ca.call(`/v1/agents/${b.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce: nonce.toString("base64url"),
        attestation: attest(b.deviceKey, nonce, k.spki),
      }) as never,
      "challenge.agent_mismatch",
    );
  });

  it("an unknown and an expired challenge", async () => {
    const agent = await ca.seedAgent();
    const k = await newAgentKey();
    const fake = Buffer.alloc(32, 7);
    await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: k.csrDer.toString("base64url"),
        nonce: fake.toString("base64url"),
        attestation: attest(agent.deviceKey, fake, k.spki),
      }) as never,
      "challenge.not_found",
    );
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    ca.clock.advance(60_001);
    try {
      await expectDenied(
        ca.call(`/v1/agents/${agent.agentId}/certificates`, {
          csr: k.csrDer.toString("base64url"),
          nonce: nonce.toString("base64url"),
          attestation: attest(agent.deviceKey, nonce, k.spki),
        }) as never,
        "challenge.expired",
      );
    } finally {
      ca.clock.advance(-60_001);
    }
  });

  it.each([
    ["owner.inactive", { owner: { status: "deprovisioned" as const } }],
    ["owner.inactive", { owner: { status: "suspended" as const } }],
    ["device.unenrolled", { device: { status: "unenrolled" as const } }],
    ["agent.inactive", { agent: { status: "quarantined" as const } }],
    ["agent.retired", { agent: { status: "retired" as const } }],
    ["agent.expired", { agent: { expiresAt: 1 } }],
    ["binding.expired", { binding: { expiresAt: 1 } }],
    ["binding.affirmation_stale", { binding: { affirmedAt: 1 } }],
  ])("liveness: %s", async (code, seed) => {
    const agent = await ca.seedAgent(seed);
    const { res } = await issueVia(ca, agent).catch(() => ({ res: null }));
    expect(res).not.toBeNull();
    const body = res!.json as { code: string };
    expect(res!.status).toBe(403);
    expect(body.code).toBe(code);
    const ev = await lastAudit();
    expect(ev.code).toBe(code);
    expect(await ca.running.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId))).toHaveLength(0);
  });

  it("a leaver is denied at the next renewal", async () => {
    const agent = await ca.seedAgent();
    expect((await issueVia(ca, agent)).res.status).toBe(201);
    await ca.running.store.tx((tx) => tx.setOwnerStatus(agent.ownerId, "deprovisioned", ca.clock.now()));
    const { res } = await issueVia(ca, agent);
    expect((res.json as { code: string }).code).toBe("owner.inactive");
  });

  it("notAfter never passes the agent's end", async () => {
    const agent = await ca.seedAgent({ agent: { expiresAt: ca.clock.now() + 120_500 } });
    const { res } = await issueVia(ca, agent);
    expect(res.status).toBe(201);
    const na = Date.parse((res.json as { notAfter: string }).notAfter);
    expect(na).toBeLessThanOrEqual(ca.clock.now() + 120_500);
    expect(na).toBeGreaterThan(ca.clock.now() + 119_000);
  });

  it("a CSR that is not DER", async () => {
    const agent = await ca.seedAgent();
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = (ch.json as { nonce: string }).nonce;
    await expectDenied(
      ca.call(`/v1/agents/${agent.agentId}/certificates`, {
        csr: Buffer.from("not a csr").toString("base64url"),
        nonce,
        attestation: { format: "test-signed" },
      }) as never,
      "csr.malformed",
      400,
    );
  });

  it("malformed requests", async () => {
    const agent = await ca.seedAgent();
    const path = `/v1/agents/${agent.agentId}/certificates`;
    await expectDenied(ca.call(path, { nonce: "x" }) as never, "request.invalid", 400);
    await expectDenied(ca.call(path, undefined, { rawBody: "{not json" }) as never, "request.invalid", 400);
    await expectDenied(
      ca.call(path, undefined, { rawBody: "a=b", contentType: "text/plain" }) as never,
      "request.unsupported_media_type",
      415,
    );
    await expectDenied(ca.call(path, { csr: "A".repeat(70_000) }) as never, "request.too_large", 413);
    await expectDenied(ca.call("/v1/nothing", {}) as never, "request.not_found", 404);
    await expectDenied(ca.call("/v1/agents/bad$id/certificates", {}) as never, "request.invalid", 400);
    await expectDenied(ca.call(`/v1/agents/nobody/challenges`, {}) as never, "agent.not_found", 404);
  });

  it("the audit chain verifies after all of the above", async () => {
    const r = await verifyAuditChain(ca.running.store);
    expect(r.ok).toBe(true);
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 100_000));
    expect(events.filter((e) => e.decision === "allow" && e.type === "certificate.issue").length).toBe(
      await ca.running.store.tx((tx) => tx.countCertificates()),
    );
  });
});
