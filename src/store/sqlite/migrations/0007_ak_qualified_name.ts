import type { Migration } from "./migration.js";

// The activated AK's expected qualified name (issue 3: "the signer is this device's
// activated AK, qualifiedSigner too"). Agents create the AK under the EK, so the CA
// computes QN(EK -> AK) at activation and the evidence formats require every TPMS_ATTEST's
// qualifiedSigner to equal it. Nullable: rows activated before this step have none, and
// keep the algorithm-only check until their next activation.
const sql = `
ALTER TABLE devices ADD COLUMN ak_qualified_name BLOB;
`;

export const migration0007: Migration = { version: 7, name: "ak_qualified_name", sql };
