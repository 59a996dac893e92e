import type { Migration } from "./migration.js";

// The redeemed-challenge rows go. A challenge nonce is one-time because the certificate
// row that redeems it carries it under certificates_challenge_nonce_key (0001); the
// challenges row was a second copy of that guarantee, costing a random-keyed insert and
// two index entries per issuance. Dropping it loses nothing still needed: every row here
// whose nonce has not expired has its certificate row, which the config keeps well past
// the nonce's expiry (store.certificateRetention, src/config/schema.ts). Its indexes
// (challenges_expires_at_idx, challenges_agent_id_idx) go with it.
// 0010 is another step's number; the runner takes ascending versions with gaps.
const sql = `
DROP TABLE challenges;
`;

export const migration0011: Migration = { version: 11, name: "drop_challenges", sql };
