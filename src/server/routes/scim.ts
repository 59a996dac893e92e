import { createHash, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response, Router } from "express";
import { recordDenial } from "../../authority/deny.js";
import { type ErrorCode, isMayflyError, MayflyError } from "../../errors/index.js";
import {
  enterpriseSchema,
  serviceProviderConfig,
  userResourceType,
  userSchema,
} from "../../owners/scim/discovery.js";
import { CORE_USER, ENTERPRISE_USER, ERROR_SCHEMA } from "../../owners/scim/resource.js";
import {
  createUser,
  deleteUser,
  getUser,
  listUsers,
  patchUser,
  replaceUser,
} from "../../owners/scim/users.js";
import type { ServerContext } from "../context.js";

// SCIM 2.0 (RFC 7644) at /scim/v2, for the identity provider's provisioning client only.
// Mounted before the JSON API's content-type gate: IdPs send application/scim+json.
// Every error is a SCIM error document (application/scim+json, status as a string,
// scimType where RFC 7644 §3.12 has one) and an audit event with the Mayfly code.

const SCIM_TYPE: Partial<Record<ErrorCode, string>> = {
  "scim.invalid_filter": "invalidFilter",
  "scim.invalid_syntax": "invalidSyntax",
  "scim.invalid_value": "invalidValue",
  "scim.invalid_path": "invalidPath",
  "scim.no_target": "noTarget",
  "scim.mutability": "mutability",
  "scim.uniqueness": "uniqueness",
  "request.invalid": "invalidSyntax",
};

const CONTENT_TYPE = "application/scim+json; charset=utf-8";

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(CONTENT_TYPE).send(JSON.stringify(body));
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Constant-time over equal-length digests, so neither the token nor its length leaks. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

function baseUrl(req: Request): string {
  return `${req.protocol}://${req.get("host")}${req.baseUrl}`;
}

function op(name: string) {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.locals.scimOp = name;
    next();
  };
}

export function scimRoutes(ctx: ServerContext, token: string): Router {
  const r = Router();
  r.use((req, res, next) => {
    res.locals.scimOp = "scim.request";
    const m = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!m || !tokenMatches(m[1]!, token)) {
      res.setHeader("www-authenticate", 'Bearer realm="mayfly-scim"');
      res.locals.scimOp = "scim.auth";
      next(new MayflyError("scim.unauthorized", "a valid provisioning bearer token is required"));
      return;
    }
    next();
  });
  r.use(
    express.json({
      limit: ctx.config.server.bodyLimitBytes,
      strict: true,
      type: ["application/scim+json", "application/json"],
    }),
  );
  const body = (req: Request) => {
    if (!req.is(["application/scim+json", "application/json"]) || req.body === undefined) {
      throw new MayflyError("scim.invalid_syntax", "send a JSON body as application/scim+json");
    }
    return req.body as unknown;
  };

  r.get("/ServiceProviderConfig", (req, res) => send(res, 200, serviceProviderConfig(baseUrl(req))));
  r.get("/ResourceTypes", (req, res) =>
    send(res, 200, {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
      totalResults: 1,
      startIndex: 1,
      itemsPerPage: 1,
      Resources: [userResourceType(baseUrl(req))],
    }),
  );
  r.get("/ResourceTypes/User", (req, res) => send(res, 200, userResourceType(baseUrl(req))));
  r.get("/Schemas", (req, res) => {
    const all = [userSchema(baseUrl(req)), enterpriseSchema(baseUrl(req))];
    send(res, 200, {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
      totalResults: all.length,
      startIndex: 1,
      itemsPerPage: all.length,
      Resources: all,
    });
  });
  r.get("/Schemas/:id", (req, res) => {
    const id = String(req.params.id);
    if (id === CORE_USER) send(res, 200, userSchema(baseUrl(req)));
    else if (id === ENTERPRISE_USER) send(res, 200, enterpriseSchema(baseUrl(req)));
    else throw new MayflyError("scim.not_found", `no schema ${id}`);
  });

  r.post("/Users", op("scim.user.create"), async (req, res) => {
    const u = await createUser(ctx, body(req), baseUrl(req));
    res.setHeader("location", (u.meta as { location: string }).location);
    res.setHeader("etag", (u.meta as { version: string }).version);
    send(res, 201, u);
  });
  r.get("/Users", op("scim.user.list"), async (req, res) => {
    send(res, 200, await listUsers(ctx, req.query, baseUrl(req)));
  });
  r.get("/Users/:id", op("scim.user.get"), async (req, res) => {
    const u = await getUser(ctx, String(req.params.id), baseUrl(req));
    res.setHeader("etag", (u.meta as { version: string }).version);
    send(res, 200, u);
  });
  r.put("/Users/:id", op("scim.user.replace"), async (req, res) => {
    const u = await replaceUser(ctx, String(req.params.id), body(req), baseUrl(req));
    res.setHeader("etag", (u.meta as { version: string }).version);
    send(res, 200, u);
  });
  r.patch("/Users/:id", op("scim.user.patch"), async (req, res) => {
    const u = await patchUser(ctx, String(req.params.id), body(req), baseUrl(req));
    res.setHeader("etag", (u.meta as { version: string }).version);
    send(res, 200, u);
  });
  r.delete("/Users/:id", op("scim.user.delete"), async (req, res) => {
    await deleteUser(ctx, String(req.params.id));
    res.status(204).end();
  });
  r.use((req, _res, next) => {
    next(new MayflyError("scim.not_found", `no SCIM endpoint ${req.method} ${req.path}`));
  });

  r.use(async (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e = err;
    const parserType = (err as { type?: string } | null)?.type;
    if (parserType === "entity.parse.failed")
      e = new MayflyError("scim.invalid_syntax", "the body is not valid JSON");
    else if (parserType === "entity.too.large")
      e = new MayflyError("request.too_large", "the body is too large");
    if (!isMayflyError(e)) ctx.log.error({ err, path: req.path }, "unhandled SCIM error");
    let me: MayflyError;
    try {
      me = await recordDenial(ctx.store, ctx.clock, e, {
        type: String(res.locals.scimOp ?? "scim.request"),
        actor: res.locals.scimOp === "scim.auth" ? null : "scim",
        subject: typeof req.params?.id === "string" ? `scim:${req.params.id}` : null,
        data: { method: req.method, path: req.path },
      });
    } catch (auditErr) {
      ctx.log.error({ err: auditErr }, "could not record a SCIM denial");
      me = new MayflyError("internal.error", "an internal error occurred");
    }
    const scimType = SCIM_TYPE[me.code];
    send(res, me.status, {
      schemas: [ERROR_SCHEMA],
      status: String(me.status),
      ...(scimType ? { scimType } : {}),
      detail: me.detail,
    });
  });
  return r;
}
