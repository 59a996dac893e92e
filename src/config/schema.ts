import { z } from "zod";
import { assuranceOidProblem, OID_MAYFLY_ASSURANCE } from "../x509/oids.js";
import { duration, formatDuration } from "./duration.js";

// The one configuration schema. Every key has a default, so an empty file is a
// valid development configuration; ca-config/mayfly.full.yaml lists every key with
// its default and is kept honest by test/config/full-example.test.ts.
// Secrets are never inline: a SecretRef names a file or an environment variable.

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * How far apart two replicas' clocks may be. The redeemed-challenge rows this build no
 * longer writes were kept this long past the nonce's expiry for the same reason.
 */
export const CLOCK_SKEW_ALLOWANCE = 5 * MINUTE;

/**
 * The shortest store.certificateRetention the config accepts for a challenge TTL.
 *
 * A challenge is one-time because the certificate row that redeems it carries the nonce
 * under a unique constraint (src/authority/issue.ts); once the tidy job deletes that row,
 * only the nonce's own MAC'd expiry refuses a replay. So the row must outlive the last
 * moment any replica still accepts the nonce. With replica clocks at most s apart
 * (s = CLOCK_SKEW_ALLOWANCE), replica A mints the nonce, B redeems it, C tidies, D sees
 * the replay:
 *   - B accepted it at tB < expiresAt, and wrote notAfter >= tB: the policy grants at
 *     least 30 s (policy/issuance.ts), so notAfter is never before the issuance time;
 *   - expiresAt = (A's clock at minting) + TTL <= tB + s + TTL: minting came first, and
 *     A's clock is at most s ahead of B's;
 *   - C deletes the row only when its clock passes notAfter + retention >= tB + retention,
 *     so D's clock then reads more than tB + retention - s;
 *   - D refuses by expiry once its clock reaches expiresAt <= tB + TTL + s.
 * Hence retention >= TTL + 2s keeps every replay refused, whatever the certificate's
 * lifetime. (The challenge rows needed only s past expiresAt: they stored expiresAt, so
 * A's clock did not enter; counting from notAfter brings in A's skew as well.)
 */
export function minCertificateRetention(challengeTtl: number): number {
  return challengeTtl + 2 * CLOCK_SKEW_ALLOWANCE;
}

export const secretRef = z.union(
  [
    z.object({ file: z.string().min(1) }).strict(),
    z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name") }).strict(),
  ],
  { error: "a secret reference, { file: PATH } or { env: NAME }; secrets are never written inline" },
);

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):\d{1,5}$/, "host:port, e.g. 127.0.0.1:8443");

const curve = z.enum(["P-256", "P-384"]);

const server = z
  .object({
    listen: listen.default("127.0.0.1:8443"),
    bodyLimitBytes: z.number().int().min(1024).max(1_048_576).default(65_536),
    tlsDnsNames: z.array(z.string().min(1)).default(["localhost"]),
    tlsIpAddresses: z.array(z.string().min(1)).default(["127.0.0.1", "::1"]),
    tlsCertLifetime: duration({ min: MINUTE, max: 90 * DAY }).prefault("7d"),
  })
  .strict();

const store = z
  .object({
    url: z.string().nullable().default(null),
    durability: z.enum(["full", "normal"]).default("full"),
    certificateRetention: duration({ min: MINUTE }).prefault("7d"),
  })
  .strict();

const pkcs11 = z
  .object({
    module: z.string().min(1),
    // PKCS#11 token labels are 32 bytes, blank-padded.
    tokenLabel: z
      .string()
      .min(1)
      .refine((l) => Buffer.byteLength(l) <= 32 && l === l.trimEnd(), "at most 32 bytes, no trailing blanks"),
    pin: secretRef,
  })
  .strict();

const keys = z
  .object({
    kind: z.enum(["file", "pkcs11"]).default("file"),
    dir: z.string().nullable().default(null),
    passphrase: secretRef.nullable().default(null),
    pkcs11: pkcs11.nullable().default(null),
  })
  .strict()
  .superRefine((k, ctx) => {
    if (k.kind === "pkcs11" && k.pkcs11 === null) {
      ctx.addIssue({
        code: "custom",
        path: ["pkcs11"],
        message: 'keys.kind "pkcs11" needs keys.pkcs11: { module, tokenLabel, pin }',
      });
    }
  });

