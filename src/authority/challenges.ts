import { MayflyError } from "../errors/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import { recordDenial } from "./deny.js";

export interface ChallengeAnswer {
  nonce: Buffer;
  expiresAt: number;
}

/**
 * Hands out a one-time nonce for one agent. Liveness is not checked here but at
 * redemption, inside the transaction that records the certificate; a challenge for
 * an unknown agent is refused (and audited) so nonces are not minted for nothing.
 * Granted challenges are not audited one by one: the issuance event that redeems a
 * challenge names it, and an unredeemed one expires harmlessly.
 */
export async function createChallenge(
  deps: { store: Store; clock: Clock; random: Random; ttl: number },
  agentId: string,
): Promise<ChallengeAnswer> {
  const { store, clock, random, ttl } = deps;
  try {
    return await store.tx(async (tx) => {
      const agent = await tx.getAgent(agentId);
      if (!agent) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
      const now = clock.now();
      const nonce = random.bytes(32);
      const expiresAt = now + ttl;
      await tx.insertChallenge({ nonce, agentId, createdAt: now, expiresAt, consumedAt: null });
      return { nonce, expiresAt };
    });
  } catch (err) {
    throw await recordDenial(store, clock, err, {
      type: "challenge.create",
      actor: `agent:${agentId}`,
      subject: `agent:${agentId}`,
    });
  }
}
