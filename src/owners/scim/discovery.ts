import { CORE_USER, ENTERPRISE_USER, type JsonObject } from "./resource.js";

// The SCIM discovery documents (RFC 7644 §4, RFC 7643 §5-7), describing exactly what
// this service provider does: Users only, PATCH yes, filter userName eq only, no bulk,
// no sort, no password change, no ETag preconditions, bearer-token authentication.

const attr = (name: string, type: string, extra: JsonObject = {}): JsonObject => ({
  name,
  type,
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: "readWrite",
  returned: "default",
  uniqueness: "none",
  ...extra,
});

export function serviceProviderConfig(baseUrl: string): JsonObject {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: 200 },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: "oauthbearertoken",
        name: "Bearer token",
        description: "The provisioning client's bearer token (owners.scim.token)",
        primary: true,
      },
    ],
    meta: { resourceType: "ServiceProviderConfig", location: `${baseUrl}/ServiceProviderConfig` },
  };
}

export function userResourceType(baseUrl: string): JsonObject {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "An owner of agents",
    schema: CORE_USER,
    schemaExtensions: [{ schema: ENTERPRISE_USER, required: false }],
    meta: { resourceType: "ResourceType", location: `${baseUrl}/ResourceTypes/User` },
  };
}

export function userSchema(baseUrl: string): JsonObject {
  const sub = (names: string[]) => names.map((n) => attr(n, n === "primary" ? "boolean" : "string"));
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    id: CORE_USER,
    name: "User",
    description: "User Account",
    attributes: [
      attr("userName", "string", { required: true, uniqueness: "server" }),
      attr("externalId", "string", { caseExact: true }),
      attr("name", "complex", {
        subAttributes: sub([
          "formatted",
          "familyName",
          "givenName",
          "middleName",
          "honorificPrefix",
          "honorificSuffix",
        ]),
      }),
      attr("displayName", "string"),
      attr("title", "string"),
      attr("active", "boolean"),
      attr("emails", "complex", {
        multiValued: true,
        subAttributes: sub(["value", "type", "primary", "display"]),
      }),
    ],
    meta: { resourceType: "Schema", location: `${baseUrl}/Schemas/${CORE_USER}` },
  };
}

export function enterpriseSchema(baseUrl: string): JsonObject {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: [
      attr("employeeNumber", "string"),
      attr("department", "string"),
      attr("manager", "complex", {
        subAttributes: [attr("value", "string"), attr("displayName", "string", { mutability: "readOnly" })],
      }),
    ],
    meta: { resourceType: "Schema", location: `${baseUrl}/Schemas/${ENTERPRISE_USER}` },
  };
}
