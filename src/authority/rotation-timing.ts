import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";

/**
 * The rotation schedule's intervals, each derived from configured lifetimes:
 *
 * - drain: how long a CA certificate that stopped signing must stay in the bundle so
 *   that every leaf it signed has expired everywhere: the longest leaf any profile
 *   allows (maxLifetime), plus the clock skew relying parties are granted
 *   (issuance.backdate), plus one check interval (a replica keeps signing with the old
 *   issuer until its next re-read of the store).
 * - propagation: how long a new CA certificate is published before it signs.
 * - an intermediate is activated at the earlier of activeSince + intermediateActiveFor
 *   and its predecessor's notAfter - drain - propagation (the latest moment that still
 *   leaves a propagation period of slack before leaves would be cut short), and is
 *   prepared one propagation period before that.
 */
export interface RotationTiming {
  auto: boolean;
  checkInterval: number;
  propagation: number;
  leafMaxLifetime: number;
  skew: number;
  drain: number;
  intermediateLifetime: number;
  activeFor: number | null;
}

export function rotationTiming(config: Config): RotationTiming {
  const leafMaxLifetime = Math.max(...Object.values(config.profiles).map((p) => p.maxLifetime));
  const skew = config.issuance.backdate;
  const r = config.rotation;
  return {
    auto: r.auto,
    checkInterval: r.checkInterval,
    propagation: r.propagation,
    leafMaxLifetime,
    skew,
    drain: leafMaxLifetime + skew + r.checkInterval,
    intermediateLifetime: config.ca.intermediateLifetime,
    activeFor: r.intermediateActiveFor,
  };
}

/**
 * Refuses a configuration whose schedule cannot settle: an intermediate must outlive
 * its own propagation, a propagation period of slack and the drain of its leaves, or
 * every new intermediate would be due for replacement the moment it is activated.
 */
export function checkRotationTiming(t: RotationTiming): void {
  const needed = 2 * t.propagation + t.drain + t.checkInterval;
  if (t.intermediateLifetime <= needed) {
    throw new MayflyError(
      "config.invalid",
      `ca.intermediateLifetime (${t.intermediateLifetime} ms) must exceed 2 x rotation.propagation + the longest ` +
        `profile maxLifetime + issuance.backdate + 2 x rotation.checkInterval (${needed} ms)`,
      { field: "rotation.propagation" },
    );
  }
}
