import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** One registry per app, so tests and replicas in one process never share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const issuances = new Counter({
    name: "mayfly_issuances_total",
    help: "Certificate issuance decisions, by result (allow or deny) and error code",
    labelNames: ["result", "code"] as const,
    registers: [registry],
  });
  const issuanceSeconds = new Histogram({
    name: "mayfly_issuance_duration_seconds",
    help: "Time from request to answer for certificate issuance",
    labelNames: ["result"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const challenges = new Counter({
    name: "mayfly_challenges_total",
    help: "Challenges issued, by result",
    labelNames: ["result", "code"] as const,
    registers: [registry],
  });
  const zombies = new Gauge({
    name: "mayfly_zombie_agents",
    help: "Agents not retired whose owner is gone, that are dormant, past their purpose or on an unenrolled device, by kind (at the last sweep)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  return { registry, issuances, issuanceSeconds, challenges, zombies };
}
export type Metrics = ReturnType<typeof createMetrics>;
