import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, request, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { decodeJwt, exportJWK, generateKeyPair, type JWK, type JWTPayload } from "jose";
import Provider from "oidc-provider";
import { loopbackTls } from "./tls.js";

// A real OpenID Provider (the `oidc-provider` package) on loopback over TLS, issuing
// real signed ID tokens through the real authorization-code flow. Its interaction step
// (where a person would type a password) is answered programmatically: the test says
// who logs in and when (`ts`, which becomes auth_time), and the provider does the rest.

export const MAYFLY_CLIENT = "mayfly-cli";
export const OTHER_CLIENT = "other-app";
const REDIRECT_URI = "https://127.0.0.1/callback";
const SECRET = "a-client-secret-that-is-long-enough-for-oidc-provider";

export interface Account {
  email?: string;
  name?: string;
  groups?: string[];
  /** Lets a test make the provider sign an azp claim of its choice (cross-client tokens). */
  azp?: string;
}

export interface LoginOptions {
  account: string;
  clientId?: string;
  /** How long ago the person authenticated (seconds); becomes auth_time. Default 0. */
  authAgeSeconds?: number;
}

export interface TestIdp {
  issuer: string;
  /** Where the provider listens; differs from issuer for an impostor. */
  url: string;
  caPem: string;
  accounts: Map<string, Account>;
  login(opts: LoginOptions): Promise<{ idToken: string; claims: JWTPayload }>;
  /** Publishes a new signing key, first in the JWKS (so it signs), keeping the old ones. */
  rotate(): Promise<string>;
  kids(): string[];
  close(): Promise<void>;
}

async function newKey(kid?: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: kid ?? randomBytes(8).toString("hex"), alg: "RS256", use: "sig" };
}

export async function startIdp(
  opts: { issuer?: string; kid?: string; tls?: Awaited<ReturnType<typeof loopbackTls>> } = {},
): Promise<TestIdp> {
  const tls = opts.tls ?? (await loopbackTls());
  const accounts = new Map<string, Account>();
  const pendingLogins = new Map<string, LoginOptions>();
  let keys: JWK[] = [await newKey(opts.kid)];
  let provider: Provider;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;

  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    if (req.url?.startsWith("/interaction/")) {
      void interaction(req, res).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = opts.issuer ?? url;

  const make = () => {
    provider = new Provider(issuer, {
      clients: [MAYFLY_CLIENT, OTHER_CLIENT].map((client_id) => ({
        client_id,
        client_secret: SECRET,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: "client_secret_post",
      })),
      jwks: { keys },
      features: { devInteractions: { enabled: false } },
      // The ID token itself carries the profile claims (the CA reads no userinfo).
      conformIdTokenClaims: false,
      claims: { openid: ["sub", "azp"], email: ["email"], profile: ["name"], groups: ["groups"] },
      scopes: ["openid", "email", "profile", "groups"],
      cookies: { keys: ["test-idp-cookie-key"] },
      interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
      ttl: {
        IdToken: 3600,
        AccessToken: 3600,
        AuthorizationCode: 60,
        Session: 3600,
        Interaction: 600,
        Grant: 3600,
      },
      findAccount: (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: () => ({ sub: id, ...(accounts.get(id) ?? {}) }),
      }),
    });
    provider.on("server_error", (_ctx: unknown, e: unknown) => console.error("test IdP server_error", e));
    handler = provider.callback();
  };
  make();

  async function interaction(req: IncomingMessage, res: ServerResponse) {
    const details = await provider.interactionDetails(req, res);
    const state = String(details.params.state);
    const who = pendingLogins.get(state);
    if (!who) throw new Error(`no pending login for state ${state}`);
    const clientId = String(details.params.client_id);
    const grant = new provider.Grant({ accountId: who.account, clientId });
    grant.addOIDCScope("openid email profile groups");
    const grantId = await grant.save();
    const ts = Math.floor(Date.now() / 1000) - (who.authAgeSeconds ?? 0);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: who.account, ts, amr: ["pwd"], remember: false }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  type Res = { status: number; headers: IncomingMessage["headers"]; body: string };
  const cookieJar = () => {
    const jar = new Map<string, string>();
    return {
      header: () => [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
      take: (h: IncomingMessage["headers"]) => {
        for (const c of h["set-cookie"] ?? []) {
          const [pair] = c.split(";");
          const i = pair!.indexOf("=");
          jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
        }
      },
    };
  };
  const call = (path: string, o: { method?: string; form?: Record<string, string>; cookie?: string } = {}) =>
    new Promise<Res>((resolve, reject) => {
      const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
      const req = request(
        new URL(path, url),
        {
          method: o.method ?? (body ? "POST" : "GET"),
          ca: tls.caPem,
          headers: {
            ...(o.cookie ? { cookie: o.cookie } : {}),
            ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        },
      );
      req.on("error", reject);
      if (body) req.write(body);
      req.end();
    });
  // Only the path of a redirect is followed, against this provider: an impostor whose
  // issuer names another port still completes its own flow.
  const pathOf = (location: string | undefined) => {
    if (!location) throw new Error("expected a redirect");
    const u = new URL(location, url);
    return u.pathname + u.search;
  };

  return {
    issuer,
    url,
    caPem: tls.caPem,
    accounts,
    async login(o) {
      const clientId = o.clientId ?? MAYFLY_CLIENT;
      const state = randomBytes(12).toString("base64url");
      const verifier = randomBytes(32).toString("base64url");
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      pendingLogins.set(state, o);
      const jar = cookieJar();
      const q = new URLSearchParams({
        client_id: clientId,
        response_type: "code",
        scope: "openid email profile groups",
        redirect_uri: REDIRECT_URI,
        state,
        nonce: randomBytes(12).toString("base64url"),
        code_challenge: challenge,
        code_challenge_method: "S256",
        prompt: "login",
      });
      let res = await call(`/auth?${q}`);
      let location = res.headers.location;
      for (let hop = 0; hop < 5 && !location?.startsWith(REDIRECT_URI); hop++) {
        if (res.status !== 303 && res.status !== 302)
          throw new Error(`IdP answered ${res.status}: ${res.body}`);
        jar.take(res.headers);
        res = await call(pathOf(location), { cookie: jar.header() });
        location = res.headers.location;
      }
      pendingLogins.delete(state);
      if (!location?.startsWith(REDIRECT_URI))
        throw new Error(`login did not complete: ${res.status} ${res.body}`);
      const back = new URL(location);
      const code = back.searchParams.get("code");
      if (!code) throw new Error(`no code: ${location}`);
      const tok = await call("/token", {
        form: {
          grant_type: "authorization_code",
          code,
          redirect_uri: REDIRECT_URI,
          code_verifier: verifier,
          client_id: clientId,
          client_secret: SECRET,
        },
      });
      if (tok.status !== 200) throw new Error(`token endpoint answered ${tok.status}: ${tok.body}`);
      const idToken = (JSON.parse(tok.body) as { id_token: string }).id_token;
      return { idToken, claims: decodeJwt(idToken) };
    },
    async rotate() {
      const k = await newKey();
      keys = [k, ...keys];
      make();
      return k.kid!;
    },
    kids: () => keys.map((k) => k.kid!),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
