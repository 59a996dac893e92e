import { X509Certificate } from "node:crypto";
import { EventEmitter } from "node:events";
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server } from "node:tls";
import type { Clock, Random } from "../runtime/clock.js";
import type { TpmClient } from "../tpm/client/index.js";
import type { AgentLog } from "./ak.js";
import { AgentTrust } from "./bundle-trust.js";
import { CaSession } from "./ca-session.js";
import { type Issued, Issuer } from "./issuer.js";
import { uriSans } from "./relying-party.js";
import { Renewer, type RenewerResult, type Sleep } from "./renewer.js";
import { realSleep } from "./sleep.js";
import { type EnrolmentState, requireState } from "./state.js";

// A Node agent's own identity, in memory: a bound key per renewal (it never touches disk),
// the certificate, its chain and the trust bundle, renewed in the background. secureContext()
// always answers the current one, and `rotated` fires after each renewal, so tls, https and
// undici servers and clients can use it for mTLS:
//
//   const id = await startAgentIdentity({ tpm, stateDir, agentId, clock: systemClock, random: systemRandom });
//   const server = tls.createServer({ ...id.tlsOptions(), requestCert: true, rejectUnauthorized: true }, ...);
//   id.bindServer(server);                                    // new handshakes get each new certificate
//   tls.connect({ host, port, secureContext: id.secureContext(), checkServerIdentity: rp.checkServerIdentity() });
//   new undici.Agent({ connect: id.tlsOptions() })            // rebuild on "rotated"
//
// Events: "rotated" (IdentitySnapshot), "renewal-failed" ({ code, failures, retryInMs, error }),
// "denied" (RenewerResult of reason "denied": the identity will not renew again).

export interface IdentitySnapshot {
  readonly spiffeId: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly certificate: string;
  readonly chain: readonly string[];
  readonly bundle: string;
  readonly keyResidency: "tpm" | "bound";
}

export interface AgentIdentityOptions {
  /** One issuance with a key Node can hold: a bound key (an Issuer in "bound" mode). */
  readonly issue: () => Promise<Issued>;
  readonly clock: Clock;
  readonly random: Random;
  /** Default: the real timer. */
  readonly sleep?: Sleep;
  readonly log?: AgentLog;
  readonly renewAt?: number;
  readonly jitter?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly minDelayMs?: number;
  /** Told about every new certificate before `rotated` fires. */
  readonly onIssued?: (issued: Issued) => Promise<void>;
  /**
   * The trust bundle (PEM) to verify peers with, read at each renewal: a bundle the agent
   * verified (AgentTrust.trustedPem), never the issuance answer's unsigned one.
   */
  readonly trustBundle: () => string;
}

function spiffeIdOf(certPem: string): string {
  return uriSans(new X509Certificate(certPem).raw).find((u) => u.startsWith("spiffe://")) ?? "";
}

