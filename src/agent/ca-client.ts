import { Agent, request } from "node:https";
import { createSecureContext } from "node:tls";
import { AGENT_CODES, AgentError, problemError } from "./errors.js";

// The Mayfly API as an agent calls it: JSON over HTTPS, trusting exactly the CA bundle it is
// given (never the system store), binary members base64url without padding. Denials arrive as
// RFC 9457 problem documents and are thrown with their stable `code` (see errors.ts).

export interface CaClientOptions {
  /** The CA's base URL, e.g. https://mayfly.example:8443 (no trailing path). */
  readonly url: string;
  /** PEM of the roots (and intermediates) to trust for the CA's TLS certificate. */
  readonly ca: string | Buffer;
  /** Per request, in ms; default 30 s. */
  readonly timeoutMs?: number;
}

export interface ActivationRequest {
  /** TPM2B_PUBLIC of the EK, with its size, as the TPM marshals it. */
  readonly ekPublic: Buffer;
  /** DER EK certificate, exactly as read from NV (the CA handles vendor padding). */
  readonly ekCertificate?: Buffer | null;
  /** Untrusted intermediates that help the CA build a path to a manufacturer root. */
  readonly ekChain?: readonly Buffer[];
  /** TPM2B_PUBLIC of the AK. */
  readonly akPublic: Buffer;
}

export interface ActivationChallenge {
  readonly activationId: string;
  /** TPM2B_ID_OBJECT for TPM2_ActivateCredential. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET for TPM2_ActivateCredential. */
  readonly encryptedSecret: Buffer;
  readonly expiresAt: string;
}

export interface ActivationResult {
  readonly deviceId: string;
  /** The AK Name the CA computed. */
  readonly akName: Buffer;
}

export interface Challenge {
  readonly nonce: Buffer;
  readonly expiresAt: string;
}

export interface CertificateRequest {
  /** DER PKCS#10. */
  readonly csr: Buffer;
  readonly nonce: Buffer;
  /** The format's members, binary ones already base64url text (see the evidence formats). */
  readonly attestation: Readonly<Record<string, unknown>> & { readonly format: string };
  readonly lifetimeSeconds?: number;
}

export interface IssuedCertificate {
  readonly certificate: string;
  readonly chain: string[];
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly renewAfter: string;
  /**
   * The bundle PEM the issuance answer carries. Unsigned: the agent does not trust it or write
   * it anywhere; trust updates come from signedBundle() through verifyBundleUpdate.
   */
  readonly bundle: string;
}

export interface Bundle {
  readonly trustDomain: string;
  readonly roots: Array<{ id: string; slot: string; pem: string }>;
  readonly intermediates: Array<{ id: string; slot: string; pem: string }>;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;
const AGENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ACTIVATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

const b64 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url");

function bad(detail: string, status: number | null = null, cause?: unknown): AgentError {
  return new AgentError(AGENT_CODES.badResponse, detail, {
    status,
    ...(cause === undefined ? {} : { cause }),
  });
}

type Json = Record<string, unknown>;

function str(o: Json, name: string): string {
  const v = o[name];
  if (typeof v !== "string" || v.length === 0) throw bad(`the answer has no string member "${name}"`);
  return v;
}

function bytes(o: Json, name: string): Buffer {
  const v = str(o, name);
  if (!/^[A-Za-z0-9_-]+$/.test(v)) throw bad(`"${name}" is not base64url without padding`);
  return Buffer.from(v, "base64url");
}

function strings(o: Json, name: string): string[] {
  const v = o[name];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw bad(`"${name}" is not a list of strings`);
  return v as string[];
}

function isProblem(v: unknown): v is { code: string; detail: string; field?: string; instance?: string } {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Json;
  return (
    typeof p.code === "string" &&
    p.code.length > 0 &&
    typeof p.detail === "string" &&
    (p.field === undefined || typeof p.field === "string") &&
    (p.instance === undefined || typeof p.instance === "string")
  );
}

const ACCEPT = "application/json, application/problem+json";

/** A small client for the Mayfly v1 API. `close()` drops its kept-alive connections. */
export class CaClient {
  readonly url: string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #hostname: string;
  readonly #port: number;

