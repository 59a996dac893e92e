import { MayflyError } from "../errors/index.js";
import type { EvidenceFormat } from "./format.js";

/** The formats a server accepts, by name. A name not registered fails closed. */
export class EvidenceRegistry {
  readonly #formats = new Map<string, EvidenceFormat>();

  constructor(formats: readonly EvidenceFormat[] = []) {
    for (const f of formats) this.register(f);
  }

  register(format: EvidenceFormat): void {
    if (this.#formats.has(format.name)) throw new Error(`evidence format ${format.name} registered twice`);
    this.#formats.set(format.name, format);
  }

  get(name: unknown): EvidenceFormat {
    const f = typeof name === "string" ? this.#formats.get(name) : undefined;
    if (!f) {
      throw new MayflyError(
        "attestation.format_unsupported",
        `attestation format ${JSON.stringify(name)} is not supported`,
        {
          field: "attestation.format",
        },
      );
    }
    return f;
  }

  names(): string[] {
    return [...this.#formats.keys()];
  }
}
