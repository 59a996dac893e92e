import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  AgentError,
  classifyFailure,
  type Issued,
  parseTpmSpec,
  Renewer,
  type Sleep,
} from "../../src/agent/index.js";
import { MayflyError } from "../../src/errors/index.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { seededRandom } from "../tpm/helpers/seeded-random.js";

// The renewal loop's decisions on their own, with a manual clock and no CA: when it renews,
// how it backs off, what stops it. (The e2e files run it against a real CA and swtpm.)

function issuedAt(clock: ManualClock, lifetimeMs: number, serial: string, cert = ""): Issued {
  return {
    certificate: cert,
    chain: [],
    serial,
    notBefore: new Date(clock.now() - 30_000).toISOString(),
    notAfter: new Date(clock.now() + lifetimeMs).toISOString(),
    renewAfter: new Date(clock.now() + lifetimeMs / 2).toISOString(),
    bundle: "",
    keyResidency: "bound",
  };
}

/** A sleep that moves the clock and records each wait. */
function recordingSleep(clock: ManualClock, waits: number[]): Sleep {
  return async (ms) => {
    waits.push(ms);
    clock.advance(ms);
  };
}

let realCert = "";
async function aCert(): Promise<string> {
  if (realCert) return realCert;
  const { execFileSync } = await import("node:child_process");
  realCert = execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "/dev/null",
      "-subj",
      "/CN=r",
      "-days",
      "1",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  return realCert;
}

describe("Renewer", () => {
  it("renews at 45-50% of the remaining life, from the injected clock and randomness", async () => {
    const cert = await aCert();
    const clock = new ManualClock(1_700_000_000_000);
    const waits: number[] = [];
    let n = 0;
    const r = new Renewer({
      issue: async () => issuedAt(clock, 300_000, String(++n), cert),
      onIssued: async () => undefined,
      clock,
      random: seededRandom("renew"),
      sleep: recordingSleep(clock, waits),
      maxIssuances: 20,
    });
    expect(await r.run()).toEqual({ reason: "done", issued: 20 });
    expect(waits).toHaveLength(19);
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(0.45 * 300_000 - 1);
      expect(w).toBeLessThanOrEqual(0.5 * 300_000);
    }
    expect(new Set(waits).size).toBeGreaterThan(10); // jitter spreads them
    expect(new X509Certificate(cert).ca).toBe(true);
  });

  it("backs off 1, 2, 4 … s up to the cap on transient failures, then resets after a success", async () => {
    const cert = await aCert();
    const clock = new ManualClock(0);
    const waits: number[] = [];
    const lines: string[] = [];
    let calls = 0;
    const r = new Renewer({
      issue: async () => {
        calls++;
        if (calls <= 8) throw new AgentError("ca.unreachable", "connect ECONNREFUSED");
        if (calls === 9) return issuedAt(clock, 60_000, "a", cert);
        throw new MayflyError("challenge.expired", "late");
      },
      onIssued: async () => undefined,
      clock,
      random: seededRandom("backoff"),
      sleep: async (ms) => {
        waits.push(ms);
        clock.advance(ms);
        if (waits.length === 11) r.stop();
      },
      backoffInitialMs: 1000,
      backoffMaxMs: 16_000,
      log: (level, m) => lines.push(`${level} ${m}`),
    });
    expect(await r.run()).toEqual({ reason: "stopped", issued: 1 });
    const caps = [1000, 2000, 4000, 8000, 16_000, 16_000, 16_000, 16_000];
    caps.forEach((cap, i) => {
      expect(waits[i]).toBeGreaterThanOrEqual(cap / 2);
      expect(waits[i]).toBeLessThanOrEqual(cap);
    });
    // After the success: the renewal wait, then a fresh backoff from 1 s.
    expect(waits[9]).toBeGreaterThanOrEqual(500);
    expect(waits[9]).toBeLessThanOrEqual(1000);
    expect(lines[0]).toMatch(
      /^warn renewal failed \(ca\.unreachable: connect ECONNREFUSED\); retry 1 in [\d.]+ s; no certificate yet$/,
    );
    expect(lines.find((l) => l.includes("challenge.expired"))).toMatch(
      /^warn renewal failed \(challenge\.expired: late\); retry 1 in .*; current certificate valid for/,
    );
  });

  it("a terminal denial ends the loop with its code and kind; a failing onIssued is retried", async () => {
    const cert = await aCert();
    const clock = new ManualClock(0);
    let calls = 0;
    let writes = 0;
    const r = new Renewer({
      issue: async () => {
        calls++;
        if (calls === 3) throw new MayflyError("owner.inactive", "owner o-1 is deprovisioned");
        return issuedAt(clock, 60_000, String(calls), cert);
      },
      onIssued: async () => {
        if (++writes === 1) throw new Error("ENOSPC: no space left on device");
      },
      clock,
      random: seededRandom("terminal"),
      sleep: recordingSleep(clock, []),
    });
    const out = await r.run();
    expect(out).toMatchObject({
      reason: "denied",
      issued: 1,
      code: "owner.inactive",
      kind: "owner-inactive",
    });
    expect(writes).toBe(2);
  });

  it("renewNow cuts a wait short; stop ends the loop", async () => {
    const cert = await aCert();
    const clock = new ManualClock(0);
    let issued = 0;
    const r = new Renewer({
      issue: async () => issuedAt(clock, 300_000, String(++issued), cert),
      onIssued: async () => undefined,
      clock,
      random: seededRandom("now"),
      sleep: (_ms, signal) =>
        new Promise((res) => signal.addEventListener("abort", () => res(), { once: true })),
    });
    const done = r.run();
    await new Promise((res) => setTimeout(res, 20));
    expect(issued).toBe(1);
    r.renewNow();
    await new Promise((res) => setTimeout(res, 20));
    expect(issued).toBe(2);
    r.stop();
    expect(await done).toEqual({ reason: "stopped", issued: 2 });
  });
});

