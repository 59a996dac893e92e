import { MayflyError } from "../errors/index.js";

/**
 * Labels become file names (file backend) and CKA_LABEL values (PKCS#11), so one
 * strict pattern serves both: ASCII letters, digits and `._-`, no path separators, no
 * leading dot (temp and hidden files start with one, and it excludes `.` and `..`),
 * at most 64 characters. Mixed case is allowed (authority/ uses ISO-8601 stamps such
 * as `root-20250101T000000Z`); do not rely on case alone to tell two labels apart,
 * since a case-insensitive file system would see one file.
 */
export const KEY_LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertLabel(label: unknown): asserts label is string {
  if (typeof label !== "string" || !KEY_LABEL_PATTERN.test(label)) {
    // JSON.stringify shows control characters escaped; the value is not secret.
    throw new MayflyError(
      "key.label_invalid",
      `invalid key label ${JSON.stringify(String(label)).slice(0, 80)}`,
      {
        field: "label",
        extra: { pattern: KEY_LABEL_PATTERN.source },
      },
    );
  }
}
