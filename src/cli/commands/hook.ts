import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { CompactSign, exportJWK, type JWK } from "jose";
import type { MdmAlgorithm } from "../../config/schema.js";
import { parseMdmEvent } from "../../devices/mdm-events.js";
import { MayflyError } from "../../errors/index.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";

// `mayfly hook sign`: what an MDM-side script calls to turn an event into the compact JWS
// POST /v1/hooks/mdm takes (README "Device management"), and `mayfly hook jwks`, the
// public half to configure as mdm.jwksFile or to publish at mdm.jwksUrl. Neither needs
// the CA's data directory: they run where the MDM's signing key lives.

interface SigningKey {
  key: KeyObject;
  alg: MdmAlgorithm;
  kid: string | null;
}

/** A private key from a JWK (JSON) or PEM file; its type decides the algorithm. */
async function readSigningKey(path: string): Promise<SigningKey> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new MayflyError("request.invalid", `cannot read the key file ${path}`, { cause: e });
  }
  let key: KeyObject;
  let kid: string | null = null;
  try {
    if (text.trimStart().startsWith("{")) {
      const jwk = JSON.parse(text) as JWK;
      kid = typeof jwk.kid === "string" ? jwk.kid : null;
      key = createPrivateKey({ key: jwk as JsonWebKey, format: "jwk" });
    } else {
      key = createPrivateKey(text);
    }
  } catch (e) {
    throw new MayflyError(
      "request.invalid",
      `${path} is not a private key (a JWK with "d", or PEM: PKCS#8, SEC1 or PKCS#1)`,
      { cause: e },
    );
  }
  const type = key.asymmetricKeyType;
  if (type === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1")
    return { key, alg: "ES256", kid };
  if (type === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048)
    return { key, alg: "RS256", kid };
  if (type === "ed25519") return { key, alg: "EdDSA", kid };
  throw new MayflyError(
    "request.invalid",
    `${path}: the key must be EC P-256 (ES256), RSA of 2048 bits or more (RS256) or Ed25519 (EdDSA)`,
  );
}

async function readEvent(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = path === "-" ? await readStdin() : await readFile(path, "utf8");
  } catch (e) {
    throw new MayflyError("request.invalid", `cannot read the event ${path}`, { cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MayflyError("request.invalid", "the event is not JSON", { cause: e });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new MayflyError("request.invalid", "the event is not a JSON object");
  }
  return v as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The event claims with jti and iat filled in when absent, checked as the CA will check them. */
export function completeEvent(
  event: Record<string, unknown>,
  now: number,
  jti: string,
): Record<string, unknown> {
  const claims = { ...event, jti: event.jti ?? jti, iat: event.iat ?? Math.floor(now / 1000) };
  parseMdmEvent(claims, (claims.iat as number) * 1000);
  return claims;
}

export async function signEvent(
  event: Record<string, unknown>,
  k: SigningKey,
  opts: { kid?: string | null; now?: number } = {},
): Promise<string> {
  const claims = completeEvent(
    event,
    opts.now ?? systemClock.now(),
    systemRandom.bytes(16).toString("base64url"),
  );
  const kid = opts.kid ?? k.kid;
  return new CompactSign(Buffer.from(JSON.stringify(claims), "utf8"))
    .setProtectedHeader({ alg: k.alg, typ: "JWT", ...(kid ? { kid } : {}) })
    .sign(k.key);
}

export function registerHook(program: Command): void {
  const hook = program
    .command("hook")
    .description("sign device-management events for POST /v1/hooks/mdm, and print the public JWKS");
  hook
    .command("sign")
    .description(
      "sign an MDM event (JSON: type, mdmId, ...) as the compact JWS POST /v1/hooks/mdm takes; jti and iat are added when absent; prints the JWS",
    )
    .requiredOption(
      "--key <file>",
      "the private signing key: a JWK (JSON) or PEM file (EC P-256, RSA, Ed25519)",
    )
    .option("--event <file>", "the event JSON; - reads standard input", "-")
    .option("--kid <kid>", "key id in the JWS header (default: the JWK's kid, if any)")
    .option("--json", "print { ok, jws, claims } as JSON")
    .addHelpText(
      "after",
      `
Example:
  echo '{"type":"device.compliance_changed","mdmId":"C02XK1","compliant":false,"reason":"FileVault off"}' |
    mayfly hook sign --key mdm-signing.pem --kid mdm-2024 |
    curl --fail-with-body --cacert root.pem -H 'content-type: application/jose' --data-binary @- \\
      https://mayfly.example:8443/v1/hooks/mdm
`,
    )
    .action(async (opts: { key: string; event: string; kid?: string; json?: boolean }) => {
      const k = await readSigningKey(opts.key);
      const event = await readEvent(opts.event);
      const jws = await signEvent(event, k, { kid: opts.kid ?? null });
      if (opts.json) {
        const claims = JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString("utf8")) as unknown;
        printJson({ ok: true, jws, claims });
      } else process.stdout.write(`${jws}\n`);
      process.exitCode = EXIT.ok;
    });
  hook
    .command("jwks")
    .description("print the public JWKS of a signing key, for mdm.jwksFile or to publish at mdm.jwksUrl")
    .requiredOption("--key <file>", "the private signing key: a JWK (JSON) or PEM file")
    .option("--kid <kid>", "key id to publish (default: the JWK's kid, if any)")
    .action(async (opts: { key: string; kid?: string }) => {
      const k = await readSigningKey(opts.key);
      const pub = await exportJWK(createPublicKey(k.key));
      const kid = opts.kid ?? k.kid;
      printJson({ keys: [{ ...pub, ...(kid ? { kid } : {}), alg: k.alg, use: "sig" }] });
      process.exitCode = EXIT.ok;
    });
}