const caName = z.object({ commonName: z.string().min(1), organization: z.string().min(1) }).strict();

const ca = z
  .object({
    trustDomain: z
      .string()
      .regex(
        /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/,
        "a SPIFFE trust domain: lowercase letters, digits, dots, dashes",
      )
      .default("mayfly.internal"),
    createDevRoot: z.boolean().default(true),
    curve: curve.default("P-256"),
    root: caName.default({ commonName: "Mayfly Development Root CA", organization: "Mayfly (development)" }),
    rootLifetime: duration({ min: DAY, max: 30 * 365 * DAY }).prefault("3650d"),
    intermediate: caName.default({
      commonName: "Mayfly Development Intermediate CA",
      organization: "Mayfly (development)",
    }),
    intermediateLifetime: duration({ min: DAY, max: 5 * 365 * DAY }).prefault("365d"),
    assuranceExtensionOid: z
      .string()
      .superRefine((oid, ctx) => {
        const problem = assuranceOidProblem(oid);
        if (problem) ctx.addIssue({ code: "custom", message: `"${oid}" ${problem}` });
      })
      .default(OID_MAYFLY_ASSURANCE),
  })
  .strict();

const issuance = z
  .object({
    challengeTtl: duration({ min: 5_000, max: 10 * MINUTE }).prefault("60s"),
    backdate: duration({ max: 5 * MINUTE }).prefault("30s"),
  })
  .strict();

// CA rotation (issue 9). The schedule derives from these and from ca.intermediateLifetime,
// the profiles' maxLifetime and issuance.backdate (src/authority/rotation-timing.ts).
const rotation = z
  .object({
    auto: z.boolean().default(true),
    checkInterval: duration({ min: 1_000, max: 60 * MINUTE }).prefault("1m"),
    propagation: duration({ min: 1_000, max: 90 * DAY }).prefault("24h"),
    intermediateActiveFor: duration({ min: 1_000 }).nullable().default(null),
  })
  .strict();

export const attestationFormat = z.string().regex(/^[a-z0-9-]+$/);

// Expected PCR values a tpm-quote must show. Kept in step with src/evidence/pcr-policy.ts
// (config must not import evidence), which re-checks any policy when it is used.
const pcrPolicy = z
  .object({
    bank: z.enum(["sha256", "sha384", "sha512"]).default("sha256"),
    pcrs: z.record(
      z.string().regex(/^(?:[0-9]|1[0-9]|2[0-3])$/, "a PCR index, 0-23"),
      z.string().regex(/^[0-9a-fA-F]+$/, "a hex digest"),
    ),
  })
  .strict()
  .refine((p) => Object.keys(p.pcrs).length > 0, { message: "at least one PCR", path: ["pcrs"] })
  .refine(
    (p) => Object.values(p.pcrs).every((v) => v.length === { sha256: 64, sha384: 96, sha512: 128 }[p.bank]),
    { message: "each value is one digest of the bank's hash, in hex", path: ["pcrs"] },
  );
const profile = z
  .object({
    lifetime: duration({ min: 30_000, max: DAY }).prefault("5m"),
    maxLifetime: duration({ min: 30_000, max: DAY }).prefault("15m"),
    formats: z.array(attestationFormat).min(1).default(["tpm-certify", "tpm-quote"]),
    keyResidency: z
      .array(z.enum(["tpm", "bound"]))
      .min(1)
      .default(["tpm", "bound"]),
    agentMaxLifetime: duration({ min: MINUTE }).prefault("90d"),
    pcrPolicy: pcrPolicy.nullable().default(null),
    requireAssignedDevice: z.boolean().default(false),
    // Device posture (issue 8), checked at every issuance in the recording transaction.
    requireManaged: z.boolean().default(false),
    requireCompliant: z.boolean().default(false),
    requireAssignedOwner: z.boolean().default(false),
    maxPostureAge: duration({ min: MINUTE }).nullable().default(null),
  })
  .strict()
  .refine((p) => p.lifetime <= p.maxLifetime, {
    message: "lifetime must not exceed maxLifetime",
    path: ["lifetime"],
  });

