import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { readState } from "../../src/agent/index.js";
import { TPM_HT } from "../../src/tpm/client/index.js";
import { auditMark, auditSince } from "../e2e-tpm/helpers/live.js";
import { mayfly } from "../helpers/cli.js";
import { type AgentEnv, startAgentEnv } from "./helpers.js";

// `mayfly agent enrol` against a real CA and a manufactured swtpm, as separate processes:
// the first run activates the device and leaves a private state directory; later runs see
// the enrolment, check the AK is still the one in the TPM, and change nothing.

// Separate processes and a shared two-core machine: generous limits, no timing assertions.
vi.setConfig({ testTimeout: 120_000 });

let env: AgentEnv;
beforeAll(async () => {
  env = await startAgentEnv("e2e-agent-enrol");
}, 60_000);
afterAll(async () => {
  await env?.close();
});

const mode = (p: string) => statSync(p).mode & 0o777;

describe("mayfly agent enrol", () => {
  const state = () => join(env.work, "state");
  const enrol = (...extra: string[]) =>
    mayfly(["agent", "enrol", "--tpm", env.tpmSpec, "--state", state(), ...extra]);

  it("activates the device once; the state is 0700 with 0600 files; the AK is persistent", async () => {
    const mark = await auditMark(env.ca);
    const r = await enrol("--ca", env.ca.url, "--ca-bundle", env.caBundleFile);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^enrolled: device \S+ with https:\/\/127\.0\.0\.1:\d+\n {2}AK Name 000b[0-9a-f]{64} \(persistent at 0x81010002\)/,
    );
    const s = (await readState(state()))!;
    const device = await env.ca.running.store.tx((tx) => tx.getDevice(s.deviceId));
    expect(device?.akName?.toString("hex")).toBe(s.akName);
    expect(mode(state())).toBe(0o700);
    for (const f of ["state.json", "ca-bundle.pem"]) expect(mode(join(state(), f))).toBe(0o600);
    expect(readFileSync(join(state(), "ca-bundle.pem"), "utf8")).toBe(env.ca.rootPem);
    expect(s).toMatchObject({
      caUrl: env.ca.url,
      tpm: env.tpmSpec,
      akHandle: 0x81010002,
      ekKind: "rsa2048",
      akKind: "ecc256",
    });
    expect(await env.tpm.listHandles(TPM_HT.PERSISTENT)).toContain(0x81010002);
    expect((await env.tpm.readPublic(0x81010002)).name.toString("hex")).toBe(s.akName);
    expect((await auditSince(env.ca, mark)).map((e) => e.type)).toEqual([
      "device.activation.start",
      "device.activation.complete",
    ]);
  });

  it("a second run (even without --ca) sees the enrolment and does nothing", async () => {
    const before = readFileSync(join(state(), "state.json"), "utf8");
    const mark = await auditMark(env.ca);
    const r = await enrol();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^already enrolled: device \S+ .* the AK \(persistent at 0x81010002\) still matches\. Nothing to do\.\n$/,
    );
    const json = await enrol("--json");
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      alreadyEnrolled: true,
      akHandle: "0x81010002",
    });
    expect(readFileSync(join(state(), "state.json"), "utf8")).toBe(before);
    expect(await auditSince(env.ca, mark)).toEqual([]);
  });

  it("an AK evicted from the TPM (e.g. TPM2_Clear) is restored from the state, not re-enrolled", async () => {
    await env.tpm.evictControl(0x81010002, 0x81010002);
    expect(await env.tpm.listHandles(TPM_HT.PERSISTENT)).not.toContain(0x81010002);
    const mark = await auditMark(env.ca);
    const r = await enrol();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /WARN: the AK is no longer at 0x81010002: loading it from the state and persisting it again/,
    );
    expect(r.stdout).toMatch(/^already enrolled/);
    const s = (await readState(state()))!;
    expect((await env.tpm.readPublic(0x81010002)).name.toString("hex")).toBe(s.akName);
    expect(await auditSince(env.ca, mark)).toEqual([]);
  });

  it("a different CA, or another key at the handle, is refused with its own code; --force enrols again", async () => {
    const other = await enrol("--ca", "https://127.0.0.1:1");
    expect(other.code).toBe(16);
    expect(other.stderr).toMatch(
      /agent\.enrolled_elsewhere: .* is enrolled with https:\/\/127\.0\.0\.1:\d+, not https:\/\/127\.0\.0\.1:1/,
    );

    // Another AK-shaped key where ours should be: the state no longer matches the TPM.
    const s = (await readState(state()))!;
    await env.tpm.evictControl(0x81010002, 0x81010002);
    const { createSrk } = await import("../../src/tpm/client/index.js");
    const srk = await createSrk(env.tpm);
    await env.tpm.evictControl(srk.handle, 0x81010002);
    await env.tpm.flushContext(srk.handle);
    const mismatch = await enrol();
    expect(mismatch.code).toBe(16);
    expect(mismatch.stderr).toMatch(/agent\.ak_mismatch: the key at 0x81010002 .* is not the enrolled AK/);
    expect(mismatch.stderr).toMatch(/enrol it again/);

    // --force will not evict a key it did not make either.
    const forced = await enrol("--force");
    expect(forced.code).toBe(16);
    expect(forced.stderr).toMatch(/agent\.handle_occupied: 0x81010002 already holds a key/);

    await env.tpm.evictControl(0x81010002, 0x81010002);
    const again = await enrol("--force");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^enrolled: /);
    const s2 = (await readState(state()))!;
    expect(s2.deviceId).toBe(s.deviceId); // same EK, same device
    expect(s2.akName).not.toBe(s.akName);
  });

  it("--ak-handle none keeps the AK as blobs only; a first enrolment needs --ca and --ca-bundle", async () => {
    const dir = join(env.work, "blobs-only");
    const missing = await mayfly(["agent", "enrol", "--tpm", env.tpmSpec, "--state", dir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--ca URL is required for a first enrolment/);
    const args = ["agent", "enrol", "--tpm", env.tpmSpec, "--state", dir, "--ak-handle", "none"];
    const r = await mayfly([...args, "--ca", env.ca.url, "--ca-bundle", env.caBundleFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/loaded from the state when needed/);
    expect((await readState(dir))!.akHandle).toBeNull();
    const again = await mayfly(args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^already enrolled/);
    expect(await env.tpm.listHandles(TPM_HT.TRANSIENT)).toEqual([]);
  });

  it("--help documents the options and exit codes", async () => {
    const r = await mayfly(["agent", "enrol", "--help"]);
    expect(r.code).toBe(0);
    for (const s of [
      "--ca <url>",
      "--ca-bundle <file>",
      "--tpm <spec>",
      "--state <dir>",
      "--ak-handle",
      "--force",
      "16",
    ]) {
      expect(r.stdout).toContain(s);
    }
  });
});
