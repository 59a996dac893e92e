import { CaClient } from "./ca-client.js";

// A CA client whose TLS trust follows the CA's bundle: the operator's initial trust plus the
// newest bundle the agent accepted (verified against the trust it held: AgentTrust), so a root
// rotation at the CA does not cut its agents off. A new client is made when the trust changes.

export class CaSession {
  readonly url: string;
  #initial: string;
  #latest: string;
  #client: CaClient | null = null;
  readonly #timeoutMs: number | undefined;

  constructor(opts: { url: string; initialTrust: string; latestBundle?: string; timeoutMs?: number }) {
    this.url = opts.url;
    this.#initial = opts.initialTrust;
    this.#latest = opts.latestBundle ?? "";
    this.#timeoutMs = opts.timeoutMs;
  }

  /** The trust for the CA's TLS certificate, PEM. */
  get trust(): string {
    return `${this.#initial.trimEnd()}\n${this.#latest.trimEnd()}\n`.trimStart();
  }

  client(): CaClient {
    this.#client ??= new CaClient({
      url: this.url,
      ca: this.trust,
      ...(this.#timeoutMs === undefined ? {} : { timeoutMs: this.#timeoutMs }),
    });
    return this.#client;
  }

  /** Records a bundle the agent verified; true when it differs from the last one. */
  updateBundle(bundlePem: string): boolean {
    if (normalise(bundlePem) === normalise(this.#latest)) return false;
    this.#latest = bundlePem;
    this.#client?.close();
    this.#client = null;
    return true;
  }

  close(): void {
    this.#client?.close();
    this.#client = null;
  }
}

const normalise = (pem: string) => pem.replace(/\r\n/g, "\n").trim();
