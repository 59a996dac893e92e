import { MayflyError } from "../../errors/index.js";
import {
  CORE_USER,
  coreName,
  ENTERPRISE_USER,
  enterpriseName,
  isEnterpriseUrn,
  isObject,
  type Json,
  type JsonObject,
  normaliseUser,
  PATCH_OP,
  scimBoolean,
  scimManager,
  subName,
} from "./resource.js";

// SCIM PATCH (RFC 7644 §3.5.2) over a stored User, with what Okta and Microsoft Entra
// actually send:
// - `op` in any case ("Replace", "Add", "Remove": Entra);
// - operations without `path` whose value is an object of attributes, where a key may
//   itself be a path ("name.givenName", "emails[type eq \"work\"].value", a full
//   extension URN path) or the extension schema URN with an object (Okta, Entra);
// - `active` as "True"/"False" strings (Entra);
// - the enterprise manager as a bare id string, { value }, [{ value }], or via the
//   path "...:User:manager.value"; a Replace with no value to clear an attribute.
// Anything else the grammar does not cover is invalidPath, never a silent no-op.

type Op = "add" | "replace" | "remove";

interface ParsedPath {
  schema: "core" | "enterprise";
  attr: string | null; // null: the enterprise extension object itself
  filter: { attr: string; value: string | boolean } | null;
  sub: string | null;
}

const ATTR = "[A-Za-z$][\\w$-]*";
const PATH = new RegExp(
  `^(${ATTR})(?:\\[\\s*(${ATTR})\\s+eq\\s+("(?:[^"\\\\]|\\\\.)*"|true|false)\\s*\\])?(?:\\.(${ATTR}))?$`,
  "i",
);

function invalidPath(path: string, why: string): MayflyError {
  return new MayflyError("scim.invalid_path", `path ${JSON.stringify(path)}: ${why}`, { field: "path" });
}

export function parsePath(path: string): ParsedPath {
  let schema: ParsedPath["schema"] = "core";
  let rest = path.trim();
  const lower = rest.toLowerCase();
  if (lower === ENTERPRISE_USER.toLowerCase())
    return { schema: "enterprise", attr: null, filter: null, sub: null };
  if (lower.startsWith(`${ENTERPRISE_USER.toLowerCase()}:`)) {
    schema = "enterprise";
    rest = rest.slice(ENTERPRISE_USER.length + 1);
  } else if (lower.startsWith(`${CORE_USER.toLowerCase()}:`)) {
    rest = rest.slice(CORE_USER.length + 1);
  } else if (lower.startsWith("urn:")) {
    throw invalidPath(path, "unknown schema");
  }
  const m = PATH.exec(rest);
  if (!m) throw invalidPath(path, 'only attr, attr.sub and attr[sub eq "value"].sub are supported');
  const raw = m[3];
  const filter = m[2]
    ? {
        attr: subName(m[2]),
        value:
          raw === undefined
            ? ""
            : raw.toLowerCase() === "true"
              ? true
              : raw.toLowerCase() === "false"
                ? false
                : (JSON.parse(raw) as string),
      }
    : null;
  return { schema, attr: m[1]!, filter, sub: m[4] ? subName(m[4]) : null };
}

function opOf(v: unknown): Op {
  const op = typeof v === "string" ? v.toLowerCase() : "";
  if (op === "add" || op === "replace" || op === "remove") return op;
  throw new MayflyError("scim.invalid_syntax", `op ${JSON.stringify(v)} is not add, replace or remove`, {
    field: "op",
  });
}

function same(a: Json | undefined, b: Json): boolean {
  if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
  return a === b;
}

/** Applies every operation of a PatchOp body to `resource`; returns the normalised result. */
export function applyPatch(resource: JsonObject, body: unknown): JsonObject {
  if (!isObject(body)) throw new MayflyError("scim.invalid_syntax", "a PatchOp is a JSON object");
  const schemas = body.schemas;
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === "string" && s.toLowerCase() === PATCH_OP.toLowerCase())
  ) {
    throw new MayflyError("scim.invalid_syntax", `schemas must include ${PATCH_OP}`, { field: "schemas" });
  }
  const ops = body.Operations ?? body.operations;
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new MayflyError("scim.invalid_syntax", "Operations must be a non-empty list", {
      field: "Operations",
    });
  }
  const res = structuredClone(resource);
  for (const raw of ops) {
    if (!isObject(raw)) throw new MayflyError("scim.invalid_syntax", "each operation is an object");
    const op = opOf(raw.op ?? raw.Op);
    const path = raw.path ?? raw.Path;
    if (path !== undefined && path !== null && typeof path !== "string") {
      throw new MayflyError("scim.invalid_syntax", "path must be a string", { field: "path" });
    }
    applyOp(res, op, path ?? null, raw.value === undefined ? (raw.Value as Json | undefined) : raw.value);
  }
  const ent = res[ENTERPRISE_USER];
  if (isObject(ent) && Object.keys(ent).length === 0) delete res[ENTERPRISE_USER];
  return normaliseUser(res, { requireSchemas: false });
}

