import { MayflyError } from "../errors/index.js";

/**
 * Canonical JSON in the manner of RFC 8785 (JCS): object keys sorted by UTF-16 code
 * units, no whitespace, strings and numbers serialised as ECMAScript's JSON.stringify
 * does. The audit hash is taken over these bytes, so the same event must encode the
 * same way on every replica and every Node version, and anything whose encoding is
 * not fixed is refused rather than silently coerced:
 *   - NaN and ±Infinity (JSON.stringify would write null), BigInt;
 *   - undefined, functions and symbols (JSON.stringify would drop or null them);
 *   - strings with lone surrogates (not valid Unicode, so not I-JSON, RFC 7493);
 *   - anything but plain objects and arrays: Buffer, Date, Map, class instances. A
 *     Buffer's JSON form is an accident of Node; callers encode binary as hex/base64url.
 *   - cycles.
 * Refusals are internal.error (a caller bug, never client input) with `field` naming
 * the offending path, e.g. "data.evidence[2].nonce".
 */
export function canonicalJson(value: unknown, path = "$"): string {
  return encode(value, path, new Set());
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function reject(path: string, why: string): never {
  throw new MayflyError("internal.error", `cannot canonically encode ${path}: ${why}`, { field: path });
}

function encode(v: unknown, path: string, seen: Set<object>): string {
  switch (typeof v) {
    case "string":
      if (LONE_SURROGATE.test(v)) reject(path, "string contains a lone surrogate");
      return JSON.stringify(v);
    case "number":
      if (!Number.isFinite(v)) reject(path, `non-finite number ${v}`);
      // ECMAScript Number-to-String is what JCS prescribes; -0 becomes "0".
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "object":
      if (v === null) return "null";
      return encodeObject(v, path, seen);
    default:
      return reject(path, `${typeof v} is not JSON`);
  }
}

function encodeObject(v: object, path: string, seen: Set<object>): string {
  if (seen.has(v)) reject(path, "cycle");
  seen.add(v);
  try {
    if (Array.isArray(v)) {
      const parts: string[] = [];
      for (let i = 0; i < v.length; i++) {
        // Holes in sparse arrays read as undefined and are refused like undefined.
        parts.push(encode(v[i], `${path}[${i}]`, seen));
      }
      return `[${parts.join(",")}]`;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
      reject(path, `${name} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(v).length > 0) reject(path, "symbol keys are not JSON");
    // Default sort compares UTF-16 code units, which is exactly JCS's key order.
    const keys = Object.keys(v).sort();
    const parts = keys.map((k) => {
      const child = (v as Record<string, unknown>)[k];
      if (LONE_SURROGATE.test(k)) reject(`${path}.${k}`, "key contains a lone surrogate");
      return `${JSON.stringify(k)}:${encode(child, `${path}.${k}`, seen)}`;
    });
    return `{${parts.join(",")}}`;
  } finally {
    seen.delete(v);
  }
}
