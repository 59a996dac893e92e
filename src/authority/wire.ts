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

const B64URL = /^[A-Za-z0-9_-]*$/;
const ISSUE_KEYS = new Set(["csr", "nonce", "attestation", "lifetimeSeconds"]);

/** b64url's transform for a string it accepts, with the length refinement; else null. */
function canonicalBytes(v: unknown, min: number, max: number): Buffer<ArrayBuffer> | null {
  if (typeof v !== "string" || !B64URL.test(v)) return null;
  const buf = Buffer.from(v, "base64url");
  if (buf.length < min || buf.length > max || buf.toString("base64url") !== v) return null;
  return buf;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * What issueRequestSchema yields for a body it accepts, for the bodies clients send, without
 * zod (~5 µs a parse on the issuance path); null for anything else, which zod then decides,
 * so every refusal is zod's, word for word. It accepts only what the schema accepts and
 * builds the same output: members in the schema's order, `attestation` a fresh object with
 * `format` first and the other members (by reference) in their order
 * (test/authority/wire-fast.test.ts checks it against zod on generated bodies).
 */
export function issueRequestFast(body: unknown): IssueRequest | null {
  if (!isRecord(body)) return null;
  for (const k of Object.keys(body)) if (!ISSUE_KEYS.has(k)) return null;
  const csr = canonicalBytes(body.csr, 1, 16_384);
  const nonce = canonicalBytes(body.nonce, 32, 32);
  const att = body.attestation;
  if (!csr || !nonce || !isRecord(att)) return null;
  const format = att.format;
  if (typeof format !== "string" || format.length < 1 || format.length > 64) return null;
  const attestation: IssueRequest["attestation"] = { format };
  for (const k of Object.keys(att)) {
    // An own "__proto__" (JSON.parse makes one) would set the copy's prototype: zod's case.
    if (k === "__proto__") return null;
    if (k !== "format") attestation[k] = att[k];
  }
  const out: IssueRequest = { csr, nonce, attestation };
  if ("lifetimeSeconds" in body) {
    const life = body.lifetimeSeconds;
    if (typeof life !== "number" || !Number.isSafeInteger(life) || life <= 0) return null;
    out.lifetimeSeconds = life;
  }
  return out;
}

/** parseBody(issueRequestSchema, body), the common case without zod (see issueRequestFast). */
export function parseIssueRequest(body: unknown): IssueRequest {
  return issueRequestFast(body) ?? parseBody(issueRequestSchema, body);
}

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
