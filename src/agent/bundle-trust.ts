import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { AgentLog } from "./ak.js";
import { type BundleTrust, trustFromPem, verifyBundleUpdate } from "./bundle-verify.js";
import { errorCode } from "./errors.js";
import { INITIAL_TRUST_FILE, LATEST_TRUST_FILE, writeStateFile } from "./state.js";

// The trust an agent holds for the CA's bundle, and how it moves: it starts as the self-signed
// roots of the operator's --ca-bundle (ca-bundle.pem in the state directory), and changes only
// when GET /v1/bundle verifies against it (verifyBundleUpdate: signed by a held root, sequence
// not lower, new roots cross-signed). The accepted trust is kept in the state directory
// (trust.json, and its PEM as bundle.pem for the CA's TLS), 0600, written atomically. A refused
// bundle changes nothing: the old trust stays, the refusal is logged with its code, and the
// caller goes on (it is not a reason to stop renewing). The issuance answer's `bundle` PEM is
// unsigned and never used.

export const HELD_TRUST_FILE = "trust.json";
const TRUST_VERSION = 1;

/** Something that fetches GET /v1/bundle as raw JSON (CaClient.signedBundle). */
export interface SignedBundleSource {
  signedBundle(): Promise<unknown>;
}

export type TrustRefresh =
  | { readonly status: "accepted"; readonly changed: boolean; readonly sequence: number }
  | { readonly status: "refused"; readonly code: string; readonly detail: string }
  | { readonly status: "unavailable"; readonly code: string; readonly detail: string };

interface TrustFile {
  version: typeof TRUST_VERSION;
  trustDomain: string;
  sequence: number;
  roots: { id: string; pem: string }[];
  /** The accepted bundle: roots then intermediates, as bundle.pem. */
  pem: string;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function derToPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** The self-signed certificates of a PEM (the roots an operator handed over), as trust. */
function rootsOf(pem: string): BundleTrust["roots"] {
  const roots = (pem.match(PEM_BLOCK) ?? []).filter((b) => {
    try {
      const c = new X509Certificate(b);
      return c.ca && c.checkIssued(c) && c.verify(c.publicKey);
    } catch {
      return false;
    }
  });
  return roots.length === 0 ? [] : trustFromPem(`${roots.join("\n")}\n`, "").roots;
}

function detailOf(e: unknown): string {
  if (e && typeof e === "object" && "detail" in e && typeof e.detail === "string") return e.detail;
  return e instanceof Error ? e.message : String(e);
}

function parseTrustFile(text: string): TrustFile | null {
  try {
    const o = JSON.parse(text) as TrustFile;
    if (
      o.version !== TRUST_VERSION ||
      typeof o.trustDomain !== "string" ||
      !Number.isSafeInteger(o.sequence) ||
      !Array.isArray(o.roots) ||
      !o.roots.every((r) => typeof r.id === "string" && typeof r.pem === "string") ||
      typeof o.pem !== "string"
    )
      return null;
    return o;
  } catch {
    return null;
  }
}

export class AgentTrust {
  readonly #dir: string;
  readonly #log: AgentLog | undefined;
  /** ca-bundle.pem as the operator gave it: always trusted for the CA's TLS. */
  readonly initialPem: string;
  #held: BundleTrust;
  #pem: string;

  private constructor(dir: string, initialPem: string, held: BundleTrust, pem: string, log?: AgentLog) {
    this.#dir = dir;
    this.initialPem = initialPem;
    this.#held = held;
    this.#pem = pem;
    this.#log = log;
  }

