import { MayflyError } from "../../errors/index.js";

/**
 * The one filter Mayfly answers: `userName eq "..."`, which is how Okta and Microsoft
 * Entra look a user up before creating it (attribute and operator in any case, RFC 7644
 * §3.4.2.2). Every other filter is refused with invalidFilter rather than answered
 * wrongly: an IdP that got an empty list for a filter we ignored would create a duplicate.
 */
export function parseUserFilter(filter: string): { userName: string } {
  const m = /^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter);
  if (!m) {
    throw new MayflyError(
      "scim.invalid_filter",
      `unsupported filter ${JSON.stringify(filter)}; only userName eq "..."`,
      {
        field: "filter",
      },
    );
  }
  let userName: string;
  try {
    userName = JSON.parse(`"${m[1]}"`) as string;
  } catch {
    throw new MayflyError("scim.invalid_filter", "the filter value is not a valid string", {
      field: "filter",
    });
  }
  return { userName };
}