// Asymmetric JWS algorithms only: "none" and HS* (where a verifier could be tricked
// into using the IdP's public key as an HMAC secret) are not in the vocabulary at all.
export const idTokenAlgorithm = z.enum([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
]);

// A plain-HTTP issuer would let anyone on the path swap the signing keys; TLS is
// required, with owners.oidc.caFile for an IdP behind a private CA.
const issuerUrl = z.string().superRefine((text, ctx) => {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a URL` });
    return;
  }
  if (u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "the issuer must be an https URL" });
  if (u.search || u.hash || u.username || u.password) {
    ctx.addIssue({ code: "custom", message: "the issuer has no query, fragment or credentials" });
  }
});

const oidc = z
  .object({
    issuer: issuerUrl.nullable().default(null),
    clientIds: z.array(z.string().min(1)).default([]),
    algorithms: z.array(idTokenAlgorithm).min(1).default(["RS256", "PS256", "ES256", "EdDSA"]),
    clockSkew: duration({ max: 5 * MINUTE }).prefault("30s"),
    caFile: z.string().min(1).nullable().default(null),
    jwksCacheTtl: duration({ min: MINUTE, max: DAY }).prefault("1h"),
    jwksRefetchCooldown: duration({ min: 1_000, max: 10 * MINUTE }).prefault("30s"),
    requestTimeout: duration({ min: 500, max: MINUTE }).prefault("5s"),
  })
  .strict()
  .refine((o) => o.issuer === null || o.clientIds.length > 0, {
    message: "clientIds must name at least one client when an issuer is set",
    path: ["clientIds"],
  });

const claimName = z
  .string()
  .regex(/^[A-Za-z0-9_:\-/]+(\.[A-Za-z0-9_:\-/]+)*$/, "a claim name or dotted path");
const claims = z
  .object({
    subject: claimName.default("sub"),
    email: claimName.default("email"),
    name: claimName.default("name"),
    groups: claimName.default("groups"),
  })
  .strict();

const scim = z
  .object({
    token: secretRef.nullable().default(null),
    subjectAttribute: z.enum(["externalId", "userName"]).default("externalId"),
  })
  .strict();

const owners = z
  .object({
    maxAffirmationAge: duration({ min: MINUTE }).prefault("30d"),
    authMaxAge: duration({ min: MINUTE, max: DAY }).prefault("10m"),
    createOnLogin: z.boolean().default(true),
    moverAttributes: z.array(z.enum(["manager", "department"])).default(["manager", "department"]),
    adminGroup: z.string().min(1).nullable().default(null),
    oidc: oidc.prefault({}),
    claims: claims.prefault({}),
    scim: scim.prefault({}),
  })
  .strict()
  .refine((o) => o.scim.token === null || o.oidc.issuer !== null, {
    message: "SCIM provisioning needs owners.oidc.issuer: owners are identified by issuer and subject",
    path: ["scim", "token"],
  });

const agents = z
  .object({
    dormantAfter: duration({ min: MINUTE }).prefault("24h"),
    retireAfter: duration({ min: MINUTE }).prefault("30d"),
    sweepInterval: duration({ min: 1_000, max: DAY }).prefault("5m"),
    transferTtl: duration({ min: MINUTE, max: 90 * DAY }).prefault("7d"),
  })
  .strict();

const devices = z
  .object({
    ekTrustDir: z.string().min(1).default("ca-config/trust/tpm"),
    activationTtl: duration({ min: 30_000, max: 30 * MINUTE }).prefault("5m"),
    activationRateLimit: z.number().int().min(1).max(1000).default(5),
    activationRateWindow: duration({ min: MINUTE, max: DAY }).prefault("1h"),
  })
  .strict();

// Device-management hooks (issue 8): POST /v1/hooks/mdm takes compact JWS events signed
// with a key from the MDM's JWKS, read from a file or fetched over https (no plain HTTP:
// anyone on the path could swap the keys). Asymmetric algorithms only.
export const mdmAlgorithm = z.enum(["ES256", "RS256", "EdDSA"]);
const jwksUrl = z.string().superRefine((text, ctx) => {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a URL` });
    return;
  }
  if (u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "the JWKS URL must be https" });
  if (u.username || u.password) ctx.addIssue({ code: "custom", message: "no credentials in the URL" });
});
const mdm = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "lowercase letters, digits, . _ -")
      .default("mdm"),
    jwksFile: z.string().min(1).nullable().default(null),
    jwksUrl: jwksUrl.nullable().default(null),
    caFile: z.string().min(1).nullable().default(null),
    algorithms: z.array(mdmAlgorithm).min(1).default(["ES256", "RS256", "EdDSA"]),
    issuer: z.string().min(1).nullable().default(null),
    audience: z.string().min(1).nullable().default(null),
    iatMaxAge: duration({ min: 10_000, max: DAY }).prefault("5m"),
    clockSkew: duration({ max: 5 * MINUTE }).prefault("30s"),
    bodyLimitBytes: z.number().int().min(1024).max(1_048_576).default(32_768),
    jwksCacheTtl: duration({ min: MINUTE, max: DAY }).prefault("1h"),
    jwksRefetchCooldown: duration({ min: 1_000, max: 10 * MINUTE }).prefault("30s"),
    requestTimeout: duration({ min: 500, max: MINUTE }).prefault("5s"),
  })
  .strict()
  .refine((m) => m.jwksFile === null || m.jwksUrl === null, {
    message: "give jwksFile or jwksUrl, not both",
    path: ["jwksUrl"],
  })
  .refine((m) => m.caFile === null || m.jwksUrl !== null, {
    message: "caFile is for the TLS of jwksUrl",
    path: ["caFile"],
  });