  /** The trust held in `stateDir`: trust.json when a bundle was accepted, else ca-bundle.pem's roots. */
  static async open(stateDir: string, log?: AgentLog): Promise<AgentTrust> {
    const initialPem = await readFile(join(stateDir, INITIAL_TRUST_FILE), "utf8").catch(() => "");
    const saved = await readFile(join(stateDir, HELD_TRUST_FILE), "utf8").then(parseTrustFile, () => null);
    if (saved) {
      const held: BundleTrust = {
        trustDomain: saved.trustDomain,
        sequence: saved.sequence,
        roots: saved.roots.map((r) => ({ id: r.id, der: new X509Certificate(r.pem).raw })),
      };
      return new AgentTrust(stateDir, initialPem, held, saved.pem, log);
    }
    const roots = rootsOf(initialPem);
    if (roots.length === 0)
      log?.("warn", `${join(stateDir, INITIAL_TRUST_FILE)} holds no root: no trust bundle can be accepted`);
    // The trust domain is not known before the first bundle; it is taken from the first one a
    // held root signed.
    return new AgentTrust(stateDir, initialPem, { trustDomain: "", sequence: 0, roots }, "", log);
  }

  /** The trust held now. */
  get held(): BundleTrust {
    return this.#held;
  }

  /** The last accepted bundle (roots then intermediates), or "" before the first. */
  get pem(): string {
    return this.#pem;
  }

  /** PEM to trust for the CA's TLS and for peers: the accepted bundle, else the held roots. */
  get trustedPem(): string {
    return this.#pem || this.#held.roots.map((r) => derToPem(r.der)).join("");
  }

  /**
   * Fetches the bundle and adopts it if it verifies against the trust held. Never throws:
   * a refusal or a failed fetch is logged and reported, the trust held stays as it was.
   */
  async refresh(source: SignedBundleSource, now: number): Promise<TrustRefresh> {
    let fetched: unknown;
    try {
      fetched = await source.signedBundle();
    } catch (e) {
      const code = errorCode(e) ?? "bundle.unavailable";
      const detail = detailOf(e);
      this.#log?.("warn", `trust bundle not fetched (${code}: ${detail}); keeping the trust held`);
      return { status: "unavailable", code, detail };
    }
    const held =
      this.#held.trustDomain === "" &&
      typeof fetched === "object" &&
      fetched !== null &&
      typeof (fetched as { trustDomain?: unknown }).trustDomain === "string"
        ? { ...this.#held, trustDomain: (fetched as { trustDomain: string }).trustDomain }
        : this.#held;
    let v: Awaited<ReturnType<typeof verifyBundleUpdate>>;
    try {
      v = await verifyBundleUpdate(held, fetched, { now });
    } catch (e) {
      const code = errorCode(e) ?? "bundle.malformed";
      const detail = detailOf(e);
      this.#log?.(
        "warn",
        `trust bundle REFUSED: ${code}: ${detail}; keeping the trust held (sequence ${this.#held.sequence}), bundle.pem not updated`,
      );
      return { status: "refused", code, detail };
    }
    const changed = v.pem !== this.#pem || v.trust.sequence !== this.#held.sequence;
    if (changed) {
      const file: TrustFile = {
        version: TRUST_VERSION,
        trustDomain: v.trust.trustDomain,
        sequence: v.trust.sequence,
        roots: v.trust.roots.map((r) => ({ id: r.id, pem: derToPem(r.der) })),
        pem: v.pem,
      };
      await writeStateFile(this.#dir, HELD_TRUST_FILE, `${JSON.stringify(file, null, 2)}\n`);
      await writeStateFile(this.#dir, LATEST_TRUST_FILE, v.pem);
      const roots = [
        ...v.addedRoots.map((id) => `root ${id} added`),
        ...v.removedRoots.map((id) => `root ${id} removed`),
      ];
      this.#log?.(
        "info",
        `trust bundle accepted: sequence ${v.trust.sequence}, signed by ${v.signedBy.join(", ")}${roots.length ? `; ${roots.join(", ")}` : ""}`,
      );
    }
    this.#held = v.trust;
    this.#pem = v.pem;
    return { status: "accepted", changed, sequence: v.trust.sequence };
  }
}
