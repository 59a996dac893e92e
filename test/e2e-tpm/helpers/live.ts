import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "vitest";
import { CaClient, errorCode } from "../../../src/agent/index.js";
import type { AuditEvent } from "../../../src/store/types.js";
import type { TpmClient } from "../../../src/tpm/client/index.js";
import { seedAgentOnDevice } from "../../helpers/seed-agent.js";
import { startTestCa, type TestCa } from "../../helpers/test-ca.js";
import { clientFor } from "../../tpm/client/live-client.js";
import { Swtpm } from "../../tpm/helpers/swtpm.js";
import { writeP256EkCert } from "../../tpm/helpers/swtpm-manufacture.js";

// The live setting of these tests: one manufactured swtpm per test file (EK certificates from
// a private swtpm CA), and a real Mayfly (HTTPS, SQLite) whose EK trust directory holds that
// CA. Owners, agents and bindings are seeded in the store (OIDC registration comes later);
// devices only ever come from the activation API.

/** The repository's shipped TPM manufacturer roots: real vendors, no swtpm CA. */
export const SHIPPED_EK_TRUST = resolve("ca-config/trust/tpm");

/** `<dir>/roots` with the swtpm root, `<dir>/intermediates` with its issuing CA. */
export function swtpmTrustDir(sw: Swtpm, parent: string): string {
  const dir = join(parent, "ek-trust");
  mkdirSync(join(dir, "roots"), { recursive: true });
  mkdirSync(join(dir, "intermediates"), { recursive: true });
  copyFileSync(sw.caFiles.root, join(dir, "roots", "swtpm-root.pem"));
  copyFileSync(sw.caFiles.intermediate, join(dir, "intermediates", "swtpm-issuer.pem"));
  return dir;
}

/** A CA configuration for TPM evidence: both formats, both residencies, and a certify-only profile. */
export function tpmCaConfig(ekTrustDir: string): string {
  return `
devices:
  ekTrustDir: ${JSON.stringify(ekTrustDir)}
  activationRateLimit: 1000
profiles:
  default:
    formats: [tpm-certify, tpm-quote, test-signed]
    keyResidency: [tpm, bound]
  certify-only:
    formats: [tpm-certify]
    keyResidency: [tpm]
`;
}

export interface LiveEnv {
  sw: Swtpm;
  tpm: TpmClient;
  ca: TestCa;
  client: CaClient;
  /** Extra CAs started with startCa; closed with the env. */
  startCa(ekTrustDir: string): Promise<{ ca: TestCa; client: CaClient }>;
  close(): Promise<void>;
}

export function caClientFor(ca: TestCa): CaClient {
  return new CaClient({ url: ca.url, ca: ca.rootPem });
}

/**
 * A manufactured swtpm, a client on it, and a CA trusting its EK CA. `p256EkCert` adds the
 * P-256 EK certificate swtpm 0.7.1 does not write; like every EK certificate it is made
 * before the CA starts, whose clock only moves when a test moves it.
 */
export async function startLive(seed: string, opts: { p256EkCert?: boolean } = {}): Promise<LiveEnv> {
  const temp = mkdtempSync(join(tmpdir(), "mayfly-e2e-tpm-"));
  const closers: Array<() => Promise<void> | void> = [() => rmSync(temp, { recursive: true, force: true })];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const sw = await Swtpm.start({ manufacture: true });
    closers.push(() => sw.stop());
    if (opts.p256EkCert) writeP256EkCert(sw);
    const tpm = clientFor(sw, seed);
    closers.push(() => tpm.close());
    const startCa = async (ekTrustDir: string) => {
      const ca = await startTestCa(tpmCaConfig(ekTrustDir));
      closers.push(() => ca.close());
      const client = caClientFor(ca);
      closers.push(() => client.close());
      return { ca, client };
    };
    const { ca, client } = await startCa(swtpmTrustDir(sw, temp));
    return { sw, tpm, ca, client, startCa, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export { seedAgentOnDevice };

/** The seq of the newest audit event (0 for an empty log). */
export async function auditMark(ca: TestCa): Promise<number> {
  return ca.running.store.tx(async (tx) => (await tx.auditHead())?.seq ?? 0);
}

export async function auditSince(ca: TestCa, mark: number): Promise<AuditEvent[]> {
  return ca.running.store.tx((tx) => tx.listAuditEvents(mark + 1, 1e6));
}

export async function certificateCount(ca: TestCa): Promise<number> {
  return ca.running.store.tx((tx) => tx.countCertificates());
}

/**
 * Runs `action`, which must be refused with `code`: the thrown error carries it, exactly one
 * new audit event is a deny with that code, nothing new is allowed, and no certificate is
 * stored. Returns the error and the deny event.
 */
export async function expectDenied(
  ca: TestCa,
  code: string,
  action: () => Promise<unknown>,
): Promise<{ error: unknown; event: AuditEvent }> {
  const mark = await auditMark(ca);
  const certs = await certificateCount(ca);
  const error = await action().then(
    (v) => {
      throw new Error(`expected ${code}, the call succeeded: ${JSON.stringify(v)?.slice(0, 200)}`);
    },
    (e: unknown) => e,
  );
  expect(errorCode(error), String(error)).toBe(code);
  const events = await auditSince(ca, mark);
  const denies = events.filter((e) => e.decision === "deny");
  expect(denies.map((e) => e.code)).toEqual([code]);
  expect(events.filter((e) => e.decision === "allow")).toEqual([]);
  expect(await certificateCount(ca)).toBe(certs);
  return { error, event: denies[0]! };
}
