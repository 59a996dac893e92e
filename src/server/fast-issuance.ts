import type { IncomingMessage, ServerResponse } from "node:http";
import { MayflyError } from "../errors/index.js";
import type { ServerContext } from "./context.js";
import { asMayflyError, writeProblem } from "./problem.js";
import { recordRefusal } from "./refusals.js";
import { agentIdOf, type IssuanceHandlers, issuanceHandlers } from "./routes/issuance.js";

// The two requests every issuance makes (challenge, then certificate) served without
// express: routing, body-parser, type-is and the response helpers cost a visible share of
// the server's CPU per issuance (issue 7). This handler takes only requests whose answer it
// can give exactly as the express app would (test/server/fast-issuance.test.ts drives both
// with the same requests and compares status, headers and bodies); anything else — another
// method, a path express would still match (trailing slash, other case, percent-encoding),
// a content type, charset or content encoding that type-is, content-type or body-parser
// would have to interpret — it leaves untouched for the express app, which answers as before.

/**
 * What express's route matches (/^\/v1\/agents\/([^/]+)\/challenges(?:\/$)?$/i on parseurl's
 * pathname), narrowed: exact case, no trailing slash, an id with no percent-encoding for
 * the router to decode, and none of the characters that send parseurl to url.parse (which
 * cuts the path at "#"), in the path or the query.
 */
const ROUTE =
  /^\/v1\/agents\/([^/?%#\t\n\f\r \xa0\ufeff]+)\/(challenges|certificates)(?:\?[^#\t\n\f\r \xa0\ufeff]*)?$/;
/** The JSON media types requireJson and express.json both accept without parsing parameters. */
const JSON_TYPE = /^application\/json(?:[ \t]*;[ \t]*charset=utf-8)?$/i;
/** body-parser's strict mode: a JSON text must open an object or an array. */
const FIRST_NON_WHITESPACE = /^[ \t\n\r]*([^ \t\n\r]|$)/;

/** What app.ts's first middleware sets on every answer. */
const HEADERS = { "cache-control": "no-store" } as const;
const JSON_CONTENT = "application/json; charset=utf-8";

/** Takes the request and answers it (true), or leaves it to the express app (false). */
export type FastHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function fastIssuance(
  ctx: ServerContext,
  handlers: IssuanceHandlers = issuanceHandlers(ctx),
): FastHandler {
  const limit = ctx.config.server.bodyLimitBytes;
  const log = ctx.log;

  // As the express app's problemHandler: the refusal recorded (refusals.ts), then the answer.
  const fail = (req: IncomingMessage, res: ServerResponse, path: string, err: unknown) => {
    const me = asMayflyError(err, log, path);
    void recordRefusal(ctx, err, me, { method: "POST", path }).then(() =>
      writeProblem(res, me, req.url ?? path, HEADERS),
    );
  };

  const answer = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    rawId: string,
    certificates: boolean,
    body: unknown,
  ) => {
    try {
      // As in the express routes: the id is checked after the body parsed.
      const agentId = agentIdOf(rawId);
      const json = certificates
        ? await handlers.certificate(agentId, body)
        : await handlers.challenge(agentId);
      // A plain literal, not { ...HEADERS, ... }: on Node 20 a spread followed by members
      // costs ~2 µs (the copy's map takes new transitions every time).
      res.writeHead(201, {
        "cache-control": HEADERS["cache-control"],
        "content-type": JSON_CONTENT,
        "content-length": Buffer.byteLength(json),
      });
      res.end(json);
    } catch (err) {
      fail(req, res, path, err);
    }
  };

  return (req, res) => {
    if (req.method !== "POST") return false;
    const url = req.url ?? "";
    const m = ROUTE.exec(url);
    if (!m) return false;
    const h = req.headers;
    const contentType = h["content-type"];
    if (contentType === undefined || !JSON_TYPE.test(contentType) || h["content-encoding"] !== undefined) {
      return false;
    }
    const rawId = m[1]!;
    const certificates = m[2] === "certificates";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);

    // app.ts's request log, only when it would be written (the listener and clock reads
    // cost something on every request otherwise).
    if (log.isLevelEnabled("debug")) {
      const start = process.hrtime.bigint();
      res.on("finish", () => {
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        log.debug({ method: "POST", path, status: res.statusCode, ms }, "request");
      });
    }

    // type-is's hasBody: neither header means no body, and body-parser leaves req.body unset.
    const length = h["content-length"];
    if (length === undefined && h["transfer-encoding"] === undefined) {
      void answer(req, res, path, rawId, certificates, undefined);
      return true;
    }
    // raw-body refuses a declared length over the limit before reading; body-parser then
    // reads the request off before answering, as this does.
    let tooLarge = length !== undefined && Number.parseInt(length, 10) > limit;
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      received += chunk.length;
      if (received > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    const aborted = () => {
      if (done) return;
      done = true;
      // raw-body's "request aborted" is no error the problem handler knows: internal.error,
      // logged as unhandled, as the express path does.
      const err = Object.assign(new Error("request aborted"), { type: "request.aborted", status: 400 });
      fail(req, res, path, err);
    };
    req.on("aborted", aborted);
    req.on("error", aborted);
    req.on("end", () => {
      if (done) return;
      done = true;
      if (tooLarge) {
        fail(req, res, path, { type: "entity.too.large" });
        return;
      }
      let body: unknown;
      try {
        body = parseJson(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
      } catch {
        fail(req, res, path, { type: "entity.parse.failed" });
        return;
      }
      void answer(req, res, path, rawId, certificates, body);
    });
    return true;
  };
}

/** body-parser's json({ strict: true }) over a UTF-8 body (iconv-lite drops a BOM). */
function parseJson(buf: Buffer): unknown {
  let text = buf.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  const c = text[0];
  if (c !== "{" && c !== "[") {
    const first = FIRST_NON_WHITESPACE.exec(text)?.[1];
    if (first !== "{" && first !== "[") throw new MayflyError("request.invalid", "strict violation");
  }
  return JSON.parse(text);
}
