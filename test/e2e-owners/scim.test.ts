import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpResult, https } from "../helpers/https.js";
import { type OwnersCa, startOwnersCa } from "./helpers.js";

// The SCIM 2.0 service provider over HTTPS, driven with the request bodies Okta and
// Microsoft Entra send (test/fixtures/scim/README.md).

let o: OwnersCa;
beforeAll(async () => {
  o = await startOwnersCa();
});
afterAll(async () => {
  await o?.close();
});

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/scim/${name}`, import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;

type User = Record<string, unknown> & {
  id: string;
  active: boolean;
  meta: { version: string; location: string };
};

/** A SCIM error: the media type, the error schema, status as a string, scimType; one deny event; nothing else written. */
async function expectScimError(
  p: () => Promise<HttpResult>,
  status: number,
  scimType: string | null,
  code: string,
) {
  const before = await o.counts();
  const res = await p();
  expect(res.status, res.text).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/scim\+json/);
  const body = res.json as Record<string, unknown>;
  expect(body.schemas).toEqual(["urn:ietf:params:scim:api:messages:2.0:Error"]);
  expect(body.status).toBe(String(status));
  if (scimType) expect(body.scimType).toBe(scimType);
  else expect(body.scimType).toBeUndefined();
  expect(typeof body.detail).toBe("string");
  const after = await o.counts();
  expect({ ...after, audit: after.audit - 1 }).toEqual(before);
  expect((await o.audit()).at(-1)).toMatchObject({ decision: "deny", code });
  return body;
}

describe("SCIM discovery", () => {
  it("serves ServiceProviderConfig, ResourceTypes and Schemas", async () => {
    const spc = await o.scim("GET", "/ServiceProviderConfig");
    expect(spc.status).toBe(200);
    expect(spc.headers["content-type"]).toMatch(/^application\/scim\+json/);
    expect(spc.json).toMatchObject({
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true },
    });
    const rt = await o.scim("GET", "/ResourceTypes");
    expect(rt.json).toMatchObject({ totalResults: 1, Resources: [{ id: "User", endpoint: "/Users" }] });
    const schemas = (await o.scim("GET", "/Schemas")).json as { Resources: { id: string }[] };
    expect(schemas.Resources.map((s) => s.id)).toEqual([
      "urn:ietf:params:scim:schemas:core:2.0:User",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ]);
    expect((await o.scim("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")).status).toBe(200);
  });

  it("refuses a missing or wrong bearer token with 401 (and WWW-Authenticate)", async () => {
    const res = await expectScimError(
      () => o.scim("GET", "/Users", undefined, "wrong"),
      401,
      null,
      "scim.unauthorized",
    );
    expect(res.detail).toMatch(/token/);
    const bare = await o.ca.call("/scim/v2/Users");
    expect(bare.status).toBe(401);
    expect(bare.headers["www-authenticate"]).toMatch(/^Bearer/);
  });
});

describe("SCIM Users, Okta-shaped", () => {
  let id: string;

  it("looks up (nothing), creates, looks up again, gets; never stores the password", async () => {
    const filter = encodeURIComponent('userName eq "test.user@okta.local"');
    const none = await o.scim("GET", `/Users?filter=${filter}&startIndex=1&count=100`);
    expect(none.json).toMatchObject({ totalResults: 0, Resources: [] });
    const created = await o.scim("POST", "/Users", fixture("okta/create-user.json"));
    expect(created.status, created.text).toBe(201);
    const u = created.json as User;
    id = u.id;
    expect(created.headers.location).toBe(u.meta.location);
    expect(u).toMatchObject({
      userName: "test.user@okta.local",
      externalId: "00ujl29u0le5T6Aj10h7",
      active: true,
    });
    expect(u.password).toBeUndefined();
    expect(JSON.stringify(await o.audit())).not.toContain("1mz050nq");
    const found = await o.scim("GET", `/Users?filter=${filter}`);
    expect(found.json).toMatchObject({ totalResults: 1, Resources: [{ id }] });
    const got = await o.scim("GET", `/Users/${id}`);
    expect(got.json).toMatchObject({ id, userName: "test.user@okta.local" });
    const owner = await o.ca.running.store.tx((tx) =>
      tx.findOwnerBySubject(o.idp.issuer, "00ujl29u0le5T6Aj10h7"),
    );
    expect(owner).toMatchObject({
      status: "active",
      email: "test.user@okta.local",
      displayName: "Test User",
    });
  });

  it("a second create of the same userName (any case) is 409 uniqueness", async () => {
    const dup = {
      ...fixture("okta/create-user.json"),
      userName: "TEST.USER@okta.local",
      externalId: "other",
    };
    await expectScimError(() => o.scim("POST", "/Users", dup), 409, "uniqueness", "scim.uniqueness");
  });

  it("PATCH replace without path { active: false } deactivates the owner; { active: true } brings them back", async () => {
    const off = await o.scim("PATCH", `/Users/${id}`, fixture("okta/deactivate.json"));
    expect(off.status, off.text).toBe(200);
    expect((off.json as User).active).toBe(false);
    const owner = () =>
      o.ca.running.store.tx((tx) => tx.findOwnerBySubject(o.idp.issuer, "00ujl29u0le5T6Aj10h7"));
    expect((await owner())?.status).toBe("suspended");
    const on = await o.scim("PATCH", `/Users/${id}`, fixture("okta/reactivate.json"));
    expect((on.json as User).active).toBe(true);
    expect((await owner())?.status).toBe("active");
  });

  it("PUT replaces the user: department and manager from the enterprise extension", async () => {
    const res = await o.scim("PUT", `/Users/${id}`, fixture("okta/replace-user.json"));
    expect(res.status, res.text).toBe(200);
    const u = res.json as User;
    expect(u.id).toBe(id);
    expect(u.schemas).toContain("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
    const owner = await o.ca.running.store.tx((tx) =>
      tx.findOwnerBySubject(o.idp.issuer, "00ujl29u0le5T6Aj10h7"),
    );
    expect(owner).toMatchObject({ department: "Platform Engineering", manager: "00u1ksbwvnKlaxrdz0h8" });
    // The subject attribute is immutable: changing it would hand the owner to another login.
    await expectScimError(
      () =>
        o.scim("PUT", `/Users/${id}`, { ...fixture("okta/replace-user.json"), externalId: "00uSOMEONEELSE" }),
      400,
      "mutability",
      "scim.mutability",
    );
  });
});

describe("SCIM Users, Entra-shaped", () => {
  let id: string;
  const owner = () =>
    o.ca.running.store.tx((tx) =>
      tx.findOwnerBySubject(o.idp.issuer, "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"),
    );

  it('creates, then PATCHes active with the strings "False" and "True"', async () => {
    const created = await o.scim("POST", "/Users", fixture("entra/create-user.json"));
    expect(created.status, created.text).toBe(201);
    id = (created.json as User).id;
    expect((await owner())?.department).toBe("Finance");
    expect((await o.scim("PATCH", `/Users/${id}`, fixture("entra/disable.json"))).status).toBe(200);
    expect((await owner())?.status).toBe("suspended");
    expect(((await o.scim("GET", `/Users/${id}`)).json as User).active).toBe(false);
    expect((await o.scim("PATCH", `/Users/${id}`, fixture("entra/enable.json"))).status).toBe(200);
    expect((await owner())?.status).toBe("active");
  });

  it("PATCHes attributes by path, the manager as a bare string, then removes it", async () => {
    const res = await o.scim("PATCH", `/Users/${id}`, fixture("entra/replace-attributes.json"));
    expect(res.status, res.text).toBe(200);
    expect(await owner()).toMatchObject({
      displayName: "Pvlo",
      email: "TestBcwqnm@test.microsoft.com",
      department: "Research",
    });
    await o.scim("PATCH", `/Users/${id}`, fixture("entra/manager-add.json"));
    expect((await owner())?.manager).toBe("26118915-6090-4610-87a4-49d0767e9fde");
    await o.scim("PATCH", `/Users/${id}`, fixture("entra/manager-remove.json"));
    expect((await owner())?.manager).toBeNull();
    const v = (await o.scim("GET", `/Users/${id}`)).json as User;
    expect(v.meta.version).toMatch(/^W\/"\d+"$/);
  });

  it("refuses bad input with SCIM errors and changes nothing", async () => {
    const patch = (ops: unknown[]) => ({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: ops,
    });
    await expectScimError(
      () => o.scim("GET", `/Users?filter=${encodeURIComponent('emails.value co "x"')}`),
      400,
      "invalidFilter",
      "scim.invalid_filter",
    );
    await expectScimError(
      () => o.scim("PATCH", `/Users/${id}`, patch([{ op: "Replace", path: "active", value: "Maybe" }])),
      400,
      "invalidValue",
      "scim.invalid_value",
    );
    await expectScimError(
      () => o.scim("PATCH", `/Users/${id}`, patch([{ op: "Remove" }])),
      400,
      "noTarget",
      "scim.no_target",
    );
    await expectScimError(
      () =>
        o.scim("PATCH", `/Users/${id}`, patch([{ op: "Replace", path: 'roles[value sw "x"]', value: "y" }])),
      400,
      "invalidPath",
      "scim.invalid_path",
    );
    await expectScimError(
      () => o.scim("PATCH", `/Users/${id}`, patch([{ op: "Add", path: "id", value: "mine" }])),
      400,
      "mutability",
      "scim.mutability",
    );
    // The first operation was fine, the second is not: neither applies.
    await expectScimError(
      () =>
        o.scim(
          "PATCH",
          `/Users/${id}`,
          patch([
            { op: "Replace", path: "active", value: "False" },
            { op: "Replace", path: "active", value: 3 },
          ]),
        ),
      400,
      "invalidValue",
      "scim.invalid_value",
    );
    expect((await owner())?.status).toBe("active");
    await expectScimError(
      () =>
        https(`${o.ca.url}/scim/v2/Users`, {
          method: "POST",
          ca: o.ca.rootPem,
          rawBody: "{not json",
          contentType: "application/scim+json",
          headers: { authorization: `Bearer ${o.scimToken}` },
        }),
      400,
      "invalidSyntax",
      "scim.invalid_syntax",
    );
    await expectScimError(
      () =>
        o.scim("POST", "/Users", {
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
          userName: "no-external-id",
        }),
      400,
      "invalidValue",
      "scim.invalid_value",
    );
    await expectScimError(() => o.scim("GET", "/Users/does-not-exist"), 404, null, "scim.not_found");
    await expectScimError(() => o.scim("GET", "/Groups"), 404, null, "scim.not_found");
  });

  it("DELETE removes the User (404 after), keeps the owner as deprovisioned", async () => {
    const res = await o.scim("DELETE", `/Users/${id}`);
    expect(res.status).toBe(204);
    await expectScimError(() => o.scim("GET", `/Users/${id}`), 404, null, "scim.not_found");
    expect((await owner())?.status).toBe("deprovisioned");
    // Provisioned again later: the same owner record comes back to life.
    const again = await o.scim("POST", "/Users", fixture("entra/create-user.json"));
    expect(again.status, again.text).toBe(201);
    expect((await owner())?.status).toBe("active");
  });

  it("adopts an owner who logged in before being provisioned, by the subject attribute", async () => {
    const me = await o.api("GET", "/v1/owners/me", await o.token("early-bird"));
    const ownerId = (me.json as { ownerId: string }).ownerId;
    const res = await o.scim("POST", "/Users", {
      ...fixture("okta/create-user.json"),
      userName: "early.bird@example.test",
      externalId: "early-bird",
    });
    expect(res.status, res.text).toBe(201);
    const owner = await o.ca.running.store.tx((tx) => tx.getOwner(ownerId));
    expect(owner).toMatchObject({ subject: "early-bird", email: "test.user@okta.local", status: "active" });
    const bySubject = await o.ca.running.store.tx((tx) => tx.findOwnerBySubject(o.idp.issuer, "early-bird"));
    expect(bySubject?.id).toBe(ownerId);
    // A second User for the same person is refused.
    await expectScimError(
      () =>
        o.scim("POST", "/Users", {
          ...fixture("okta/create-user.json"),
          userName: "early.bird.2@example.test",
          externalId: "early-bird",
        }),
      409,
      "uniqueness",
      "scim.uniqueness",
    );
  });

  it("lists users with startIndex and count", async () => {
    const all = (await o.scim("GET", "/Users")).json as { totalResults: number; Resources: User[] };
    expect(all.totalResults).toBeGreaterThanOrEqual(2);
    const page = (await o.scim("GET", "/Users?startIndex=2&count=1")).json as {
      itemsPerPage: number;
      startIndex: number;
    };
    expect(page).toMatchObject({ itemsPerPage: 1, startIndex: 2 });
  });
});
