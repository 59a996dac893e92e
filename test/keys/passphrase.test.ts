import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertPassphraseStrength,
  MIN_PASSPHRASE_LENGTH,
  readSecret,
  resolveSecret,
  type SecretRef,
} from "../../src/keys/passphrase.js";
import { expectCode } from "./conformance.js";

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mayfly-secret-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretFile(content: string | Buffer, mode = 0o600): Promise<string> {
  const p = join(dir, `secret-${++n}`);
  await writeFile(p, content);
  await chmod(p, mode);
  return p;
}

describe("resolveSecret", () => {
  it("reads an environment variable as is", async () => {
    expect(await resolveSecret({ env: "MAYFLY_PASS" }, { MAYFLY_PASS: " spaced value \n" })).toBe(
      " spaced value \n",
    );
  });

  it("names a missing or empty variable, never a value", async () => {
    for (const env of [{}, { MAYFLY_PASS: "" }]) {
      const err = await expectCode(resolveSecret({ env: "MAYFLY_PASS" }, env), "config.secret_unavailable");
      expect(err.message).toContain("MAYFLY_PASS");
    }
  });

  it("strips exactly one trailing newline from a file", async () => {
    const cases: Array<[string, string]> = [
      ["hunter2 is long enough\n", "hunter2 is long enough"],
      ["crlf value\r\n", "crlf value"],
      ["two newlines\n\n", "two newlines\n"],
      ["  spaces kept  ", "  spaces kept  "],
    ];
    for (const [content, want] of cases)
      expect(await resolveSecret({ file: await secretFile(content) })).toBe(want);
  });

  it("warns about a world-readable file without refusing it", async () => {
    const quiet = await readSecret({ file: await secretFile("private value 1234\n", 0o600) });
    expect(quiet.warnings).toEqual([]);
    const path = await secretFile("private value 1234\n", 0o644);
    const loud = await readSecret({ file: path });
    expect(loud.value).toBe("private value 1234");
    expect(loud.warnings).toHaveLength(1);
    expect(loud.warnings[0]).toContain(path);
    expect(loud.warnings[0]).not.toContain("private value");
  });

  it("refuses unreadable, empty, oversized and non-regular files, naming the path", async () => {
    const paths = [
      join(dir, "does-not-exist"),
      dir,
      await secretFile(""),
      await secretFile("\n"),
      await secretFile(Buffer.alloc(8192, 0x61)),
    ];
    for (const file of paths) {
      const err = await expectCode(resolveSecret({ file }), "config.secret_unavailable");
      expect(err.message).toContain(file);
    }
  });

  it("rejects a malformed reference", async () => {
    const refs = [{}, { file: "" }, { env: 3 }, { file: "a", env: "B" }, null];
    for (const ref of refs) await expectCode(resolveSecret(ref as unknown as SecretRef), "config.invalid");
  });
});

describe("assertPassphraseStrength", () => {
  it(`wants at least ${MIN_PASSPHRASE_LENGTH} characters, counted as code points`, () => {
    assertPassphraseStrength("x".repeat(12), "test");
    assertPassphraseStrength("ü".repeat(12), "test");
    for (const weak of ["x".repeat(11), "ü".repeat(11), "🔑".repeat(6)]) {
      let err: unknown;
      try {
        assertPassphraseStrength(weak, "environment variable P");
      } catch (e) {
        err = e;
      }
      expect((err as { code: string }).code).toBe("key.passphrase_weak");
      expect((err as Error).message).toContain("environment variable P");
      expect((err as Error).message).not.toContain(weak);
    }
  });
});