describe("classifyFailure", () => {
  const mf = (code: string) => new MayflyError(code as never, "x", { extra: { httpStatus: 403 } });
  it.each([
    ["owner.inactive", "owner-inactive"],
    ["owner.not_found", "owner-inactive"],
    ["agent.retired", "agent-retired"],
    ["device.unenrolled", "device-unenrolled"],
    ["agent.expired", "agent-expired"],
    ["binding.expired", "agent-expired"],
    ["agent.inactive", "agent-held"],
    ["binding.affirmation_stale", "agent-held"],
    ["attestation.pcr_mismatch", "rejected"],
    ["device.ek_untrusted", "rejected"],
  ])("%s is terminal (%s)", (code, kind) => {
    expect(classifyFailure(mf(code))).toEqual({ terminal: true, code, kind });
  });
  it("transport, 5xx, rate limits, expired challenges and a busy TPM are retried", () => {
    expect(classifyFailure(new AgentError("ca.unreachable", "x")).terminal).toBe(false);
    expect(classifyFailure(new AgentError("ca.bad_response", "x", { status: 502 })).terminal).toBe(false);
    expect(
      classifyFailure(new MayflyError("challenge.expired", "x", { extra: { httpStatus: 400 } })).terminal,
    ).toBe(false);
    expect(
      classifyFailure(new MayflyError("request.rate_limited", "x", { extra: { httpStatus: 429 } })).terminal,
    ).toBe(false);
    expect(classifyFailure(new MayflyError("tpm.command_failed", "x")).terminal).toBe(false);
    expect(classifyFailure(new AgentError("some.new_code", "x", { status: 503 })).terminal).toBe(false);
    expect(classifyFailure(new TypeError("bug")).terminal).toBe(false);
    expect(classifyFailure(new AgentError("agent.ak_mismatch", "x"))).toMatchObject({
      terminal: true,
      kind: "enrolment-invalid",
    });
  });
});

describe("parseTpmSpec", () => {
  it("reads the three forms and refuses others with the forms in the message", () => {
    expect(parseTpmSpec("device:/dev/tpmrm0")).toEqual({ kind: "device", path: "/dev/tpmrm0" });
    expect(parseTpmSpec("swtpm:127.0.0.1:2421")).toEqual({
      kind: "swtpm-tcp",
      host: "127.0.0.1",
      port: 2421,
    });
    expect(parseTpmSpec("swtpm:[::1]:2421")).toEqual({ kind: "swtpm-tcp", host: "::1", port: 2421 });
    expect(parseTpmSpec("swtpm:unix:/run/swtpm.sock")).toEqual({
      kind: "swtpm-unix",
      path: "/run/swtpm.sock",
    });
    for (const bad of ["tpm0", "device:dev/tpm0", "swtpm:host", "swtpm:h:0", "swtpm:unix:"]) {
      expect(() => parseTpmSpec(bad)).toThrow(/device:\/dev\/tpmrm0, swtpm:HOST:PORT or swtpm:unix:PATH/);
    }
  });
});
