import { createHmac, timingSafeEqual } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import { recordDenial } from "./deny.js";

export interface ChallengeAnswer {
  nonce: Buffer;
  expiresAt: number;
}

// A challenge is a MAC'd nonce, not a stored row. Minting one used to be a write
// transaction (insert) and redeeming it a second write (conditional update); under load
// that is an extra transaction, lock hand-off and fsync per issuance, and any caller
// could grow the table. Now the nonce carries its own facts, authenticated by a key
// only the CA holds, so minting writes nothing and verifying reads nothing. Redemption
// writes no row of its own either: the certificate row the issuance records (issue.ts)
// carries the nonce, and the unique constraint on it makes each nonce redeemable once.
// That row is kept until well after the nonce has expired (config/schema.ts,
// minCertificateRetention), after which the expiry below refuses the nonce by itself.
//
// Layout, 32 bytes (clients check the length, so it stays 32):
//   random 12 | expiresAt 6 (ms since epoch, big-endian) | agentTag 4 | mac 10
// - random: 96 bits, so two nonces never coincide and evidence over the nonce is fresh.
// - expiresAt: under the MAC, so the expiry needs no lookup and cannot be extended.
// - agentTag = HMAC(key, "mayfly/challenge-agent/v1" || agentId)[0..4]: binds the nonce
//   to one agent. Keyed, so nobody can search offline for an agent id whose tag collides
//   with another's; online, a guess is one chance in 2^32 and still needs a valid nonce.
// - mac = HMAC(key, "mayfly/challenge/v1" || the first 22 bytes)[0..10]: 80 bits, enough
//   for a value an attacker can only test online, one request at a time.
// The labels separate the two HMAC uses (and versions) under the one key.
const NONCE_LENGTH = 32;
const RANDOM_END = 12;
const EXPIRY_END = 18;
const TAG_END = 22;
const AGENT_LABEL = Buffer.from("mayfly/challenge-agent/v1");
const MAC_LABEL = Buffer.from("mayfly/challenge/v1");

/** The server secret (Store.ensureSecret) that keys challenge nonces. */
export const CHALLENGE_KEY_NAME = "challenge-mac/v1";
export const CHALLENGE_KEY_LENGTH = 32;

/**
 * The challenge key, shared through the store so that every worker process and replica
 * mints and verifies with the same one: the first to start stores its random candidate,
 * the rest read it. Loaded once at server start.
 */
export async function loadChallengeKey(store: Store, random: Random): Promise<Buffer> {
  const key = await store.tx((tx) => tx.ensureSecret(CHALLENGE_KEY_NAME, random.bytes(CHALLENGE_KEY_LENGTH)));
  if (key.length !== CHALLENGE_KEY_LENGTH)
    throw new MayflyError("internal.error", `stored ${CHALLENGE_KEY_NAME} is ${key.length} bytes`);
  return key;
}

function agentTag(key: Buffer, agentId: string): Buffer {
  return createHmac("sha256", key)
    .update(AGENT_LABEL)
    .update(agentId, "utf8")
    .digest()
    .subarray(0, TAG_END - EXPIRY_END);
}

function macOf(key: Buffer, body: Buffer): Buffer {
  return createHmac("sha256", key)
    .update(MAC_LABEL)
    .update(body)
    .digest()
    .subarray(0, NONCE_LENGTH - TAG_END);
}

/** A nonce for `agentId` that expires at `expiresAt`, under `key`. */
export function mintNonce(key: Buffer, random: Random, agentId: string, expiresAt: number): Buffer {
  const nonce = Buffer.alloc(NONCE_LENGTH);
  random.bytes(RANDOM_END).copy(nonce, 0);
  nonce.writeUIntBE(expiresAt, RANDOM_END, EXPIRY_END - RANDOM_END);
  agentTag(key, agentId).copy(nonce, EXPIRY_END);
  macOf(key, nonce.subarray(0, TAG_END)).copy(nonce, TAG_END);
  return nonce;
}

/**
 * Checks a presented nonce with no store access: one this CA minted (else
 * challenge.not_found, as an unknown row used to be), for this agent
 * (challenge.agent_mismatch), unexpired at `now` (challenge.expired; expiresAt == now is
 * expired). Whether it was already used is the recording transaction's question (the
 * unique nonce of the certificate row).
 * Returns the nonce's expiry.
 */
export function verifyChallenge(
  key: Buffer,
  nonce: Buffer,
  agentId: string,
  now: number,
): { expiresAt: number } {
  if (
    nonce.length !== NONCE_LENGTH ||
    !timingSafeEqual(macOf(key, nonce.subarray(0, TAG_END)), nonce.subarray(TAG_END))
  )
    throw new MayflyError("challenge.not_found", "no such challenge", { field: "nonce" });
  if (!timingSafeEqual(agentTag(key, agentId), nonce.subarray(EXPIRY_END, TAG_END))) {
    throw new MayflyError("challenge.agent_mismatch", "the challenge was issued to another agent", {
      field: "nonce",
    });
  }
  const expiresAt = nonce.readUIntBE(RANDOM_END, EXPIRY_END - RANDOM_END);
  if (expiresAt <= now)
    throw new MayflyError("challenge.expired", "the challenge has expired", { field: "nonce" });
  return { expiresAt };
}

/**
 * Whether the agent exists: challenge creation's one store access, a read-only snapshot
 * (store.read), so minting a nonce never waits for or takes the write lock. It reads the
 * issuance facts, which the issuance that redeems the nonce reads next: a store that
 * caches them (SQLite) then has them at hand.
 */
async function agentExists(store: Store, agentId: string): Promise<boolean> {
  return (await store.readIssuanceFacts(agentId)) !== null;
}

/**
 * Hands out a one-time nonce for one agent, writing nothing (see above). Liveness is
 * not checked here but at redemption, inside the transaction that records the
 * certificate; a challenge for an unknown agent is refused (and audited) so nonces are
 * not minted for nothing. Granted challenges are not audited one by one: the issuance
 * event that redeems a challenge names it, and an unredeemed one expires harmlessly.
 */
export async function createChallenge(
  deps: { store: Store; clock: Clock; random: Random; ttl: number; key: Buffer },
  agentId: string,
): Promise<ChallengeAnswer> {
  const { store, clock, random, ttl, key } = deps;
  try {
    if (!(await agentExists(store, agentId))) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
    const expiresAt = clock.now() + ttl;
    return { nonce: mintNonce(key, random, agentId, expiresAt), expiresAt };
  } catch (err) {
    throw await recordDenial(store, clock, err, {
      type: "challenge.create",
      actor: `agent:${agentId}`,
      subject: `agent:${agentId}`,
    });
  }
}
