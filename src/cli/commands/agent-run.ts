import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import {
  AGENT_CODES,
  AgentError,
  AgentTrust,
  CaSession,
  claimKeyHandles,
  hexHandle,
  Issuer,
  type KeyMode,
  OUT_FILES,
  openTpm,
  parseHandle,
  parseTpmSpec,
  Renewer,
  realSleep,
  requireState,
  runHook,
  TPM_KEY_KINDS,
  type TpmKeyKind,
  writeIssued,
} from "../../agent/index.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { EXIT } from "../exit-codes.js";
import {
  DENIAL_EXIT,
  reportAgentFailure,
  STATE_HELP,
  stateDirOf,
  stderrLog,
  TPM_HELP,
} from "./agent-common.js";

// `mayfly agent run`: keep one agent's certificate fresh in a directory, for as long as the
// CA says yes. Each renewal is a full issuance (challenge, key, evidence, CSR); the files are
// replaced atomically; --exec reloads whatever uses them. SIGHUP renews now; SIGINT/SIGTERM
// stop cleanly (exit 0); a terminal denial stops with its own exit code (mayfly --help).

interface RunOpts {
  agent: string;
  out: string;
  state?: string;
  tpm?: string;
  key: string;
  keyKind: string;
  keyHandles?: string;
  lifetime?: string;
  renewAt: string;
  jitter: string;
  backoffMax: string;
  exec?: string;
  once?: boolean;
  quiet?: boolean;
}

function number(v: string, what: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new AgentError(
      AGENT_CODES.usage,
      `${what} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`,
    );
  }
  return n;
}

async function currentKeyHandle(out: string): Promise<number | null> {
  try {
    return parseHandle(await readFile(join(out, OUT_FILES.keyHandle), "utf8"), OUT_FILES.keyHandle);
  } catch {
    return null;
  }
}

