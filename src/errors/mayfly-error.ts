import { ERROR_CODES, type ErrorCode } from "./codes.js";

/**
 * The one error class. `code` is stable and is what tests and clients match on;
 * `detail` is for humans; `field` names the offending input when there is one
 * (a JSON path, a config path or a TPM structure field such as "TPMT_PUBLIC.nameAlg").
 */
export class MayflyError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly field: string | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    opts: { field?: string; cause?: unknown; extra?: Record<string, unknown> } = {},
  ) {
    super(`${code}: ${detail}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "MayflyError";
    this.code = code;
    this.detail = detail;
    this.field = opts.field;
    this.extra = opts.extra;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }
}

export function isMayflyError(e: unknown): e is MayflyError {
  return e instanceof MayflyError;
}
