import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.js";
import { https } from "../helpers/https.js";
import { useTestDatabase } from "../helpers/postgres.js";
import type { TestAgent } from "../helpers/test-ca.js";
import { type Cluster, challengeAt, IDP, makeCluster, type Replica, redeemAt } from "./helpers/cluster.js";

// Three CA replicas, separate processes running the same composition root as
// `mayfly serve` (with the test-only evidence format, see helpers/replica-server.ts),
// against one PostgreSQL database, sharing the keys directory and passphrase file.
// Nothing another replica needs lives in a replica's memory.

const db = useTestDatabase();

describe("three replicas over one PostgreSQL database", () => {
  let cluster: Cluster;
  let a: Replica;
  let b: Replica;
  let c: Replica;
  let n = 0;
  const ca = () => cluster.rootPem();
  const seed = () => cluster.seedAgent(++n);

  beforeAll(async () => {
    cluster = await makeCluster(() => db().url);
    // All three start at once on an empty database: they must agree on one CA.
    [a, b, c] = await Promise.all([cluster.start("a"), cluster.start("b"), cluster.start("c")]);
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("first starts together create one root and one intermediate, served by all three", async () => {
    const cas = await cluster.store.tx((tx) => tx.listCaCertificates());
    expect(cas.map((x) => x.role).sort()).toEqual(["intermediate", "root"]);
    // The same roots and intermediates (the bundle's envelope, e.g. a signature, may differ).
    const bundles = await Promise.all(
      [a, b, c].map(async (r) => {
        const json = (await https(`${r.url}/v1/bundle`, { ca: ca() })).json as Record<string, unknown>;
        return { roots: json.roots, intermediates: json.intermediates };
      }),
    );
    expect((bundles[0]!.roots as unknown[]).length).toBe(1);
    expect(bundles[1]).toEqual(bundles[0]);
    expect(bundles[2]).toEqual(bundles[0]);
    const inits = await cluster.store.tx((tx) => tx.listAuditEvents(1, 100));
    expect(inits.filter((e) => e.type === "ca.init")).toHaveLength(1);
  });

  it("redeems at B a challenge handed out by A", async () => {
    const agent = await seed();
    const nonce = await challengeAt(a.url, ca(), agent);
    const res = await redeemAt(b.url, ca(), agent, nonce);
    expect(res.status, res.text).toBe(201);
    const leaf = new X509Certificate((res.json as { certificate: string }).certificate);
    const serial = Buffer.from(leaf.serialNumber, "hex");
    const certs = await cluster.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId));
    expect(certs).toHaveLength(1);
    expect(certs[0]!.serial.equals(serial)).toBe(true);
    expect(certs[0]!.challengeNonce?.equals(nonce)).toBe(true);
  });

  it("gives one certificate for one challenge redeemed at A and B at once", async () => {
    const agents: TestAgent[] = [];
    for (let i = 0; i < 8; i++) agents.push(await seed());
    for (const agent of agents) {
      const nonce = await challengeAt(c.url, ca(), agent);
      const results = await Promise.all([
        redeemAt(a.url, ca(), agent, nonce),
        redeemAt(b.url, ca(), agent, nonce),
      ]);
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      const loser = results.find((r) => r.status !== 201)!;
      expect((loser.json as { code: string }).code).toBe("challenge.consumed");
      const certs = await cluster.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId));
      expect(certs).toHaveLength(1);
    }
  });

  it("denies at B and C the next issuance after a SCIM leaver event at A", async () => {
    const scim = (method: string, path: string, body: unknown) =>
      https(`${a.url}/scim/v2${path}`, {
        ca: ca(),
        method,
        body,
        contentType: "application/scim+json",
        headers: { authorization: `Bearer ${cluster.scimToken}` },
      });
    const created = await scim("POST", "/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      userName: "leaver@example.test",
      externalId: "idp-subject-leaver",
      active: true,
    });
    expect(created.status, created.text).toBe(201);
    const owner = await cluster.store.tx((tx) => tx.findOwnerBySubject(IDP, "idp-subject-leaver"));
    const agent = await cluster.seedAgent(++n, owner!);
    expect((await redeemAt(b.url, ca(), agent, await challengeAt(c.url, ca(), agent))).status).toBe(201);

    const id = (created.json as { id: string }).id;
    const left = await scim("PATCH", `/Users/${id}`, {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [{ op: "replace", path: "active", value: false }],
    });
    expect(left.status, left.text).toBe(200);
    for (const r of [b, c]) {
      const res = await redeemAt(r.url, ca(), agent, await challengeAt(a.url, ca(), agent));
      expect(res.status, r.name).toBe(403);
      expect(["owner.inactive", "agent.inactive"]).toContain((res.json as { code: string }).code);
    }
  });

  it("keeps one verifiable audit chain under concurrent issuance at all three", async () => {
    const agents: TestAgent[] = [];
    for (let i = 0; i < 6; i++) agents.push(await seed());
    const replicas = [a, b, c];
    const jobs = Array.from({ length: 30 }, async (_, i) => {
      const agent = agents[i % agents.length]!;
      const from = replicas[i % 3]!;
      const to = replicas[(i + 1) % 3]!;
      return (await redeemAt(to.url, ca(), agent, await challengeAt(from.url, ca(), agent))).status;
    });
    expect(await Promise.all(jobs)).toEqual(Array(30).fill(201));
    const result = await verifyAuditChain(cluster.store);
    expect(result.ok).toBe(true);
    const events = await cluster.store.tx((tx) => tx.listAuditEvents(1, 1000));
    expect(events.filter((e) => e.type === "certificate.issue" && e.decision === "allow")).toHaveLength(
      1 + 8 + 1 + 30,
    );
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  });
});
