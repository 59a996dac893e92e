import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mayfly } from "../helpers/cli.js";
import { type RotationCa, startRotationCa } from "./helpers.js";

// The operator commands as a separate process over the running CA's data directory:
// --help, --json, refusals with their code and exit 1, --force audited.

const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
rotation:
  auto: false
`;

let ca: RotationCa;
let run: (...args: string[]) => ReturnType<typeof mayfly>;
beforeAll(async () => {
  ca = await startRotationCa(CONFIG);
  run = (...args) => mayfly([...args, "-c", `${ca.dir}/mayfly.yaml`], { MAYFLY_DATA_DIR: `${ca.dir}/data` });
});
afterAll(async () => {
  await ca?.close();
});

// Each command is a separate tsx process (a second or more each on a loaded machine).
describe("mayfly root and mayfly ca", { timeout: 180_000 }, () => {
  it("every command has --help", async () => {
    const root = await mayfly(["root", "--help"]);
    expect(root.code).toBe(0);
    for (const c of ["prepare", "activate", "retire", "status"])
      expect(root.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    const rc = await mayfly(["ca", "--help"]);
    for (const c of ["rotate", "status"]) expect(rc.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    const h = await mayfly(["root", "activate", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: mayfly root activate/);
    expect(h.stdout).toContain("--force");
    expect(h.stdout).toContain("--json");
  });

  it("runs the ceremony: refusals exit 1 with their code, --force is audited", async () => {
    const status = await run("root", "status", "--json");
    expect(JSON.parse(status.stdout)).toMatchObject({ ok: true, phase: "steady", next: { step: "prepare" } });
    const early = await run("root", "activate", "--json");
    expect(early.code).toBe(1);
    expect(JSON.parse(early.stdout)).toMatchObject({ ok: false, code: "rotation.nothing_prepared" });

    const prep = await run("root", "prepare", "--json");
    expect(prep.code, prep.stderr).toBe(0);
    expect(JSON.parse(prep.stdout)).toMatchObject({ ok: true, phase: "prepared", canaried: true });
    const tooEarly = await run("root", "activate", "--json");
    expect(tooEarly.code).toBe(1);
    expect(JSON.parse(tooEarly.stdout)).toMatchObject({ ok: false, code: "rotation.too_early" });
    const text = await run("root", "activate");
    expect(text.code).toBe(1);
    expect(text.stderr).toContain("rotation.too_early");

    const forced = await run("root", "activate", "--force", "--json");
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ ok: true, phase: "activated", forced: true });
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 10_000));
    const activation = events.find((e) => e.type === "ca.root.activate" && e.decision === "allow");
    expect(activation).toMatchObject({ actor: "cli", data: expect.objectContaining({ forced: true }) });

    const retire = await run("root", "retire", "--json");
    expect(retire.code).toBe(1);
    expect(JSON.parse(retire.stdout)).toMatchObject({ ok: false, code: "rotation.retire_blocked" });
    const st = JSON.parse((await run("root", "status", "--json")).stdout);
    expect(st).toMatchObject({ phase: "activated", next: { step: "retire" } });
    expect(st.next.waitsFor).toContain("drain");

    // The server picks the new root up on its next re-read; the bundle update verifies.
    expect(await ca.running.rotation.refresh()).toBe(true);
    const b = (await ca.updateTrust()).json;
    expect(b.roots.map((r) => r.slot)).toEqual(["previous", "current"]);

    const tick = await run("ca", "rotate", "--tick", "--json");
    expect(tick.code, tick.stderr).toBe(0);
    expect(JSON.parse(tick.stdout)).toMatchObject({ ok: true, done: [] });
    const cs = JSON.parse((await run("ca", "status", "--json")).stdout);
    expect(cs.intermediates.map((i: { slot: string }) => i.slot)).toEqual(["previous", "current"]);
  });
});
