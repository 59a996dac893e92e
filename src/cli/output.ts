import { isMayflyError } from "../errors/index.js";
import { EXIT } from "./exit-codes.js";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Reports a failure and returns the exit code; with --json the error is a JSON object on stdout. */
export function reportError(err: unknown, json: boolean): number {
  if (isMayflyError(err)) {
    if (json) printJson({ ok: false, code: err.code, detail: err.detail, ...(err.extra ?? {}) });
    else process.stderr.write(`mayfly: ${err.code}: ${err.detail}\n`);
    if (err.code === "config.invalid") return EXIT.checkFailed;
    return err.code === "request.invalid" ? EXIT.usage : EXIT.error;
  }
  const msg = err instanceof Error ? err.message : String(err);
  if (json) printJson({ ok: false, code: "internal.error", detail: msg });
  else process.stderr.write(`mayfly: ${msg}\n`);
  return EXIT.error;
}