  constructor(opts: CaClientOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== "https:") throw new TypeError(`the CA URL must be https, not ${u.protocol}`);
    this.url = u.origin;
    // Once per client, not per request: node would otherwise take the URL apart on every
    // call, and build a TLS context from the PEM (parse it, a fresh X509 store) on every new
    // connection, ~0.8 ms of CPU each on OpenSSL 3.
    this.#hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = u.port === "" ? 443 : Number(u.port);
    this.#agent = new Agent({
      keepAlive: true,
      secureContext: createSecureContext({ ca: opts.ca, minVersion: "TLSv1.2" }),
    });
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  close(): void {
    this.#agent.destroy();
  }

  /** One JSON call; 2xx answers are returned parsed, problem documents thrown (see errors.ts). */
  request(method: "GET" | "POST", path: string, body?: unknown): Promise<Json> {
    // A string body goes out in one write with the header block (a Buffer would be a second).
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> =
      payload === undefined
        ? { accept: ACCEPT }
        : {
            accept: ACCEPT,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          };
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: "https:",
          hostname: this.#hostname,
          port: this.#port,
          path,
          method,
          agent: this.#agent,
          timeout: this.#timeoutMs,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              reject(bad(`the answer exceeds ${MAX_RESPONSE_BYTES} bytes`, res.statusCode ?? null));
              return;
            }
            chunks.push(c);
          });
          res.on("error", (e) => reject(new AgentError(AGENT_CODES.unreachable, e.message, { cause: e })));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            const type = String(res.headers["content-type"] ?? "")
              .split(";")[0]!
              .trim()
              .toLowerCase();
            let json: unknown;
            try {
              const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
              json = JSON.parse(text);
            } catch (e) {
              reject(bad(`${method} ${path}: HTTP ${status} with a body that is not JSON`, status, e));
              return;
            }
            if (status >= 200 && status < 300) {
              if (
                type !== "application/json" ||
                typeof json !== "object" ||
                json === null ||
                Array.isArray(json)
              ) {
                reject(bad(`${method} ${path}: HTTP ${status} without a JSON object`, status));
              } else resolve(json as Json);
            } else if (type === "application/problem+json" && isProblem(json)) {
              reject(problemError(json, status));
            } else {
              reject(bad(`${method} ${path}: HTTP ${status} without a problem document`, status));
            }
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on("error", (e) =>
        reject(new AgentError(AGENT_CODES.unreachable, `${method} ${path}: ${e.message}`, { cause: e })),
      );
      req.end(payload);
    });
  }

  /** Step 1 of TPM device activation. */
  async startActivation(r: ActivationRequest): Promise<ActivationChallenge> {
    const body: Json = { ekPublic: b64(r.ekPublic), akPublic: b64(r.akPublic) };
    if (r.ekCertificate) body.ekCertificate = b64(r.ekCertificate);
    if (r.ekChain && r.ekChain.length > 0) body.ekChain = r.ekChain.map(b64);
    const o = await this.request("POST", "/v1/devices/activations", body);
    const activationId = str(o, "activationId");
    if (!ACTIVATION_ID.test(activationId)) throw bad("activationId is not a plain identifier");
    return {
      activationId,
      credentialBlob: bytes(o, "credentialBlob"),
      encryptedSecret: bytes(o, "encryptedSecret"),
      expiresAt: str(o, "expiresAt"),
    };
  }

  /** Step 2: the secret the TPM released. One attempt. */
  async completeActivation(activationId: string, secret: Buffer): Promise<ActivationResult> {
    if (!ACTIVATION_ID.test(activationId)) throw new TypeError("activationId is not a plain identifier");
    const o = await this.request("POST", `/v1/devices/activations/${activationId}`, { secret: b64(secret) });
    return { deviceId: str(o, "deviceId"), akName: bytes(o, "akName") };
  }

  async challenge(agentId: string): Promise<Challenge> {
    const o = await this.request("POST", `/v1/agents/${checkAgentId(agentId)}/challenges`, {});
    const nonce = bytes(o, "nonce");
    if (nonce.length !== 32) throw bad(`the nonce has ${nonce.length} bytes, not 32`);
    return { nonce, expiresAt: str(o, "expiresAt") };
  }

  async requestCertificate(agentId: string, r: CertificateRequest): Promise<IssuedCertificate> {
    const body: Json = { csr: b64(r.csr), nonce: b64(r.nonce), attestation: r.attestation };
    if (r.lifetimeSeconds !== undefined) body.lifetimeSeconds = r.lifetimeSeconds;
    const o = await this.request("POST", `/v1/agents/${checkAgentId(agentId)}/certificates`, body);
    return {
      certificate: str(o, "certificate"),
      chain: strings(o, "chain"),
      serial: str(o, "serial"),
      notBefore: str(o, "notBefore"),
      notAfter: str(o, "notAfter"),
      renewAfter: str(o, "renewAfter"),
      bundle: str(o, "bundle"),
    };
  }

  /**
   * GET /v1/bundle as the CA sent it (JSON, signatures kept), for verifyBundleUpdate
   * (bundle-verify.ts): nothing in it is trusted until that accepts it.
   */
  async signedBundle(): Promise<Record<string, unknown>> {
    return this.request("GET", "/v1/bundle");
  }

  /** GET /v1/bundle, parsed but NOT verified (signatures dropped): use signedBundle() for trust. */
  async bundle(): Promise<Bundle> {
    const o = await this.request("GET", "/v1/bundle");
    const entries = (name: string) => {
      const v = o[name];
      if (!Array.isArray(v)) throw bad(`"${name}" is not a list`);
      return v.map((e) => {
        if (typeof e !== "object" || e === null) throw bad(`"${name}" holds a non-object`);
        return { id: str(e as Json, "id"), slot: str(e as Json, "slot"), pem: str(e as Json, "pem") };
      });
    };
    return {
      trustDomain: str(o, "trustDomain"),
      roots: entries("roots"),
      intermediates: entries("intermediates"),
    };
  }
}

function checkAgentId(agentId: string): string {
  if (!AGENT_ID.test(agentId)) throw new TypeError("an agent id is 1-64 characters of [A-Za-z0-9_-]");
  return agentId;
}
