import { z } from "zod";
import { MayflyError } from "../errors/index.js";

/** base64url without padding, canonical (re-encoding gives the same text), decoded to bytes. */
export const b64url = z
  .string()
  .regex(/^[A-Za-z0-9_-]*$/, "base64url without padding")
  .transform((s, ctx) => {
    const buf = Buffer.from(s, "base64url");
    if (buf.toString("base64url") !== s) {
      ctx.addIssue({ code: "custom", message: "non-canonical base64url" });
      return z.NEVER;
    }
    return buf;
  });

export const issueRequestSchema = z
  .object({
    csr: b64url.refine((b) => b.length > 0 && b.length <= 16_384, "a DER CSR of at most 16 KiB"),
    nonce: b64url.refine((b) => b.length === 32, "32 bytes"),
    attestation: z.looseObject({ format: z.string().min(1).max(64) }),
    lifetimeSeconds: z.number().int().positive().optional(),
  })
  .strict();
export type IssueRequest = z.output<typeof issueRequestSchema>;

/** Parses a request body; the first problem becomes request.invalid naming its field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join(".");
  const all = r.error.issues
    .map((i) => `${i.path.map(String).join(".") || "(body)"}: ${i.message}`)
    .join("; ");
  throw new MayflyError("request.invalid", all, field ? { field } : {});
}

export function b64(buf: Buffer): string {
  return buf.toString("base64url");
}
