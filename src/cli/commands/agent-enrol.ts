import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import {
  AGENT_CODES,
  AgentError,
  CaClient,
  ensureEnrolled,
  formatTpmSpec,
  hexHandle,
  openTpm,
  parseHandle,
  parseTpmSpec,
  readCaTrust,
  readState,
  TPM_KEY_KINDS,
  type TpmKeyKind,
} from "../../agent/index.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";
import { reportAgentFailure, STATE_HELP, stateDirOf, stderrLog, TPM_HELP } from "./agent-common.js";

// `mayfly agent enrol`: activate this device's TPM with the CA once. Run it again and it
// checks the enrolment is still good (same CA, AK still in the TPM) and does nothing.

interface EnrolOpts {
  ca?: string;
  caBundle?: string;
  tpm?: string;
  state?: string;
  akHandle: string;
  ek: string;
  ak: string;
  force?: boolean;
  json?: boolean;
}

function keyKind(v: string, what: string): TpmKeyKind {
  if (!(TPM_KEY_KINDS as readonly string[]).includes(v)) {
    throw new AgentError(AGENT_CODES.usage, `${what} must be one of ${TPM_KEY_KINDS.join(", ")}`);
  }
  return v as TpmKeyKind;
}

async function enrolAction(o: EnrolOpts): Promise<number> {
  const stateDir = stateDirOf(o.state);
  const existing = await readState(stateDir).catch(() => null);
  const caUrl = o.ca ?? existing?.caUrl;
  if (!caUrl) throw new AgentError(AGENT_CODES.usage, "--ca URL is required for a first enrolment");
  const caTrust = o.caBundle
    ? await readFile(o.caBundle, "utf8")
    : existing
      ? await readCaTrust(stateDir)
      : null;
  if (!caTrust) {
    throw new AgentError(
      AGENT_CODES.usage,
      "--ca-bundle FILE (the PEM that signs the CA's TLS certificate) is required for a first enrolment",
    );
  }
  const spec = parseTpmSpec(o.tpm ?? existing?.tpm ?? "device:/dev/tpmrm0");
  const akHandle = o.akHandle === "none" ? null : parseHandle(o.akHandle, "--ak-handle");
  const log = stderrLog(systemClock, o.json);
  const tpm = openTpm(spec, systemRandom);
  const ca = new CaClient({ url: caUrl, ca: caTrust });
  try {
    const r = await ensureEnrolled({
      tpm,
      tpmSpec: formatTpmSpec(spec),
      ca,
      stateDir,
      caTrust,
      clock: systemClock,
      ekKind: keyKind(o.ek, "--ek"),
      akKind: keyKind(o.ak, "--ak"),
      akHandle,
      force: o.force ?? false,
      log,
    });
    const s = r.state;
    const where =
      s.akHandle === null ? "loaded from the state when needed" : `persistent at ${hexHandle(s.akHandle)}`;
    if (o.json) {
      printJson({
        ok: true,
        alreadyEnrolled: r.alreadyEnrolled,
        deviceId: s.deviceId,
        caUrl: s.caUrl,
        tpm: s.tpm,
        akName: s.akName,
        akHandle: s.akHandle === null ? null : hexHandle(s.akHandle),
        stateDir,
      });
    } else if (r.alreadyEnrolled) {
      process.stdout.write(
        `already enrolled: device ${s.deviceId} with ${s.caUrl} since ${s.enrolledAt}; the AK (${where}) still matches. Nothing to do.\n`,
      );
    } else {
      process.stdout.write(
        `enrolled: device ${s.deviceId} with ${s.caUrl}\n  AK Name ${s.akName} (${where})\n  state in ${stateDir}\n`,
      );
    }
    return EXIT.ok;
  } finally {
    ca.close();
    await tpm.close();
  }
}

export function registerAgentEnrol(agent: Command): void {
  agent
    .command("enrol")
    .description(
      "activate this device's TPM with the CA (EK certificate, EK and AK, credential activation) and keep the result in the state directory; idempotent",
    )
    .option("--ca <url>", "the CA, e.g. https://mayfly.example:8443 (default: the enrolled one)")
    .option(
      "--ca-bundle <file>",
      "PEM that signs the CA's TLS certificate: the initial trust (default: the enrolled one)",
    )
    .option("--tpm <spec>", TPM_HELP)
    .option("--state <dir>", STATE_HELP)
    .option(
      "--ak-handle <handle>",
      'persistent handle for the AK, or "none" to keep it only as blobs in the state',
      "0x81010002",
    )
    .option("--ek <kind>", `which EK and EK certificate: ${TPM_KEY_KINDS.join(", ")}`, "rsa2048")
    .option("--ak <kind>", `the AK's key: ${TPM_KEY_KINDS.join(", ")}`, "ecc256")
    .option("--force", "enrol again even if the state says this device is enrolled")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Exit codes: 0 enrolled (or already enrolled), 2 usage, 3 runtime error (CA or TPM unreachable),
15 the CA refused the activation (e.g. device.ek_untrusted), 16 the state no longer matches the TPM.`,
    )
    .action(async (o: EnrolOpts) => {
      try {
        process.exitCode = await enrolAction(o);
      } catch (e) {
        process.exitCode = reportAgentFailure(e);
      }
    });
}
