import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { CHALLENGE_ROW_GRACE, tidyOnce } from "../../src/server/tidy.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { certificate, challenge, seedAgent, T0 } from "../store/fixtures.js";

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

  it("deletes certificate rows past the retention in bounded batches, and expired challenges", async () => {
    const store = new SqliteStore({ path: join(dir, "tidy.db") });
    await store.migrate();
    const now = T0 + 30 * DAY;
    const ages = [29, 20, 10, 8, 7.5, 7, 6, 1, 0].map((d) => now - d * DAY);
    await store.tx(async (tx) => {
      await seedAgent(tx, "a1");
      for (const [i, notAfter] of ages.entries()) {
        await tx.insertCertificate(
          certificate(`s${i}`, "a1", { challengeNonce: null, notBefore: notAfter - 300_000, notAfter }),
        );
      }
      // Rows of redeemed challenges: kept CHALLENGE_ROW_GRACE past the nonce's expiry.
      await tx.insertChallenge(challenge("stale", "a1", { expiresAt: now - CHALLENGE_ROW_GRACE - 1 }));
      await tx.insertChallenge(challenge("grace", "a1", { expiresAt: now - CHALLENGE_ROW_GRACE }));
      await tx.insertChallenge(challenge("fresh", "a1", { expiresAt: now + 60_000 }));
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
    const challenges = await store.tx(async (tx) => [
      await tx.getChallenge(challenge("stale", "a1").nonce),
      await tx.getChallenge(challenge("grace", "a1").nonce),
      await tx.getChallenge(challenge("fresh", "a1").nonce),
    ]);
    expect(challenges[0]).toBeNull();
    expect(challenges[1]).not.toBeNull();
    expect(challenges[2]).not.toBeNull();
    // maxBatches bounds one run; the rest waits for the next.
    o.clock.advance(2 * DAY);
    expect(await tidyOnce({ ...o, batch: 1, maxBatches: 1 })).toBe(1);
    expect(await tidyOnce(o)).toBe(1);
    await store.close();
  });
});
