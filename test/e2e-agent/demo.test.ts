import { execFile } from "node:child_process";
import { expect, it } from "vitest";
import { REPO } from "../helpers/fresh-checkout.js";

// `npm run demo` itself, end to end, as a newcomer runs it: every step shows up in the
// transcript, the owner's departure stops both agents, and it all takes well under a minute.

it("npm run demo: CA, IdP, swtpm, activation, two agents, mTLS, a renewal, a leaver refused", async () => {
  const started = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
    (resolve) => {
      execFile(
        "npm",
        ["run", "--silent", "demo"],
        { cwd: REPO, encoding: "utf8", timeout: 90_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    },
  );
  const seconds = (performance.now() - started) / 1000;
  expect(code, `${stdout}\n${stderr}`).toBe(0);
  expect(stderr).toBe("");
  expect(seconds).toBeLessThan(60);
  const expected = [
    /^\[1\/10\] Tools$/m,
    /^\[2\/10\] A software TPM with endorsement-key certificates \(swtpm\)$/m,
    /^\[3\/10\] An identity provider \(OpenID Connect\) with a demo owner, "ada"$/m,
    /^\[4\/10\] The Mayfly CA$/m,
    /provisioned ada over SCIM/,
    /^\[5\/10\] Device activation: mayfly agent enrol$/m,
    /enrolled: device \S+ with https:\/\/127\.0\.0\.1:\d+/,
    /^\[6\/10\] ada logs in and registers two agents on this device$/m,
    /alpha: spiffe:\/\/mayfly\.internal\/agent\/\S+/,
    /beta: {2}spiffe:\/\/mayfly\.internal\/agent\/\S+/,
    /^\[7\/10\] Their certificates$/m,
    /certificate [0-9a-f]+ \(bound key\) valid until \S+; next renewal in/,
    /^\[8\/10\] mTLS: alpha calls beta, each checks who the other is$/m,
    /alpha sees: spiffe:\/\/mayfly\.internal\/agent\/\S+, owner ada \(\S+\), device \S+, tpm-quote, bound key/,
    /beta sees: {2}spiffe:\/\/mayfly\.internal\/agent\/\S+, owner ada \(\S+\), device \S+, tpm-quote, bound key/,
    /beta answers: hello \S+/,
    /^\[9\/10\] A renewal/m,
    /alpha: [0-9a-f]+ -> [0-9a-f]+ {2}\(SIGHUP/,
    /beta: {2}[0-9a-f]+ -> [0-9a-f]+/,
    /^\[10\/10\] ada leaves the organisation$/m,
    /alpha: stopped: owner\.inactive: .*\(exit 10\)/,
    /beta: {2}renewal denied: owner\.inactive/,
    /^Done in [\d.]+ s/m,
  ];
  let at = 0;
  for (const re of expected) {
    const m = re.exec(stdout.slice(at));
    expect(m, `${re} after offset ${at} in:\n${stdout}`).not.toBeNull();
    at += m!.index + m![0].length;
  }
  // The renewal really changed both certificates.
  const [, a1, a2] = /alpha: ([0-9a-f]+) -> ([0-9a-f]+)/.exec(stdout)!;
  expect(a1).not.toBe(a2);
}, 120_000);
