import { MayflyError } from "../errors/index.js";

// Two kinds of failure, kept apart so callers can tell "broken bytes" from "valid, but an
// algorithm we do not handle". Both always name the field, in spec spelling.

export function malformed(field: string, detail: string, extra?: Record<string, unknown>): MayflyError {
  return new MayflyError("tpm.malformed", `${field}: ${detail}`, extra ? { field, extra } : { field });
}

export function unsupported(field: string, value: number): MayflyError {
  const hex = `0x${value.toString(16).padStart(4, "0")}`;
  return new MayflyError("tpm.unsupported", `${field}: value ${hex} is not supported`, {
    field,
    extra: { value },
  });
}

export function keyInvalid(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(
    "tpm.key_invalid",
    `${field}: ${detail}`,
    cause === undefined ? { field } : { field, cause },
  );
}
