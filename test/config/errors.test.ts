import { describe, expect, it } from "vitest";
import { loadConfig, parseConfigText } from "../../src/config/index.js";
import { MayflyError } from "../../src/errors/index.js";

describe("config errors", () => {
  it("reports every error at once, each with its path", () => {
    const r = parseConfigText(
      [
        "server:",
        "  listen: nowhere",
        "  bogus: 1",
        "keys:",
        "  passphrase: hunter2-inline",
        "ca:",
        "  trustDomain: Not_A_Domain",
        "profiles:",
        "  default:",
        "    lifetime: 5 minutes",
        "  short:",
        "    lifetime: 2h",
        "    maxLifetime: 1h",
        "log:",
        "  level: loud",
      ].join("\n"),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.issues.map((i) => i.path).sort();
    expect(paths).toEqual(
      [
        "server.listen",
        "server",
        "keys.passphrase",
        "ca.trustDomain",
        "profiles.default.lifetime",
        "profiles.short.lifetime",
        "log.level",
      ].sort(),
    );
    expect(r.issues.find((i) => i.path === "server")?.message).toMatch(/bogus/);
    expect(r.issues.find((i) => i.path === "keys.passphrase")?.message).toMatch(/never written inline/);
  });

  it("reports a malformed ca.assuranceExtensionOid at its path", () => {
    for (const bad of [
      "not-an-oid",
      "1.3.6.1.4.1.032473.1",
      "1.3",
      "3.1.2",
      "1.40.2",
      "1.3.6.1.4.1.32473.",
      "2.5.29.17",
      "1.3.6.1.4.1.562949953421312",
      "[1, 3, 6]",
    ]) {
      const r = parseConfigText(`ca:\n  assuranceExtensionOid: ${bad}\n`);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.path)).toEqual(["ca.assuranceExtensionOid"]);
    }
    const good = parseConfigText("ca:\n  assuranceExtensionOid: 1.3.6.1.4.1.32473.1\n");
    expect(good.ok && good.config.ca.assuranceExtensionOid).toBe("1.3.6.1.4.1.32473.1");
    const dflt = parseConfigText("");
    expect(dflt.ok && dflt.config.ca.assuranceExtensionOid).toBe(
      "2.25.292199526746055865623339137260964517254",
    );
  });

  it("requires a default profile", () => {
    const r = parseConfigText("profiles:\n  other: {}\n");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.path).toBe("profiles");
  });

  it("reports YAML syntax errors with a line", () => {
    const r = parseConfigText("server:\n  listen: [unclosed\n");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toMatch(/line \d+/);
  });

  it("loadConfig throws config.invalid listing all issues", async () => {
    const err = await loadConfig("/nonexistent/mayfly.yaml").catch((e) => e);
    expect(err).toBeInstanceOf(MayflyError);
    expect((err as MayflyError).code).toBe("config.invalid");
  });

  it("environment overrides listen and data dir", async () => {
    const r = await loadConfig(null, { MAYFLY_LISTEN: "127.0.0.1:9999", MAYFLY_DATA_DIR: "/tmp/mf" }, "/");
    expect(r.listen).toEqual({ host: "127.0.0.1", port: 9999 });
    expect(r.dataDir).toBe("/tmp/mf");
    expect(r.storeUrl).toBe("sqlite:/tmp/mf/mayfly.db");
    expect(r.keysDir).toBe("/tmp/mf/keys");
  });
});
