import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/index.js";

// The mdm section and the profiles' posture keys (issue 8): parsed values, and the
// mistakes that must stop a start rather than silently weaken the hook.

function issues(yaml: string): string[] {
  const r = parseConfigText(yaml);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

describe("mdm configuration", () => {
  it("parses durations, algorithms and the posture keys", () => {
    const r = parseConfigText(
      [
        "mdm:",
        "  name: intune",
        "  jwksUrl: https://mdm.example/jwks.json?tenant=a",
        "  caFile: /etc/mdm-ca.pem",
        "  algorithms: [ES256]",
        "  iatMaxAge: 2m",
        "profiles:",
        "  default:",
        "    requireManaged: true",
        "    requireCompliant: true",
        "    requireAssignedOwner: true",
        "    maxPostureAge: 4h",
      ].join("\n"),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.mdm).toMatchObject({
      name: "intune",
      algorithms: ["ES256"],
      iatMaxAge: 120_000,
      jwksFile: null,
    });
    expect(r.config.profiles.default).toMatchObject({
      requireManaged: true,
      requireCompliant: true,
      requireAssignedOwner: true,
      maxPostureAge: 4 * 3_600_000,
    });
  });

  it("refuses plain HTTP, both key sources, a stray caFile, symmetric or none algorithms, and bad ages", () => {
    expect(issues("mdm:\n  jwksUrl: http://mdm.example/jwks.json")).toEqual([
      "mdm.jwksUrl: the JWKS URL must be https",
    ]);
    expect(issues("mdm:\n  jwksUrl: https://a/jwks\n  jwksFile: /k.json")).toEqual([
      "mdm.jwksUrl: give jwksFile or jwksUrl, not both",
    ]);
    expect(issues("mdm:\n  jwksFile: /k.json\n  caFile: /ca.pem")).toEqual([
      "mdm.caFile: caFile is for the TLS of jwksUrl",
    ]);
    for (const alg of ["none", "HS256", "ES384"]) {
      expect(issues(`mdm:\n  algorithms: [${alg}]`)[0]).toMatch(/^mdm\.algorithms\[0\]: /);
    }
    expect(issues("mdm:\n  algorithms: []")[0]).toMatch(/^mdm\.algorithms: /);
    expect(issues("mdm:\n  iatMaxAge: 1s")[0]).toMatch(/^mdm\.iatMaxAge: must be at least 10s/);
    expect(issues("mdm:\n  name: Has Spaces")[0]).toMatch(/^mdm\.name: /);
    expect(issues("profiles:\n  default:\n    maxPostureAge: 10s")[0]).toMatch(
      /^profiles\.default\.maxPostureAge: must be at least 1m/,
    );
  });
});
