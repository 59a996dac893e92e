import { expect } from "vitest";
import { type ErrorCode, isMayflyError, type MayflyError } from "../../../src/errors/index.js";

/** Runs fn, asserting it throws a MayflyError with `code` whose field matches `field`. */
export function expectTpmError(fn: () => unknown, code: ErrorCode, field?: string | RegExp): MayflyError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isMayflyError(caught), `expected a MayflyError, got ${String(caught)}`).toBe(true);
  const err = caught as MayflyError;
  expect(err.code).toBe(code);
  expect(err.field).toBeTruthy();
  if (typeof field === "string") expect(err.field).toBe(field);
  else if (field) expect(err.field).toMatch(field);
  return err;
}
