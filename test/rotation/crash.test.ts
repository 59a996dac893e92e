import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotationTick } from "../../src/authority/rotation-intermediate.js";
import { rootActivate, rootPrepare, rootStatus } from "../../src/authority/rotation-root.js";
import { mayfly } from "../helpers/cli.js";
import { type RotationCa, startRotationCa } from "./helpers.js";

// A crash between two steps (the fault hook throws right after a step's transaction
// commits, as a kill -9 there would): the journal and the slots agree on how far it got,
// `status` says what is next, and the next tick or command completes the rotation.

const HOUR = 3_600_000;
const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
rotation:
  auto: false
  propagation: 1h
  intermediateActiveFor: 6h
`;
const crashAfter = (name: string) => ({
  afterCommit: (step: string) => {
    if (step === name) throw new Error(`injected crash after ${step}`);
  },
});

let ca: RotationCa;
beforeAll(async () => {
  // Three days back: the CA's TLS certificate, re-issued at each swap, stays valid on the wall
  // clock, and the CLI below (which runs on the wall clock) finds the propagation passed.
  ca = await startRotationCa(CONFIG, Date.now() - 3 * 24 * HOUR);
});
afterAll(async () => {
  await ca?.close();
});

describe("crash between rotation steps", { timeout: 120_000 }, () => {
  it("intermediate: a crash after prepare, then after activate; the next ticks complete the rotation", async () => {
    const start = ca.clock.now();
    ca.clock.set(start + 5 * HOUR);
    await expect(rotationTick(ca.deps("system", crashAfter("intermediate.prepare")))).rejects.toThrow(
      "injected crash",
    );
    const rows = await ca.running.store.tx((tx) => tx.listCaCertificates());
    expect(rows.filter((r) => r.role === "intermediate").map((r) => r.slot)).toEqual(["current", "next"]);
    const t1 = await rotationTick(ca.deps("system"));
    expect(t1.done.map((d) => d.step)).toEqual(["canary"]);
    ca.clock.set(start + 6 * HOUR);
    await expect(rotationTick(ca.deps("system", crashAfter("intermediate.activate")))).rejects.toThrow(
      "injected crash",
    );
    const t2 = await rotationTick(ca.deps("system"));
    expect(t2.done).toEqual([]);
    expect(t2.waiting.map((w) => w.step)).toContain("retire");
    await ca.running.rotation.refresh();
    const b = (await ca.updateTrust()).json;
    expect(b.intermediates.map((i) => i.slot)).toEqual(["previous", "current"]);
  });

  it("root: a crash after prepare's first transaction; status explains, the next command (the CLI) completes it", async () => {
    await expect(rootPrepare(ca.deps("cli", crashAfter("root.prepare")))).rejects.toThrow("injected crash");
    const s = await rootStatus(ca.deps());
    expect(s).toMatchObject({ phase: "prepared", canaried: false });
    expect(s.next?.waitsFor).toContain("canary");
    // The published next root is already in the bundle (and verifies as an update).
    await ca.running.rotation.refresh();
    const b = (await ca.updateTrust()).json;
    expect(b.roots.map((r) => r.slot)).toEqual(["current", "next"]);
    expect(ca.trust().roots).toHaveLength(2);

    const env = { MAYFLY_DATA_DIR: `${ca.dir}/data` };
    const cfg = `${ca.dir}/mayfly.yaml`;
    const st = await mayfly(["root", "status", "--json", "-c", cfg], env);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ ok: true, phase: "prepared", canaried: false });
    const act = await mayfly(["root", "activate", "--json", "-c", cfg], env);
    expect(act.code, act.stdout + act.stderr).toBe(0);
    expect(JSON.parse(act.stdout)).toMatchObject({
      ok: true,
      phase: "activated",
      canaried: true,
      forced: false,
    });
    const again = await rootActivate(ca.deps());
    expect(again.alreadyDone).toBe(true);
    await ca.running.rotation.refresh();
    const b2 = (await ca.updateTrust()).json;
    expect(b2.roots.map((r) => r.slot)).toEqual(["previous", "current"]);
    expect(ca.running.ca.issuer.record.id).toBe(s.intermediate);
  });
});
