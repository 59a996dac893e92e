import { request } from "node:https";

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** A minimal HTTPS client that trusts exactly `ca` (or nothing but what's given). */
export function https(
  url: string,
  opts: {
    method?: string;
    body?: unknown;
    rawBody?: string;
    contentType?: string;
    ca?: string;
    insecure?: boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const req = request(
      url,
      {
        method: opts.method ?? (payload === undefined ? "GET" : "POST"),
        ca: opts.ca,
        rejectUnauthorized: !opts.insecure,
        headers: {
          ...(payload === undefined ? {} : { "content-type": opts.contentType ?? "application/json" }),
          ...(opts.headers ?? {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
