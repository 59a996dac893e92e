import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { mayfly } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "mayfly-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mayfly CLI", () => {
  it("--help lists the commands and the exit codes; every command has --help", async () => {
    const r = await mayfly(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["serve", "init", "config", "audit"])
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    expect(r.stdout).toMatch(/Exit codes:/);
    for (const c of [["serve"], ["init"], ["config", "check"], ["audit", "verify"]]) {
      const h = await mayfly([...c, "--help"]);
      expect(h.code, c.join(" ")).toBe(0);
      expect(h.stdout).toMatch(/^Usage: mayfly /);
    }
  });

  it("a usage error exits 2", async () => {
    expect((await mayfly(["frobnicate"])).code).toBe(2);
    expect((await mayfly(["config", "check"])).code).toBe(2);
    expect((await mayfly(["init", "--bogus"])).code).toBe(2);
  });

  it("config check reports every error at once with its path (exit 1), JSON too", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      "server:\n  listen: nowhere\nca:\n  curve: P-521\nprofiles:\n  default:\n    lifetime: 2h\n    maxLifetime: 1h\nbogus: 1\n",
    );
    const r = await mayfly(["config", "check", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("4 error(s)");
    for (const p of ["server.listen:", "ca.curve:", "profiles.default.lifetime:", "(root): Unrecognized key"])
      expect(r.stdout).toContain(p);
    const j = await mayfly(["config", "check", file, "--json"]);
    expect(j.code).toBe(1);
    const out = JSON.parse(j.stdout) as { ok: boolean; issues: { path: string }[] };
    expect(out.ok).toBe(false);
    expect(out.issues.map((i) => i.path).sort()).toEqual([
      "",
      "ca.curve",
      "profiles.default.lifetime",
      "server.listen",
    ]);
    const good = await mayfly(["config", "check", join("ca-config", "mayfly.full.yaml"), "--json"]);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ ok: true });
    expect((await mayfly(["config", "check", join(dir, "missing.yaml")])).code).toBe(3);
  });

  it("init creates the CA once; audit verify passes, then names the first tampered event (exit 1)", async () => {
    const env = { MAYFLY_DATA_DIR: join(dir, "data") };
    const first = await mayfly(["init", "--json"], env);
    expect(first.code).toBe(0);
    const a = JSON.parse(first.stdout) as { created: boolean; roots: { fingerprint: string }[] };
    expect(a.created).toBe(true);
    const again = JSON.parse((await mayfly(["init", "--json"], env)).stdout) as typeof a;
    expect(again.created).toBe(false);
    expect(again.roots[0]!.fingerprint).toBe(a.roots[0]!.fingerprint);

    const ok = await mayfly(["audit", "verify", "--json"], env);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, count: 1 });

    const db = new Database(join(dir, "data", "mayfly.db"));
    db.prepare("UPDATE audit_events SET data = ? WHERE seq = 1").run('{"development":false}');
    db.close();
    const bad = await mayfly(["audit", "verify"], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BROKEN at event 1: hash_mismatch/);
  });

  it("serve refuses to start without a CA when a development root is not allowed", async () => {
    const cfg = join(dir, "prod.yaml");
    writeFileSync(cfg, "ca:\n  createDevRoot: false\n");
    const r = await mayfly(["serve", "-c", cfg], {
      MAYFLY_DATA_DIR: join(dir, "empty"),
      MAYFLY_LISTEN: "127.0.0.1:0",
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/config\.invalid: no CA certificates are configured/);
  });
});
