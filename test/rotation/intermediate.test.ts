import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/index.js";
import { issueVia } from "../helpers/test-ca.js";
import { type BundleJson, opensslVerify, type RotationCa, startRotationCa } from "./helpers.js";

// Intermediate auto-rotation end to end on a real server (HTTPS, SQLite, file keys), ticked
// by the test with a manual clock: prepare -> canary -> activate -> the previous one stays
// in the bundle until its leaves have expired -> retired. At every stage, leaves issued
// before and after verify against the served bundle with `openssl verify -x509_strict`
// at the CA's time. The clock starts three days back so that the CA's own TLS certificate,
// re-issued at each swap, is valid for the test's HTTPS client on the wall clock.

const MIN = 60_000;
const HOUR = 60 * MIN;
const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
    lifetime: 5m
    maxLifetime: 5m
issuance:
  backdate: 30s
rotation:
  auto: false
  checkInterval: 1m
  propagation: 1h
  intermediateActiveFor: 6h
`;
const DRAIN = 5 * MIN + 30_000 + MIN;

let ca: RotationCa;
beforeAll(async () => {
  ca = await startRotationCa(CONFIG, Date.now() - 3 * 24 * HOUR);
});
afterAll(async () => {
  await ca?.close();
});

async function bundle(): Promise<BundleJson> {
  return (await ca.updateTrust()).json;
}

async function issue(agent: Awaited<ReturnType<RotationCa["seedAgent"]>>) {
  const { res } = await issueVia(ca, agent);
  expect(res.status, res.text).toBe(201);
  return res.json as { certificate: string; chain: string[]; notAfter: string };
}

async function expectVerifies(b: BundleJson, leafPem: string, at = ca.clock.now()) {
  const r = await opensslVerify(ca.dir, b, leafPem, at);
  expect(`${r.stdout}${r.stderr}`).toContain("OK");
  expect(r.code).toBe(0);
}

const slots = (b: BundleJson) => b.intermediates.map((i) => `${i.id.slice(0, 8)}:${i.slot}`);

describe("intermediate auto-rotation", () => {
  it("prepares, canary-signs, activates, keeps the previous until its leaves expire, then retires it", async () => {
    const agent = await ca.seedAgent();
    const start = ca.clock.now();
    const b0 = await bundle();
    expect(b0.intermediates).toHaveLength(1);
    const i0 = b0.intermediates[0]!;
    const l0 = await issue(agent);
    expect(l0.chain[0]).toBe(i0.pem);
    await expectVerifies(b0, l0.certificate);

    // Nothing is due before prepareAt = activeSince + activeFor - propagation.
    const idle = await ca.running.rotation.tick();
    expect(idle.done).toEqual([]);
    expect(idle.waiting[0]).toMatchObject({ step: "prepare" });
    const prepareAt = Date.parse(idle.waiting[0]!.at!);
    expect(prepareAt).toBe(Date.parse(i0.notBefore) + 6 * HOUR - HOUR);

    // prepare + canary
    ca.clock.set(prepareAt);
    const t1 = await ca.running.rotation.tick();
    expect(t1.done.map((d) => d.step)).toEqual(["prepare", "canary"]);
    expect(t1.waiting).toEqual([
      expect.objectContaining({ step: "activate", at: new Date(prepareAt + HOUR).toISOString() }),
    ]);
    const b1 = await bundle();
    expect(b1.sequence).toBeGreaterThan(b0.sequence);
    expect(slots(b1)).toEqual([`${i0.id.slice(0, 8)}:current`, expect.stringMatching(/:next$/)]);
    const i1 = b1.intermediates[1]!;
    await expectVerifies(b1, l0.certificate, start); // within its (past) validity
    const l0b = await issue(agent); // still signed by the current one
    expect(l0b.chain[0]).toBe(i0.pem);
    await expectVerifies(b1, l0b.certificate);

    // activate: not a moment before the next has been published for the propagation period
    ca.clock.set(prepareAt + HOUR - 1);
    expect((await ca.running.rotation.tick()).done).toEqual([]);
    const l0c = await issue(agent);
    expect(l0c.chain[0]).toBe(i0.pem);
    ca.clock.set(prepareAt + HOUR);
    const activatedAt = ca.clock.now();
    const t2 = await ca.running.rotation.tick();
    expect(t2.done.map((d) => d.step)).toEqual(["activate"]);
    const b2 = await bundle();
    expect(b2.intermediates.map((i) => [i.id, i.slot])).toEqual([
      [i0.id, "previous"],
      [i1.id, "current"],
    ]);
    const l1 = await issue(agent);
    expect(l1.chain[0]).toBe(i1.pem);
    for (const l of [l0c, l1]) await expectVerifies(b2, l.certificate);
    expect(ca.running.ca.issuer.record.id).toBe(i1.id);

    // the previous stays while its last leaf (l0c) may be valid somewhere
    const lastLeaf = Date.parse(l0c.notAfter);
    const retireAt = Math.max(activatedAt + DRAIN, lastLeaf + 30_000);
    ca.clock.set(retireAt - 1);
    const t3 = await ca.running.rotation.tick();
    expect(t3.done).toEqual([]);
    expect(t3.waiting.find((w) => w.step === "retire")).toMatchObject({
      id: i0.id,
      at: new Date(retireAt).toISOString(),
    });
    const b3 = await bundle();
    expect(b3.intermediates.map((i) => i.id)).toContain(i0.id);
    await expectVerifies(b3, l0c.certificate, lastLeaf - 1000);

    ca.clock.set(retireAt);
    const t4 = await ca.running.rotation.tick();
    expect(t4.done.map((d) => [d.step, d.id])).toEqual([["retire", i0.id]]);
    const b4 = await bundle();
    expect(b4.intermediates.map((i) => [i.id, i.slot])).toEqual([[i1.id, "current"]]);
    const l2 = await issue(agent);
    await expectVerifies(b4, l2.certificate);
    // A leaf of the retired intermediate no longer verifies against the bundle (it has expired, too).
    const stale = await opensslVerify(ca.dir, b4, l0c.certificate, lastLeaf - 1000);
    expect(stale.code).not.toBe(0);

    // A second rotation, on I1's own schedule.
    ca.clock.set(activatedAt + 6 * HOUR);
    const t5 = await ca.running.rotation.tick();
    expect(t5.done.map((d) => d.step)).toEqual(["prepare", "canary"]);
    ca.clock.advance(HOUR);
    expect((await ca.running.rotation.tick()).done.map((d) => d.step)).toEqual(["activate"]);
    const b5 = await bundle();
    expect(b5.intermediates.map((i) => i.slot)).toEqual(["previous", "current"]);
    const l3 = await issue(agent);
    await expectVerifies(b5, l3.certificate);
    expect(ca.clock.now() - start).toBeGreaterThan(12 * HOUR);

    // Every step is in the audit chain, which verifies end to end.
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 10_000));
    const types = events.map((e) => e.type).filter((t) => t.startsWith("ca.intermediate"));
    expect(types).toEqual([
      "ca.intermediate.prepare",
      "ca.intermediate.canary",
      "ca.intermediate.activate",
      "ca.intermediate.retire",
      "ca.intermediate.prepare",
      "ca.intermediate.canary",
      "ca.intermediate.activate",
    ]);
    expect((await verifyAuditChain(ca.running.store)).ok).toBe(true);
  });

  it("ticking again, or from two callers at once, changes nothing more", async () => {
    const before = await ca.running.store.tx((tx) => tx.listCaJournal());
    const [a, b] = await Promise.all([ca.running.rotation.tick(), ca.running.rotation.tick()]);
    expect([...a.done, ...b.done]).toEqual([]);
    expect(await ca.running.store.tx((tx) => tx.listCaJournal())).toEqual(before);
  });
});
