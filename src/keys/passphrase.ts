import { stat } from "node:fs/promises";
import { MayflyError } from "../errors/index.js";
import { readSmallFile } from "./atomic-file.js";

/**
 * A secret is named in config, never inlined: a file path or an environment
 * variable name. (config/ sits below keys/ and declares the same shape itself.)
 */
export type SecretRef = { file: string } | { env: string };

export type ResolvedSecret = {
  value: string;
  /** Operator-facing warnings (never containing the value), e.g. a world-readable file. */
  warnings: string[];
};

export const MIN_PASSPHRASE_LENGTH = 12;
const MAX_SECRET_FILE_BYTES = 4096;

/** How a reference is named in errors and logs; never the value. */
export function describeSecretRef(ref: SecretRef): string {
  return "file" in ref ? `file ${JSON.stringify(ref.file)}` : `environment variable ${ref.env}`;
}

function unavailable(ref: SecretRef, why: string, cause?: unknown): MayflyError {
  return new MayflyError("config.secret_unavailable", `secret from ${describeSecretRef(ref)} ${why}`, {
    field: "file" in ref ? "file" : "env",
    cause,
  });
}

function assertRef(ref: unknown): asserts ref is SecretRef {
  const r = ref as Record<string, unknown> | null;
  const ok =
    r !== null &&
    typeof r === "object" &&
    Object.keys(r).length === 1 &&
    ((typeof r.file === "string" && r.file !== "") || (typeof r.env === "string" && r.env !== ""));
  if (!ok) throw new MayflyError("config.invalid", "a secret reference is { file: path } or { env: NAME }");
}

/**
 * Reads a secret. A world-readable file is a warning, not a refusal: Kubernetes and
 * Docker mount secrets 0644/0444 by default inside a container whose only user is
 * the CA, and refusing those would push operators towards env vars, which leak more
 * (child processes, /proc/<pid>/environ, crash dumps).
 */
export async function readSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedSecret> {
  assertRef(ref);
  const warnings: string[] = [];
  let value: string;
  if ("file" in ref) {
    let text: string;
    try {
      text = await readSmallFile(ref.file, MAX_SECRET_FILE_BYTES);
      if (((await stat(ref.file)).mode & 0o004) !== 0) {
        warnings.push(`secret ${describeSecretRef(ref)} is world-readable; chmod 600 it`);
      }
    } catch (e) {
      throw unavailable(ref, `cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`, e);
    }
    // Exactly one trailing newline, as `echo` and editors add; other whitespace may be part of it.
    value = text.replace(/\r?\n$/, "");
  } else {
    value = env[ref.env] ?? "";
  }
  if (value === "") throw unavailable(ref, "is missing or empty");
  return { value, warnings };
}

export async function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return (await readSecret(ref, env)).value;
}

/** Counted in code points so that a non-ASCII passphrase is not penalised or favoured by its UTF-8 size. */
export function assertPassphraseStrength(passphrase: string, source: string): void {
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new MayflyError(
      "key.passphrase_weak",
      `the key passphrase from ${source} is shorter than ${MIN_PASSPHRASE_LENGTH} characters`,
    );
  }
}