export class AgentIdentity extends EventEmitter {
  readonly #renewer: Renewer;
  readonly #onIssued: AgentIdentityOptions["onIssued"];
  readonly #trustBundle: () => string;
  #current: {
    issued: Issued;
    bundle: string;
    context: SecureContext;
    options: SecureContextOptions;
  } | null = null;
  #firstIssued: (() => void) | null = null;
  /** Resolves when the renewal loop has ended (stop(), or a terminal denial). */
  readonly closed: Promise<RenewerResult>;

  private constructor(o: AgentIdentityOptions, first: { resolve: () => void }) {
    super();
    this.#onIssued = o.onIssued;
    this.#trustBundle = o.trustBundle;
    this.#firstIssued = first.resolve;
    this.#renewer = new Renewer({
      issue: o.issue,
      onIssued: (i) => this.#install(i),
      clock: o.clock,
      random: o.random,
      sleep: o.sleep ?? realSleep,
      ...(o.log ? { log: o.log } : {}),
      ...(o.renewAt === undefined ? {} : { renewAt: o.renewAt }),
      ...(o.jitter === undefined ? {} : { jitter: o.jitter }),
      ...(o.backoffInitialMs === undefined ? {} : { backoffInitialMs: o.backoffInitialMs }),
      ...(o.backoffMaxMs === undefined ? {} : { backoffMaxMs: o.backoffMaxMs }),
      ...(o.minDelayMs === undefined ? {} : { minDelayMs: o.minDelayMs }),
      onFailure: (error, code, failures, retryInMs) =>
        this.emit("renewal-failed", { error, code, failures, retryInMs }),
    });
    this.closed = this.#renewer.run().then((r) => {
      if (r.reason === "denied") this.emit("denied", r);
      return r;
    });
  }

  /**
   * Starts the renewal loop and resolves with the identity once it holds its first
   * certificate; rejects when the CA denies the first one for good (the error carries the code).
   */
  static async start(o: AgentIdentityOptions): Promise<AgentIdentity> {
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => {
      resolveFirst = r;
    });
    const id = new AgentIdentity(o, { resolve: resolveFirst });
    const outcome = await Promise.race([first.then(() => null), id.closed]);
    if (outcome && outcome.reason === "denied") throw outcome.error;
    if (outcome) throw new Error("the identity stopped before its first certificate");
    return id;
  }

  async #install(issued: Issued): Promise<void> {
    if (!issued.privateKey) throw new TypeError("an identity needs a key Node can hold (bound mode)");
    await this.#onIssued?.(issued);
    const bundle = this.#trustBundle();
    if (!bundle.includes("-----BEGIN CERTIFICATE-----"))
      throw new TypeError("no trust bundle to verify peers with");
    const options: SecureContextOptions = {
      key: issued.privateKey.export({ type: "pkcs8", format: "pem" }),
      cert: issued.certificate + issued.chain.join(""),
      ca: bundle,
      minVersion: "TLSv1.2",
    };
    this.#current = { issued, bundle, context: createSecureContext(options), options };
    if (this.#firstIssued) {
      this.#firstIssued();
      this.#firstIssued = null;
    }
    this.emit("rotated", this.snapshot());
  }

  #now() {
    if (!this.#current) throw new Error("the identity has no certificate yet");
    return this.#current;
  }

  /** The current TLS context: key, certificate + chain, and the bundle as the trusted CAs. */
  secureContext(): SecureContext {
    return this.#now().context;
  }

  /** The options that made secureContext(), for APIs that take options (setSecureContext, undici). */
  tlsOptions(): SecureContextOptions {
    return { ...this.#now().options };
  }

  snapshot(): IdentitySnapshot {
    const { issued: i, bundle } = this.#now();
    return {
      spiffeId: spiffeIdOf(i.certificate),
      serial: i.serial,
      notBefore: i.notBefore,
      notAfter: i.notAfter,
      certificate: i.certificate,
      chain: [...i.chain],
      bundle,
      keyResidency: i.keyResidency,
    };
  }

  /** Keeps a tls/https server presenting the current certificate; returns an unbind function. */
  bindServer(server: Server): () => void {
    const update = () => server.setSecureContext(this.tlsOptions());
    update();
    this.on("rotated", update);
    return () => this.off("rotated", update);
  }

  /** Renew now instead of waiting (e.g. after a signal). */
  renewNow(): void {
    this.#renewer.renewNow();
  }

  async stop(): Promise<RenewerResult> {
    this.#renewer.stop();
    return this.closed;
  }
}

export interface TpmIdentityOptions {
  readonly tpm: TpmClient;
  /** The directory `mayfly agent enrol` wrote (its CA URL, trust and AK are used). */
  readonly stateDir: string;
  readonly agentId: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly sleep?: Sleep;
  readonly log?: AgentLog;
  readonly lifetimeSeconds?: number;
  readonly renewAt?: number;
  readonly jitter?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly minDelayMs?: number;
}

/**
 * The identity of an agent on an enrolled device: bound keys in memory, quoted by the
 * device's AK, renewed against the CA the device enrolled with. The CA's trust follows the
 * signed bundles it publishes, each verified against the trust held before it is used for the
 * CA connection or the secureContext's CA list (kept in the state directory, like
 * `mayfly agent run` does; a refused bundle is logged and the old trust kept).
 */
export async function startAgentIdentity(o: TpmIdentityOptions): Promise<AgentIdentity> {
  const state: EnrolmentState = await requireState(o.stateDir);
  const trust = await AgentTrust.open(o.stateDir, o.log);
  const session = new CaSession({
    url: state.caUrl,
    initialTrust: trust.initialPem,
    latestBundle: trust.trustedPem,
  });
  const issuer = new Issuer({
    tpm: o.tpm,
    state,
    client: () => session.client(),
    agentId: o.agentId,
    mode: "bound",
    ...(o.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: o.lifetimeSeconds }),
    ...(o.log ? { log: o.log } : {}),
  });
  const { tpm: _t, stateDir: _s, agentId: _a, lifetimeSeconds: _l, ...rest } = o;
  try {
    const id = await AgentIdentity.start({
      ...rest,
      issue: async () => {
        const r = await trust.refresh(session.client(), o.clock.now());
        if (r.status === "accepted") session.updateBundle(trust.trustedPem);
        return issuer.issue();
      },
      trustBundle: () => trust.trustedPem,
    });
    void id.closed.finally(() => session.close());
    return id;
  } catch (e) {
    session.close();
    throw e;
  }
}
