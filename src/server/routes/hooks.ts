import express, { type NextFunction, type Request, type Response, Router } from "express";
import { recordDenial } from "../../authority/deny.js";
import { mdmDenialRecorded, mdmSource, receiveMdmEvent } from "../../authority/mdm-hook.js";
import { isMayflyError, MayflyError } from "../../errors/index.js";
import type { ServerContext } from "../context.js";
import { sendProblem } from "../problem.js";

// POST /v1/hooks/mdm: one compact JWS per request (README "Device management"). Mounted
// before the JSON API's content-type gate and body parser: the body is the JWS itself, as
// application/jose (RFC 7515 §9.2.1), application/jwt or text/plain, under its own size
// limit. Every refusal, the body parser's included, is an audit event and a problem.

const MEDIA_TYPES = ["application/jose", "application/jwt", "text/plain"];

export function hookRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.post(
    "/v1/hooks/mdm",
    (req, _res, next) => {
      if (!req.is(MEDIA_TYPES)) {
        next(new MayflyError("request.unsupported_media_type", `send the JWS as ${MEDIA_TYPES.join(", ")}`));
        return;
      }
      next();
    },
    express.text({ type: MEDIA_TYPES, limit: ctx.config.mdm.bodyLimitBytes }),
    async (req, res) => {
      const out = await receiveMdmEvent(ctx, req.body);
      res.status(200).json({
        event: out.event,
        applied: out.applied,
        deviceId: out.deviceId,
        mdmId: out.mdmId,
        occurredAt: new Date(out.occurredAt).toISOString(),
        created: out.created,
        suspendedAgents: out.suspended,
      });
    },
  );
  r.use("/v1/hooks/mdm", async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    let e = err;
    const parserType = (err as { type?: string } | null)?.type;
    if (parserType === "entity.too.large") {
      e = new MayflyError(
        "request.too_large",
        `the event exceeds mdm.bodyLimitBytes (${ctx.config.mdm.bodyLimitBytes})`,
      );
    } else if (parserType === "encoding.unsupported" || parserType === "charset.unsupported") {
      e = new MayflyError("request.unsupported_media_type", "send the JWS as UTF-8 text");
    } else if (!isMayflyError(err)) {
      next(err);
      return;
    }
    let me = e as MayflyError;
    if (!mdmDenialRecorded(e)) {
      try {
        me = await recordDenial(ctx.store, ctx.clock, e, {
          type: "mdm.event",
          actor: null,
          subject: null,
          data: { method: req.method, path: req.path, source: mdmSource(ctx.config) },
        });
      } catch (auditErr) {
        ctx.log.error({ err: auditErr }, "could not record an MDM hook denial");
        me = new MayflyError("internal.error", "an internal error occurred");
      }
    }
    sendProblem(res, me, req.originalUrl);
  });
  return r;
}
