import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/index.js";
import { CLOCK_SKEW_ALLOWANCE, configSchema, minCertificateRetention } from "../../src/config/schema.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { tidyOnce } from "../../src/server/tidy.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import {
  attest,
  newAgentKey,
  startTestCa,
  TEST_CONFIG,
  type TestAgent,
  type TestCa,
} from "../helpers/test-ca.js";
import { certificate, seedAgent, T0 } from "../store/fixtures.js";

const MINUTE = 60_000;
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), "mayfly-tidy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("retention tidy job", () => {
  it("defaults store.certificateRetention to 7 days", () => {
    expect(configSchema.parse({}).store.certificateRetention).toBe(7 * DAY);
    expect(configSchema.parse({ store: { certificateRetention: "36h" } }).store.certificateRetention).toBe(
      36 * 3_600_000,
    );
    expect(configSchema.safeParse({ store: { certificateRetention: "soon" } }).success).toBe(false);
  });

  it("deletes certificate rows past the retention in bounded batches", async () => {
    const store = new SqliteStore({ path: join(dir, "tidy.db") });
    await store.migrate();
    const now = T0 + 30 * DAY;
    const ages = [29, 20, 10, 8, 7.5, 7, 6, 1, 0].map((d) => now - d * DAY);
    await store.tx(async (tx) => {
      await seedAgent(tx, "a1");
      for (const [i, notAfter] of ages.entries()) {
        await tx.insertCertificate(certificate(`s${i}`, "a1", { notBefore: notAfter - 300_000, notAfter }));
      }
    });
    const o = {
      store,
      clock: new ManualClock(now),
      log: pino({ level: "silent" }),
      certificateRetention: 7 * DAY,
      batch: 2,
    };
    // Five rows expired more than 7 days ago: batches of 2, 2, 1.
    expect(await tidyOnce(o)).toBe(5);
    const left = (await store.tx((tx) => tx.listCertificatesByAgent("a1"))).map(
      (c) => (now - c.notAfter) / DAY,
    );
    expect(left.sort((a, b) => a - b)).toEqual([0, 1, 6, 7]);
    expect(await tidyOnce(o)).toBe(0);
    expect(await store.tx((tx) => tx.countCertificates())).toBe(4);
    // maxBatches bounds one run; the rest waits for the next.
    o.clock.advance(2 * DAY);
    expect(await tidyOnce({ ...o, batch: 1, maxBatches: 1 })).toBe(1);
    expect(await tidyOnce(o)).toBe(1);
    await store.close();
  });

  it("pauses after each full batch for pauseRatio times as long as the batch took", async () => {
    const store = new SqliteStore({ path: join(dir, "tidy-pace.db") });
    await store.migrate();
    const now = T0 + 30 * DAY;
    await store.tx(async (tx) => {
      await seedAgent(tx, "a1");
      for (let i = 0; i < 5; i++) {
        await tx.insertCertificate(
          certificate(`s${i}`, "a1", { notBefore: now - 21 * DAY, notAfter: now - 20 * DAY }),
        );
      }
    });
    // Each batch "takes" 5 ms by this clock (read once before it and once after).
    let t = 0;
    const sleeps: number[] = [];
    const deleted = await tidyOnce({
      store,
      clock: new ManualClock(now),
      log: pino({ level: "silent" }),
      certificateRetention: 7 * DAY,
      batch: 2,
      elapsed: () => (t += 5),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    // Batches of 2, 2, 1: a pause of 3 x 5 ms after each full one, none after the last.
    expect(deleted).toBe(5);
    expect(sleeps).toEqual([15, 15]);
    await store.close();
  });
});

// A certificate row is the only record that its challenge nonce was used (the unique
// challenge_nonce), so the tidy job must not delete it while any replica would still
// accept the nonce. The config enforces store.certificateRetention >= challengeTtl +
// 2 x CLOCK_SKEW_ALLOWANCE (config/schema.ts says why the skew counts twice).
describe("store.certificateRetention against the challenge TTL", () => {
  const issues = (yaml: string) => {
    const r = parseConfigText(yaml);
    return r.ok ? [] : r.issues;
  };

  it("refuses a retention shorter than the TTL plus twice the skew allowance, at its path", () => {
    expect(CLOCK_SKEW_ALLOWANCE).toBe(5 * MINUTE);
    expect(minCertificateRetention(60_000)).toBe(11 * MINUTE);
    expect(issues("")).toEqual([]);
    expect(issues("store:\n  certificateRetention: 11m\n")).toEqual([]);
    const short = issues("store:\n  certificateRetention: 659999ms\n");
    expect(short).toEqual([{ path: "store.certificateRetention", message: expect.any(String) }]);
    expect(short[0]!.message).toBe(
      "must be at least issuance.challengeTtl (1m) plus 10m for replica clock skew, i.e. 11m: a " +
        "certificate row is what refuses a second use of the challenge that yielded it, until the " +
        "challenge has expired",
    );
    // TTL plus one allowance is not enough (see the timeline below).
    expect(issues("store:\n  certificateRetention: 6m\n").map((i) => i.path)).toEqual([
      "store.certificateRetention",
    ]);
    // The longest TTL moves the floor with it.
    const longTtl = "issuance:\n  challengeTtl: 10m\nstore:\n  certificateRetention:";
    expect(issues(`${longTtl} 19m\n`).map((i) => i.path)).toEqual(["store.certificateRetention"]);
    expect(issues(`${longTtl} 20m\n`)).toEqual([]);
  });

  it("reports it with the file's other errors, and not when the TTL itself is malformed", () => {
    expect(
      issues("server:\n  listen: nowhere\nstore:\n  certificateRetention: 1m\n").map((i) => i.path),
    ).toEqual(["server.listen", "store.certificateRetention"]);
    expect(
      issues("issuance:\n  challengeTtl: soon\nstore:\n  certificateRetention: 1m\n").map((i) => i.path),
    ).toEqual(["issuance.challengeTtl"]);
  });
});

