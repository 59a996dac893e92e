import { Router } from "express";
import { buildBundle, bundlePem } from "../../authority/bundle.js";
import type { ServerContext } from "../context.js";

export function bundleRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get("/v1/bundle", (req, res) => {
    const bundle = buildBundle(ctx.ca(), ctx.config.ca.trustDomain);
    // PEM for tools (curl | openssl), JSON (the default) for agents.
    if (
      req.accepts(["application/json", "application/pem-certificate-chain"]) ===
      "application/pem-certificate-chain"
    ) {
      res.type("application/pem-certificate-chain").send(bundlePem(bundle));
      return;
    }
    res.json(bundle);
  });
  return r;
}
