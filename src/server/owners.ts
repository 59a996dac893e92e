import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { countZombies, listZombies, type SweepResult, sweepAgents } from "../authority/zombies.js";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import { readSecret } from "../keys/passphrase.js";
import { httpsJsonFetcher } from "../owners/fetch-json.js";
import { OidcVerifier } from "../owners/oidc-verifier.js";
import type { Clock } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import type { Metrics } from "./metrics.js";

/** A provisioning token shorter than this is refused: it is the only thing guarding /scim/v2. */
export const MIN_SCIM_TOKEN_LENGTH = 32;

/**
 * The owner side of the composition root: the ID-token verifier for the configured
 * issuer (null when none is configured) and the SCIM provisioning token, read once
 * from its SecretRef (null: /scim/v2 is not mounted).
 */
export async function ownerServices(
  config: Config,
  deps: { clock: Clock; log: Logger; env?: NodeJS.ProcessEnv },
): Promise<{ oidc: OidcVerifier | null; scimToken: string | null }> {
  const o = config.owners.oidc;
  let oidc: OidcVerifier | null = null;
  if (o.issuer) {
    let ca: string | null = null;
    if (o.caFile) {
      try {
        ca = await readFile(o.caFile, "utf8");
      } catch (e) {
        throw new MayflyError("config.invalid", `cannot read owners.oidc.caFile ${o.caFile}`, {
          cause: e,
          field: "owners.oidc.caFile",
        });
      }
    }
    oidc = new OidcVerifier({
      issuer: o.issuer,
      clientIds: o.clientIds,
      algorithms: o.algorithms,
      clockSkewMs: o.clockSkew,
      jwksCacheTtlMs: o.jwksCacheTtl,
      refetchCooldownMs: o.jwksRefetchCooldown,
      clock: deps.clock,
      fetchJson: httpsJsonFetcher({ ca, timeoutMs: o.requestTimeout }),
    });
    deps.log.info(
      { issuer: o.issuer, clientIds: o.clientIds, algorithms: o.algorithms },
      "owner login enabled",
    );
  } else {
    deps.log.warn("owners.oidc.issuer is not set: owner login and agent registration are disabled");
  }
  let scimToken: string | null = null;
  if (config.owners.scim.token) {
    const s = await readSecret(config.owners.scim.token, deps.env ?? process.env);
    for (const w of s.warnings) deps.log.warn(w);
    scimToken = s.value.trim();
    if (scimToken.length < MIN_SCIM_TOKEN_LENGTH) {
      throw new MayflyError(
        "config.invalid",
        `the SCIM provisioning token must be at least ${MIN_SCIM_TOKEN_LENGTH} characters`,
        { field: "owners.scim.token" },
      );
    }
    deps.log.info("SCIM provisioning enabled at /scim/v2");
  }
  return { oidc, scimToken };
}

export interface Sweeper {
  runOnce(): Promise<SweepResult>;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/**
 * The zombie sweep on a timer (agents.sweepInterval): dormancy and retirement, then the
 * zombie gauges. One pass at a time; a failed pass is logged and the next one retries.
 */
export function startSweeper(deps: {
  store: Store;
  clock: Clock;
  config: Config;
  log: Logger;
  metrics: Metrics;
}): Sweeper {
  let running: Promise<SweepResult> | null = null;
  const runOnce = (): Promise<SweepResult> => {
    if (running) return running;
    running = (async () => {
      const result = await sweepAgents(deps, "sweeper");
      const counts = countZombies(await listZombies(deps));
      for (const [kind, n] of Object.entries(counts)) deps.metrics.zombies.set({ kind }, n);
      if (result.dormant.length + result.retired.length > 0) {
        deps.log.info({ dormant: result.dormant.length, retired: result.retired.length }, "agent sweep");
      }
      return result;
    })().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => deps.log.error({ err }, "agent sweep failed"));
  }, deps.config.agents.sweepInterval);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
