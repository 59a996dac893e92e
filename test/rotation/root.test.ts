import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/index.js";
import { rootActivate, rootPrepare, rootRetire, rootStatus } from "../../src/authority/rotation-root.js";
import { isMayflyError } from "../../src/errors/index.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { issueVia } from "../helpers/test-ca.js";
import { type BundleJson, opensslVerify, type RotationCa, startRotationCa } from "./helpers.js";

// The root rotation ceremony on a real server, with a manual clock: prepare (new root and
// intermediate, cross-signed both ways, published as next), activate (refused before the
// propagation period), retire (refused while a certificate chaining to the old root may be
// valid). Leaves from before and after verify against the served bundle with
// `openssl verify -x509_strict` at each stage, and the cross certificates let a holder of
// either root verify a leaf of the other.

const MIN = 60_000;
const HOUR = 60 * MIN;
const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
    lifetime: 5m
    maxLifetime: 5m
rotation:
  auto: false
  propagation: 1h
`;

let ca: RotationCa;
beforeAll(async () => {
  ca = await startRotationCa(CONFIG, Date.now() - 3 * 24 * HOUR);
});
afterAll(async () => {
  await ca?.close();
});

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isMayflyError(e)) return e.code;
    throw e;
  }
  throw new Error("expected a refusal");
}

async function issue(agent: Awaited<ReturnType<RotationCa["seedAgent"]>>) {
  const { res } = await issueVia(ca, agent);
  expect(res.status, res.text).toBe(201);
  return res.json as { certificate: string; chain: string[]; notAfter: string };
}

async function expectVerifies(b: BundleJson, leafPem: string, at = ca.clock.now()) {
  const r = await opensslVerify(ca.dir, b, leafPem, at);
  expect(`${r.stdout}${r.stderr}`).toContain("OK");
}

async function denials(type: string) {
  const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 10_000));
  return events.filter((e) => e.type === type && e.decision === "deny").map((e) => e.code);
}

describe("root rotation ceremony", () => {
  it("prepare -> activate -> retire, with refusals while a step is not due", async () => {
    const deps = ca.deps();
    const agent = await ca.seedAgent();
    const b0 = (await ca.updateTrust()).json;
    const r0 = b0.roots[0]!;
    const l0 = await issue(agent);
    await expectVerifies(b0, l0.certificate);
    expect((await rootStatus(deps)).next).toMatchObject({ step: "prepare", waitsFor: null });
    expect(await refusal(rootRetire(deps))).toBe("rotation.nothing_to_retire");
    expect(await refusal(rootActivate(deps))).toBe("rotation.nothing_prepared");

    // prepare: new root + intermediate, cross-signed, published as next, canary passed
    const p = await rootPrepare(deps);
    expect(p).toMatchObject({ phase: "prepared", canaried: true, from: r0.id });
    expect(await refusal(rootPrepare(deps))).toBe("rotation.in_progress");
    await ca.running.rotation.refresh();
    const b1 = (await ca.updateTrust()).json;
    expect(b1.roots.map((r) => [r.id, r.slot])).toEqual([
      [r0.id, "current"],
      [p.to, "next"],
    ]);
    expect(b1.intermediates.map((i) => i.slot)).toEqual(["current", "next"]);
    expect(b1.crossSigned.map((c) => [c.subjectId, c.issuerId])).toEqual([
      [p.to, r0.id],
      [r0.id, p.to],
    ]);
    expect(b1.signatures).toHaveLength(2);
    expect(ca.trust().roots.map((r) => r.id)).toEqual([r0.id, p.to]);
    await expectVerifies(b1, l0.certificate);

    // activate: refused (and audited) until the next root has been published for propagation
    expect(await refusal(rootActivate(deps))).toBe("rotation.too_early");
    ca.clock.set(Date.parse(p.activateAllowedAt!) - 1);
    expect(await refusal(rootActivate(deps))).toBe("rotation.too_early");
    expect(await denials("ca.root.activate")).toEqual([
      "rotation.nothing_prepared",
      "rotation.too_early",
      "rotation.too_early",
    ]);
    const l0b = await issue(agent);
    ca.clock.set(Date.parse(p.activateAllowedAt!));
    const a = await rootActivate(deps);
    expect(a).toMatchObject({ phase: "activated", forced: false });
    expect((await rootActivate(deps)).alreadyDone).toBe(true);
    await ca.running.rotation.refresh();
    const b2 = (await ca.updateTrust()).json;
    expect(b2.roots.map((r) => [r.id, r.slot])).toEqual([
      [r0.id, "previous"],
      [p.to, "current"],
    ]);
    expect(b2.intermediates.map((i) => i.slot)).toEqual(["previous", "current"]);
    const l1 = await issue(agent);
    expect(l1.chain[0]).toBe(b2.intermediates[1]!.pem);
    for (const l of [l0b, l1]) await expectVerifies(b2, l.certificate);

    // Cross certificates: a holder of only the old root verifies a new-root leaf through the
    // new root's cross certificate, and a holder of only the new root an old-root leaf.
    const dir = ca.dir;
    const at = String(Math.floor(ca.clock.now() / 1000));
    const oldRoot = await writeTemp(dir, "old-root.pem", r0.pem);
    const newRoot = await writeTemp(dir, "new-root.pem", b2.roots[1]!.pem);
    const viaOld = await writeTemp(dir, "via-old.pem", b2.intermediates[1]!.pem + b1.crossSigned[0]!.pem);
    const viaNew = await writeTemp(dir, "via-new.pem", b2.intermediates[0]!.pem + b1.crossSigned[1]!.pem);
    const leaf1 = await writeTemp(dir, "l1.pem", l1.certificate);
    const leaf0 = await writeTemp(dir, "l0b.pem", l0b.certificate);
    const v1 = await openssl([
      "verify",
      "-x509_strict",
      "-attime",
      at,
      "-CAfile",
      oldRoot,
      "-untrusted",
      viaOld,
      leaf1,
    ]);
    expect(`${v1.stdout}${v1.stderr}`).toContain("OK");
    const v0 = await openssl([
      "verify",
      "-x509_strict",
      "-attime",
      at,
      "-CAfile",
      newRoot,
      "-untrusted",
      viaNew,
      leaf0,
    ]);
    expect(`${v0.stdout}${v0.stderr}`).toContain("OK");

    // retire: refused while a certificate chaining to the old root may still be valid
    expect(await refusal(rootRetire(deps))).toBe("rotation.retire_blocked");
    const s = await rootStatus(deps);
    expect(s.next?.step).toBe("retire");
    expect(s.next?.waitsFor).toContain("leaves of intermediate");
    const retireAt = Date.parse(s.retireAllowedAt!);
    expect(retireAt).toBeGreaterThanOrEqual(Date.parse(l0b.notAfter));
    ca.clock.set(retireAt - 1);
    expect(await refusal(rootRetire(deps))).toBe("rotation.retire_blocked");
    expect(await denials("ca.root.retire")).toEqual([
      "rotation.nothing_to_retire",
      "rotation.retire_blocked",
      "rotation.retire_blocked",
    ]);
    ca.clock.set(retireAt);
    const r = await rootRetire(deps);
    expect(r).toMatchObject({
      phase: "steady",
      roots: [expect.objectContaining({ id: p.to, slot: "current" })],
    });
    expect((await rootRetire(deps)).alreadyDone).toBe(true);
    await ca.running.rotation.refresh();
    const b3 = (await ca.updateTrust()).json;
    expect(b3.roots.map((x) => [x.id, x.slot])).toEqual([[p.to, "current"]]);
    expect(b3.intermediates.map((i) => i.slot)).toEqual(["current"]);
    expect(b3.crossSigned).toEqual([]);
    expect(b3.signatures).toHaveLength(1);
    expect(ca.trust().roots.map((x) => x.id)).toEqual([p.to]);
    const l2 = await issue(agent);
    await expectVerifies(b3, l2.certificate);
    await expectVerifies(b3, l1.certificate, Date.parse(l1.notAfter) - 1000);
    const gone = await opensslVerify(ca.dir, b3, l0b.certificate, Date.parse(l0b.notAfter) - 1000);
    expect(gone.code).not.toBe(0);

    // A second ceremony starts from the new root.
    const p2 = await rootPrepare(deps);
    expect(p2).toMatchObject({ phase: "prepared", from: p.to });
    expect((await verifyAuditChain(ca.running.store)).ok).toBe(true);
  });
});
