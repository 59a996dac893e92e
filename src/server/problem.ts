import type { ServerResponse } from "node:http";
import type { ErrorRequestHandler, Response } from "express";
import type { Logger } from "pino";
import { type ErrorCode, isMayflyError, MayflyError } from "../errors/index.js";
import type { ServerContext } from "./context.js";
import { recordRefusal } from "./refusals.js";

/** The RFC 9457 problem document Mayfly answers every error with. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  field?: string;
  instance?: string;
}

export function problemType(code: string): string {
  return `urn:mayfly:problem:${code}`;
}

export function toProblem(err: MayflyError, instance?: string): Problem {
  const p: Problem = {
    type: problemType(err.code),
    title: err.title,
    status: err.status,
    detail: err.detail,
    code: err.code,
  };
  if (err.field) p.field = err.field;
  if (instance) p.instance = instance;
  return p;
}

export function sendProblem(res: Response, err: MayflyError, instance?: string): void {
  res
    .status(err.status)
    .type("application/problem+json")
    .send(JSON.stringify(toProblem(err, instance)));
}

/** Maps the errors body-parser and express raise to stable codes. */
function fromExpressError(err: unknown): MayflyError | null {
  const e = err as { type?: string; status?: number; message?: string };
  switch (e?.type) {
    case "entity.too.large":
      return new MayflyError("request.too_large", "the request body exceeds the configured limit");
    case "entity.parse.failed":
      return new MayflyError("request.invalid", "the request body is not valid JSON");
    case "encoding.unsupported":
    case "charset.unsupported":
      return new MayflyError("request.unsupported_media_type", e.message ?? "unsupported encoding");
    default:
      return null;
  }
}

/**
 * The MayflyError an error is answered with. Unknown failures are logged with their stack
 * (`path` is the request's path without its query) but never shown to the client.
 */
export function asMayflyError(err: unknown, log: Logger, path: string): MayflyError {
  if (isMayflyError(err)) return err;
  const mapped = fromExpressError(err);
  if (mapped) return mapped;
  log.error({ err, path }, "unhandled error");
  return new MayflyError("internal.error", "an internal error occurred");
}

/**
 * sendProblem without express, for the hand-written issuance handler (fast-issuance.ts):
 * the same status and body, and the content type express's res.type() + res.send() produce.
 */
export function writeProblem(
  res: ServerResponse,
  err: MayflyError,
  instance: string,
  headers: Record<string, string>,
): void {
  const body = JSON.stringify(toProblem(err, instance));
  // Members added to a fresh object, not spread: on Node 20 a spread followed by members
  // costs ~2 µs.
  const all: Record<string, string | number> = {};
  for (const k of Object.keys(headers)) all[k] = headers[k]!;
  all["content-type"] = "application/problem+json; charset=utf-8";
  all["content-length"] = Buffer.byteLength(body);
  res.writeHead(err.status, all);
  res.end(body);
}

/** The JSON API's last middleware: the refusal recorded (refusals.ts), then the problem answer. */
export function problemHandler(ctx: Pick<ServerContext, "store" | "clock" | "log">): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const me = asMayflyError(err, ctx.log, req.path);
    void recordRefusal(ctx, err, me, { method: req.method, path: req.path }).then(() =>
      sendProblem(res, me, req.originalUrl),
    );
  };
}
