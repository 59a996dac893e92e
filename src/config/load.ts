import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { MayflyError } from "../errors/index.js";
import { type Config, configSchema, type SecretRef } from "./schema.js";

export interface ConfigIssue {
  path: string; // dotted path, e.g. "profiles.default.lifetime"; "" for the root
  message: string;
}

/** Paths and settings derived from the config and the environment, all absolute. */
export interface ResolvedConfig {
  config: Config;
  source: string | null;
  dataDir: string;
  listen: { host: string; port: number };
  storeUrl: string;
  keysDir: string;
  /** null means: a development passphrase file generated under keysDir on first start. */
  passphrase: SecretRef | null;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
    .join(".")
    .replace(/\.\[/g, "[");
}

/** Validates a parsed YAML/JSON value; every problem is reported at once. */
export function validateConfig(
  raw: unknown,
): { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] } {
  const r = configSchema.safeParse(raw ?? {});
  if (r.success) return { ok: true, config: r.data };
  const issues = r.error.issues.map((i) => {
    const keys = "keys" in i && Array.isArray(i.keys) ? ` (${i.keys.join(", ")})` : "";
    return { path: formatPath(i.path), message: i.message + (i.code === "unrecognized_keys" ? "" : keys) };
  });
  return { ok: false, issues };
}

/** Parses YAML text; syntax errors are issues too, with line and column. */
export function parseConfigText(
  text: string,
): { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => ({
        path: "",
        message: `YAML ${e.code} at line ${e.linePos?.[0]?.line ?? "?"}, column ${e.linePos?.[0]?.col ?? "?"}: ${e.message.split("\n")[0]}`,
      })),
    };
  }
  return validateConfig(doc.toJS());
}

export function configError(issues: ConfigIssue[], source: string | null): MayflyError {
  const lines = issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n");
  return new MayflyError(
    "config.invalid",
    `${source ?? "configuration"} has ${issues.length} error(s):\n${lines}`,
    {
      extra: { issues },
    },
  );
}

export function parseListen(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  const host = text.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(text.slice(i + 1));
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MayflyError("config.invalid", `listen address "${text}" is not host:port`, {
      field: "server.listen",
    });
  }
  return { host, port };
}

/**
 * Loads the config file (or the embedded defaults when path is null) and applies
 * the environment: MAYFLY_DATA_DIR and MAYFLY_LISTEN override the file.
 */
export async function loadConfig(
  path: string | null,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<ResolvedConfig> {
  let result: ReturnType<typeof parseConfigText>;
  if (path === null) {
    result = validateConfig({});
  } else {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      throw new MayflyError("config.invalid", `cannot read config file ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    result = parseConfigText(text);
  }
  if (!result.ok) throw configError(result.issues, path);
  const config = result.config;

  const dataDir = resolve(cwd, env.MAYFLY_DATA_DIR || config.dataDir);
  const listenText = env.MAYFLY_LISTEN || config.server.listen;
  const listen = parseListen(listenText);
  const inData = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const storeUrl = config.store.url ?? `sqlite:${join(dataDir, "mayfly.db")}`;
  const keysDir = config.keys.dir ? inData(config.keys.dir) : join(dataDir, "keys");
  return { config, source: path, dataDir, listen, storeUrl, keysDir, passphrase: config.keys.passphrase };
}
