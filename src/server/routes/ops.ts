import { Router } from "express";
import type { ServerContext } from "../context.js";

/** Liveness, readiness and metrics: unauthenticated, no secrets. */
export function opsRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  r.get("/readyz", async (_req, res) => {
    try {
      const n = await ctx.store.tx((tx) => tx.listCaCertificates());
      const issuer = ctx.ca().issuer;
      const ok = n.length > 0 && issuer.notAfter > ctx.clock.now();
      res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "not ready", store: ctx.store.kind });
    } catch (err) {
      ctx.log.warn({ err }, "readiness check failed");
      res.status(503).json({ status: "not ready", store: ctx.store.kind });
    }
  });
  r.get("/metrics", async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  return r;
}
