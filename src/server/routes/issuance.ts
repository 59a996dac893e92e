import { Router } from "express";
import { buildBundle } from "../../authority/bundle.js";
import { createChallenge } from "../../authority/challenges.js";
import { issueCertificate } from "../../authority/issue.js";
import { isMayflyError, MayflyError } from "../../errors/index.js";
import type { ServerContext } from "../context.js";
import { issuanceAnswers } from "./issuance-answer.js";

const AGENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function agentIdOf(raw: unknown): string {
  if (typeof raw !== "string" || !AGENT_ID.test(raw)) {
    throw new MayflyError("request.invalid", "agent id must be 1-64 characters of [A-Za-z0-9_-]", {
      field: "agentId",
    });
  }
  return raw;
}

/**
 * The two issuance answers, shared by the express routes below and the hand-written
 * handler in fast-issuance.ts, so both count, decide and answer alike. Each resolves to
 * the 201 body, JSON text (issuance-answer.ts), or rejects with the error the caller
 * answers as a problem.
 */
export interface IssuanceHandlers {
  challenge(agentId: string): Promise<string>;
  certificate(agentId: string, body: unknown): Promise<string>;
}

export function issuanceHandlers(ctx: ServerContext): IssuanceHandlers {
  const answers = issuanceAnswers();
  const challengeDeps = {
    store: ctx.store,
    clock: ctx.clock,
    random: ctx.random,
    ttl: ctx.config.issuance.challengeTtl,
    key: ctx.challengeKey,
  };
  return {
    async challenge(agentId) {
      try {
        const ch = await createChallenge(challengeDeps, agentId);
        ctx.metrics.challenges.inc({ result: "allow", code: "" });
        return answers.challenge(ch.nonce, ch.expiresAt);
      } catch (err) {
        ctx.metrics.challenges.inc({
          result: "deny",
          code: isMayflyError(err) ? err.code : "internal.error",
        });
        throw err;
      }
    },
    async certificate(agentId, body) {
      const end = ctx.metrics.issuanceSeconds.startTimer();
      try {
        const out = await issueCertificate(ctx, agentId, body);
        ctx.metrics.issuances.inc({ result: "allow", code: "" });
        end({ result: "allow" });
        return answers.certificate(out, buildBundle(ctx.ca(), ctx.config.ca.trustDomain));
      } catch (err) {
        const code = isMayflyError(err) ? err.code : "internal.error";
        ctx.metrics.issuances.inc({ result: "deny", code });
        end({ result: "deny" });
        throw err;
      }
    },
  };
}

/**
 * Challenge and issuance: the same two calls serve first issuance and every renewal. The
 * body is already JSON text: sent as res.json would send it (the same content type, then
 * res.send).
 */
export function issuanceRoutes(ctx: ServerContext, handlers = issuanceHandlers(ctx)): Router {
  const r = Router();
  r.post("/v1/agents/:agentId/challenges", async (req, res) => {
    const agentId = agentIdOf(req.params.agentId);
    res
      .status(201)
      .type("application/json")
      .send(await handlers.challenge(agentId));
  });

  r.post("/v1/agents/:agentId/certificates", async (req, res) => {
    const agentId = agentIdOf(req.params.agentId);
    res
      .status(201)
      .type("application/json")
      .send(await handlers.certificate(agentId, req.body));
  });
  return r;
}
