import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import { activationTests } from "./conformance-activations.js";
import { auditAndTxTests } from "./conformance-audit-tx.js";
import { factsTests } from "./conformance-facts.js";
import { invariantTests } from "./conformance-invariants.js";
import { mdmTests } from "./conformance-mdm.js";
import { ownerTests } from "./conformance-owners.js";
import { readTests } from "./conformance-read.js";
import { recordTests } from "./conformance-records.js";
import { rotationTests } from "./conformance-rotation.js";

/** Gives each test the store made for it. */
export type StoreRef = () => Store;

/**
 * The Store contract, written against the interface only. Every backend runs it:
 *
 *   runStoreConformance("sqlite (file)", async () => new SqliteStore({ path }));
 *
 * `makeStore` must return a fresh, empty store each time; the suite migrates it
 * (twice, to prove migrate() idempotent) and closes it after each test.
 * `opts.concurrentRead: false` for a store whose read() goes through its write queue
 * (SQLite ":memory:"): the read() cases that hold a tx() open meanwhile are replaced by one that
 * checks read() queues behind it.
 */
export function runStoreConformance(
  name: string,
  makeStore: () => Promise<Store>,
  opts: { concurrentRead?: boolean } = {},
): void {
  describe(`Store conformance: ${name}`, () => {
    let current: Store | null = null;
    const ref: StoreRef = () => {
      if (!current) throw new Error("no store");
      return current;
    };

    beforeEach(async () => {
      current = await makeStore();
      await current.migrate();
      await current.migrate();
    });
    afterEach(async () => {
      await current?.close();
      current = null;
    });

    it("names its kind", () => {
      expect(typeof ref().kind).toBe("string");
      expect(ref().kind.length).toBeGreaterThan(0);
    });

    recordTests(ref);
    invariantTests(ref);
    auditAndTxTests(ref);
    activationTests(ref);
    ownerTests(ref);
    mdmTests(ref);
    rotationTests(ref);
    readTests(ref, opts.concurrentRead ?? true);
    factsTests(ref);
  });
}
