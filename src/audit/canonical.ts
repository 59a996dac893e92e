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
  return new Encoder(path, false).encode(value);
}

/**
 * canonicalJson and, from the same walk, a deep copy of `value` equal to
 * JSON.parse(json): plain objects and arrays rebuilt (keys in canonical order, -0 as 0,
 * a "__proto__" key as an own property), primitives as read. Every value is read once, so
 * the copy is exactly what was encoded even if a getter would answer differently on a
 * second read. Refuses what canonicalJson refuses, with the same field.
 */
export function canonicalJsonCopy(value: unknown, path = "$"): { json: string; copy: unknown } {
  const e = new Encoder(path, true);
  const json = e.encode(value);
  return { json, copy: e.copied };
}

// String.prototype.isWellFormed (ES2024, V8 11.2+, so every Node this runs on): false
// exactly when the string holds a lone surrogate. Cheaper than a lookaround regex.
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean })
  .isWellFormed;

/** No lone surrogates (the strings canonicalJson accepts). */
export function isWellFormedString(s: string): boolean {
  return isWellFormed.call(s);
}

/**
 * One walk. The path of the value being encoded is kept as a stack of steps and only
 * spelled out when something is refused. With `copying`, each encode leaves the copy of
 * the value it encoded in `copied`.
 */
class Encoder {
  private readonly steps: (string | number)[] = [];
  private readonly seen = new Set<object>();
  copied: unknown;

  constructor(
    private readonly root: string,
    private readonly copying: boolean,
  ) {}

  private path(): string {
    let p = this.root;
    for (const s of this.steps) p += typeof s === "number" ? `[${s}]` : `.${s}`;
    return p;
  }

  private reject(why: string): never {
    const path = this.path();
    throw new MayflyError("internal.error", `cannot canonically encode ${path}: ${why}`, { field: path });
  }

  encode(v: unknown): string {
    switch (typeof v) {
      case "string":
        if (!isWellFormed.call(v)) this.reject("string contains a lone surrogate");
        this.copied = v;
        return JSON.stringify(v);
      case "number":
        if (!Number.isFinite(v)) this.reject(`non-finite number ${v}`);
        // ECMAScript Number-to-String is what JCS prescribes; -0 becomes "0" (and 0 in the copy).
        this.copied = v === 0 ? 0 : v;
        return String(v);
      case "boolean":
        this.copied = v;
        return v ? "true" : "false";
      case "object":
        if (v === null) {
          this.copied = null;
          return "null";
        }
        return this.encodeObject(v);
      default:
        return this.reject(`${typeof v} is not JSON`);
    }
  }

  private encodeObject(v: object): string {
    if (this.seen.has(v)) this.reject("cycle");
    this.seen.add(v);
    const steps = this.steps;
    if (Array.isArray(v)) {
      const copy: unknown[] | null = this.copying ? [] : null;
      let json = "[";
      for (let i = 0; i < v.length; i++) {
        // Holes in sparse arrays read as undefined and are refused like undefined.
        if (i > 0) json += ",";
        steps.push(i);
        json += this.encode(v[i]);
        steps.pop();
        if (copy) copy.push(this.copied);
      }
      this.seen.delete(v);
      this.copied = copy;
      return `${json}]`;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
      this.reject(`${name} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(v).length > 0) this.reject("symbol keys are not JSON");
    // Default sort compares UTF-16 code units, which is exactly JCS's key order.
    const keys = Object.keys(v).sort();
    const copy: Record<string, unknown> | null = this.copying ? {} : null;
    let json = "{";
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const value = (v as Record<string, unknown>)[k];
      steps.push(k);
      if (!isWellFormed.call(k)) this.reject("key contains a lone surrogate");
      if (i > 0) json += ",";
      json += `${JSON.stringify(k)}:${this.encode(value)}`;
      steps.pop();
      if (copy) {
        // A "__proto__" key must become an own property, as JSON.parse makes it, not the
        // copy's prototype; every other key can be assigned.
        if (k === "__proto__") {
          Object.defineProperty(copy, k, {
            value: this.copied,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else copy[k] = this.copied;
      }
    }
    this.seen.delete(v);
    this.copied = copy;
    return `${json}}`;
  }
}
