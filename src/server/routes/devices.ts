import { Router } from "express";
import { completeActivation, startActivation } from "../../authority/activation.js";
import type { ServerContext } from "../context.js";

/** TPM device activation (DESIGN.md): two calls, one attempt. */
export function deviceRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.post("/v1/devices/activations", async (req, res) => {
    const a = await startActivation(ctx, req.body);
    res.status(201).json({
      activationId: a.activationId,
      credentialBlob: a.credentialBlob.toString("base64url"),
      encryptedSecret: a.encryptedSecret.toString("base64url"),
      expiresAt: new Date(a.expiresAt).toISOString(),
    });
  });
  r.post("/v1/devices/activations/:activationId", async (req, res) => {
    const out = await completeActivation(ctx, String(req.params.activationId), req.body);
    res.status(200).json({ deviceId: out.deviceId, akName: out.akName.toString("base64url") });
  });
  return r;
}