const log = z
  .object({
    level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();

export const configSchema = z
  .object({
    dataDir: z.string().min(1).default(".mayfly"),
    server: server.prefault({}),
    store: store.prefault({}),
    keys: keys.prefault({}),
    ca: ca.prefault({}),
    issuance: issuance.prefault({}),
    rotation: rotation.prefault({}),
    profiles: z
      .record(z.string().regex(/^[a-z0-9-]+$/), profile)
      .default({ default: profile.parse({}) })
      .refine((p) => "default" in p, { message: 'a profile named "default" is required' }),
    owners: owners.prefault({}),
    agents: agents.prefault({}),
    devices: devices.prefault({}),
    mdm: mdm.prefault({}),
    log: log.prefault({}),
  })
  .strict()
  .superRefine(
    (c, ctx) => {
      const min = minCertificateRetention(c.issuance.challengeTtl);
      if (c.store.certificateRetention < min) {
        ctx.addIssue({
          code: "custom",
          path: ["store", "certificateRetention"],
          message:
            `must be at least issuance.challengeTtl (${formatDuration(c.issuance.challengeTtl)}) plus ` +
            `${formatDuration(2 * CLOCK_SKEW_ALLOWANCE)} for replica clock skew, i.e. ` +
            `${formatDuration(min)}: a certificate row is what refuses a second use of the ` +
            "challenge that yielded it, until the challenge has expired",
        });
      }
    },
    // Checked whenever both durations parsed, so it is reported with the file's other errors.
    { when: (p) => retentionInputs(p.value) },
  );

function retentionInputs(v: unknown): boolean {
  const c = v as { store?: { certificateRetention?: unknown }; issuance?: { challengeTtl?: unknown } } | null;
  return typeof c?.store?.certificateRetention === "number" && typeof c?.issuance?.challengeTtl === "number";
}

/** The raw shape, as written in YAML (durations as text). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed shape: durations in milliseconds, every default filled in. */
export type Config = z.output<typeof configSchema>;
export type Profile = z.output<typeof profile>;
export type RotationConfig = z.output<typeof rotation>;
export type SecretRef = z.output<typeof secretRef>;
export type IdTokenAlgorithm = z.output<typeof idTokenAlgorithm>;
export type MdmConfig = z.output<typeof mdm>;
export type MdmAlgorithm = z.output<typeof mdmAlgorithm>;
