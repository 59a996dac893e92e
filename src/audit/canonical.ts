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
  return encode(value, path, new Set(), null);
}

/**
 * canonicalJson and, from the same walk, a deep copy of `value` equal to
 * JSON.parse(json): plain objects and arrays rebuilt (keys in canonical order, -0 as 0),
 * primitives as read. Every value is read once, so the copy is exactly what was encoded
 * even if a getter or a concurrent holder would answer differently on a second read.
 * Refuses what canonicalJson refuses, with the same field.
 */
export function canonicalJsonCopy(value: unknown, path = "$"): { json: string; copy: unknown } {
  const out: { v: unknown } = { v: undefined };
  const json = encode(value, path, new Set(), out);
  return { json, copy: out.v };
}

// String.prototype.isWellFormed (ES2024, V8 11.2+, so every Node this runs on): false
// exactly when the string holds a lone surrogate. Cheaper than a lookaround regex.
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean })
  .isWellFormed;

function reject(path: string, why: string): never {
  throw new MayflyError("internal.error", `cannot canonically encode ${path}: ${why}`, { field: path });
}

/** Encodes `v`; when `out` is given, also stores the copy of `v` in out.v. */
function encode(v: unknown, path: string, seen: Set<object>, out: { v: unknown } | null): string {
  switch (typeof v) {
    case "string":
      if (!isWellFormed.call(v)) reject(path, "string contains a lone surrogate");
      if (out) out.v = v;
      return JSON.stringify(v);
    case "number":
      if (!Number.isFinite(v)) reject(path, `non-finite number ${v}`);
      // ECMAScript Number-to-String is what JCS prescribes; -0 becomes "0".
      if (out) out.v = v === 0 ? 0 : v;
      return JSON.stringify(v);
    case "boolean":
      if (out) out.v = v;
      return v ? "true" : "false";
    case "object":
      if (v === null) {
        if (out) out.v = null;
        return "null";
      }
      return encodeObject(v, path, seen, out);
    default:
      return reject(path, `${typeof v} is not JSON`);
  }
}

function encodeObject(v: object, path: string, seen: Set<object>, out: { v: unknown } | null): string {
  if (seen.has(v)) reject(path, "cycle");
  seen.add(v);
  try {
    const child: { v: unknown } | null = out ? { v: undefined } : null;
    if (Array.isArray(v)) {
      const copy: unknown[] | null = out ? [] : null;
      let json = "[";
      for (let i = 0; i < v.length; i++) {
        // Holes in sparse arrays read as undefined and are refused like undefined.
        if (i > 0) json += ",";
        json += encode(v[i], `${path}[${i}]`, seen, child);
        if (copy) copy.push(child!.v);
      }
      if (out) out.v = copy;
      return `${json}]`;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
      reject(path, `${name} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(v).length > 0) reject(path, "symbol keys are not JSON");
    // Default sort compares UTF-16 code units, which is exactly JCS's key order.
    const keys = Object.keys(v).sort();
    const copy: Record<string, unknown> | null = out ? {} : null;
    let json = "{";
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const value = (v as Record<string, unknown>)[k];
      if (!isWellFormed.call(k)) reject(`${path}.${k}`, "key contains a lone surrogate");
      if (i > 0) json += ",";
      json += `${JSON.stringify(k)}:${encode(value, `${path}.${k}`, seen, child)}`;
      // defineProperty, not assignment: a "__proto__" key must become an own property, as
      // JSON.parse makes it, not the copy's prototype.
      if (copy)
        Object.defineProperty(copy, k, {
          value: child!.v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
    if (out) out.v = copy;
    return `${json}}`;
  } finally {
    seen.delete(v);
  }
}
