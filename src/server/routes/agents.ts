import { Router } from "express";
import {
  type AgentView,
  affirmAgent,
  affirmAll,
  listOwnerAgents,
  ownerKill,
  registerAgent,
} from "../../authority/agents.js";
import { acceptTransfer, listTransfers, offerTransfer } from "../../authority/transfers.js";
import type { AgentTransfer, Owner } from "../../store/types.js";
import type { ServerContext } from "../context.js";

// The owner API (DESIGN.md: agent registration): every call carries the owner's ID
// token as `Authorization: Bearer`. The logic, the audit events and the denials live in
// authority/; this file maps HTTP to it.

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function agentJson(v: AgentView) {
  const a = v.agent;
  return {
    agentId: a.id,
    spiffeId: a.spiffeId,
    ownerId: a.ownerId,
    deviceId: a.deviceId,
    name: a.name,
    purpose: a.purpose,
    profile: a.profile,
    status: a.status,
    statusReason: a.statusReason ?? null,
    expiresAt: iso(a.expiresAt),
    lastIssuedAt: iso(a.lastIssuedAt),
    createdAt: iso(a.createdAt),
    binding: v.binding
      ? {
          tokenIssuer: v.binding.tokenIssuer,
          tokenSubject: v.binding.tokenSubject,
          authTime: iso(v.binding.authTime),
          affirmedAt: iso(v.binding.affirmedAt),
          expiresAt: iso(v.binding.expiresAt),
        }
      : null,
  };
}

function ownerJson(o: Owner) {
  return {
    ownerId: o.id,
    issuer: o.issuer,
    subject: o.subject,
    email: o.email,
    displayName: o.displayName,
    status: o.status,
    groups: o.groups ?? [],
  };
}

function transferJson(t: AgentTransfer) {
  return {
    transferId: t.id,
    agentId: t.agentId,
    fromOwnerId: t.fromOwnerId,
    toOwnerId: t.toOwnerId,
    state: t.state,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
  };
}

export function agentRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.post("/v1/agents", async (req, res) => {
    const v = await registerAgent(ctx, req.headers.authorization, req.body);
    res.status(201).json(agentJson(v));
  });
  r.get("/v1/agents", async (req, res) => {
    const out = await listOwnerAgents(ctx, req.headers.authorization);
    res.json({ owner: ownerJson(out.owner), agents: out.agents.map(agentJson) });
  });
  r.get("/v1/owners/me", async (req, res) => {
    const out = await listOwnerAgents(ctx, req.headers.authorization);
    res.json({ ...ownerJson(out.owner), agents: out.agents.length });
  });
  r.post("/v1/agents/:agentId/affirm", async (req, res) => {
    res.json(await affirmAgent(ctx, req.headers.authorization, String(req.params.agentId)));
  });
  r.post("/v1/owners/me/affirm", async (req, res) => {
    res.json(await affirmAll(ctx, req.headers.authorization));
  });
  r.post("/v1/owners/me/kill", async (req, res) => {
    res.json(await ownerKill(ctx, req.headers.authorization));
  });
  r.post("/v1/agents/:agentId/transfers", async (req, res) => {
    const t = await offerTransfer(ctx, req.headers.authorization, String(req.params.agentId), req.body);
    res.status(201).json(transferJson(t));
  });
  r.get("/v1/transfers", async (req, res) => {
    res.json({ transfers: (await listTransfers(ctx, req.headers.authorization)).map(transferJson) });
  });
  r.post("/v1/transfers/:transferId/accept", async (req, res) => {
    res.json(await acceptTransfer(ctx, req.headers.authorization, String(req.params.transferId)));
  });
  return r;
}
