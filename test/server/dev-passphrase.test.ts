import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { devPassphrase } from "../../src/server/dev-passphrase.js";

const dir = mkdtempSync(join(tmpdir(), "mayfly-pass-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("development passphrase", () => {
  it("replicas starting together agree on one complete passphrase file", async () => {
    const keys = join(dir, "keys");
    const results = await Promise.all(Array.from({ length: 8 }, () => devPassphrase(keys)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const text = readFileSync(join(keys, "passphrase"), "utf8");
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(statSync(join(keys, "passphrase")).mode & 0o777).toBe(0o600);
    expect(readdirSync(keys)).toEqual(["passphrase"]); // no temp files left
    expect((await devPassphrase(keys)).created).toBe(false);
  });
});
