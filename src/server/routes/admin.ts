import { Router } from "express";
import { type AdminAction, adminAgentAction, adminListAgents, adminTransfer } from "../../authority/admin.js";
import { MayflyError } from "../../errors/index.js";
import type { ServerContext } from "../context.js";
import { agentJson } from "./agents.js";

const ACTIONS: readonly AdminAction[] = ["suspend", "resume", "retire"];

/** The administrators' API (owners.adminGroup); nothing here answers without an admin login. */
export function adminRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get("/v1/admin/agents", async (req, res) => {
    const out = await adminListAgents(ctx, req.headers.authorization, {
      zombies: req.query.zombies === "true",
    });
    if ("zombies" in out) res.json({ zombies: out.zombies });
    else res.json({ agents: out.agents.map((agent) => agentJson({ agent, binding: null })) });
  });
  r.post("/v1/admin/agents/:agentId/transfers", async (req, res) => {
    const t = await adminTransfer(ctx, req.headers.authorization, String(req.params.agentId), req.body);
    res.status(201).json({ transferId: t.id, agentId: t.agentId, toOwnerId: t.toOwnerId, state: t.state });
  });
  r.post("/v1/admin/agents/:agentId/:action", async (req, res) => {
    const action = String(req.params.action) as AdminAction;
    if (!ACTIONS.includes(action)) throw new MayflyError("request.not_found", `no admin action ${action}`);
    const agent = await adminAgentAction(ctx, req.headers.authorization, String(req.params.agentId), action);
    res.json(agentJson({ agent, binding: null }));
  });
  return r;
}