describe("a redeemed nonce across tidy runs at the shortest retention allowed", () => {
  const TTL = MINUTE;
  const SKEW = CLOCK_SKEW_ALLOWANCE;
  const RETENTION = minCertificateRetention(TTL); // 11m
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa(
      `${TEST_CONFIG}issuance:\n  challengeTtl: 60s\nstore:\n  certificateRetention: 11m\n`,
    );
  });
  afterAll(async () => {
    await ca?.close();
  });

  function redeem(agent: TestAgent, nonce: Buffer, key: Awaited<ReturnType<typeof newAgentKey>>) {
    return ca.call(`/v1/agents/${agent.agentId}/certificates`, {
      csr: key.csrDer.toString("base64url"),
      nonce: nonce.toString("base64url"),
      attestation: attest(agent.deviceKey, nonce, key.spki),
      lifetimeSeconds: 30, // the shortest certificate: its row is the first the tidy job takes
    });
  }

  /**
   * The worst case for replica clocks at most SKEW apart: the minting replica and the
   * tidying one run SKEW ahead of the redeeming one and of the one a replay reaches; the
   * nonce is redeemed at once, for the shortest certificate. One server plays every
   * replica by moving its clock; `t` below is the redeeming replica's time.
   * At each step the tidy job runs (SKEW ahead) and the nonce is presented again.
   */
  async function timeline(retention: number) {
    const agent = await ca.seedAgent();
    const t0 = Math.ceil(ca.clock.now() / 1000) * 1000 + 1000;
    ca.clock.set(t0 + SKEW); // the minting replica
    const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    const expiresAt = nonce.readUIntBE(12, 6);
    expect(expiresAt).toBe(t0 + SKEW + TTL);
    ca.clock.set(t0); // the redeeming replica
    const first = await redeem(agent, nonce, await newAgentKey());
    expect(first.status, first.text).toBe(201);
    expect(Date.parse((first.json as { notAfter: string }).notAfter)).toBe(t0 + 30_000);

    const tidyClock = new ManualClock(0);
    const seen: { t: number; deleted: number; status: number; code: string | undefined }[] = [];
    const key = await newAgentKey();
    for (let t = t0 + 15_000; t <= t0 + 9 * MINUTE; t += 15_000) {
      tidyClock.set(t + SKEW);
      const deleted = await tidyOnce({
        store: ca.running.store,
        clock: tidyClock,
        log: pino({ level: "silent" }),
        certificateRetention: retention,
      });
      ca.clock.set(t); // the replica the replay reaches
      const res = await redeem(agent, nonce, key);
      seen.push({ t: t - t0, deleted, status: res.status, code: (res.json as { code?: string }).code });
      if (res.status === 201) break;
    }
    return { seen, expiresAt: expiresAt - t0 };
  }

  it("refuses the replay as consumed until the nonce expires, then as expired; the row goes only after", async () => {
    const { seen, expiresAt } = await timeline(RETENTION);
    expect(seen.every((s) => s.status === 400)).toBe(true);
    // Within the TTL (on the replaying replica's clock): the certificate row refuses it.
    const live = seen.filter((s) => s.t < expiresAt);
    expect(live.length).toBeGreaterThan(20);
    expect(live.every((s) => s.code === "challenge.consumed" && s.deleted === 0)).toBe(true);
    // After: its own expiry does, whether or not the row is still there.
    expect(seen.filter((s) => s.t >= expiresAt).every((s) => s.code === "challenge.expired")).toBe(true);
    // The tidy job did take the row, 30 s (the certificate's lifetime) after the nonce died.
    const gone = seen.find((s) => s.deleted > 0)!;
    expect(gone).toMatchObject({ t: expiresAt + 45_000, deleted: 1, code: "challenge.expired" });
    expect(seen.filter((s) => s.deleted > 0)).toHaveLength(1);
  }, 60_000);

  it("with the TTL plus one skew allowance (refused by the config), the same timeline lets a replay through", async () => {
    const { seen, expiresAt } = await timeline(TTL + SKEW);
    const last = seen.at(-1)!;
    expect(last.status).toBe(201);
    expect(last.t).toBeLessThan(expiresAt);
    expect(seen.some((s) => s.deleted === 1)).toBe(true);
  }, 60_000);
});