function applyOp(res: JsonObject, op: Op, path: string | null, value: Json | undefined): void {
  if (path === null || path === "") {
    if (op === "remove") {
      throw new MayflyError("scim.no_target", "a remove operation needs a path", { field: "path" });
    }
    if (!isObject(value)) {
      throw new MayflyError(
        "scim.invalid_syntax",
        "an operation without path carries an object of attributes",
        {
          field: "value",
        },
      );
    }
    for (const [k, v] of Object.entries(value)) {
      if (isEnterpriseUrn(k)) {
        if (!isObject(v)) throw new MayflyError("scim.invalid_value", `${ENTERPRISE_USER} must be an object`);
        for (const [ek, ev] of Object.entries(v)) applyOp(res, op, `${ENTERPRISE_USER}:${ek}`, ev);
      } else applyOp(res, op, k, v);
    }
    return;
  }
  // Entra clears an attribute with a Replace that has no value.
  if (op !== "remove" && (value === undefined || value === null)) op = "remove";
  const p = parsePath(path);

  if (p.schema === "enterprise" && p.attr === null) {
    if (op === "remove") delete res[ENTERPRISE_USER];
    else {
      if (!isObject(value))
        throw new MayflyError("scim.invalid_value", `${ENTERPRISE_USER} must be an object`);
      for (const [ek, ev] of Object.entries(value)) applyOp(res, op, `${ENTERPRISE_USER}:${ek}`, ev);
    }
    return;
  }
  let container: JsonObject;
  let name: string;
  if (p.schema === "enterprise") {
    const existing = res[ENTERPRISE_USER];
    if (!isObject(existing)) {
      if (op === "remove") return;
      res[ENTERPRISE_USER] = {};
    }
    container = res[ENTERPRISE_USER] as JsonObject;
    name = enterpriseName(p.attr!);
    if (name === "manager") {
      applyManager(container, op, p, value, path);
      return;
    }
  } else {
    container = res;
    name = coreName(p.attr!);
    if (["id", "meta", "schemas", "groups"].includes(name)) {
      throw new MayflyError("scim.mutability", `${name} cannot be changed by PATCH`, { field: name });
    }
    if (name === "password") return; // never stored
    if (name === "active") {
      if (op === "remove")
        throw new MayflyError("scim.mutability", "active cannot be removed", { field: "active" });
      if (p.filter || p.sub) throw invalidPath(path, "active has no sub-attributes");
      res.active = scimBoolean(value, "active");
      return;
    }
  }

  if (p.filter) {
    applyFiltered(container, name, op, p, value, path);
    return;
  }
  if (p.sub) {
    const current = container[name];
    if (op === "remove") {
      if (isObject(current)) delete current[p.sub];
      return;
    }
    const obj = isObject(current) ? current : {};
    obj[p.sub] = value as Json;
    container[name] = obj;
    return;
  }
  if (op === "remove") {
    delete container[name];
    return;
  }
  const current = container[name];
  const v = value as Json;
  if (op === "add" && Array.isArray(current)) {
    // add to a multi-valued attribute appends (RFC 7644 §3.5.2.1), without duplicates
    for (const item of Array.isArray(v) ? v : [v]) {
      if (!current.some((c) => JSON.stringify(c) === JSON.stringify(item))) current.push(item);
    }
  } else if (isObject(current) && isObject(v)) {
    // a complex singular attribute: the given sub-attributes are added or replaced
    for (const [k, x] of Object.entries(v)) current[subName(k)] = x;
  } else {
    container[name] = v;
  }
}

function applyManager(
  container: JsonObject,
  op: Op,
  p: ParsedPath,
  value: Json | undefined,
  path: string,
): void {
  if (p.filter) throw invalidPath(path, "manager is not multi-valued");
  if (p.sub && p.sub !== "value" && p.sub !== "displayName" && p.sub !== "$ref") {
    throw invalidPath(path, "manager has value, displayName and $ref");
  }
  if (op === "remove") {
    if (p.sub && p.sub !== "value" && isObject(container.manager)) delete container.manager[p.sub];
    else delete container.manager;
    return;
  }
  if (p.sub) {
    if (p.sub === "value") {
      const m = scimManager(value);
      if (m)
        container.manager = { ...(isObject(container.manager) ? container.manager : {}), value: m.value! };
      else delete container.manager;
    } else if (isObject(container.manager)) container.manager[p.sub] = value as Json;
    return;
  }
  const m = scimManager(value);
  if (m) container.manager = m;
  else delete container.manager;
}

function applyFiltered(
  container: JsonObject,
  name: string,
  op: Op,
  p: ParsedPath,
  value: Json | undefined,
  path: string,
): void {
  const f = p.filter!;
  const current = container[name];
  if (current !== undefined && !Array.isArray(current))
    throw invalidPath(path, `${name} is not multi-valued`);
  const list = (current ?? []) as Json[];
  const matches = list.filter((el) => isObject(el) && same(el[f.attr], f.value)) as JsonObject[];
  if (op === "remove") {
    if (p.sub) for (const m of matches) delete m[p.sub];
    else container[name] = list.filter((el) => !matches.includes(el as JsonObject));
    return;
  }
  if (matches.length === 0) {
    // Entra replaces emails[type eq "work"].value on users that have no work email yet:
    // the element the filter describes is created.
    const el: JsonObject = { [f.attr]: f.value };
    list.push(el);
    matches.push(el);
    container[name] = list;
  }
  for (const m of matches) {
    if (p.sub) m[p.sub] = value as Json;
    else if (isObject(value)) for (const [k, x] of Object.entries(value)) m[subName(k)] = x;
    else throw new MayflyError("scim.invalid_value", `${path} takes an object`, { field: "value" });
  }
}
