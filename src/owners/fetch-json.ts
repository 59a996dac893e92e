import { request as httpsRequest } from "node:https";
import { type ErrorCode, MayflyError } from "../errors/index.js";

/** Fetches one JSON document from the identity provider. */
export type FetchJson = (url: string) => Promise<unknown>;

const MAX_BODY = 1_048_576;

/**
 * GET over https only, no redirects, a size cap and a timeout: discovery and JWKS come
 * from the configured issuer's TLS endpoint or not at all. `ca` replaces the system
 * roots (an IdP behind a private CA); null keeps them. Failures are `errorCode`
 * (default idp.unavailable; the MDM's JWKS uses mdm.unavailable).
 */
export function httpsJsonFetcher(opts: {
  ca: string | null;
  timeoutMs: number;
  errorCode?: ErrorCode;
}): FetchJson {
  const code = opts.errorCode ?? "idp.unavailable";
  return (url) =>
    new Promise((resolve, reject) => {
      const fail = (why: string, cause?: unknown) =>
        reject(new MayflyError(code, `GET ${url}: ${why}`, cause ? { cause } : {}));
      let u: URL;
      try {
        u = new URL(url);
      } catch (e) {
        fail("not a URL", e);
        return;
      }
      if (u.protocol !== "https:") {
        fail("only https URLs are fetched");
        return;
      }
      const req = httpsRequest(
        u,
        {
          method: "GET",
          headers: { accept: "application/json" },
          ...(opts.ca ? { ca: opts.ca } : {}),
          timeout: opts.timeoutMs,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            fail(`HTTP ${res.statusCode}`);
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              req.destroy();
              fail(`the response exceeds ${MAX_BODY} bytes`);
              return;
            }
            chunks.push(c);
          });
          res.on("end", () => {
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
            } catch (e) {
              fail("the response is not JSON", e);
            }
          });
          res.on("error", (e) => fail(e.message, e));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
      req.on("error", (e) => fail(e.message, e));
      req.end();
    });
}
