import type { IncomingMessage, ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import { MayflyError } from "../errors/index.js";
import type { ServerContext } from "./context.js";
import { fastIssuance } from "./fast-issuance.js";
import { problemHandler } from "./problem.js";
import { adminRoutes } from "./routes/admin.js";
import { agentRoutes } from "./routes/agents.js";
import { bundleRoutes } from "./routes/bundle.js";
import { deviceRoutes } from "./routes/devices.js";
import { hookRoutes } from "./routes/hooks.js";
import { issuanceHandlers, issuanceRoutes } from "./routes/issuance.js";
import { opsRoutes } from "./routes/ops.js";
import { scimRoutes } from "./routes/scim.js";

/** Refuses a body that is not JSON before any route sees it. */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers["content-length"] !== "0" && req.headers["content-length"] !== undefined;
  if (
    (req.method === "POST" || req.method === "PUT" || req.method === "PATCH") &&
    (hasBody || req.headers["transfer-encoding"])
  ) {
    if (!req.is("application/json")) {
      next(new MayflyError("request.unsupported_media_type", "send application/json"));
      return;
    }
  }
  next();
}

/** The express app. No listening, no process state: the caller owns the server. */
export function createApp(ctx: ServerContext, handlers = issuanceHandlers(ctx)): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use((req, res, next) => {
    res.setHeader("cache-control", "no-store");
    // The request log is at debug: skip the listener and clock reads when it is off.
    if (ctx.log.isLevelEnabled("debug")) {
      const start = process.hrtime.bigint();
      res.on("finish", () => {
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        ctx.log.debug({ method: req.method, path: req.path, status: res.statusCode, ms }, "request");
      });
    }
    next();
  });
  // SCIM has its own media type, authentication and error documents, so it sits before
  // the JSON API's gate and problem handler.
  if (ctx.scimToken) app.use("/scim/v2", scimRoutes(ctx, ctx.scimToken));
  // The MDM hook's body is a JWS, not JSON, with its own size limit and audited refusals.
  app.use(hookRoutes(ctx));
  app.use(requireJson);
  app.use(express.json({ limit: ctx.config.server.bodyLimitBytes, strict: true, type: "application/json" }));
  app.use(opsRoutes(ctx));
  app.use(bundleRoutes(ctx));
  app.use(deviceRoutes(ctx));
  app.use(issuanceRoutes(ctx, handlers));
  app.use(agentRoutes(ctx));
  app.use(adminRoutes(ctx));
  app.use((req, _res, next) => {
    next(new MayflyError("request.not_found", `no route for ${req.method} ${req.path}`));
  });
  app.use(problemHandler(ctx));
  return app;
}

export interface RequestListenerOptions {
  /**
   * Whether the hand-written issuance handler (fast-issuance.ts) may take a request; absent:
   * always. A function, so one test can drive the same server down either path.
   */
  fastPath?: () => boolean;
  /** Told of every request the hand-written handler took (tests prove which path answered). */
  onFastPath?: (req: IncomingMessage) => void;
}

/**
 * The server's 'request' listener: challenge and certificate requests the hand-written
 * handler can answer exactly as the app would go to it; everything else to the express app.
 */
export function createRequestListener(
  ctx: ServerContext,
  opts: RequestListenerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const handlers = issuanceHandlers(ctx);
  const app = createApp(ctx, handlers);
  const fast = fastIssuance(ctx, handlers);
  const enabled = opts.fastPath ?? (() => true);
  const told = opts.onFastPath;
  return (req, res) => {
    if (enabled() && fast(req, res)) {
      told?.(req);
      return;
    }
    app(req, res);
  };
}
