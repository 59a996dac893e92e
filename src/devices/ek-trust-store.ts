import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MayflyError } from "../errors/index.js";
import { certificatesInFile, type ParsedCertificate, parseCertificate } from "./ek-certificate.js";

// The configured TPM manufacturer CAs: roots are trust anchors, intermediates only help
// build paths (they are trusted solely through a root). Loaded once at start-up; a broken
// file is a configuration error, never silently skipped.

const CERT_FILE = /\.(pem|crt|cer|der)$/i;

export class EkTrustStore {
  readonly #roots = new Map<string, ParsedCertificate[]>();
  readonly #intermediates = new Map<string, ParsedCertificate[]>();
  readonly rootCount: number;
  readonly intermediateCount: number;

  private constructor(roots: readonly ParsedCertificate[], intermediates: readonly ParsedCertificate[]) {
    const seen = new Set<string>();
    this.rootCount = index(this.#roots, roots, seen);
    this.intermediateCount = index(this.#intermediates, intermediates, seen);
  }

  /** Trusts nothing: every EK certificate is refused (registered EKs still work). */
  static empty(): EkTrustStore {
    return new EkTrustStore([], []);
  }

  /** From certificates already parsed (the loader's path). */
  static fromParsed(
    roots: readonly ParsedCertificate[],
    intermediates: readonly ParsedCertificate[],
  ): EkTrustStore {
    return new EkTrustStore(roots, intermediates);
  }

  /** From certificate bytes (DER, PEM or PEM bundles); config.invalid naming `source` on error. */
  static fromCertificates(
    input: { roots: readonly Buffer[]; intermediates?: readonly Buffer[] },
    source = "EK trust",
  ): EkTrustStore {
    const parse = (kind: string) => (bytes: Buffer, i: number) => parseFile(bytes, `${source} ${kind}[${i}]`);
    return new EkTrustStore(
      input.roots.flatMap(parse("roots")),
      (input.intermediates ?? []).flatMap(parse("intermediates")),
    );
  }

  rootsFor(issuerKey: string): readonly ParsedCertificate[] {
    return this.#roots.get(issuerKey) ?? [];
  }

  intermediatesFor(issuerKey: string): readonly ParsedCertificate[] {
    return this.#intermediates.get(issuerKey) ?? [];
  }
}

/** Adds certificates not seen before (same bytes in two files count once). */
function index(
  map: Map<string, ParsedCertificate[]>,
  certs: readonly ParsedCertificate[],
  seen: Set<string>,
): number {
  let n = 0;
  for (const c of certs) {
    if (seen.has(c.fingerprint)) continue;
    seen.add(c.fingerprint);
    const list = map.get(c.subjectKey) ?? [];
    list.push(c);
    map.set(c.subjectKey, list);
    n++;
  }
  return n;
}

function parseFile(bytes: Buffer, field: string): ParsedCertificate[] {
  const fail = (detail: string, cause?: unknown) =>
    new MayflyError(
      "config.invalid",
      `${field}: ${detail}`,
      cause === undefined ? { field } : { field, cause },
    );
  let ders: Buffer[];
  try {
    ders = certificatesInFile(bytes);
  } catch (cause) {
    throw fail(cause instanceof Error ? cause.message : "unreadable", cause);
  }
  return ders.map((der, i) =>
    parseCertificate(der, (detail, cause) =>
      fail(ders.length > 1 ? `certificate ${i + 1}: ${detail}` : detail, cause),
    ),
  );
}

async function readCertDir(dir: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    // A missing folder is an empty one: with no roots every certificate is refused.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new MayflyError("config.invalid", `cannot read ${dir}`, { field: dir, cause: e });
  }
  const files = names.filter((n) => CERT_FILE.test(n)).sort();
  return Promise.all(files.map(async (n) => ({ path: join(dir, n), bytes: await readFile(join(dir, n)) })));
}

/**
 * Loads `<dir>/roots/*` and `<dir>/intermediates/*` (PEM bundles with comments, or DER;
 * other files such as README.md are ignored). Missing folders load as empty.
 */
export async function loadEkTrustStore(dir: string): Promise<EkTrustStore> {
  const [roots, intermediates] = await Promise.all([
    readCertDir(join(dir, "roots")),
    readCertDir(join(dir, "intermediates")),
  ]);
  const parsed = (files: Array<{ path: string; bytes: Buffer }>) =>
    files.flatMap((f) => parseFile(f.bytes, f.path));
  return EkTrustStore.fromParsed(parsed(roots), parsed(intermediates));
}
