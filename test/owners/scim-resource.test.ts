import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import { parseUserFilter } from "../../src/owners/scim/filter.js";
import { applyPatch, parsePath } from "../../src/owners/scim/patch.js";
import {
  ENTERPRISE_USER,
  type JsonObject,
  normaliseUser,
  userFacts,
} from "../../src/owners/scim/resource.js";

// The SCIM User model and PATCH engine on the shapes Okta and Entra send
// (test/fixtures/scim/README.md says where each comes from).

const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/scim/${name}`, import.meta.url), "utf8")) as JsonObject;

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isMayflyError(e)) return e.code;
    throw e;
  }
  return "ok";
}

describe("SCIM User normalisation", () => {
  it("Okta's create: the password and groups are dropped, the facts read", () => {
    const r = normaliseUser(fixture("okta/create-user.json"), { requireSchemas: true });
    expect(r.password).toBeUndefined();
    expect(r.groups).toBeUndefined();
    expect(r.schemas).toBeUndefined();
    expect(userFacts(r)).toEqual({
      userName: "test.user@okta.local",
      externalId: "00ujl29u0le5T6Aj10h7",
      active: true,
      displayName: "Test User",
      email: "test.user@okta.local",
      manager: null,
      department: null,
    });
  });

  it("Entra's create: both schemas, meta dropped, department from the extension", () => {
    const r = normaliseUser(fixture("entra/create-user.json"), { requireSchemas: true });
    expect(r.meta).toBeUndefined();
    expect(userFacts(r)).toMatchObject({
      userName: "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
      externalId: "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
      displayName: "givenName familyName",
      department: "Finance",
      manager: null,
    });
  });

  it("attribute names in any case are one attribute; active as a string is a boolean", () => {
    const r = normaliseUser(
      {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        USERNAME: "a@b.test",
        ExternalID: "x1",
        Active: "FALSE",
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {
          Manager: { Value: "m1" },
          DEPARTMENT: "Ops",
        },
      },
      { requireSchemas: true },
    );
    expect(userFacts(r)).toMatchObject({
      userName: "a@b.test",
      externalId: "x1",
      active: false,
      manager: "m1",
      department: "Ops",
    });
  });

  it("refuses a User without userName, schemas, or with wrongly typed attributes", () => {
    const base = fixture("okta/create-user.json");
    expect(code(() => normaliseUser({ ...base, userName: "" }, { requireSchemas: true }))).toBe(
      "scim.invalid_value",
    );
    expect(code(() => normaliseUser({ ...base, schemas: ["urn:x"] }, { requireSchemas: true }))).toBe(
      "scim.invalid_syntax",
    );
    expect(code(() => normaliseUser({ ...base, active: "yes" }, { requireSchemas: true }))).toBe(
      "scim.invalid_value",
    );
    expect(code(() => normaliseUser({ ...base, emails: "a@b" }, { requireSchemas: true }))).toBe(
      "scim.invalid_value",
    );
    expect(code(() => normaliseUser({ ...base, externalId: 7 }, { requireSchemas: true }))).toBe(
      "scim.invalid_value",
    );
    expect(code(() => normaliseUser([], { requireSchemas: true }))).toBe("scim.invalid_syntax");
  });
});

describe("SCIM PATCH with Okta and Entra shapes", () => {
  const okta = () => normaliseUser(fixture("okta/create-user.json"), { requireSchemas: true });
  const entra = () => normaliseUser(fixture("entra/create-user.json"), { requireSchemas: true });

  it("Okta: replace without path, value { active: false } then { active: true }", () => {
    const off = applyPatch(okta(), fixture("okta/deactivate.json"));
    expect(off.active).toBe(false);
    expect(applyPatch(off, fixture("okta/reactivate.json")).active).toBe(true);
  });

  it('Entra: "Replace" active with the strings "False" and "True"', () => {
    const off = applyPatch(entra(), fixture("entra/disable.json"));
    expect(off.active).toBe(false);
    expect(applyPatch(off, fixture("entra/enable.json")).active).toBe(true);
  });

  it("Entra: several Replace paths, a filtered email, name parts, the extension department", () => {
    const r = applyPatch(entra(), fixture("entra/replace-attributes.json"));
    const f = userFacts(r);
    expect(f).toMatchObject({
      displayName: "Pvlo",
      email: "TestBcwqnm@test.microsoft.com",
      department: "Research",
    });
    expect(r.name).toMatchObject({
      givenName: "Gtfd",
      familyName: "Pkqf",
      formatted: "givenName familyName",
    });
    expect((r.emails as JsonObject[]).length).toBe(1);
  });

  it("Entra with aadOptscim062020: one replace without path, keys that are paths", () => {
    const viaPaths = applyPatch(entra(), fixture("entra/replace-attributes.json"));
    const flagged = applyPatch(entra(), fixture("entra/flagged-no-path.json"));
    expect(flagged).toEqual({ ...viaPaths, active: false });
  });

  it("Entra manager: a bare id string added, then removed; object, array and .value forms too", () => {
    const withMgr = applyPatch(entra(), fixture("entra/manager-add.json"));
    expect(userFacts(withMgr).manager).toBe("26118915-6090-4610-87a4-49d0767e9fde");
    expect(userFacts(withMgr).department).toBe("Finance");
    const without = applyPatch(withMgr, fixture("entra/manager-remove.json"));
    expect(userFacts(without).manager).toBeNull();
    const op = (o: JsonObject) => ({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [o],
    });
    const path = `${ENTERPRISE_USER}:manager`;
    for (const value of [{ value: "m2" }, [{ value: "m2", $ref: null }], "m2"]) {
      expect(userFacts(applyPatch(entra(), op({ op: "replace", path, value }))).manager).toBe("m2");
    }
    expect(
      userFacts(applyPatch(entra(), op({ op: "replace", path: `${path}.value`, value: "m3" }))).manager,
    ).toBe("m3");
    expect(
      userFacts(
        applyPatch(
          entra(),
          op({ op: "replace", value: { [ENTERPRISE_USER]: { manager: { value: "m4" } } } }),
        ),
      ).manager,
    ).toBe("m4");
    // Replace with no value clears (Entra), and an empty extension disappears
    const cleared = applyPatch(withMgr, op({ op: "Replace", path }));
    expect(userFacts(cleared).manager).toBeNull();
    const dept = applyPatch(cleared, op({ op: "Replace", path: `${ENTERPRISE_USER}:department` }));
    expect(dept[ENTERPRISE_USER]).toBeUndefined();
  });

  it("add appends to multi-valued attributes without duplicates; remove by filter", () => {
    const op = (o: JsonObject) => ({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [o],
    });
    const home = { value: "home@example.test", type: "home" };
    const r = applyPatch(okta(), op({ op: "add", path: "emails", value: [home] }));
    expect((r.emails as JsonObject[]).length).toBe(2);
    expect(
      (applyPatch(r, op({ op: "add", path: "emails", value: [home] })).emails as JsonObject[]).length,
    ).toBe(2);
    const removed = applyPatch(r, op({ op: "remove", path: 'emails[type eq "home"]' }));
    expect(removed.emails).toEqual(okta().emails);
  });

  it("refuses what it does not understand, with SCIM error codes", () => {
    const op = (o: JsonObject) => ({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [o],
    });
    expect(
      code(() => applyPatch(okta(), { Operations: [{ op: "replace", path: "active", value: false }] })),
    ).toBe("scim.invalid_syntax");
    expect(code(() => applyPatch(okta(), op({ op: "move", path: "active", value: false })))).toBe(
      "scim.invalid_syntax",
    );
    expect(code(() => applyPatch(okta(), op({ op: "remove" })))).toBe("scim.no_target");
    expect(code(() => applyPatch(okta(), op({ op: "replace", value: "x" })))).toBe("scim.invalid_syntax");
    expect(
      code(() => applyPatch(okta(), op({ op: "replace", path: 'emails[type ne "work"].value', value: "x" }))),
    ).toBe("scim.invalid_path");
    expect(
      code(() => applyPatch(okta(), op({ op: "replace", path: "urn:example:other:attr", value: "x" }))),
    ).toBe("scim.invalid_path");
    expect(code(() => applyPatch(okta(), op({ op: "replace", path: "id", value: "x" })))).toBe(
      "scim.mutability",
    );
    expect(code(() => applyPatch(okta(), op({ op: "replace", path: "active", value: "maybe" })))).toBe(
      "scim.invalid_value",
    );
    expect(code(() => applyPatch(okta(), op({ op: "replace", path: "userName", value: "" })))).toBe(
      "scim.invalid_value",
    );
    expect(
      code(() =>
        applyPatch(okta(), { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations: [] }),
      ),
    ).toBe("scim.invalid_syntax");
  });

  it("parses paths: schema-qualified core attributes, filters with booleans, sub-attributes", () => {
    expect(parsePath("urn:ietf:params:scim:schemas:core:2.0:User:userName")).toMatchObject({
      schema: "core",
      attr: "userName",
    });
    expect(parsePath("emails[primary eq true].value")).toMatchObject({
      filter: { attr: "primary", value: true },
      sub: "value",
    });
    expect(parsePath(ENTERPRISE_USER)).toMatchObject({ schema: "enterprise", attr: null });
  });
});

describe("SCIM filter", () => {
  it('answers userName eq "..." in any case, with escapes; refuses everything else', () => {
    expect(parseUserFilter('userName eq "test.user@okta.local"')).toEqual({
      userName: "test.user@okta.local",
    });
    expect(parseUserFilter('USERNAME EQ "a\\"b"')).toEqual({ userName: 'a"b' });
    for (const f of [
      'userName sw "a"',
      'externalId eq "x"',
      'userName eq "a" or userName eq "b"',
      "userName eq a",
      "",
    ]) {
      expect(
        code(() => parseUserFilter(f)),
        f,
      ).toBe("scim.invalid_filter");
    }
  });
});