async function runAction(o: RunOpts): Promise<number> {
  const stateDir = stateDirOf(o.state);
  const out = resolve(o.out);
  const mode = o.key as KeyMode;
  if (!["tpm", "bound", "auto"].includes(mode))
    throw new AgentError(AGENT_CODES.usage, "--key must be tpm, bound or auto");
  if (!(TPM_KEY_KINDS as readonly string[]).includes(o.keyKind)) {
    throw new AgentError(AGENT_CODES.usage, `--key-kind must be one of ${TPM_KEY_KINDS.join(", ")}`);
  }
  let keyHandles: [number, number] | undefined;
  if (o.keyHandles) {
    const parts = o.keyHandles.split(",");
    if (parts.length !== 2) throw new AgentError(AGENT_CODES.usage, "--key-handles takes two handles: H1,H2");
    keyHandles = [parseHandle(parts[0]!, "--key-handles"), parseHandle(parts[1]!, "--key-handles")];
  }
  const lifetimeSeconds = o.lifetime === undefined ? undefined : number(o.lifetime, "--lifetime", 1, 86_400);
  const renewAt = number(o.renewAt, "--renew-at", 0.001, 0.999);
  const jitter = number(o.jitter, "--jitter", 0, 0.9);
  const backoffMaxMs = number(o.backoffMax, "--backoff-max", 1, 86_400) * 1000;

  const state = await requireState(stateDir);
  // Each agent keeps its TPM keys at its own pair of handles, claimed in the state directory.
  if (!keyHandles && mode !== "bound") {
    keyHandles = await claimKeyHandles(stateDir, o.agent, state.akHandle === null ? [] : [state.akHandle]);
  }
  const log = stderrLog(systemClock, o.quiet);
  const tpm = openTpm(parseTpmSpec(o.tpm ?? state.tpm), systemRandom);
  // The CA's trust bundle is taken only when it verifies against the trust held (AgentTrust):
  // fetched before each issuance (so at start too), never from the issuance answer.
  const trust = await AgentTrust.open(stateDir, log);
  const session = new CaSession({
    url: state.caUrl,
    initialTrust: trust.initialPem,
    latestBundle: trust.trustedPem,
  });
  const issuer = new Issuer({
    tpm,
    state,
    client: () => session.client(),
    agentId: o.agent,
    mode,
    keyKind: o.keyKind as TpmKeyKind,
    ...(keyHandles ? { keyHandles } : {}),
    currentKeyHandle: await currentKeyHandle(out),
    ...(lifetimeSeconds === undefined ? {} : { lifetimeSeconds }),
    log,
  });
  log(
    "info",
    `agent ${o.agent} on device ${state.deviceId}: renewing with ${state.caUrl}, ${mode} keys, files in ${out}`,
  );
  const renewer = new Renewer({
    issue: async () => {
      const r = await trust.refresh(session.client(), systemClock.now());
      if (r.status === "accepted") session.updateBundle(trust.trustedPem);
      return issuer.issue();
    },
    onIssued: async (c) => {
      const before = await readFile(join(out, OUT_FILES.bundle), "utf8").catch(() => null);
      await writeIssued(out, c, { bundle: trust.pem });
      if (before !== null && trust.pem && before !== trust.pem)
        log("info", "the trust bundle changed: bundle.pem updated");
      if (c.keyResidency === "tpm")
        log("info", `the key lives in the TPM at ${hexHandle(c.keyHandle!)} (key.handle)`);
      if (o.exec) {
        const r = await runHook(o.exec, {
          MAYFLY_AGENT_ID: o.agent,
          MAYFLY_CERT_DIR: out,
          MAYFLY_CERT_FILE: join(out, OUT_FILES.cert),
          MAYFLY_CHAIN_FILE: join(out, OUT_FILES.chain),
          MAYFLY_BUNDLE_FILE: join(out, OUT_FILES.bundle),
          MAYFLY_KEY_RESIDENCY: c.keyResidency,
          ...(c.keyResidency === "tpm"
            ? { MAYFLY_KEY_HANDLE: hexHandle(c.keyHandle!) }
            : { MAYFLY_KEY_FILE: join(out, OUT_FILES.key) }),
          MAYFLY_SERIAL: c.serial,
          MAYFLY_NOT_AFTER: c.notAfter,
        });
        if (r.code === 0) log("info", `--exec ran: ${o.exec}`);
        else {
          const how =
            r.code === null
              ? r.signal
                ? `was killed (${r.signal})`
                : "could not start"
              : `exited ${r.code}`;
          log("warn", `--exec ${how}: ${o.exec}${r.output ? `\n${r.output.trimEnd()}` : ""}`);
        }
      }
    },
    clock: systemClock,
    random: systemRandom,
    sleep: realSleep,
    log,
    renewAt,
    jitter,
    backoffMaxMs,
    ...(o.once ? { maxIssuances: 1 } : {}),
  });
  const stop = () => {
    log("info", "stopping (signal)");
    renewer.stop();
  };
  const now = () => {
    log("info", "SIGHUP: renewing now");
    renewer.renewNow();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", now);
  try {
    const r = await renewer.run();
    if (r.reason !== "denied") return EXIT.ok;
    const code = DENIAL_EXIT[r.kind];
    process.stderr.write(`mayfly agent: stopped: ${r.code}: ${r.detail} (exit ${code})\n`);
    return code;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    process.off("SIGHUP", now);
    session.close();
    await tpm.close();
  }
}

export function registerAgentRun(agent: Command): void {
  agent
    .command("run")
    .description(
      "keep an agent's certificate fresh in a directory: cert.pem, chain.pem, bundle.pem, and key.pem (bound) or key.handle (tpm), renewed at half the lifetime",
    )
    .requiredOption("--agent <id>", "the agent id its owner registered")
    .requiredOption("--out <dir>", "where to write the files (created 0700 if missing)")
    .option("--state <dir>", STATE_HELP)
    .option("--tpm <spec>", TPM_HELP)
    .option(
      "--key <mode>",
      "tpm: key made in the TPM; bound: software key quoted by the AK; auto: tpm unless the profile refuses it",
      "auto",
    )
    .option("--key-kind <kind>", `tpm keys: ${TPM_KEY_KINDS.join(", ")}`, "ecc256")
    .option(
      "--key-handles <h1,h2>",
      "tpm keys: two persistent handles used in turn (default 0x81000100,0x81000101)",
    )
    .option("--lifetime <seconds>", "ask for this lifetime (the CA caps it)")
    .option("--renew-at <fraction>", "renew when this fraction of the remaining lifetime has passed", "0.5")
    .option("--jitter <fraction>", "renew up to this fraction earlier, at random", "0.1")
    .option("--backoff-max <seconds>", "longest wait between retries after transient failures", "60")
    .option(
      "--exec <command>",
      "run this shell command after each rotation (MAYFLY_* variables name the files)",
    )
    .option("--once", "get one certificate and exit")
    .option("--quiet", "log only warnings and errors")
    .addHelpText(
      "after",
      `
Transient failures (CA unreachable, 5xx, expired challenge, busy TPM) are retried with
exponential backoff. A terminal denial stops the agent with its own exit code:
  10 owner.inactive, owner.not_found        13 agent.expired, binding.expired, policy.lifetime_exhausted
  11 agent.retired, agent.not_found         14 agent.inactive, binding.affirmation_stale
  12 device.unenrolled, device.not_found,   15 any other refusal (evidence, CSR, profile)
     device.not_activated                   16 enrolment no longer matches the TPM
0 after --once or a signal (SIGINT, SIGTERM); SIGHUP renews now. 2 usage, 3 runtime error.`,
    )
    .action(async (o: RunOpts) => {
      try {
        process.exitCode = await runAction(o);
      } catch (e) {
        process.exitCode = reportAgentFailure(e);
      }
    });
}
