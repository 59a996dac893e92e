import { Router } from "express";
import { buildBundle, bundlePem } from "../../authority/bundle.js";
import { toPem } from "../../authority/ca-state.js";
import { createChallenge } from "../../authority/challenges.js";
import { issueCertificate } from "../../authority/issue.js";
import { isMayflyError, MayflyError } from "../../errors/index.js";
import type { ServerContext } from "../context.js";

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
 * the 201 body or rejects with the error the caller answers as a problem.
 */
export interface IssuanceHandlers {
  challenge(agentId: string): Promise<unknown>;
  certificate(agentId: string, body: unknown): Promise<unknown>;
}

export function issuanceHandlers(ctx: ServerContext): IssuanceHandlers {
  // The chain is the issuer's certificates, the same Buffers issuance after issuance until a
  // rotation swaps them: their PEM (about 5 µs each to encode) is kept per Buffer.
  const chainPem = new WeakMap<Buffer, string>();
  const pemOfChain = (der: Buffer) => {
    let pem = chainPem.get(der);
    if (pem === undefined) {
      pem = toPem(der);
      chainPem.set(der, pem);
    }
    return pem;
  };
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
        return { nonce: ch.nonce.toString("base64url"), expiresAt: new Date(ch.expiresAt).toISOString() };
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
        return {
          certificate: toPem(out.der),
          chain: out.chain.map(pemOfChain),
          serial: out.serial.toString("hex"),
          notBefore: new Date(out.notBefore).toISOString(),
          notAfter: new Date(out.notAfter).toISOString(),
          renewAfter: new Date(out.renewAfter).toISOString(),
          bundle: bundlePem(buildBundle(ctx.ca(), ctx.config.ca.trustDomain)),
        };
      } catch (err) {
        const code = isMayflyError(err) ? err.code : "internal.error";
        ctx.metrics.issuances.inc({ result: "deny", code });
        end({ result: "deny" });
        throw err;
      }
    },
  };
}

/** Challenge and issuance: the same two calls serve first issuance and every renewal. */
export function issuanceRoutes(ctx: ServerContext, handlers = issuanceHandlers(ctx)): Router {
  const r = Router();
  r.post("/v1/agents/:agentId/challenges", async (req, res) => {
    const agentId = agentIdOf(req.params.agentId);
    res.status(201).json(await handlers.challenge(agentId));
  });

  r.post("/v1/agents/:agentId/certificates", async (req, res) => {
    const agentId = agentIdOf(req.params.agentId);
    res.status(201).json(await handlers.certificate(agentId, req.body));
  });
  return r;
}
