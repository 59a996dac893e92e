import { createHash } from "node:crypto";
import { z } from "zod";
import { MayflyError } from "../errors/index.js";
import { EK_CERT_MAX_BYTES, parseCertificate } from "./ek-certificate.js";

// What a device-management event says (issue 8), parsed strictly from the claims of a
// verified JWS: an unknown claim or event type is refused rather than ignored, so a typo
// in an MDM script ("complaint") fails loudly instead of changing nothing. README "Device
// management" documents the claims.

export const MDM_EVENT_TYPES = ["device.enrolled", "device.compliance_changed", "device.unenrolled"] as const;
export type MdmEventType = (typeof MDM_EVENT_TYPES)[number];

interface EventBase {
  type: MdmEventType;
  jti: string;
  /** The MDM's id of the device: how its events find it. */
  mdmId: string;
  /** When it happened at the MDM (occurredAt, else iat), epoch ms: events apply in this order. */
  occurredAt: number;
  /** Why (non-compliance reason, unenrolment reason); null if not said. */
  reason: string | null;
}
export interface EnrolledEvent extends EventBase {
  type: "device.enrolled";
  serial: string | null;
  /** SHA-256 of the EK SubjectPublicKeyInfo DER, given or computed from ekCertificate; null: no TPM named. */
  ekPubHash: Buffer | null;
  /** Undefined: not said (kept as it is); null: nobody. */
  assignedUser: string | null | undefined;
  platform: string | null;
  compliant: boolean;
}
export interface ComplianceChangedEvent extends EventBase {
  type: "device.compliance_changed";
  compliant: boolean;
}
export interface UnenrolledEvent extends EventBase {
  type: "device.unenrolled";
}
export type MdmEvent = EnrolledEvent | ComplianceChangedEvent | UnenrolledEvent;

const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !/\p{Cc}/u.test(s), "no control characters");
const b64url = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, "base64url without padding")
  .transform((s) => Buffer.from(s, "base64url"));
const rfc3339 = z
  .string()
  .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/, "an RFC 3339 date-time")
  .transform((s, ctx) => {
    const t = Date.parse(s);
    if (Number.isNaN(t)) {
      ctx.addIssue({ code: "custom", message: "not a valid date-time" });
      return z.NEVER;
    }
    return t;
  });

// Registered JWT claims the verifier has checked (or that say nothing here).
const registered = {
  jti: z.string(),
  iat: z.number(),
  exp: z.number().optional(),
  nbf: z.number().optional(),
  iss: z.string().optional(),
  sub: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
};
const common = {
  ...registered,
  mdmId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces"),
  occurredAt: rfc3339.optional(),
  reason: text(512).nullable().optional(),
};

const schema = z.discriminatedUnion("type", [
  z
    .object({
      ...common,
      type: z.literal("device.enrolled"),
      serial: text(128).nullable().optional(),
      ekPubHash: z
        .string()
        .regex(/^[0-9a-fA-F]{64}$/, "64 hex digits: SHA-256 of the EK SubjectPublicKeyInfo DER")
        .optional(),
      ekCertificate: b64url
        .refine((b) => b.length > 0 && b.length <= EK_CERT_MAX_BYTES, "a DER certificate")
        .optional(),
      assignedUser: text(256).nullable().optional(),
      platform: text(128).nullable().optional(),
      compliant: z.boolean(),
    })
    .strict()
    .refine((e) => e.ekPubHash === undefined || e.ekCertificate === undefined, {
      message: "give ekPubHash or ekCertificate, not both",
      path: ["ekCertificate"],
    }),
  z.object({ ...common, type: z.literal("device.compliance_changed"), compliant: z.boolean() }).strict(),
  z.object({ ...common, type: z.literal("device.unenrolled") }).strict(),
]);

/** SHA-256 of the SubjectPublicKeyInfo DER of the key an EK certificate certifies (NV padding allowed). */
export function ekHashFromCertificate(der: Buffer): Buffer {
  const fail = (detail: string, cause?: unknown) =>
    new MayflyError("mdm.event_invalid", `ekCertificate: ${detail}`, {
      field: "ekCertificate",
      ...(cause === undefined ? {} : { cause }),
    });
  const cert = parseCertificate(der, fail);
  if (typeof cert.publicKey === "string") throw fail(cert.publicKey);
  return createHash("sha256")
    .update(cert.publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

/**
 * The event in verified claims; mdm.event_invalid naming the first bad claim. occurredAt
 * defaults to iat (the MDM signed the event as it happened).
 */
export function parseMdmEvent(claims: Record<string, unknown>, issuedAt: number): MdmEvent {
  const r = schema.safeParse(claims);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.map(String).join(".");
    const all = r.error.issues
      .map((i) => `${i.path.map(String).join(".") || "(claims)"}: ${i.message}`)
      .join("; ");
    throw new MayflyError("mdm.event_invalid", all, field ? { field } : {});
  }
  const c = r.data;
  const base = {
    jti: c.jti,
    mdmId: c.mdmId,
    occurredAt: c.occurredAt ?? issuedAt,
    reason: c.reason ?? null,
  };
  if (c.type === "device.enrolled") {
    let ekPubHash: Buffer | null = null;
    if (c.ekPubHash !== undefined) ekPubHash = Buffer.from(c.ekPubHash, "hex");
    else if (c.ekCertificate !== undefined) ekPubHash = ekHashFromCertificate(c.ekCertificate);
    return {
      ...base,
      type: c.type,
      serial: c.serial ?? null,
      ekPubHash,
      assignedUser: c.assignedUser,
      platform: c.platform ?? null,
      compliant: c.compliant,
    };
  }
  if (c.type === "device.compliance_changed") return { ...base, type: c.type, compliant: c.compliant };
  return { ...base, type: c.type };
}
