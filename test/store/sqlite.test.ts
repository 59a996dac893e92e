import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { runStoreConformance } from "./conformance.js";

const dir = mkdtempSync(join(tmpdir(), "mayfly-store-"));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runStoreConformance("sqlite (file, WAL, synchronous=FULL)", async () => {
  n++;
  return new SqliteStore({ path: join(dir, `conformance-${n}.db`) });
});

runStoreConformance(
  "sqlite (:memory:)",
  async () => new SqliteStore({ path: ":memory:", durability: "normal" }),
  { concurrentRead: false },
);
